// Shared setup of the end-to-end tests: where things are (overridable by environment), the
// playwright-core Chromium driver from .tools/ (never a downloaded browser), the flags Debian's
// Chromium needs here, the default wait, and the data-testid locator.
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(import.meta.url);
const TOOLS = process.env.WEIGHTSCOPE_TOOLS ?? path.join(ROOT, '.tools');
export const { chromium } = require(path.join(TOOLS, 'node_modules', 'playwright-core'));
export const DIST = process.env.WEIGHTSCOPE_DIST ?? path.join(ROOT, 'dist');
export const GEN = process.env.WEIGHTSCOPE_FIXTURES ?? path.join(ROOT, 'tests', 'fixtures', 'gen');
export const ARTIFACTS = path.join(ROOT, 'tests', 'artifacts');
export const PY = process.env.WEIGHTSCOPE_PY ?? path.join(os.homedir(), '.cache', 'weightscope', 'venv', 'bin', 'python');
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-dev-shm-usage',
];
/** Default wait for one page state, in ms. */
export const T = 30_000;
/** The element(s) with `data-testid="id"`. */
export const testid = (page, id) => page.locator(`[data-testid="${id}"]`);
