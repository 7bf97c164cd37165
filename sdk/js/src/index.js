// The public object: the same API for the script-tag and the module builds.
import { attempt, error, fieldError, flush, formSubmit, init, nav, screen, start, stats, track, vital } from './core.js';

export const stumble = { init, screen, track, nav, start, attempt, formSubmit, fieldError, vital, error, flush, stats };
