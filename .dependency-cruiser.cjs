// Import-cycle check (`npm run check:cycles`, run by CI next to typecheck and lint): no module of the
// TypeScript tree may reach itself through its imports, type-only imports included (a type cycle
// still ties two layers together).
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Import cycle: move what both sides need into a module that depends on neither.',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    // Cycles through packages are not ours to fix.
    doNotFollow: { path: 'node_modules' },
    // Resolve imports the way tsc does.
    tsConfig: { fileName: 'tsconfig.json' },
    // Keep `import type` and other imports that vanish at compile time in the graph.
    tsPreCompilationDeps: true,
    // Resolve package subpaths (`pure-rand/generator/...`, `csv-stringify/sync`) through their `exports`.
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['types', 'import', 'require', 'node', 'default'],
    },
  },
};
