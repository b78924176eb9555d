// Shared setup of the end-to-end tests: where things are (overridable by environment), the
// playwright-core Chromium driver from .tools/ (never a downloaded browser), the flags Debian's
// Chromium needs here, the default wait, the data-testid locator, and each suite's browser and
// server (`suite`).
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { serve } from '../../scripts/static-server.mjs';

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

/**
 * Registers the suite's `before` / `after` hooks and returns the object they fill: `server`
 * (the built page, `dist/`, on a free port), `browser` (headless Chromium) and, with
 * `tmpPrefix`, `tmp` (a temporary directory, removed afterwards). Missing prerequisites fail the
 * suite with the command that makes them: `dist/index.html` always; the torch venv with `needPy`;
 * the fixtures' manifest with `needFixtures`.
 */
export function suite({ tmpPrefix = null, needPy = false, needFixtures = false } = {}) {
  const s = { server: null, browser: null, tmp: null };
  before(async () => {
    assert.ok(fs.existsSync(path.join(DIST, 'index.html')), `${DIST}/index.html missing: run trunk build --release`);
    if (needPy) assert.ok(fs.existsSync(PY), `${PY} missing: run scripts/bootstrap.sh (the torch venv)`);
    if (needFixtures) {
      assert.ok(fs.existsSync(path.join(GEN, 'manifest.json')), `${GEN}/manifest.json missing: run tests/fixtures/make_fixtures.py`);
    }
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    if (tmpPrefix) s.tmp = fs.mkdtempSync(path.join(os.tmpdir(), tmpPrefix));
    s.server = await serve(DIST, 0);
    s.browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  });
  after(async () => {
    await s.browser?.close();
    await s.server?.close();
    if (s.tmp) fs.rmSync(s.tmp, { recursive: true, force: true });
  });
  return s;
}

/** Path of a generated fixture; fails if the fixture script has not made it. */
export function fixture(name) {
  const p = path.join(GEN, name);
  assert.ok(fs.existsSync(p), `${p} missing: run make_fixtures.py`);
  return p;
}
