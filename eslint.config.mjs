// Lint rules. The workflow sandbox boundary is an allowlist drawn by the folder tree: code in
// workflows/ and src/core/ runs in (or is loaded by) the Temporal workflow sandbox, everything else
// is Node-only. A new folder is Node-only unless it is deliberately placed under one of these roots.
import js from '@eslint/js';
import globals from 'globals';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import tseslint from 'typescript-eslint';

/** The repository root: sandbox roots and import targets are resolved against it. */
const repoRoot = path.dirname(fileURLToPath(import.meta.url));

/**
 * Sandbox roots, innermost first, with the roots each may import from by relative path.
 * src/core may not depend on workflows/ (core is shared by workflows, activities and clients).
 */
const sandboxRoots = [
  { root: 'src/core', mayImport: ['src/core'] },
  { root: 'workflows', mayImport: ['workflows', 'src/core'] },
];

/**
 * Packages sandbox code may load as values (subpaths included), each pure JS without Node APIs.
 * - @temporalio/workflow: the workflow API itself.
 * - zod: the contracts' schemas.
 * - pure-rand: the seeded PRNG of src/core/stats/random.ts (no dependencies, no Node APIs).
 */
const sandboxPackages = ['@temporalio/workflow', 'zod', 'pure-rand'];

/** Node built-ins, from Node itself (with subpaths such as `stream/promises`), never a hand-kept list. */
const nodeBuiltins = new Set(builtinModules);

const allowedSummary =
  'Sandbox code (workflows/, src/core/) may import only ' +
  `${sandboxPackages.join(', ')}, relative paths inside its sandbox roots, and \`import type\` of anything.`;

/** The sandbox root a file belongs to, or undefined for Node-only code. */
function sandboxRootOf(file) {
  const rel = path.relative(repoRoot, file).split(path.sep).join('/');
  return sandboxRoots.find(({ root }) => rel === root || rel.startsWith(`${root}/`));
}

function isInside(rel, root) {
  return rel === root || rel.startsWith(`${root}/`);
}

/** Why `source` may not be loaded as a value from `file` in sandbox root `sandbox`, or undefined. */
function refusal(file, sandbox, source) {
  if (source.startsWith('.') || source.startsWith('/')) {
    const target = path
      .relative(repoRoot, path.resolve(path.dirname(file), source))
      .split(path.sep)
      .join('/');
    if (sandbox.mayImport.some((root) => isInside(target, root))) return undefined;
    if (isInside(target, 'activities')) {
      return { messageId: 'activities', data: { source } };
    }
    if (isInside(target, 'workflows')) return { messageId: 'coreOnWorkflows', data: { source } };
    return { messageId: 'nodeOnlyFolder', data: { source, target: target || '.' } };
  }
  const bare = source.startsWith('node:') ? source.slice('node:'.length) : source;
  if (source.startsWith('node:') || nodeBuiltins.has(bare)) {
    return { messageId: 'builtin', data: { source } };
  }
  if (sandboxPackages.some((name) => source === name || source.startsWith(`${name}/`))) return undefined;
  return { messageId: 'package', data: { source } };
}

/** Local rules of this repository. */
const sandboxPlugin = {
  rules: {
    imports: {
      meta: {
        type: 'problem',
        docs: { description: 'Sandbox code may load only allowlisted modules as values.' },
        schema: [],
        messages: {
          builtin: `'{{source}}' is a Node built-in; the workflow sandbox has none. ${allowedSummary}`,
          package: `'{{source}}' is not a sandbox-safe package. ${allowedSummary}`,
          computed: `A computed import() cannot be checked against the allowlist. ${allowedSummary}`,
          nodeOnlyFolder: `'{{source}}' resolves to {{target}}, which is Node-only. ${allowedSummary}`,
          activities:
            `'{{source}}' is activity code: import activities as types only ` +
            `(\`import type\`, proxyActivities<typeof activities>). ${allowedSummary}`,
          coreOnWorkflows:
            `'{{source}}' resolves into workflows/: src/core/ must not depend on workflow code. ` +
            `src/core/ may import only ${sandboxPackages.join(', ')}, src/core/ and \`import type\` of anything.`,
        },
      },
      create(context) {
        const sandbox = sandboxRootOf(context.filename);
        if (!sandbox) return {};
        const check = (node, sourceNode) => {
          if (!sourceNode || typeof sourceNode.value !== 'string') return;
          const problem = refusal(context.filename, sandbox, sourceNode.value);
          if (problem) context.report({ node, ...problem });
        };
        const typeOnly = (declKind, specifiers, specKind) =>
          declKind === 'type' || (specifiers.length > 0 && specifiers.every((s) => s[specKind] === 'type'));
        return {
          ImportDeclaration(node) {
            if (!typeOnly(node.importKind, node.specifiers, 'importKind')) check(node, node.source);
          },
          ExportNamedDeclaration(node) {
            if (node.source && !typeOnly(node.exportKind, node.specifiers, 'exportKind')) {
              check(node, node.source);
            }
          },
          ExportAllDeclaration(node) {
            if (node.exportKind !== 'type') check(node, node.source);
          },
          ImportExpression(node) {
            if (node.source.type === 'Literal') check(node, node.source);
            else context.report({ node, messageId: 'computed' });
          },
          TSImportEqualsDeclaration(node) {
            if (node.importKind !== 'type' && node.moduleReference.type === 'TSExternalModuleReference') {
              check(node, node.moduleReference.expression);
            }
          },
          'CallExpression[callee.type="Identifier"][callee.name="require"]'(node) {
            const [arg] = node.arguments;
            if (arg?.type === 'Literal') check(node, arg);
          },
        };
      },
    },
  },
};

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
    // Type-aware rules over the whole TypeScript tree (the tsconfig's project, found per file).
    files: ['**/*.{ts,mts,cts}'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: repoRoot } },
    rules: { '@typescript-eslint/no-floating-promises': 'error' },
  },
  {
    // Everything in workflows/ and src/core/ (the rule finds the sandbox root from the file's path).
    files: ['workflows/**/*.{ts,mts,cts,js,mjs,cjs}', 'src/core/**/*.{ts,mts,cts,js,mjs,cjs}'],
    plugins: { sandbox: sandboxPlugin },
    rules: { 'sandbox/imports': 'error' },
  },
);
