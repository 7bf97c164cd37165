// Module build. It also sets window.stumble (unless one exists) so that the separately
// loaded add-ons (errors, vitals) find the SDK.
import { stumble } from './index.js';

window.stumble ||= stumble;

export default stumble;
