#!/usr/bin/env node
// Where the page's CPU time goes, by function, on every thread (page and workers): records a
// Chromium trace with the V8 sampling profiler while a scenario runs, then prints each thread's
// top functions by self time and by total time. For Rust names, serve a dist/ whose .wasm files
// are the ones wasm-bindgen wrote before wasm-opt (they keep the name section):
//   cp -r dist /tmp/dist-named && cp $CARGO_TARGET_DIR/wasm-bindgen/release/*_bg.wasm … (same
//   hashed names as in dist/)
//
//   node bench/page_profile.mjs DIST SCENARIO FILE [TOP]
// (bench/smoke.sh runs `dist open` on the smoke benchmark's small file.)
//   SCENARIO: open   — the page's first open of FILE (count on screen, then 500 ms)
//             reopen — FILE (or PRE=other file) opened once, then traced while FILE opens
//             stats  — traced while FILE opens and until its whole-file statistics are done
//             filter — FILE opened, then traced while "layers.4" is typed into the tree search
//             regex  — the same in the search's regex mode (each keystroke until the worker's
//                      answer is applied)
// FOCUS=fn: totals only of stacks through a function whose name contains fn; WINDOW=a,b: only
// the samples between the user-timing marks `ws:a` and `ws:b` (any thread; `+ms`: ms after `ws:a`)
import fs from 'node:fs';
import { serve } from '../scripts/static-server.mjs';
import { chromium, CHROMIUM, CHROMIUM_ARGS, testid, openPage } from '../tests/e2e/harness.mjs';

const [dist, scenario, file, topArg] = process.argv.slice(2);
if (!dist || !scenario || !file) {
  console.error('usage: node bench/page_profile.mjs DIST open|reopen|stats|filter|regex FILE [TOP]');
  process.exit(2);
}
const TOP = Number(topArg ?? 25);
const FOCUS = process.env.FOCUS ?? '';
const server = await serve(dist, 0);
const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
const trace = '/tmp/page-profile-trace.json';
try {
  const { page } = await openPage({ browser, server }, { viewport: { width: 1280, height: 900 } });
  if (scenario !== 'open' && scenario !== 'stats') {
    // PRE=file: open that file first instead (e.g. a first open of FILE after another file's)
    await testid(page, 'file-input').setInputFiles(process.env.PRE || file);
    await testid(page, 'tensor-count').waitFor();
  }
  await page.waitForTimeout(1000);
  await browser.startTracing(page, {
    path: trace,
    categories: ['disabled-by-default-v8.cpu_profiler', 'v8.execute', 'blink.user_timing', 'devtools.timeline'],
  });
  const t0 = Date.now();
  if (scenario === 'open' || scenario === 'reopen') {
    // until the page has applied this open's summary (its `ws:p:state-applied` mark), then 500 ms
    const since = await page.evaluate(() => performance.now());
    await testid(page, 'file-input').setInputFiles(file);
    await page.waitForFunction((t) => performance.getEntriesByName('ws:p:state-applied').some((m) => m.startTime > t), since, { timeout: 600_000 });
    await page.waitForTimeout(500);
  } else if (scenario === 'stats') {
    // statistics start by themselves for a small file; a large one needs the button
    await testid(page, 'file-input').setInputFiles(file);
    await testid(page, 'tensor-count').waitFor();
    const n = (await testid(page, 'tensor-count').textContent()).replace(/,/g, '');
    const compute = testid(page, 'compute-all');
    if (await compute.count()) await compute.click();
    await page.locator(`[data-testid="overview"][data-running="false"][data-computed="${n}"]`).waitFor({ timeout: 600_000 });
  } else if (scenario === 'filter' || scenario === 'regex') {
    await page.evaluate(async (regex) => {
      const input = document.querySelector('[data-testid="search"]');
      if (regex) {
        const box = document.querySelector('.search-box input[type="checkbox"]');
        box.checked = true;
        box.dispatchEvent(new Event('change', { bubbles: true }));
      }
      const q = 'layers.4';
      for (let i = 1; i <= q.length; i++) {
        input.value = q.slice(0, i);
        input.dispatchEvent(new Event('input', { bubbles: true }));
        while (regex && input.dataset.answered !== q.slice(0, i)) await new Promise((r) => setTimeout(r, 0));
        await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
      }
    }, scenario === 'regex');
  }
  console.log(`scenario ${scenario}: ${Date.now() - t0} ms`);
  await browser.stopTracing();
} finally {
  await browser.close();
  await server.close();
}

// ProfileChunk events carry node trees and samples, per (pid, tid, profile id).
const ev = JSON.parse(fs.readFileSync(trace, 'utf8')).traceEvents ?? [];
const names = new Map();
for (const e of ev) if (e.ph === 'M' && e.name === 'thread_name') names.set(`${e.pid}:${e.tid}`, e.args.name);
const profiles = new Map();
for (const e of ev) {
  if (e.name !== 'ProfileChunk' && e.name !== 'Profile') continue;
  const key = `${e.pid}:${e.id}`;
  const p = profiles.get(key) ?? { thread: `${e.pid}:${e.tid}`, nodes: new Map(), samples: [], deltas: [], start: 0 };
  profiles.set(key, p);
  if (e.name === 'Profile') {
    p.start = e.args?.data?.startTime ?? 0;
    continue;
  }
  const d = e.args?.data ?? {};
  for (const n of d.cpuProfile?.nodes ?? []) p.nodes.set(n.id, n);
  p.samples.push(...(d.cpuProfile?.samples ?? []));
  p.deltas.push(...(d.timeDeltas ?? []));
}
// WINDOW=markA,markB: only samples between the first `ws:markA` and the first `ws:markB` after
// it (user-timing marks of any thread, e.g. WINDOW=w:recv,w:posted:detected)
const win = [-Infinity, Infinity];
if (process.env.WINDOW) {
  const [a, b] = process.env.WINDOW.split(',');
  const ts = (name, after) => ev.find((e) => e.name === `ws:${name}` && e.ts >= after)?.ts;
  win[0] = ts(a, -Infinity);
  win[1] = b.startsWith('+') ? win[0] + Number(b.slice(1)) * 1e3 : ts(b, win[0]);
  if (win[0] == null || win[1] == null) throw new Error(`WINDOW marks not found: ${process.env.WINDOW}`);
  console.log(`window ${process.env.WINDOW}: ${((win[1] - win[0]) / 1e3).toFixed(1)} ms`);
}
let threads = 0;
for (const p of profiles.values()) {
  const self = new Map();
  const total = new Map();
  let all = 0;
  let at = p.start;
  for (let i = 0; i < p.samples.length; i++) {
    at += p.deltas[i] ?? 0;
    if (at < win[0] || at > win[1]) continue;
    const dt = (p.deltas[i + 1] ?? 0) / 1e3;
    const n = p.nodes.get(p.samples[i]);
    if (!n) continue;
    const name = n.callFrame.functionName || `(${n.callFrame.url?.split('/').pop() || 'anonymous'})`;
    if (name === '(idle)' || name === '(program)' || name === '(garbage collector)') {
      if (name !== '(idle)') self.set(name, (self.get(name) ?? 0) + dt);
      continue;
    }
    all += dt;
    self.set(name, (self.get(name) ?? 0) + dt);
    // total: every distinct function on the stack (FOCUS=text: only stacks through a function
    // whose name contains it)
    const seen = new Set();
    if (FOCUS) {
      let hit = false;
      for (let m = n; m && !hit; m = m.parent != null ? p.nodes.get(m.parent) : null) hit = (m.callFrame.functionName || '').includes(FOCUS);
      if (!hit) continue;
    }
    for (let m = n; m; m = m.parent != null ? p.nodes.get(m.parent) : null) {
      const f = m.callFrame.functionName || '(anonymous)';
      if (seen.has(f)) continue;
      seen.add(f);
      total.set(f, (total.get(f) ?? 0) + dt);
    }
  }
  if (all < (process.env.WINDOW ? 0.5 : 5)) continue;
  threads++;
  console.log(`\n== thread ${names.get(p.thread) ?? p.thread}: ${all.toFixed(0)} ms of samples (not idle)`);
  const top = (m) => [...m].sort((a, b) => b[1] - a[1]).slice(0, TOP);
  console.log('  self:');
  for (const [n, t] of top(self)) console.log(`    ${t.toFixed(1).padStart(8)} ms  ${n.slice(0, 150)}`);
  console.log('  total:');
  for (const [n, t] of top(total)) console.log(`    ${t.toFixed(1).padStart(8)} ms  ${n.slice(0, 150)}`);
}
// (bench/smoke.sh runs this on the smoke inputs: a trace without samples is a broken tool)
if (threads === 0) {
  console.error('no CPU samples in the trace');
  process.exit(1);
}
