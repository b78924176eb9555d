#!/usr/bin/env node
// Benchmark: the Merge tab merging two large float32 torch zips into a .pth streamed to disk, in
// headless Chromium.
//
// Makes (once) two SIZE_GIB GiB (default 2) float32 checkpoints in tests/artifacts with the torch
// venv (bench/merge_bench.py's `make`: tensors of 1024 rows, 4 MiB each), serves dist/, opens the first
// through the file input, adds the second in the Merge tab, picks a linear merge 0.3 / 0.7 and
// "Merge and download" as .pth. The native save picker cannot be clicked here, so
// `showSaveFilePicker` returns an Origin Private File System file handle: the worker writes
// through a real `FileSystemWritableFileStream`, as with a file the user picked. Prints:
//   - the time from the click to the page's "saved" note, and the native CLI's merge of the same
//     files (`weightscope merge … -o out.pth`, WEIGHTSCOPE_BIN, default the release build);
//   - the worker's wasm memory after the export (goal for 2 × 2 GiB: ≤ 128 MiB).
// The output, copied out of OPFS, is checked with Python's zipfile (every CRC-32) and torch
// (sampled tensors equal torch's float64 merge rounded to float32, bit for bit). Run after
// `trunk build --release`:
//   node bench/browser_merge_bench.mjs [SIZE_GIB]
//   node bench/browser_merge_bench.mjs --smoke   (8 MiB inputs, same code path and checks; the
//                                                 test command runs it so the bench cannot rot)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { serve } from '../scripts/static-server.mjs';
import { ROOT, chromium, DIST, PY, CHROMIUM, CHROMIUM_ARGS, testid } from '../tests/e2e/harness.mjs';
import { openFirst, addInputs, opfsCopy } from '../tests/e2e/merge_common.mjs';

const TARGET = process.env.CARGO_TARGET_DIR ?? path.join(ROOT, 'target');
const BIN = process.env.WEIGHTSCOPE_BIN ?? path.join(TARGET, 'release', 'weightscope');
const SMOKE = process.argv.includes('--smoke');
const ARGS = process.argv.slice(2).filter((a) => a !== '--smoke');
const GIB = SMOKE ? 1 / 128 : Number(ARGS[0] ?? 2);
const ARTIFACTS = path.join(ROOT, 'tests', 'artifacts');
const tag = SMOKE ? 'smoke' : `${GIB}g`;
const A = path.join(ARTIFACTS, `merge-a-${tag}.pth`);
const B = path.join(ARTIFACTS, `merge-b-${tag}.pth`);
const OUT = path.join(ARTIFACTS, `merge-out-${tag}.pth`);
const NATIVE = path.join(ARTIFACTS, `merge-native-${tag}.pth`);
const NAME = path.basename(A).replace(/\.pth$/, '.merged.pth');

// bench/merge_bench.py's inputs: float32 tensors of 1024 rows, 4 MiB each
const MAKE = String.raw`
import sys
sys.path.insert(0, sys.argv[4])
from merge_bench import make
total = int(float(sys.argv[2]) * (1 << 30))
make(sys.argv[1], total, max(1, total >> 22), int(sys.argv[3]))
`;

const VERIFY = String.raw`
import sys, zipfile, torch
with zipfile.ZipFile(sys.argv[3]) as z:
    assert z.testzip() is None, "a CRC-32 does not match"
a = torch.load(sys.argv[1], weights_only=True, mmap=True)
b = torch.load(sys.argv[2], weights_only=True, mmap=True)
o = torch.load(sys.argv[3], weights_only=True, mmap=True)
assert list(o) == list(a), "keys"
ks = list(a)
for k in ks[:: max(1, len(ks) // 25)] + ks[-1:]:
    s = 0.3 + 0.7  # the weights, divided by their sum as the merge does
    want = ((0.3 / s) * a[k].double() + (0.7 / s) * b[k].double()).to(torch.float32)
    assert o[k].dtype == torch.float32 and torch.equal(o[k].view(torch.int32), want.view(torch.int32)), k
print("verified", len(ks), "tensors")
`;

// the save picker answers with an OPFS file handle named as suggested
const OPFS_PICKER = String.raw`
window.showSaveFilePicker = async (opts) => {
  const root = await navigator.storage.getDirectory();
  return root.getFileHandle(opts.suggestedName, { create: true });
};`;

fs.mkdirSync(ARTIFACTS, { recursive: true });
for (const [p, seed] of [[A, 0], [B, 1]]) {
  if (!fs.existsSync(p)) {
    console.log(`making ${p} (${GIB} GiB) with torch …`);
    execFileSync(PY, ['-c', MAKE, p, String(GIB), String(seed), path.join(ROOT, 'bench')], { stdio: 'inherit' });
  }
}
const size = fs.statSync(A).size;
const mib = (b) => (b / (1 << 20)).toFixed(1);

// the native CLI on the same files, for the ratio
if (!fs.existsSync(BIN)) throw new Error(`${BIN} missing: cargo build --release (or set WEIGHTSCOPE_BIN)`);
let t = performance.now();
execFileSync(BIN, ['merge', A, B, '-o', NATIVE, '--method', 'linear', '--weights', '0.3,0.7'], { stdio: 'ignore' });
const nativeMs = performance.now() - t;
fs.rmSync(NATIVE);

const server = await serve(DIST, 0);
// a profile on disk: an incognito context keeps OPFS in memory, with a quota a 2 GiB output
// exceeds ("Failed to write data to data pipe" at ≈ 1.5 GiB)
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'weightscope-merge-bench-'));
const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
try {
  await context.addInitScript(OPFS_PICKER);
  const page = await context.newPage();
  const tid = (id) => testid(page, id);
  await page.goto(server.url, { waitUntil: 'load' });
  await page.locator('[data-testid="drop-zone"][data-worker="ready"]').waitFor({ timeout: 30_000 });
  await openFirst(page, A);
  await addInputs(page, [B], 2);
  await tid('merge-method').selectOption('linear');
  for (const [k, w] of [[0, '0.3'], [1, '0.7']]) {
    await tid(`merge-weight-${k}`).fill(w);
    await tid(`merge-weight-${k}`).dispatchEvent('change');
  }
  await tid('merge-format').selectOption('torch');
  t = performance.now();
  await tid('merge-run').click();
  const done = page.locator('[data-testid="merge-done"][data-on-disk="true"]');
  // say where it is every 10 s; a stop with an error ends the run
  const tick = setInterval(async () => {
    const st = await page.evaluate(() => ['merge-progress', 'merge-error']
      .map((id) => document.querySelector(`[data-testid="${id}"]`)?.textContent ?? '').join(' ').trim()).catch(() => '');
    console.log(`  ${((performance.now() - t) / 1000).toFixed(0)} s: ${st}`);
  }, 10_000);
  try {
    await Promise.race([
      done.waitFor({ timeout: 3_600_000 }),
      testid(page, 'merge-error').waitFor({ timeout: 3_600_000 }).then(async () => {
        throw new Error(`the merge failed: ${await testid(page, 'merge-error').textContent()}`);
      }),
    ]);
  } catch (e) {
    await page.screenshot({ path: path.join(ARTIFACTS, 'browser-merge-bench-failed.png'), fullPage: true });
    throw e;
  } finally {
    clearInterval(tick);
  }
  const pageMs = performance.now() - t;
  const wasm = Number(await done.getAttribute('data-wasm-memory'));
  await opfsCopy(page, [NAME], OUT);
  const res = {
    input_bytes_each: size,
    output_bytes: fs.statSync(OUT).size,
    page_merge_to_disk_ms: Math.round(pageMs),
    native_cli_merge_ms: Math.round(nativeMs),
    page_over_native: Number((pageMs / nativeMs).toFixed(2)),
    worker_wasm_memory_after: wasm,
  };
  console.log(JSON.stringify(res, null, 2));
  console.log(execFileSync(PY, ['-c', VERIFY, A, B, OUT], { encoding: 'utf8' }).trim());
  if (!(wasm > 0 && wasm <= 128 << 20)) throw new Error(`worker wasm memory ${wasm} bytes (goal ≤ 128 MiB)`);
  console.log(`| linear merge of 2 × ${mib(size)} MiB float32 .pth → .pth on disk, headless Chromium | page ${(pageMs / 1000).toFixed(1)} s, native CLI ${(nativeMs / 1000).toFixed(1)} s (${res.page_over_native}×) | worker wasm memory ${mib(wasm)} MiB |`);
} finally {
  fs.rmSync(OUT, { force: true });
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
  await server.close();
}
