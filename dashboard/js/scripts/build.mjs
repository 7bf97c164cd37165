// Builds the dashboard's chart bundle where the web app serves it (/static/charts.js), with the
// licences of every package that went into it beside it (charts.LICENSES.txt). The output only
// depends on the sources and the locked packages: the bundle is committed and CI rebuilds it.
import { build } from 'esbuild';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const served = join(root, '../../src/stumble/web/static');
const outfile = join(served, 'charts.js');

mkdirSync(served, { recursive: true });
const { metafile } = await build({
  entryPoints: [join(root, 'src/charts.js')],
  outfile,
  bundle: true,
  minify: true,
  format: 'iife',
  globalName: 'stumbleCharts', // window.stumbleCharts.renderCharts(root) for content added later
  platform: 'browser',
  target: ['es2020'],
  // The licence texts go to charts.LICENSES.txt, whole, instead of comments scattered in the code.
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
});

// The packages esbuild took code from, by their directory under node_modules.
const packages = new Set();
for (const input of Object.keys(metafile.inputs)) {
  const match = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
  if (match) packages.add(match[1]);
}
// Packages whose code a bundled package's own build already inlines (vega-embed's build carries
// fast-json-patch and semver), so esbuild never sees them as inputs.
const INLINED = { 'vega-embed': ['fast-json-patch', 'semver'] };
for (const [host, inlined] of Object.entries(INLINED)) {
  if (packages.has(host)) inlined.forEach((name) => packages.add(name));
}

const LICENCE_FILE = /^(licen[cs]e|copying|notice)(\.md|\.txt)?$/i;
const sections = [...packages].sort().map((name) => {
  const dir = join(root, 'node_modules', name);
  const meta = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const files = readdirSync(dir).filter((file) => LICENCE_FILE.test(file)).sort();
  const texts = files.map((file) => readFileSync(join(dir, file), 'utf8').trim());
  if (texts.length === 0) throw new Error(`${name}: no licence file to ship with the bundle`);
  const header = `${meta.name} ${meta.version} (${meta.license})`;
  return `${header}\n${'-'.repeat(header.length)}\n\n${texts.join('\n\n')}\n`;
});
const licences = join(served, 'charts.LICENSES.txt');
writeFileSync(
  licences,
  'Third-party software bundled in charts.js, with its licences.\n\n' +
    `${sections.join('\n\n')}`,
);
if (!existsSync(outfile)) throw new Error('esbuild wrote no bundle');
console.log(`built ${outfile} (${packages.size} packages; licences in ${licences})`);
