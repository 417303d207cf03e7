/**
 * The sandbox boundary lint rule (`sandbox/imports` in eslint.config.mjs), run with the real config
 * over in-memory sources: workflows/ and src/core/ may load as values only allowlisted packages and
 * relative paths inside their sandbox roots; type-only imports of anything are allowed; everything
 * else (Node built-ins, other packages, every other folder, including ones that do not exist yet) is
 * refused by default. Also: type-aware no-floating-promises is on for the whole tree.
 */
import { ESLint } from 'eslint';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..', '..');
/** The real config, type-aware rules included: it can lint only files that exist in the tsconfig project. */
const typedEslint = new ESLint({ cwd: root });
/**
 * The real config without type information, for sources at paths that do not exist (the project
 * service refuses those); the sandbox rule reads only the syntax tree.
 */
const eslint = new ESLint({
  cwd: root,
  overrideConfig: {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: false } },
    rules: { '@typescript-eslint/no-floating-promises': 'off' },
  },
});

/** The messages of the sandbox rule for `code` linted as if it were `file`. */
async function refusals(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(root, file) });
  const messages = result?.messages ?? [];
  // A parse error would hide every rule: fail loudly instead of passing the "allowed" cases.
  expect(messages.filter((m) => m.fatal === true)).toEqual([]);
  return messages.filter((m) => m.ruleId === 'sandbox/imports').map((m) => m.message);
}

/** A module that loads `source` as a value and uses it. */
const valueImport = (source: string): string => `import * as m from '${source}';\nexport const a = m;\n`;

describe('sandbox boundary lint rule', () => {
  it.each([
    // The leaks of the old denylist.
    ['workflows/x.ts', valueImport('../src/mlflow'), /resolves to src\/mlflow, which is Node-only/],
    ['workflows/x.ts', valueImport('../src/mlflow/client'), /Node-only/],
    ['workflows/x.ts', valueImport('../src/audit'), /resolves to src\/audit, which is Node-only/],
    ['workflows/x.ts', valueImport('../src/config'), /resolves to src\/config, which is Node-only/],
    ['workflows/x.ts', valueImport('../src/workload'), /resolves to src\/workload, which is Node-only/],
    ['workflows/x.ts', valueImport('../src/cli/demo'), /resolves to src\/cli\/demo, which is Node-only/],
    ['workflows/x.ts', valueImport('node:async_hooks'), /'node:async_hooks' is a Node built-in/],
    ['workflows/x.ts', valueImport('async_hooks'), /'async_hooks' is a Node built-in/],
    ['workflows/x.ts', valueImport('node:stream/promises'), /'node:stream\/promises' is a Node built-in/],
    ['workflows/x.ts', valueImport('string_decoder'), /'string_decoder' is a Node built-in/],
    // Refused by default: a folder created tomorrow, without editing the lint config.
    [
      'workflows/x.ts',
      valueImport('../src/brand-new-folder/x'),
      /src\/brand-new-folder\/x, which is Node-only/,
    ],
    ['workflows/stages/deep/x.ts', valueImport('../../../src/brand-new-folder/x'), /Node-only/],
    // Climbing out of core through a path that only looks like it stays inside.
    ['workflows/x.ts', valueImport('../src/core/../mlflow'), /resolves to src\/mlflow/],
    ['workflows/x.ts', valueImport('..'), /Node-only/],
    // Built-ins and packages.
    ['workflows/x.ts', "import fs from 'fs';\nexport const a = fs;\n", /'fs' is a Node built-in/],
    [
      'workflows/x.ts',
      "import { readFile } from 'node:fs/promises';\nexport const a = readFile;\n",
      /Node built-in/,
    ],
    ['workflows/x.ts', valueImport('node:test'), /Node built-in/],
    ['workflows/x.ts', valueImport('@temporalio/activity'), /not a sandbox-safe package/],
    ['workflows/x.ts', valueImport('@temporalio/client'), /not a sandbox-safe package/],
    ['workflows/x.ts', valueImport('canonicalize'), /not a sandbox-safe package/],
    ['workflows/x.ts', valueImport('src/config'), /not a sandbox-safe package/],
    ['workflows/x.ts', valueImport('zodiac'), /not a sandbox-safe package/],
    // Activities as values, in every syntax that loads a module.
    [
      'workflows/x.ts',
      "import { createActivities } from '../activities';\nexport const a = createActivities;\n",
      /import activities as types only/,
    ],
    ['workflows/x.ts', "export { createActivities } from '../activities';\n", /types only/],
    ['workflows/x.ts', "export * from '../activities/evaluation';\n", /types only/],
    ['workflows/x.ts', "import '../activities';\n", /types only/],
    ['workflows/x.ts', "export const a = () => import('../src/mlflow');\n", /Node-only/],
    ['workflows/x.ts', "import fs = require('node:fs');\nexport const a = fs;\n", /Node built-in/],
    ['workflows/x.ts', 'export const a = (n: string) => import(n);\n', /computed import/],
    // Mixed type and value specifiers still load the module.
    [
      'workflows/x.ts',
      "import { type Activities, createActivities } from '../activities';\nexport const a: Activities = createActivities();\n",
      /types only/,
    ],
    // src/core: only itself, never workflows/ or the Node-only side.
    ['src/core/stats/x.ts', valueImport('../../mlflow'), /resolves to src\/mlflow, which is Node-only/],
    ['src/core/contracts/x.ts', valueImport('../../brand-new-folder'), /Node-only/],
    [
      'src/core/contracts/x.ts',
      valueImport('../../../workflows/retraining-pipeline'),
      /src\/core\/ must not depend on workflow code/,
    ],
    ['src/core/policy/x.ts', "import crypto from 'crypto';\nexport const a = crypto;\n", /Node built-in/],
    ['src/core/stats/x.ts', "import os from 'node:os';\nexport const a = os;\n", /Node built-in/],
    ['src/core/contracts/x.ts', valueImport('@temporalio/client'), /not a sandbox-safe package/],
    ['src/core/x.ts', valueImport('../../activities'), /types only/],
  ])('refuses in %s: %s', async (file, code, message) => {
    const messages = await refusals(file, code);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatch(message);
    // Every refusal says what is allowed instead.
    expect(messages[0]).toMatch(/may import only .*@temporalio\/workflow.*zod/);
  });

  it.each([
    ['workflows/x.ts', "import type { Activities } from '../activities';\nexport type A = Activities;\n"],
    ['workflows/x.ts', "import { type Activities } from '../activities';\nexport type A = Activities;\n"],
    [
      'workflows/x.ts',
      "import type { EvaluationSummary } from '../activities/evaluation';\nexport type A = EvaluationSummary;\n",
    ],
    ['workflows/x.ts', "export type { Activities } from '../activities';\n"],
    [
      'workflows/x.ts',
      "import type { MlflowClient } from '../src/mlflow/client';\nexport type A = MlflowClient;\n",
    ],
    ['workflows/x.ts', "import type { Readable } from 'node:stream';\nexport type A = Readable;\n"],
    ['workflows/x.ts', "export type A = import('../src/mlflow/client').MlflowClient;\n"],
    [
      'workflows/x.ts',
      "import { proxyActivities } from '@temporalio/workflow';\nexport const a = proxyActivities;\n",
    ],
    ['workflows/x.ts', "import { z } from 'zod';\nexport const a = z.string();\n"],
    [
      'workflows/x.ts',
      "import { decidePromotion } from '../src/core/policy/gate';\nexport const a = decidePromotion;\n",
    ],
    ['workflows/stages/x.ts', valueImport('../../src/core/contracts/retraining')],
    ['workflows/stages/x.ts', valueImport('../retraining-pipeline')],
    ['workflows/x.ts', valueImport('./retraining-pipeline')],
    ['src/core/contracts/x.ts', valueImport('../stats/metrics')],
    ['src/core/contracts/x.ts', valueImport('zod')],
    ['src/core/contracts/x.ts', valueImport('@temporalio/workflow')],
    [
      'src/core/contracts/x.ts',
      "import type { Activities } from '../../../activities';\nexport type A = Activities;\n",
    ],
    // The Node-only side is not checked.
    ['activities/x.ts', "import fs from 'node:fs';\nexport const a = fs;\n"],
    ['src/mlflow/x.ts', valueImport('node:async_hooks')],
    ['src/brand-new-folder/x.ts', valueImport('../mlflow/client')],
  ])('allows in %s: %s', async (file, code) => {
    expect(await refusals(file, code)).toEqual([]);
  });
});

/** The first type-aware lint loads the whole tsconfig project (about 10 s on a loaded 2-core machine). */
const TYPED_LINT_TIMEOUT_MS = 60_000;

describe('type-aware lint rules', () => {
  // Linted as existing files of each side, so the project service has them in the tsconfig project.
  it.each([
    'workflows/index.ts',
    'src/core/stats/random.ts',
    'src/cli/demo.ts',
    'test/unit/lint-rules.test.ts',
  ])(
    'refuses a floating promise in %s',
    async (file) => {
      const code =
        'async function f(): Promise<void> {}\nf();\nvoid f();\nexport const g = (): Promise<void> => f();\n';
      const [result] = await typedEslint.lintText(code, { filePath: path.join(root, file) });
      const messages = result?.messages ?? [];
      expect(messages.filter((m) => m.fatal === true)).toEqual([]);
      expect(
        messages.filter((m) => m.ruleId === '@typescript-eslint/no-floating-promises').map((m) => m.line),
      ).toEqual([2]);
    },
    TYPED_LINT_TIMEOUT_MS,
  );
});
