/**
 * The lint rules that keep workflow code deterministic: no Node built-ins and no activity values
 * in workflows/ or the sandbox-safe folders of src/, type-only activity imports allowed.
 */
import { ESLint } from 'eslint';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..', '..');
const eslint = new ESLint({ cwd: root });

async function restricted(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(root, file) });
  return (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('workflow sandbox lint rules', () => {
  it.each([
    ['workflows/x.ts', "import fs from 'fs';\nexport const a = fs;\n", /sandbox: no Node built-ins/],
    [
      'workflows/x.ts',
      "import { readFile } from 'node:fs/promises';\nexport const a = readFile;\n",
      /no Node built-ins/,
    ],
    [
      'workflows/x.ts',
      "import { createActivities } from '../activities';\nexport const a = createActivities;\n",
      /as types only/,
    ],
    [
      'workflows/x.ts',
      "import { Context } from '@temporalio/activity';\nexport const a = Context;\n",
      /not callable/,
    ],
    [
      'workflows/x.ts',
      "import { MlflowClient } from '../src/mlflow/client';\nexport const a = MlflowClient;\n",
      /Node-only/,
    ],
    ['src/core/policy/x.ts', "import crypto from 'crypto';\nexport const a = crypto;\n", /no Node built-ins/],
    [
      'src/core/contracts/x.ts',
      "import { Client } from '@temporalio/client';\nexport const a = Client;\n",
      /cannot use the client/,
    ],
    ['src/core/stats/x.ts', "import os from 'node:os';\nexport const a = os;\n", /no Node built-ins/],
  ])('refuses in %s: %s', async (file, code, message) => {
    const messages = await restricted(file, code);
    expect(messages.length).toBeGreaterThan(0);
    expect(messages.join('\n')).toMatch(message);
  });

  it.each([
    ['workflows/x.ts', "import type { Activities } from '../activities';\nexport type A = Activities;\n"],
    [
      'workflows/x.ts',
      "import { proxyActivities } from '@temporalio/workflow';\nexport const a = proxyActivities;\n",
    ],
    [
      'workflows/x.ts',
      "import { decidePromotion } from '../src/core/policy/gate';\nexport const a = decidePromotion;\n",
    ],
    ['activities/x.ts', "import fs from 'node:fs';\nexport const a = fs;\n"],
  ])('allows in %s: %s', async (file, code) => {
    expect(await restricted(file, code)).toEqual([]);
  });
});
