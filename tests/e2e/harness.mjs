// Shared setup of the end-to-end tests: where things are (overridable by environment), the
// playwright-core Chromium driver from .tools/ (never a downloaded browser), the flags Debian's
// Chromium needs here, the default wait, the data-testid locator, each suite's browser and
// server (`suite`), torch scripts (`python`), and the steps several tests share (open B and
// compare, download).
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
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

/** URL paths of every file in dist/ (and `/`): the only requests the page may make after load. */
export function distAssets() {
  const out = new Set(['/']);
  const walk = (d, prefix) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name), `${prefix}${e.name}/`);
      else out.add(`${prefix}${e.name}`);
    }
  };
  walk(DIST, '/');
  return out;
}

/**
 * A new browser context and page of suite `s` on the built page, once the app has mounted and
 * the reader worker answered its handshake. `log.problems` collects page errors and console
 * errors of the page and its workers; with `network`, `log.requests` records every request of
 * the context (with `afterLoad`) and failed requests and websockets count as problems too;
 * `initScript` runs in every page of the context before the page's own scripts.
 */
export async function openPage(s, { network = false, initScript = null, ...contextOptions } = {}) {
  const context = await s.browser.newContext(contextOptions);
  if (initScript) await context.addInitScript(initScript); // runs before the page's own scripts
  const page = await context.newPage();
  const log = { requests: [], problems: [], loaded: false };
  if (network) {
    context.on('request', (r) => log.requests.push({ url: r.url(), method: r.method(), afterLoad: log.loaded }));
    page.on('requestfailed', (r) => log.problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
    page.on('websocket', (ws) => log.problems.push(`websocket opened: ${ws.url()}`));
    page.on('load', () => { log.loaded = true; });
  }
  page.on('pageerror', (e) => log.problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') log.problems.push(`console error: ${m.text()}`);
  });
  page.on('worker', (w) => w.on('console', (m) => {
    if (m.type() === 'error') log.problems.push(`worker console error: ${m.text()}`);
  }));
  await page.goto(s.server.url, { waitUntil: 'load' });
  log.loaded = true;
  await page.locator('[data-testid="drop-zone"][data-worker="ready"]').waitFor({ timeout: T });
  return { context, page, log };
}

/** Off-origin requests, and post-load requests that are not GETs of files in dist/. */
export function networkViolations(s, log) {
  const origin = new URL(s.server.url).origin;
  const assets = distAssets();
  const bad = [];
  if (log.requests.length === 0) bad.push('no request was recorded at all');
  for (const r of log.requests) {
    const u = new URL(r.url);
    if (u.origin !== origin) bad.push(`off-origin request: ${r.method} ${r.url}`);
    else if (r.afterLoad && (r.method !== 'GET' || !assets.has(u.pathname)))
      bad.push(`request after load that is not an asset: ${r.method} ${r.url}`);
  }
  // the recorder sees the worker's own fetches (otherwise the check above would be blind there)
  const paths = new Set(log.requests.map((r) => new URL(r.url).pathname));
  for (const p of ['/worker_loader.js', '/worker.js', '/worker_bg.wasm'])
    if (!paths.has(p)) bad.push(`worker asset ${p} was not seen by the request log`);
  return bad;
}

/** No page/worker errors, no failed request, no forbidden request (a page opened with `network`). */
export function checkClean(s, log) {
  assert.deepEqual([...networkViolations(s, log), ...log.problems], []);
}

/** Run a Python `script` in the torch venv with `args`; its stdout. */
export function python(script, ...args) {
  return execFileSync(PY, ['-c', script, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 26 });
}

/** Show the Compare tab and open `file` as B; resolves once the panel names it. */
export async function openB(page, file) {
  await page.getByRole('tab', { name: 'Compare' }).click();
  await testid(page, 'compare-input').setInputFiles(file);
  await page.locator('[data-testid="compare-b-name"]', { hasText: path.basename(file) }).waitFor({ timeout: T });
}

/** Compare A with B through the prefix map `map` ('' for none); resolves with the lists shown. */
export async function runCompare(page, map = '') {
  await testid(page, 'compare-map').fill(map);
  await testid(page, 'compare-run').click();
  await testid(page, 'compare-done').waitFor({ timeout: T });
}

/** Download the edited checkpoint as `format` into directory `dir`; its path. */
export async function downloadAs(page, format, dir) {
  await testid(page, 'download-format').selectOption(format);
  const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), testid(page, 'download').click()]);
  const out = path.join(dir, dl.suggestedFilename());
  await dl.saveAs(out);
  return out;
}

/**
 * Torch check of a download made from the fixtures diff/dp_a.pth (A, `module.*`) and
 * diff/dp_b.pth (B, plain names) with B's `fc.*` transplanted: A's keys in A's order, every
 * tensor equal to B's for `module.fc.*` and to A's otherwise. Prints `ok`.
 */
export const DP_FC_FROM_B = String.raw`
import sys, torch
a = torch.load(sys.argv[1], weights_only=True)
b = torch.load(sys.argv[2], weights_only=True)
o = torch.load(sys.argv[3], weights_only=True)
assert list(o) == list(a), (list(o), list(a))
for k, v in o.items():
    src = b[k[len("module."):]] if k.startswith("module.fc.") else a[k]
    assert v.dtype == src.dtype and torch.equal(v, src), k
assert not torch.equal(o["module.fc.weight"], a["module.fc.weight"])
print("ok")`;
