#!/usr/bin/env node
// Where a page open's main-thread time goes: records a Chromium trace while FILE opens through
// the file input and prints the top trace events by total duration (scripting, style, layout,
// paint), in the 2 s after the file is set.
// FIRST=1: trace the page's first open (else a second open of the same file).
//   [FIRST=1] node bench/open_trace.mjs FILE [TRACE_OUT.json]
import fs from 'node:fs';
import { serve } from '../scripts/static-server.mjs';
import { chromium, DIST, CHROMIUM, CHROMIUM_ARGS, testid, openPage } from '../tests/e2e/harness.mjs';

const [file, out] = process.argv.slice(2);
const server = await serve(DIST, 0);
const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
try {
  const { page } = await openPage({ browser, server }, { viewport: { width: 1280, height: 900 } });
  // warm: open once, so the trace shows a second open (as the benchmark's later runs do)
  if (!process.env.FIRST) {
    await testid(page, 'file-input').setInputFiles(file);
    await testid(page, 'tensor-count').waitFor();
  }
  await page.waitForTimeout(1500);
  const path = out ?? '/tmp/open-trace.json';
  await browser.startTracing(page, { path, categories: ['devtools.timeline', 'v8.execute', 'blink.user_timing', 'v8.wasm', 'disabled-by-default-v8.compile', 'v8'] });
  await testid(page, 'file-input').setInputFiles(file);
  await page.waitForTimeout(2000);
  await browser.stopTracing();
  const ev = JSON.parse(fs.readFileSync(path, 'utf8')).traceEvents ?? [];
  const main = ev.filter((e) => e.ph === 'X' && e.dur);
  const byName = new Map();
  for (const e of main) byName.set(e.name, (byName.get(e.name) ?? 0) + e.dur / 1e3);
  console.log([...byName].sort((a, b) => b[1] - a[1]).slice(0, 25).map(([n, d]) => `  ${n}: ${d.toFixed(1)} ms`).join('\n'));
} finally {
  await browser.close();
  await server.close();
}
