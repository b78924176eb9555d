// End-to-end tests of the page as a shipped site, in headless Chromium: the security headers
// (CSP without inline scripts, also on the worker), the offline app shell (a reload with the
// server gone still opens a file; a new build replaces the old cache; the user's files are never
// cached), whole-file statistics on a pool of workers and its Cancel (every worker stops at
// once, inside a tensor), and a reader crash on one file that leaves the previous checkpoint and
// its journal open.
//
// Run by `scripts/dev.sh test` after `trunk build --release` (node --test tests/e2e/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { serve } from '../../scripts/static-server.mjs';
import { SECURITY_HEADERS, headersFile } from '../../scripts/headers.mjs';
import { DIST, PY, T, testid, suite, fixture, openPage, distAssets } from './harness.mjs';

const S = suite({ tmpPrefix: 'weightscope-page-', needPy: true, needFixtures: true });
const READY = '[data-testid="drop-zone"][data-worker="ready"]';

test('security headers on every response, no inline script, the page and worker run under the CSP', { timeout: 120_000 }, async () => {
  const csp = SECURITY_HEADERS['Content-Security-Policy'];
  const scriptSrc = csp.split(';').map((d) => d.trim()).find((d) => d.startsWith('script-src'));
  assert.ok(scriptSrc && !scriptSrc.includes('unsafe-inline'), scriptSrc);
  assert.match(csp, /connect-src 'self'/);
  for (const p of ['/', '/worker_loader.js', '/worker_bg.wasm', '/sw.js', '/nope']) {
    const r = await fetch(new URL(p, S.server.url));
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) assert.equal(r.headers.get(k), v, `${p}: ${k}`);
    await r.arrayBuffer();
  }
  const html = fs.readFileSync(path.join(DIST, 'index.html'), 'utf8');
  const inline = [...html.matchAll(/<script(?![^>]*\ssrc=)[^>]*>/g)];
  assert.deepEqual(inline.map((m) => m[0]), [], 'index.html has no inline script');
  assert.equal(fs.readFileSync(path.join(DIST, '_headers'), 'utf8'), headersFile(), 'dist/_headers carries the same headers');
  // the page runs under the policy: any CSP violation is a console error, which fails here
  const { context, page, log } = await openPage(S, { network: true });
  try {
    const violations = [];
    await page.exposeFunction('__cspViolation', (v) => violations.push(v));
    await page.evaluate(() => document.addEventListener('securitypolicyviolation', (e) => window.__cspViolation(`${e.violatedDirective} ${e.blockedURI}`)));
    await testid(page, 'file-input').setInputFiles(fixture('dataparallel.pth'));
    await testid(page, 'tensor-count').waitFor({ timeout: T });
    assert.deepEqual(violations, []);
    assert.deepEqual(log.problems, []);
  } finally {
    await context.close();
  }
});

/** The cache names and cached URL paths of the page's origin. */
async function cached(page) {
  return page.evaluate(async () => {
    const out = {};
    for (const k of await caches.keys()) out[k] = (await (await caches.open(k)).keys()).map((r) => new URL(r.url).pathname);
    return out;
  });
}

test('offline: the first visit caches the app shell; a reload with the server gone opens a dropped file; a new build drops the old cache', { timeout: 180_000 }, async () => {
  const dir = path.join(S.tmp, 'site');
  fs.cpSync(DIST, dir, { recursive: true });
  let server = await serve(dir, 0);
  const port = server.port;
  const context = await S.browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(server.url, { waitUntil: 'load' });
    await page.locator(READY).waitFor({ timeout: T });
    await page.evaluate(() => navigator.serviceWorker.ready);
    await page.waitForFunction(() => navigator.serviceWorker.controller != null, null, { timeout: T });
    // a user file opened online is not cached: only the site's own files are
    await testid(page, 'file-input').setInputFiles(fixture('dataparallel.pth'));
    await testid(page, 'tensor-count').waitFor({ timeout: T });
    const first = await cached(page);
    const names = Object.keys(first);
    assert.equal(names.length, 1, JSON.stringify(names));
    const assets = distAssets();
    for (const p of first[names[0]]) assert.ok(assets.has(p), `cached ${p} is not a file of the build`);
    for (const p of ['/', '/worker_loader.js', '/worker.js', '/worker_bg.wasm']) assert.ok(first[names[0]].includes(p), `${p} not cached`);

    // the server is gone: the reload comes from the cache, and a file still opens
    await server.close();
    await page.reload({ waitUntil: 'load' });
    await page.locator(READY).waitFor({ timeout: T });
    await testid(page, 'file-input').setInputFiles(fixture('dataparallel.pth'));
    await page.waitForFunction(() => document.querySelector('[data-testid="tensor-count"]')?.textContent === '9', null, { timeout: T });
    assert.equal(await testid(page, 'error').count(), 0);

    // a new build on the same origin: its service worker installs a new cache, the old one goes
    const sw = path.join(dir, 'sw.js');
    fs.writeFileSync(sw, fs.readFileSync(sw, 'utf8').replace(/const CACHE = 'weightscope-[^']*'/, "const CACHE = 'weightscope-next-build'"));
    server = await serve(dir, port);
    await page.reload({ waitUntil: 'load' });
    await page.locator(READY).waitFor({ timeout: T });
    await page.waitForFunction(async () => {
      const keys = await caches.keys();
      return keys.length === 1 && keys[0] === 'weightscope-next-build';
    }, null, { timeout: T, polling: 200 });
  } finally {
    await context.close();
    await server.close();
  }
});

test('statistics on a pool of workers; Cancel terminates every worker at once, inside a tensor', { timeout: 240_000 }, async () => {
  // two float32 tensors of 256 MiB: one per worker, each long enough to cancel inside it
  const file = path.join(S.tmp, 'two-big.pth');
  execFileSync(PY, ['-c', `
import sys, torch
g = torch.Generator().manual_seed(1)
torch.save({"a": torch.randn(64 << 20, generator=g), "b": torch.randn(64 << 20, generator=g)}, sys.argv[1])
`, file]);
  const { context, page, log } = await openPage(S, { viewport: { width: 1280, height: 900 } });
  try {
    const cores = await page.evaluate(() => navigator.hardwareConcurrency);
    const started = [];
    const closed = [];
    page.on('worker', (w) => {
      started.push(w);
      w.on('close', () => closed.push(w));
    });
    await testid(page, 'file-input').setInputFiles(file);
    await testid(page, 'tensor-count').waitFor({ timeout: T });
    // statistics start by themselves (under the automatic limit) on two workers per core, at
    // most one per tensor here (src/ui/stats_pool.rs)
    await testid(page, 'cancel').waitFor({ timeout: T });
    const pool = Math.min(2 * cores, 8, 2);
    assert.equal(started.length, pool, `pool workers started (cores: ${cores})`);
    await testid(page, 'cancel').click();
    const t0 = Date.now();
    while (closed.length < pool && Date.now() - t0 < 5_000) await page.waitForTimeout(20);
    assert.equal(closed.length, pool, 'every pool worker was terminated');
    // nothing finished: both workers were stopped inside their tensor
    const ov = page.locator('[data-testid="overview"]');
    await page.locator('[data-testid="overview"][data-running="false"]').waitFor({ timeout: T });
    assert.equal(await ov.getAttribute('data-computed'), '0');
    assert.match(await page.locator('.overview-head').textContent(), /cancelled/);
    // the reader worker is untouched and a new run completes on fresh workers
    await testid(page, 'compute-all').click();
    await page.locator('[data-testid="overview"][data-computed="2"][data-running="false"]').waitFor({ timeout: 180_000 });
    assert.equal(started.length, 2 * pool, 'fresh pool workers for the new run');
    // the pool's row of tensor "a" (the overview's std, hovered) matches torch's
    const want = Number(execFileSync(PY, ['-c', 'import sys, torch; print(torch.load(sys.argv[1], weights_only=True)["a"].double().std(unbiased=False).item())', file], { encoding: 'utf8' }));
    const x0 = Number(await ov.getAttribute('data-x0'));
    const x1 = Number(await ov.getAttribute('data-x1'));
    const box = await ov.boundingBox();
    const scale = box.width / (await ov.evaluate((c) => c.width));
    await ov.hover({ position: { x: (x0 + 0.25 * (x1 - x0)) * scale, y: 60 } });
    const hover = await page.locator('.overview-hover').textContent();
    const std = Number(hover.match(/#0 a\s+std\s*=?\s*(\S+)/)?.[1]);
    assert.ok(Math.abs(std - want) < 1e-3, `std ${std} vs torch ${want} (${hover})`);
    assert.deepEqual(log.problems, []);
  } finally {
    await context.close();
  }
});

test('a reader crash on one file names the file; the previous checkpoint and its journal stay open', { timeout: 120_000 }, async () => {
  const good = fixture('dataparallel.pth');
  const trap = path.join(S.tmp, 'trap.pth');
  fs.copyFileSync(good, trap);
  const { context, page } = await openPage(S, { viewport: { width: 1100, height: 900 } });
  try {
    await testid(page, 'file-input').setInputFiles(good);
    await page.getByRole('tab', { name: 'Edit' }).click();
    await page.locator('[data-testid="edit-panel"][data-ready="true"]').waitFor({ timeout: T });
    await testid(page, 'op-strip-prefix').fill('module.');
    await page.locator('[data-testid="edit-preview"][data-ok="true"]').waitFor({ timeout: T });
    await testid(page, 'op-strip-prefix-apply').click();
    await page.locator('[data-testid="journal"] li[data-state="applied"]').waitFor({ timeout: T });
    // a regex search sends the reader the tree's paths once; later searches of this tree send
    // only their pattern
    await page.getByRole('tab', { name: 'Inspector' }).click();
    await page.locator('.search-box input[type="checkbox"]').check();
    const regexRows = async (q) => {
      await testid(page, 'search').fill(q);
      await page.waitForFunction((q) => document.querySelector('[data-testid="search"]')?.dataset.answered === q, q, { timeout: T });
      await page.waitForFunction(() => document.querySelectorAll('[data-testid="tree-row"] mark').length > 0, null, { timeout: T });
      return testid(page, 'tree-row').evaluateAll((rs) => rs.map((r) => r.dataset.path).filter(Boolean));
    };
    const weights = await regexRows('weight$');
    assert.ok(weights.length > 0 && weights.every((p) => /weight$/.test(p) && !p.startsWith('module.')), weights.join(','));
    await page.getByRole('tab', { name: 'Edit' }).click();
    // the reader traps (as a wasm `unreachable` would) while opening trap.pth
    const [reader] = page.workers();
    await reader.evaluate(() => {
      const handle = self.onmessage;
      self.onmessage = (ev) => {
        // a request is [postcard bytes, File…]: variant 0 is `open`, its first file comes first
        if (ev.data?.[0]?.[0] === 0 && ev.data[1]?.name === 'trap.pth') throw new WebAssembly.RuntimeError('unreachable');
        return handle.call(self, ev);
      };
    });
    // the journal has an edit: the page asks before opening another file (yes)
    page.once('dialog', (d) => d.accept());
    await testid(page, 'file-input').setInputFiles(trap);
    await testid(page, 'error').waitFor({ timeout: T });
    const msg = await testid(page, 'error').textContent();
    assert.match(msg, /trap\.pth: the reader failed on this file/);
    assert.doesNotMatch(msg, /^\s*Could not open this file\s*RuntimeError/);
    // the previous checkpoint is still on screen and in the (restarted) reader
    assert.equal(await testid(page, 'file-name').textContent(), 'dataparallel.pth');
    await page.locator(READY).waitFor({ timeout: T });
    // the restarted reader was given the tree's paths again: a new pattern is answered over them
    await page.getByRole('tab', { name: 'Inspector' }).click();
    const biases = await regexRows('bias$');
    assert.ok(biases.length > 0 && biases.every((p) => /bias$/.test(p)), biases.join(','));
    await testid(page, 'search').fill('');
    await page.locator('.search-box input[type="checkbox"]').uncheck();
    await page.getByRole('tab', { name: 'Edit' }).click();
    await testid(page, 'op-add-prefix').fill('m.');
    await page.locator('[data-testid="edit-preview"][data-ok="true"]').waitFor({ timeout: T });
    await testid(page, 'op-add-prefix-apply').click();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="journal"] li[data-state="applied"]').length === 2, null, { timeout: T });
    await page.getByRole('tab', { name: 'Inspector' }).click();
    await page.locator('[role="treeitem"][data-path]').first().click();
    await testid(page, 'stats').waitFor({ timeout: T });
  } finally {
    await context.close();
  }
});
