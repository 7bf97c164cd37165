// The bundles the collector serves under /sdk/. `core` bundles are held to the size budget.
export const BUNDLES = [
  { entry: 'src/entry-iife.js', out: 'stumble.js', format: 'iife', core: true },
  { entry: 'src/entry-esm.js', out: 'stumble.mjs', format: 'esm', core: true },
  { entry: 'src/errors.js', out: 'stumble-errors.js', format: 'iife', core: false },
  { entry: 'src/vitals.js', out: 'stumble-vitals.js', format: 'iife', core: false },
];

// The oldest syntax the bundles are written down to (logical assignment, optional chaining).
export const TARGET = ['es2020'];
