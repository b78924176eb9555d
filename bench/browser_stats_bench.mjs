#!/usr/bin/env node
// Benchmark: whole-file statistics in the page, i.e. the engine in the worker reading a
// dropped (disk-backed) File through FileReaderSync.
//
// Makes (once, with the torch venv) tests/artifacts/stats-512m.pth: one float32 tensor of 64 Mi
// values (256 MiB, above the exact-quantile budget: read twice) and one bfloat16 tensor of
// 128 Mi values (256 MiB, read once). Serves dist/, opens the file through the file input (the
// page computes the statistics of files this size by itself), and prints the time from the file
// being set to both overview rows being computed, the MB/s of tensor bytes that makes, and the
// progress values the page showed (polled every 50 ms) — several values while one tensor is
// being read show the in-tensor progress. Checks the float32 row's mean against torch's.
// Run after `trunk build --release`:   node bench/browser_stats_bench.mjs [RUNS]
// `--smoke`: 8 MiB of each dtype, one run, same code path and checks (the test command runs it).
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { serve } from '../scripts/static-server.mjs';
import { chromium, DIST, ARTIFACTS, PY, CHROMIUM, CHROMIUM_ARGS, testid, openPage } from '../tests/e2e/harness.mjs';

const SMOKE = process.argv.includes('--smoke');
const RUNS = SMOKE ? 1 : Number(process.argv[2] ?? 3);
const FILE = path.join(ARTIFACTS, SMOKE ? 'stats-smoke.pth' : 'stats-512m.pth');
const SHIFT = SMOKE ? 1 : 6; // values: 1 Mi << SHIFT float32, twice as many bfloat16
const MAKE = String.raw`
import sys, json, torch
g = torch.Generator().manual_seed(0)
a = torch.randn((1 << 20) << int(sys.argv[2]), generator=g) * 0.02 + 0.001
b = (torch.randn((2 << 20) << int(sys.argv[2]), generator=g) * 0.02).to(torch.bfloat16)
torch.save({"f32": a, "bf16": b}, sys.argv[1])
print(json.dumps({"f32_mean": a.double().mean().item(), "bf16_mean": b.double().mean().item()}))
`;

fs.mkdirSync(ARTIFACTS, { recursive: true });
const meanFile = FILE + '.json';
if (!fs.existsSync(FILE) || !fs.existsSync(meanFile)) {
  fs.writeFileSync(meanFile, execFileSync(PY, ['-c', MAKE, FILE, String(SHIFT)], { encoding: 'utf8' }));
}
const expected = JSON.parse(fs.readFileSync(meanFile, 'utf8'));
const tensorBytes = ((4 << 20) << SHIFT) * 2;

const server = await serve(DIST, 0);
const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
try {
  for (let run = 1; run <= RUNS; run++) {
    const { context, page } = await openPage({ browser, server }, { viewport: { width: 1280, height: 800 } });
    const seen = new Set();
    const t0 = Date.now();
    await testid(page, 'file-input').setInputFiles(FILE);
    let done = false;
    while (!done) {
      const s = await page.evaluate(() => ({
        head: document.querySelector('.overview-head')?.textContent ?? '',
        p: document.querySelector('[data-testid="progress"]')?.getAttribute('aria-valuenow'),
      }));
      if (s.p != null) seen.add(Number(s.p));
      // finished: the head says "2 tensors" (no "computing…", no "k of 2")
      done = /2 tensors/.test(s.head) && !/computing| of 2/.test(s.head);
      if (!done) await page.waitForTimeout(50);
      if (Date.now() - t0 > 300_000) throw new Error(`no result after 300 s: ${s.head}`);
    }
    const ms = Date.now() - t0;
    // the float32 tensor's mean, as the inspector shows it
    await page.locator('[role="treeitem"]', { hasText: 'f32' }).first().click();
    await testid(page, 'stats').waitFor({ timeout: 60_000 });
    const statsText = await testid(page, 'stats').textContent();
    const mean = Number(await page.locator('[data-testid="stats"] [data-stat="mean"]').getAttribute('data-value'));
    if (!(Math.abs(mean - expected.f32_mean) <= 1e-6 * Math.abs(expected.f32_mean) + 1e-9)) {
      throw new Error(`float32 mean ${mean}, torch says ${expected.f32_mean}`);
    }
    const progress = [...seen].sort((x, y) => x - y);
    console.log(`run ${run}: both tensors in ${ms} ms = ${(tensorBytes / 1e6 / (ms / 1e3)).toFixed(0)} MB/s of tensor bytes ` +
      `(float32 read twice, bfloat16 once); progress values seen: ${progress.length} (${progress.slice(0, 12).join(', ')}${progress.length > 12 ? ', …' : ''})`);
    if (run === 1) console.log(`expected means (torch, float64): ${JSON.stringify(expected)}; inspector: ${statsText.replace(/\s+/g, ' ').slice(0, 200)}`);
    await context.close();
  }
} finally {
  await browser.close();
  await server.close();
}
