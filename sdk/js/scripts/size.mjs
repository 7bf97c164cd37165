// Prints raw, minified and min+gzip sizes of each bundle; exits non-zero when a core bundle
// is over its budget. "raw" is the bundle before minification, built in memory.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { BUNDLES, TARGET } from './bundles.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const CORE_BUDGET = 3072; // bytes, min+gzip, for stumble.js and stumble.mjs

async function rawSize(entry, format) {
  const result = await build({ entryPoints: [join(root, entry)], bundle: true, format, target: TARGET, write: false });
  return result.outputFiles[0].contents.length;
}

const column = (value, width) => String(value).padStart(width);
let failed = false;
console.log('bundle                 raw     min   gzip  budget');
for (const { entry, out, format, core } of BUNDLES) {
  let minified;
  try {
    minified = readFileSync(join(root, 'dist', out));
  } catch {
    console.error(`dist/${out} is missing: run npm run build first`);
    process.exit(2);
  }
  const gzip = gzipSync(minified, { level: 9 }).length;
  const over = core && gzip > CORE_BUDGET;
  failed ||= over;
  const budget = core ? `${CORE_BUDGET} ${over ? 'OVER' : 'ok'}` : '-';
  console.log(`${out.padEnd(18)} ${column(await rawSize(entry, format), 7)} ${column(minified.length, 7)} ${column(gzip, 6)}  ${budget}`);
}
if (failed) {
  console.error(`a core bundle is over ${CORE_BUDGET} bytes min+gzip`);
  process.exit(1);
}
