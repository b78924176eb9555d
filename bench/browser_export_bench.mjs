#!/usr/bin/env node
// Benchmark: rename-only export of a large torch zip in headless Chromium.
//
// Makes (once) tests/artifacts/big-export.pth — SIZE_GIB GiB (default 4) of float32 tensors, 1,000
// tensors made like bench/export_bench.py's — with the torch venv, serves dist/, opens the file
// through the file input (a disk-backed File), adds the prefix `model.` (rename only),
// downloads as .pth and prints:
//   - the worker's export time (request → Blob built) and the time until the download finished,
//   - the worker's wasm memory (WebAssembly.Memory buffer size) before and after the export,
//   - the page's JS heap (performance.memory.usedJSHeapSize) after,
//   - bytes copied as file slices vs new bytes.
// The output is verified with torch (mmap, weights_only=True): keys are `model.` + the input's,
// and sampled tensors are equal. Run after `trunk build --release`:
//   node bench/browser_export_bench.mjs [SIZE_GIB] [rename|cast]
//   node bench/browser_export_bench.mjs --smoke [rename|cast]   (8 MiB input, same code path and
//   checks; the test command runs it so the bench cannot rot)
// `cast` casts every tensor to float16 instead (all data streamed through the worker in chunks;
// the output is verified against torch's own .to(torch.float16) on sampled tensors).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { serve } from '../scripts/static-server.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const TOOLS = process.env.WEIGHTSCOPE_TOOLS ?? path.join(ROOT, '.tools');
const { chromium } = require(path.join(TOOLS, 'node_modules', 'playwright-core'));
const DIST = process.env.WEIGHTSCOPE_DIST ?? path.join(ROOT, 'dist');
const PY = process.env.WEIGHTSCOPE_PY ?? path.join(os.homedir(), '.cache', 'weightscope', 'venv', 'bin', 'python');
const SMOKE = process.argv.includes('--smoke');
const ARGS = process.argv.slice(2).filter((a) => a !== '--smoke');
const GIB = SMOKE ? 1 / 128 : Number(ARGS[0] ?? 4);
const MODE = (SMOKE ? ARGS[0] : ARGS[1]) ?? 'rename';
const ARTIFACTS = path.join(ROOT, 'tests', 'artifacts');
const BIG = path.join(ARTIFACTS, SMOKE ? 'big-export-smoke.pth' : `big-export-${GIB}g.pth`);

const MAKE = String.raw`
import sys, torch
path, total = sys.argv[1], int(float(sys.argv[2]) * (1 << 30))
n, rows = 1000, 1024
per = total // n // 4 // rows
g = torch.Generator().manual_seed(7)
sd = {}
for i in range(n):
    t = torch.full((rows, per), float(i))
    t[0] = torch.randn(per, generator=g)
    sd[f"layers.{i}.weight"] = t
torch.save(sd, path)
`;

const VERIFY = String.raw`
import sys, torch
a = torch.load(sys.argv[1], weights_only=True, mmap=True)
b = torch.load(sys.argv[2], weights_only=True, mmap=True)
cast = sys.argv[3] == "cast"
pre = "" if cast else "model."
assert list(b) == [pre + k for k in a], "keys"
ks = list(a)
for k in ks[:: max(1, len(ks) // 25)] + ks[-1:]:
    want = a[k].to(torch.float16) if cast else a[k]
    assert b[pre + k].dtype == want.dtype and torch.equal(want, b[pre + k]), k
print("verified", len(ks), "tensors")
`;

fs.mkdirSync(ARTIFACTS, { recursive: true });
if (!fs.existsSync(BIG)) {
  console.log(`making ${BIG} (${GIB} GiB) with torch …`);
  execFileSync(PY, ['-c', MAKE, BIG, String(GIB)], { stdio: 'inherit' });
}
const size = fs.statSync(BIG).size;
const server = await serve(DIST, 0);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-dev-shm-usage', '--enable-precise-memory-info'],
  headless: true,
});
try {
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  await page.goto(server.url, { waitUntil: 'load' });
  await page.locator('[data-testid="drop-zone"][data-worker="ready"]').waitFor({ timeout: 30_000 });
  let t = performance.now();
  await page.locator('[data-testid="file-input"]').setInputFiles(BIG);
  await page.getByRole('tab', { name: 'Edit' }).click(); // the panel lives in the Edit tab
  await page.locator('[data-testid="edit-panel"][data-ready="true"]').waitFor({ timeout: 300_000 });
  const openMs = performance.now() - t;
  if (MODE === 'cast') {
    await page.locator('[data-testid="op-cast"]').selectOption('float16');
    await page.locator('[data-testid="op-cast-apply"]').click();
  } else {
    await page.locator('[data-testid="op-add-prefix"]').fill('model.');
    await page.locator('[data-testid="op-add-prefix-apply"]').click();
  }
  await page.locator('[data-testid="journal"] li[data-state="applied"]').waitFor({ timeout: 30_000 });
  await page.locator('[data-testid="download-format"]').selectOption('torch');
  // progress is shown for exports over 200 ms: record the percentages the page displayed
  const seen = page.evaluate(() => new Promise((resolve) => {
    const pcts = new Set();
    const tick = setInterval(() => {
      const m = document.querySelector('[data-testid="edit-progress"]')?.textContent.match(/(\d+)%/);
      if (m) pcts.add(Number(m[1]));
      if (document.querySelector('[data-testid="export-report"]')) { clearInterval(tick); resolve([...pcts]); }
    }, 50);
  }));
  t = performance.now();
  const [dl] = await Promise.all([
    page.waitForEvent('download', { timeout: 600_000 }),
    page.locator('[data-testid="download"]').click(),
  ]);
  const startedMs = performance.now() - t;
  const out = await dl.path(); // resolves when the download finished
  const doneMs = performance.now() - t;
  const r = page.locator('[data-testid="export-report"]');
  await r.waitFor();
  const num = async (a) => Number(await r.getAttribute(a));
  const heap = await page.evaluate(() => performance.memory?.usedJSHeapSize ?? null);
  const res = {
    mode: MODE,
    input_bytes: size,
    open_ms: Math.round(openMs),
    worker_export_ms: await num('data-millis'),
    download_started_ms: Math.round(startedMs),
    download_finished_ms: Math.round(doneMs),
    wasm_memory_before: await num('data-wasm-before'),
    wasm_memory_after: await num('data-wasm-after'),
    page_js_heap_after: heap,
    progress_shown: ((p) => (p.length ? `${p.length} distinct percentages, ${Math.min(...p)}% … ${Math.max(...p)}%` : 'none'))(await seen),
    output_bytes: fs.statSync(out).size,
    copied_bytes: await num('data-copied'),
    new_bytes: await num('data-new'),
  };
  console.log(JSON.stringify(res, null, 2));
  console.log(execFileSync(PY, ['-c', VERIFY, BIG, out, MODE], { encoding: 'utf8' }).trim());
  const mib = (b) => (b / (1 << 20)).toFixed(1);
  console.log(`| ${MODE === 'cast' ? 'float16 cast' : 'rename-only'} export, ${mib(size)} MiB torch zip, headless Chromium | export ${res.worker_export_ms} ms, download done ${res.download_finished_ms} ms | wasm memory ${mib(res.wasm_memory_before)} → ${mib(res.wasm_memory_after)} MiB | copied ${mib(res.copied_bytes)} MiB as slices, ${mib(res.new_bytes)} MiB new |`);
  await context.close();
} finally {
  await browser.close();
  await server.close();
}
