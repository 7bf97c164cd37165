// Optional bundle (/sdk/stumble-vitals.js): Google's web-vitals, reported through
// window.stumble.vital(). Load it after the core script and stumble.init().
import { onCLS, onFCP, onINP, onLCP, onTTFB } from 'web-vitals';

const report = (metric) => {
  if (window.stumble) window.stumble.vital(metric.name, metric.value, metric.rating);
};

for (const on of [onLCP, onINP, onCLS, onFCP, onTTFB]) on(report);
