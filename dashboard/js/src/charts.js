// Renders the Vega-Lite specs that the dashboard's server-rendered pages embed.
//
// Page contract (one per chart):
//   <figure class="chart" data-chart id="…">
//     <figcaption>…</figcaption>
//     <script type="application/json" class="chart-spec">{ …Vega-Lite, inline data.values… }</script>
//     <div class="chart-view" role="img" aria-label="…"></div>
//   </figure>
// Outcome on the figure: data-rendered="true" and a bubbling `chart:rendered` event, or
// data-chart-error="<code>", a short message in .chart-view and a bubbling `chart:error` event.
//
// Written for the dashboard's Content-Security-Policy (script-src 'self'; style-src 'self';
// connect-src 'self'): no eval or Function (expressions run through vega-interpreter), no inline
// <style> elements or style attributes (vega-embed's and vega-tooltip's default styles are off;
// the rules they need are in charts.css), and no loading of anything (the loader refuses).
import embed from 'vega-embed';
import { expressionInterpreter } from 'vega-interpreter';

// The theme lives in theme.json so that the server can hand the same config to vl-convert
// (e-mail digests). Its choices:
// - font: the system UI stack; nothing to download, and charts look like the page around them.
// - range.category: Okabe–Ito hues with their lightness adjusted so that every colour has at
//   least 3:1 contrast against white (WCAG 1.4.11, graphical objects) while the first six stay
//   apart under simulated protan-, deutan- and tritanopia (min OKLab distance 0.077; the
//   original's is 0.076 and its yellow, orange and sky blue fall below 3:1). The seventh is the
//   text grey. Text never uses the palette: labels are #57606A (6.4:1), titles #3D434B (10:1).
// - no title config: the figcaption is the title, and a spec's own title is dropped below.
import theme from './theme.json';

export { theme };

// Charts carry their data inline. A spec that asks for a URL (data, image) gets a refusal
// instead of a request, which the CSP would block anyway, and the chart fails with "load".
function refusingLoader(onRefusal) {
  const refuse = () => {
    onRefusal();
    return Promise.reject(new Error('stumble charts load nothing: use inline data'));
  };
  return { load: refuse, sanitize: refuse, http: refuse, file: refuse };
}

// Vega-Lite warns that it drops "fit-y" for a spec with width "container" (which asks for fit-x
// only) and a height in steps, e.g. a horizontal bar chart with a row per category. Nothing is
// dropped that was asked for, so that one warning is not passed on.
const SPURIOUS = 'Dropping "fit-y" because spec has discrete height.';

/** Vega's log with the chart's name on warnings. Errors, whose text can quote the spec, are not
 * passed on but mark the chart failed (Vega logs dataflow errors instead of throwing). Once a
 * load was refused, the empty data's warnings are noise: the chart fails with "load". */
function chartLogger(label, state) {
  let level = 2; // vega.Warn
  return {
    level(value) {
      if (value === undefined) return level;
      level = value;
      return this;
    },
    error() {
      state.logged = true;
      return this;
    },
    warn(...args) {
      if (state.refused || (args.length === 1 && args[0] === SPURIOUS)) return this;
      if (level >= 2) console.warn(`stumble charts: ${label}:`, ...args);
      return this;
    },
    info() {
      return this;
    },
    debug() {
      return this;
    },
  };
}

const MESSAGES = {
  'no-spec': 'This chart has no data.',
  'no-view': 'This chart cannot be shown.',
  json: 'This chart could not be read.',
  load: 'This chart asks for data from elsewhere.',
  render: 'This chart could not be drawn.',
};

function fail(figure, view, label, code, error) {
  figure.setAttribute('data-chart-error', code);
  figure.removeAttribute('data-rendered');
  if (view) {
    view.replaceChildren();
    const message = document.createElement('p');
    message.className = 'chart-error';
    message.textContent = MESSAGES[code];
    view.append(message);
  }
  // The error's name only: its message can quote the spec, and specs hold the data.
  const cause = error && error.name ? ` (${error.name})` : '';
  console.error(`stumble charts: ${label}: ${code}${cause}`);
  figure.dispatchEvent(new CustomEvent('chart:error', { bubbles: true, detail: { code } }));
}

async function renderChart(figure) {
  const label = figure.id ? `#${figure.id}` : 'chart';
  const view = figure.querySelector('.chart-view');
  const source = figure.querySelector('script.chart-spec');
  if (!view) return fail(figure, null, label, 'no-view');
  if (!source) return fail(figure, view, label, 'no-spec');
  let spec;
  try {
    spec = JSON.parse(source.textContent);
  } catch (error) {
    return fail(figure, view, label, 'json', error);
  }
  if (!spec || typeof spec !== 'object' || Array.isArray(spec)) {
    return fail(figure, view, label, 'json');
  }
  // Options a spec could set for itself (actions, loader, …) are the page's to decide.
  delete spec.usermeta;
  // The figcaption is the chart's title; the spec's would repeat it inside the chart.
  delete spec.title;
  // Fill the container's width unless the spec says otherwise (concat/facet specs cannot).
  const composite = ['hconcat', 'vconcat', 'concat', 'facet', 'repeat'].some((k) => k in spec);
  if (spec.width === undefined && !composite) spec.width = 'container';

  const state = { logged: false, refused: false };
  const logger = chartLogger(label, state);
  let result;
  try {
    result = await embed(view, spec, {
      mode: 'vega-lite',
      renderer: 'svg',
      actions: false, // its menu links to the external Vega editor
      defaultStyle: false, // an inline <style>: charts.css has the rules instead
      tooltip: { disableDefaultStyle: true }, // likewise; #vg-tooltip-element is styled in charts.css
      ast: true, // expressions are interpreted, never compiled with Function()
      expr: expressionInterpreter,
      config: theme,
      loader: refusingLoader(() => (state.refused = true)),
      logger,
    });
  } catch (error) {
    return fail(figure, view, label, 'render', error);
  }
  if (state.refused || state.logged) {
    result.finalize();
    return fail(figure, view, label, state.refused ? 'load' : 'render');
  }
  figure.removeAttribute('data-chart-error');
  figure.setAttribute('data-rendered', 'true');
  figure.dispatchEvent(new CustomEvent('chart:rendered', { bubbles: true }));
  return result;
}

const started = new WeakSet();

/** Renders every chart under `root` not rendered yet; resolves when all have settled. */
export function renderCharts(root = document) {
  const figures = [...root.querySelectorAll('[data-chart]')].filter((f) => !started.has(f));
  figures.forEach((f) => started.add(f));
  return Promise.all(figures.map(renderChart));
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', () => renderCharts(), { once: true });
} else {
  renderCharts();
}
