// Lint rules. The workflow sandbox rules follow the Temporal samples, pointed at our top-level
// workflows/ folder: workflow code may import only @temporalio/workflow, type-only activity
// imports, and the sandbox-safe parts of src/ (contracts, policy, stats).
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const nodeBuiltins = [
  'assert',
  'buffer',
  'child_process',
  'cluster',
  'crypto',
  'dgram',
  'dns',
  'events',
  'fs',
  'fs/promises',
  'http',
  'http2',
  'https',
  'net',
  'os',
  'path',
  'perf_hooks',
  'process',
  'readline',
  'stream',
  'timers',
  'tls',
  'url',
  'util',
  'v8',
  'vm',
  'worker_threads',
  'zlib',
];

export default tseslint.config(
  { ignores: ['node_modules/**', '.tools/**', '.state/**', 'dist/**', 'deploy/**/*.py'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': ['error', { prefer: 'type-imports' }],
    },
  },
  {
    files: ['workflows/**/*.ts', 'src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            ...nodeBuiltins.map((name) => ({
              name,
              message: 'Workflow code runs in a sandbox: no Node built-ins.',
            })),
            ...nodeBuiltins.map((name) => ({
              name: `node:${name}`,
              message: 'Workflow code runs in a sandbox: no Node built-ins.',
            })),
            { name: '@temporalio/activity', message: 'Activities are not callable from workflow code.' },
            { name: '@temporalio/client', message: 'Workflow code cannot use the client.' },
            { name: '@temporalio/worker', message: 'Workflow code cannot use the worker.' },
          ],
          patterns: [
            {
              group: ['**/activities', '**/activities/*'],
              allowTypeImports: true,
              message: 'Import activities as types only (proxyActivities<typeof activities>).',
            },
            {
              group: [
                '**/src/mlflow/*',
                '**/src/jobs/*',
                '**/src/stack/*',
                '**/src/data/*',
                '**/src/security/*',
                '**/src/audit/*',
                '**/src/eval/*',
              ],
              allowTypeImports: true,
              message: 'Node-only parts of src/ may not be loaded in the workflow sandbox.',
            },
          ],
        },
      ],
    },
  },
);
