// Builds dist/ and copies the bundles to where the collector serves them (/sdk/*).
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUNDLES, TARGET } from './bundles.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const served = join(root, '../../src/stumble/collector/sdk');

mkdirSync(join(root, 'dist'), { recursive: true });
mkdirSync(served, { recursive: true });
for (const { entry, out, format } of BUNDLES) {
  await build({
    entryPoints: [join(root, entry)],
    outfile: join(root, 'dist', out),
    bundle: true,
    minify: true,
    format,
    target: TARGET,
    legalComments: 'none',
    logLevel: 'warning',
  });
  copyFileSync(join(root, 'dist', out), join(served, out));
}
console.log(`built ${BUNDLES.map((b) => b.out).join(', ')} → dist/ and ${served}`);
