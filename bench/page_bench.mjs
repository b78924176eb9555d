#!/usr/bin/env node
// Benchmark: the page in headless Chromium, every row of the page's performance table.
//
//   open → tree   in-page time from the file input's `change` event to the tensor count on
//                 screen (worker already loaded), for a 5 MB / 52-tensor .pth, a 1,000-tensor
//                 .pth of SIZE (4 GiB) and a 50,000-key .pth; with the breakdown from the
//                 user-timing marks the page and the worker leave (`ws:*`, src/worker/perf.rs)
//   filter        per keystroke on the 50,000-key tree: `input` event → next frame (substring;
//                 regex: until the worker's answer is applied, then the next frame)
//   size          gzip -9 of every shipped .wasm / .js in dist/
//   statistics    whole-file statistics of the 1,000-tensor file (MB/s of tensor bytes) and of
//                 the 50,000-key file (tensors/s), each with its ratio to the native
//                 `weightscope stats` on the same file, measured in the same run
//   offline       a reload with the network off still opens a file
//   reads, CPU    raw reads of the big file (one worker three ways; the pool's workers at once by
//                 FileReaderSync and by Blob.stream()), and the CPU time per MB of tensors of
//                 every Chromium process (from /proc, Linux) during the statistics and the pool's
//                 raw reads, against the native statistics' CPU: on a machine of few cores the
//                 pool is CPU-bound, and cores × 1,000 / (CPU ms per MB) is its ceiling
//
// Every number is the median of RUNS runs (default 3). The torch venv makes the inputs once
// (tests/artifacts/page-bench/). `--smoke`: tiny inputs, one run, same code path (the test
// command runs it, so the bench cannot rot); it checks what it reads (tensor counts, statistics
// rows) but asserts no time.
// `--open-only`: only the three opens (with their breakdown), the filter and the sizes, for quick
// before/after comparisons of the open path.
// `--only small,big`: with --open-only, only those opens (small, big, keys).
//   node bench/page_bench.mjs [--smoke] [--open-only [--only LIST]] [--runs N] [--size-gib G]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { serve } from '../scripts/static-server.mjs';
import { chromium, DIST, ARTIFACTS, PY, CHROMIUM, CHROMIUM_ARGS, testid, openPage } from '../tests/e2e/harness.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const SMOKE = args.includes('--smoke');
const OPEN_ONLY = args.includes('--open-only');
// `--only small,keys`: with --open-only, just those opens
const ONLY = opt('--only', 'small,big,keys').split(',');
const RUNS = Number(opt('--runs', SMOKE ? 1 : 3));
const SIZE_GIB = Number(opt('--size-gib', SMOKE ? 1 / 256 : 4));
const KEYS = SMOKE ? 2000 : 50_000;
const BIN = process.env.WEIGHTSCOPE_BIN ?? path.join(process.env.CARGO_TARGET_DIR ?? path.join(process.env.HOME, '.cache/weightscope/target'), SMOKE ? 'debug' : 'release', 'weightscope');
const DIR = path.join(ARTIFACTS, SMOKE ? 'page-bench-smoke' : 'page-bench');
const T_LONG = 600_000;

// small: 52 tensors, ≈ 5 MB; big: 1,000 float32 tensors, SIZE GiB in all; keys: KEYS tiny tensors
const MAKE = String.raw`
import sys, os, json, torch
d, gib, keys = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
g = torch.Generator().manual_seed(3)
os.makedirs(d, exist_ok=True)
small = {}
for i in range(13):
    small[f"blocks.{i}.attn.weight"] = torch.randn(256, 256, generator=g) * 0.02
    small[f"blocks.{i}.attn.bias"] = torch.zeros(256)
    small[f"blocks.{i}.norm.weight"] = torch.ones(256)
    small[f"blocks.{i}.mlp.weight"] = torch.randn(64, 256, generator=g)
torch.save(small, os.path.join(d, "small.pth"))
per = int(gib * (1 << 30)) // 1000 // 4
big = {}
for i in range(1000):
    big[f"layers.{i}.weight"] = torch.randn(per, generator=g) * 0.02
torch.save(big, os.path.join(d, "big.pth"))
del big
many = {f"model.layers.{i // 50}.block.{i % 50}.weight": torch.randn(8, generator=g) for i in range(keys)}
torch.save(many, os.path.join(d, "keys.pth"))
json.dump({"small": len(small), "big": 1000, "keys": keys}, open(os.path.join(d, "counts.json"), "w"))
`;

class OpenOnlyDone extends Error {}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmt = (x, d = 0) => (x == null || Number.isNaN(x) ? '—' : x.toFixed(d));
const ms = (x) => `${fmt(x)} ms`;

fs.mkdirSync(DIR, { recursive: true });
const countsFile = path.join(DIR, 'counts.json');
const files = { small: path.join(DIR, 'small.pth'), big: path.join(DIR, 'big.pth'), keys: path.join(DIR, 'keys.pth') };
const wantSize = Math.floor(SIZE_GIB * 2 ** 30);
if (!fs.existsSync(countsFile) || Math.abs(fs.statSync(files.big).size - wantSize) > wantSize / 50 + (1 << 20)) {
  console.log(`making the inputs in ${DIR} with torch …`);
  execFileSync(PY, ['-c', MAKE, DIR, String(SIZE_GIB), String(KEYS)], { stdio: 'inherit' });
}
const counts = JSON.parse(fs.readFileSync(countsFile, 'utf8'));

/** The fields of a /proc/PID/stat text after the command name (field 3, `state`, is [0]). */
const statFields = (st) => st.slice(st.lastIndexOf(')') + 2).split(' ');
/** CPU time (user + system, ms) of this process's finished children (Linux: /proc/self/stat). */
function childrenCpuMs() {
  const f = statFields(fs.readFileSync('/proc/self/stat', 'utf8'));
  return (Number(f[13]) + Number(f[14])) * 10; // cutime, cstime in clock ticks of 10 ms
}
/** CPU time (user + system, ms) of every Chromium process now running (the bench's browser). */
function chromiumCpuMs() {
  let ms = 0;
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const comm = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
      if (!/chrom/i.test(comm)) continue;
      const f = statFields(st);
      ms += (Number(f[11]) + Number(f[12])) * 10; // utime, stime
    } catch { /* the process ended */ }
  }
  return ms;
}

/** Native CLI: seconds for `weightscope ARGS` (median of RUNS); `cpu`: its CPU ms (median). */
function native(argv, cpu = []) {
  const t = [];
  for (let r = 0; r < RUNS; r++) {
    const c0 = childrenCpuMs();
    const t0 = performance.now();
    execFileSync(BIN, argv, { stdio: ['ignore', 'ignore', 'inherit'], maxBuffer: 1 << 30 });
    t.push((performance.now() - t0) / 1e3);
    cpu.push(childrenCpuMs() - c0);
  }
  return median(t);
}
/** Sum of tensor bytes and tensor count of a file (all float32 here), from `inspect --json`. */
function tensorBytes(file) {
  const j = JSON.parse(execFileSync(BIN, ['inspect', file, '--json'], { encoding: 'utf8', maxBuffer: 1 << 30 }));
  const ts = j.entries.filter((e) => e.dtype === 'float32');
  const bytes = ts.reduce((a, t) => a + 4 * t.shape.reduce((x, y) => x * y, 1), 0);
  return { bytes, n: ts.length };
}

/** The `ws:` marks of the page and of its workers, as ms since the page's time origin. */
async function marks(page) {
  const all = [];
  const grab = () => {
    const o = performance.timeOrigin;
    return performance.getEntriesByType('mark').filter((m) => m.name.startsWith('ws:'))
      .map((m) => ({ name: m.name, t: o + m.startTime }));
  };
  for (const w of page.workers()) all.push(...await w.evaluate(grab).catch(() => []));
  all.push(...await page.evaluate(grab));
  const origin = await page.evaluate(() => performance.timeOrigin);
  return all.map((m) => ({ name: m.name.slice(3), t: m.t - origin })).sort((a, b) => a.t - b.t);
}

/** Open `file` through the file input; time from `change` to the count on screen, plus marks. */
async function openTimed(page, file, expectCount) {
  await page.evaluate(() => {
    for (const w of [performance]) w.clearMarks();
    window.__bench = { change: null, shown: null, paint: null };
    const input = document.querySelector('[data-testid="file-input"]');
    input.addEventListener('change', () => { window.__bench.change = performance.now(); }, { capture: true, once: true });
  });
  for (const w of page.workers()) await w.evaluate(() => performance.clearMarks()).catch(() => {});
  const watch = page.evaluate((want) => new Promise((resolve) => {
    const check = () => {
      const el = document.querySelector('[data-testid="tensor-count"]');
      if (el && el.textContent.replace(/,/g, '') === String(want) && window.__bench.change != null) {
        window.__bench.shown = performance.now();
        obs.disconnect();
        requestAnimationFrame(() => setTimeout(() => { window.__bench.paint = performance.now(); resolve(window.__bench); }, 0));
        return true;
      }
      return false;
    };
    const obs = new MutationObserver(check);
    obs.observe(document.body, { subtree: true, childList: true, characterData: true });
  }), expectCount);
  await testid(page, 'file-input').setInputFiles(file);
  const b = await watch;
  const m = await marks(page);
  const at = (name) => m.find((x) => x.name === name)?.t;
  const rel = (name) => (at(name) == null ? null : at(name) - b.change);
  const reads = m.find((x) => x.name.startsWith('w:reads:'))?.name.split(':') ?? [];
  return {
    shown: b.shown - b.change,
    paint: b.paint - b.change,
    steps: {
      'worker got the request': rel('w:recv'),
      'detected posted': rel('w:posted:detected'),
      'index built (encode starts)': rel('w:encode:summary'),
      'summary encoded + posted': rel('w:posted:summary'),
      'page received': rel('p:recv') != null ? m.filter((x) => x.name === 'p:recv').map((x) => x.t - b.change).pop() : null,
      'summary decoded': rel('p:decoded:summary'),
      'tree built': rel('p:tree-built'),
      'state applied (sync render)': rel('p:state-applied'),
      'count in DOM': b.shown - b.change,
      'next frame': b.paint - b.change,
    },
    reads: reads.length ? `${reads[2]} FileReaderSync reads, ${reads[3]} bytes` : '—',
  };
}

async function waitStatsDone(page, n, timeout) {
  await page.locator(`[data-testid="overview"][data-computed="${n}"][data-running="false"]`).waitFor({ timeout });
}

/** Per-keystroke filter latency on the opened file: `input` → next frame, for each prefix. With
 *  `regex`, in regex mode: `input` → the worker's answer applied (the search box's
 *  `data-answered`) → next frame. */
async function filterTimes(page, query, regex = false) {
  return page.evaluate(async ([q, regex]) => {
    const input = document.querySelector('[data-testid="search"]');
    const box = document.querySelector('.search-box input[type="checkbox"]');
    const setRegex = (on) => {
      box.checked = on;
      box.dispatchEvent(new Event('change', { bubbles: true }));
    };
    if (regex) setRegex(true);
    const out = [];
    for (let i = 1; i <= q.length; i++) {
      const t0 = performance.now();
      input.value = q.slice(0, i);
      input.dispatchEvent(new Event('input', { bubbles: true }));
      while (regex && input.dataset.answered !== q.slice(0, i)) {
        if (performance.now() - t0 > 30000) throw new Error(`no answer to the regex ${q.slice(0, i)}`);
        await new Promise((r) => setTimeout(r, 0));
      }
      await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
      out.push(performance.now() - t0);
    }
    input.value = '';
    input.dispatchEvent(new Event('input', { bubbles: true }));
    if (regex) setRegex(false);
    return out;
  }, [query, regex]);
}

function gzipSizes() {
  let total = 0;
  const rows = [];
  for (const f of fs.readdirSync(DIST).filter((f) => /\.(wasm|js)$/.test(f)).sort()) {
    // GNU gzip -9, as the test command (scripts/dev.sh) sums it: Node's zlib at level 9 makes
    // other (for this build ≈ 6 KiB larger) output
    const gz = execFileSync('gzip', ['-9', '-c', path.join(DIST, f)], { maxBuffer: 1 << 26 }).length;
    total += gz;
    rows.push(`${f} ${(gz / 1024).toFixed(0)} KiB`);
  }
  return { total, rows };
}

const server = await serve(DIST, 0);
const browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, '--enable-precise-memory-info'], headless: true });
const res = { small: [], big: [], keys: [], filter: [], regex: [], statsBig: [], statsBigCpu: [], statsKeys: [], breakdown: {} };
try {
  for (let run = 1; run <= RUNS; run++) {
    const { context, page } = await openPage({ browser, server }, { viewport: { width: 1280, height: 900 } });
    for (const k of ['small', 'big', 'keys'].filter((k) => !OPEN_ONLY || ONLY.includes(k))) {
      // every open is timed on an idle page: the previous file's automatic statistics (files up
      // to 1 GiB; they start a frame after its tree) would otherwise run on the pool during it
      await page.waitForTimeout(300);
      await page.locator('[data-testid="overview"][data-running="true"]').waitFor({ state: 'detached', timeout: T_LONG });
      const r = await openTimed(page, files[k], counts[k]);
      res[k].push(r.paint);
      res.breakdown[k] ??= [];
      res.breakdown[k].push(r);
      if (OPEN_ONLY) {
        // the filter's per-keystroke latency needs no statistics
        if (k === 'keys') {
          res.filter.push(...(await filterTimes(page, 'layers.4')));
          res.regex.push(...(await filterTimes(page, 'layers.4', true)));
        }
        continue;
      }
      if (k === 'big') {
        // whole-file statistics of the big file (over the automatic limit → the button)
        const compute = testid(page, 'compute-all');
        const c0 = chromiumCpuMs();
        const t0 = performance.now();
        if (await compute.count()) await compute.click();
        await waitStatsDone(page, counts.big, T_LONG);
        res.statsBig.push((performance.now() - t0) / 1e3);
        res.statsBigCpu.push(chromiumCpuMs() - c0);
        // the workers' wasm memory (marks `w:mem:<answer>:<bytes>`)
        const mem = (await marks(page)).filter((x) => x.name.startsWith('w:mem:')).map((x) => x.name.split(':'));
        const max = (kind) => Math.max(0, ...mem.filter((x) => x[2] === kind).map((x) => Number(x[3])));
        res.memory = { open: max('summary'), stats: max('all-stats-done') };
      }
      if (k === 'keys') {
        // statistics start by themselves after the open (small file)
        const t0 = performance.now();
        const compute = testid(page, 'compute-all');
        if (await compute.count()) await compute.click();
        await waitStatsDone(page, counts.keys, T_LONG);
        res.statsKeys.push((performance.now() - t0) / 1e3);
        const f = await filterTimes(page, 'layers.4');
        res.filter.push(...f);
        res.regex.push(...(await filterTimes(page, 'layers.4', true)));
      }
    }
    await context.close();
  }
  if (OPEN_ONLY) throw new OpenOnlyDone();
  // offline: first visit online (the service worker installs), then a reload with the network off
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(server.url, { waitUntil: 'load' });
  await page.locator('[data-testid="drop-zone"][data-worker="ready"]').waitFor({ timeout: 30_000 });
  await page.evaluate(() => navigator.serviceWorker?.ready ? Promise.race([navigator.serviceWorker.ready, new Promise((r) => setTimeout(r, 3000))]) : null);
  await ctx.setOffline(true);
  let offline = 'no';
  try {
    await page.reload({ waitUntil: 'load', timeout: 10_000 });
    await page.locator('[data-testid="drop-zone"][data-worker="ready"]').waitFor({ timeout: 10_000 });
    await testid(page, 'file-input').setInputFiles(files.small);
    await testid(page, 'tensor-count').waitFor({ timeout: 10_000 });
    offline = 'yes';
  } catch { /* stays "no" */ }
  await ctx.close();
  res.offline = offline;

  // FileReaderSync vs Blob.arrayBuffer() vs Blob.stream(), in a worker, on the big file
  const site = path.join(DIR, 'site');
  fs.rmSync(site, { recursive: true, force: true });
  fs.cpSync(DIST, site, { recursive: true });
  fs.copyFileSync(new URL('./read_bench_worker.js', import.meta.url), path.join(site, 'read_bench_worker.js'));
  fs.writeFileSync(path.join(site, 'read_bench.html'), '<!doctype html><title>reads</title><input type="file" id="pick">');
  const s2 = await serve(site, 0);
  try {
    const c2 = await browser.newContext();
    const p2 = await c2.newPage();
    await p2.goto(new URL('read_bench.html', s2.url).href, { waitUntil: 'load' });
    res.reads = [];
    await p2.locator('#pick').setInputFiles(files.big);
    for (let run = 0; run < RUNS; run++) {
      res.reads.push(await p2.evaluate(() => new Promise((resolve, reject) => {
        const w = new Worker('./read_bench_worker.js');
        w.onmessage = (e) => { w.terminate(); resolve(e.data); };
        w.onerror = (e) => reject(new Error(e.message));
        w.postMessage(document.querySelector('#pick').files[0]);
      })));
    }
    // the pool's reads: as many workers as the statistics pool starts, each reading its part
    res.parallelReads = [];
    res.parallelStreams = [];
    for (let run = 0; run < 2 * RUNS; run++) {
      const how = run % 2 ? 'stream' : 'fileReaderSync';
      const into = how === 'stream' ? res.parallelStreams : res.parallelReads;
      const c0 = chromiumCpuMs();
      into.push(await p2.evaluate((how) => new Promise((resolve, reject) => {
        const f = document.querySelector('#pick').files[0];
        const n = Math.min(8, Math.max(1, 2 * (navigator.hardwareConcurrency || 1)));
        const per = Math.ceil(f.size / n);
        const t0 = performance.now();
        let left = n;
        for (let i = 0; i < n; i++) {
          const w = new Worker('./read_bench_worker.js');
          w.onmessage = () => {
            w.terminate();
            if (--left === 0) resolve({ n, ms: performance.now() - t0 });
          };
          w.onerror = (e) => reject(new Error(e.message));
          w.postMessage({ file: f, start: i * per, end: Math.min(f.size, (i + 1) * per), how });
        }
      }), how));
      into.at(-1).cpu = chromiumCpuMs() - c0;
    }
    await c2.close();
  } finally {
    await s2.close();
  }
} catch (e) {
  if (!(e instanceof OpenOnlyDone)) throw e;
} finally {
  await browser.close();
  await server.close();
}
/** One open's steps, each the median over the runs (a step missing in a run is left out). */
function printBreakdown(k) {
  const rs = res.breakdown[k] ?? [];
  if (!rs.length) return;
  const steps = Object.keys(rs[0].steps).map((n) => {
    const xs = rs.map((r) => r.steps[n]).filter((v) => v != null);
    return `${n} ${xs.length ? fmt(median(xs), 1) : '—'}`;
  });
  console.log(`  ${k}: ${steps.join(' · ')}; ${rs.at(-1).reads}`);
}

if (OPEN_ONLY) {
  const gz = gzipSizes();
  console.log(`\nopens only — median of ${RUNS} run(s), ms from \`change\` to the next frame after the count is on screen`);
  for (const k of ONLY) console.log(`  ${k} (${counts[k]} tensors): ${ms(median(res[k]))} (runs: ${res[k].map((x) => fmt(x)).join(', ')})`);
  if (res.filter.length) console.log(`  filter ${counts.keys} keys, per keystroke (median / max): ${ms(median(res.filter))} / ${ms(Math.max(...res.filter))}`);
  if (res.regex.length) console.log(`  regex filter ${counts.keys} keys (the worker's answer), per keystroke (median / max): ${ms(median(res.regex))} / ${ms(Math.max(...res.regex))}`);
  console.log(`  shipped wasm + JS, gzip -9: ${(gz.total / 1024).toFixed(0)} KiB (${gz.rows.join(', ')})`);
  console.log(`breakdown, each step's median of ${RUNS} run(s) (ms after \`change\`):`);
  for (const k of ONLY) printBreakdown(k);
  process.exit(0);
}

// native anchors, same machine, same run
const big = tensorBytes(files.big);
const keys = tensorBytes(files.keys);
if (big.n !== counts.big || keys.n !== counts.keys) throw new Error(`native inspect counted ${big.n} / ${keys.n} tensors`);
const natStatsBigCpu = [];
const nat = {
  openSmall: native(['inspect', files.small, '--json']),
  openBig: native(['inspect', files.big, '--json']),
  openKeys: native(['inspect', files.keys, '--json']),
  statsBig: native(['stats', files.big, '--json'], natStatsBigCpu),
  statsKeys: native(['stats', files.keys, '--json']),
};
const gz = gzipSizes();
const pageBigMBs = big.bytes / 1e6 / median(res.statsBig);
const natBigMBs = big.bytes / 1e6 / nat.statsBig;
const pageKeysTps = keys.n / median(res.statsKeys);
const natKeysTps = keys.n / nat.statsKeys;
const mb = (b) => `${(b / 1e6).toFixed(b < 1e7 ? 1 : 0)} MB`;

console.log(`\npage benchmark${SMOKE ? ' (smoke: tiny inputs, 1 run)' : ''} — median of ${RUNS} run(s); native: ${BIN}`);
console.log('| what | page | native CLI | page / native |');
console.log('|---|---|---|---|');
console.log(`| ${mb(fs.statSync(files.small).size)}, ${counts.small}-tensor .pth → tree | ${ms(median(res.small))} | ${ms(nat.openSmall * 1e3)} (inspect --json) | |`);
console.log(`| ${mb(fs.statSync(files.big).size)}, ${counts.big}-tensor .pth → tree | ${ms(median(res.big))} | ${ms(nat.openBig * 1e3)} | |`);
console.log(`| ${counts.keys}-key checkpoint → tree | ${ms(median(res.keys))} | ${ms(nat.openKeys * 1e3)} | |`);
console.log(`| filter ${counts.keys} keys, per keystroke (median / max) | ${ms(median(res.filter))} / ${ms(Math.max(...res.filter))} | | |`);
console.log(`| regex filter ${counts.keys} keys (matched in the worker), per keystroke (median / max) | ${ms(median(res.regex))} / ${ms(Math.max(...res.regex))} | | |`);
console.log(`| shipped wasm + JS, gzip -9 | ${(gz.total / 1024).toFixed(0)} KiB (${gz.rows.join(', ')}) | | |`);
console.log(`| whole-file statistics, ${counts.big} tensors of ${mb(big.bytes / counts.big)} | ${fmt(pageBigMBs)} MB/s | ${fmt(natBigMBs)} MB/s | ${fmt(pageBigMBs / natBigMBs, 2)}× |`);
console.log(`| whole-file statistics, ${counts.keys} small tensors | ${fmt(pageKeysTps)} tensors/s | ${fmt(natKeysTps)} tensors/s | ${fmt(pageKeysTps / natKeysTps, 2)}× |`);
console.log(`| offline after the first visit | ${res.offline} | | |`);
const mib = (b) => `${(b / 2 ** 20).toFixed(1)} MiB`;
console.log(`| worker wasm memory, ${mb(fs.statSync(files.big).size)} file: after open / after statistics (largest worker) | ${mib(res.memory.open)} / ${mib(res.memory.stats)} | | |`);
const fileMB = fs.statSync(files.big).size / 1e6;
const readRate = (k) => fmt(fileMB / (median(res.reads.map((r) => r[k])) / 1e3));
console.log(`| raw reads of the ${mb(fs.statSync(files.big).size)} file in a worker (16 MiB pieces) | FileReaderSync ${readRate('fileReaderSync')} MB/s · Blob.arrayBuffer() ${readRate('arrayBuffer')} MB/s · Blob.stream() ${readRate('stream')} MB/s | | |`);
const par = res.parallelReads;
const parMBs = fileMB / (median(par.map((r) => r.ms)) / 1e3);
console.log(`| raw FileReaderSync reads of the same file by ${par[0].n} workers at once (the statistics pool's ceiling) | ${fmt(parMBs)} MB/s | ${fmt(natBigMBs)} MB/s (native statistics) | ${fmt(parMBs / natBigMBs, 2)}× |`);
const parS = res.parallelStreams;
const parSMBs = fileMB / (median(parS.map((r) => r.ms)) / 1e3);
console.log(`| raw Blob.stream() reads of the same file by ${parS[0].n} workers at once | ${fmt(parSMBs)} MB/s | ${fmt(natBigMBs)} MB/s (native statistics) | ${fmt(parSMBs / natBigMBs, 2)}× |`);
// CPU time per MB of the file's tensors, all of Chromium's processes (browser, renderer, its
// workers) against the native CLI's: on a machine of few cores the statistics pool is bound by
// CPU, and 2 cores × 1,000 ms / (CPU ms per MB) is the most any schedule of it could reach
const perMB = (ms) => ms / (big.bytes / 1e6);
const cpuStats = perMB(median(res.statsBigCpu));
const cpuReads = perMB(median(par.map((r) => r.cpu)));
const cpuStreams = perMB(median(parS.map((r) => r.cpu)));
const cpuNative = perMB(median(natStatsBigCpu));
const cores = os.cpus().length;
console.log(`| CPU per MB of tensors (all Chromium processes; ${cores} cores): statistics / raw pool reads (FileReaderSync, stream()) | ${fmt(cpuStats, 2)} ms / ${fmt(cpuReads, 2)} ms, ${fmt(cpuStreams, 2)} ms (CPU-bound ceiling ${fmt(cores * 1e3 / cpuStats)} MB/s) | ${fmt(cpuNative, 2)} ms (native statistics) | ${fmt(cpuStats / cpuNative, 1)}× the CPU |`);
console.log(`\nbreakdown, each step's median of ${RUNS} run(s) (ms after \`change\`):`);
for (const k of ['small', 'big', 'keys']) printBreakdown(k);
if (SMOKE) {
  // the smoke run checks that every row was measured (numbers, not a time limit)
  const vals = [median(res.small), median(res.big), median(res.keys), median(res.filter), median(res.regex), pageBigMBs, pageKeysTps, natBigMBs];
  if (vals.some((v) => !Number.isFinite(v) || v <= 0)) throw new Error(`a row was not measured: ${vals}`);
  console.log('page bench smoke: ok');
}
