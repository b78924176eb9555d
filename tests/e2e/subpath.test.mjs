// End-to-end: dist/ served from a sub-path, as static hosts often do (`/tools/weightscope/`).
// A small server here maps only that prefix onto dist/ (everything else is 404), so any link
// the build wrote as root-absolute fails. The page must mount, its worker must answer, the
// bundled sample must load (a relative fetch), and a torch file must open — with every request
// inside the prefix and none failing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { DIST, T, testid, chromium, CHROMIUM, CHROMIUM_ARGS, fixture } from './harness.mjs';

const PREFIX = '/tools/weightscope/';
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css' };
let server, browser, base;
const outside = [];

before(async () => {
  assert.ok(fs.existsSync(path.join(DIST, 'index.html')), `${DIST}/index.html missing: run trunk build --release`);
  const root = fs.realpathSync(DIST);
  server = http.createServer((req, res) => {
    const p = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    if (!p.startsWith(PREFIX)) {
      outside.push(p);
      res.writeHead(404).end();
      return;
    }
    let file = path.join(root, path.normalize(p.slice(PREFIX.length)));
    if (!file.startsWith(root)) return res.writeHead(404).end();
    try {
      if (fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
      const body = fs.readFileSync(file);
      res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'Cache-Control': 'no-store' });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${server.address().port}${PREFIX}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
});

after(async () => {
  await browser?.close();
  server?.closeAllConnections?.();
  await new Promise((r) => (server ? server.close(r) : r()));
});

test('dist/ works from a sub-path: page, worker, sample and a dropped file', { timeout: 90_000 }, async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = [];
  const requests = [];
  context.on('request', (r) => requests.push(new URL(r.url()).pathname));
  page.on('requestfailed', (r) => problems.push(`failed: ${r.url()}`));
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`${r.status()}: ${r.url()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  try {
    await page.goto(base, { waitUntil: 'load' });
    await page.locator('[data-testid="drop-zone"][data-worker="ready"]').waitFor({ timeout: T });
    await testid(page, 'sample').click();
    await page.waitForFunction(
      () => document.querySelector('[data-testid="file-name"]')?.textContent === 'sample.pth', null, { timeout: T });
    await testid(page, 'file-input').setInputFiles(fixture('deflated.pth'));
    await page.waitForFunction(
      () => document.querySelector('[data-testid="file-name"]')?.textContent === 'deflated.pth', null, { timeout: T });
    assert.equal(await testid(page, 'error').count(), 0);
    assert.ok(requests.some((p) => p.endsWith('.wasm')), 'no wasm was requested');
    assert.ok(requests.some((p) => p === `${PREFIX}sample.pth`), 'the sample was not fetched under the prefix');
    assert.deepEqual(problems, []);
    assert.deepEqual(outside, [], 'requests outside the sub-path');
    assert.deepEqual(requests.filter((p) => !p.startsWith(PREFIX)), []);
  } finally {
    await context.close();
  }
});
