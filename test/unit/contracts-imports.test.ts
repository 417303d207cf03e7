import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/** What a contract module may import: zod, the workflow definition helpers and other contracts. */
const ALLOWED_PACKAGES = new Set(['zod', '@temporalio/workflow']);
const CONTRACTS_DIR = join(__dirname, '../../src/core/contracts');

/** Every import and re-export specifier of a file, type-only ones included (TypeScript's own pre-parser). */
function importsOf(path: string): string[] {
  const info = ts.preProcessFile(readFileSync(path, 'utf8'), true, true);
  return info.importedFiles.map((f) => f.fileName);
}

describe('src/core/contracts depends on nothing else in src/', () => {
  const files = readdirSync(CONTRACTS_DIR).filter((f) => f.endsWith('.ts'));

  it('finds the contract modules', () => {
    expect(files).toEqual(
      expect.arrayContaining(['gate.ts', 'metrics.ts', 'primitives.ts', 'retraining.ts']),
    );
  });

  it.each(files)('%s imports only zod, @temporalio/workflow and sibling contracts', (file) => {
    const outside = importsOf(join(CONTRACTS_DIR, file)).filter(
      (spec) => !ALLOWED_PACKAGES.has(spec) && !/^\.\/[^/]+$/.test(spec),
    );
    expect(outside).toEqual([]);
  });

  it('the check sees type-only imports (a regression guard for the check itself)', () => {
    const info = ts.preProcessFile(
      "import type { X } from '../policy/gate';\nexport { Y } from '../stats/m';",
      true,
      true,
    );
    expect(info.importedFiles.map((f) => f.fileName)).toEqual(['../policy/gate', '../stats/m']);
  });
});
