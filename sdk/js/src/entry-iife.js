// Script-tag build: exposes window.stumble.
import { stumble } from './index.js';

window.stumble = stumble;
