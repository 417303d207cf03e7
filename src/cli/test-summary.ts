/**
 * Prints the plain closing line CI reads, `tests: N passed, N failed[, N skipped]`, from vitest's
 * JSON report. A missing or unreadable report counts as one failure: a run that produced no
 * results must not look green.
 */
import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';

const ReportSchema = z.object({
  numPassedTests: z.number(),
  numFailedTests: z.number(),
  numPendingTests: z.number().default(0),
  numTodoTests: z.number().default(0),
  numTotalTestSuites: z.number().optional(),
  testResults: z
    .array(
      z.object({
        status: z.string(),
        name: z.string(),
        message: z.string().optional(),
        assertionResults: z.array(z.object({ status: z.string() })).default([]),
      }),
    )
    .default([]),
});

const file = process.argv[2] ?? '.tools/test-results.json';
if (!existsSync(file)) {
  console.log(`no test report at ${file}`);
  console.log('tests: 0 passed, 1 failed');
  process.exit(1);
}
const parsed = ReportSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
if (!parsed.success) {
  console.log(`unreadable test report ${file}`);
  console.log('tests: 0 passed, 1 failed');
  process.exit(1);
}
const r = parsed.data;
// A test file that failed to load (syntax error, failing beforeAll) has no failed test of its own:
// each such file counts as one failure beside the failed tests of the other files.
const brokenFiles = r.testResults.filter(
  (t) => t.status === 'failed' && t.message && !t.assertionResults.some((a) => a.status === 'failed'),
).length;
const failed = r.numFailedTests + brokenFiles;
const skipped = r.numPendingTests + r.numTodoTests;
console.log(`tests: ${r.numPassedTests} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || r.numPassedTests === 0 ? 1 : 0);
