// End-to-end tests of the power-user views in headless Chromium: the tensor table (sort, filter,
// select, 100,000 rows virtualized), the statistics export (CSV and JSON equal to
// `weightscope stats --json` on the same file), the value viewer (pages and 2-D planes of a 4-D
// tensor), the Inspector's heatmap (colour scale, hover readout, aggregation in words) and what
// the statistics cover (complex parts, finite values). Every expected number comes from torch
// (tests/e2e/gen/make_power.py), or from the CLI, whose stats are tested against torch.
//
// Run by `scripts/dev.sh test` after `cargo test` (the CLI's debug build) and
// `trunk build --release` (node --test tests/e2e/).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { ARTIFACTS, PY, ROOT, T, testid, suite, openPage, checkClean, openB, runCompare } from './harness.mjs';

const S = suite({ tmpPrefix: 'weightscope-power-', needPy: true });
const PAGE = { acceptDownloads: true, viewport: { width: 1280, height: 800 }, network: true };
const BIN = process.env.WEIGHTSCOPE_BIN ?? path.join(
  process.env.CARGO_TARGET_DIR ?? path.join(ROOT, 'target'), 'debug', 'weightscope');

let X; // torch's expectations
before(() => {
  execFileSync(PY, [path.join(ROOT, 'tests/e2e/gen/make_power.py'), S.tmp], { stdio: 'pipe' });
  X = JSON.parse(fs.readFileSync(path.join(S.tmp, 'power.expect.json'), 'utf8'));
});

const close = (got, want, what, rel = 1e-6) =>
  assert.ok(Math.abs(got - want) <= rel * Math.abs(want) + 1e-12, `${what}: ${got} vs torch ${want}`);

async function openFile(page, name) {
  await testid(page, 'file-input').setInputFiles(path.join(S.tmp, name));
  await page.locator(`[data-testid="file-name"]`).filter({ hasText: name }).waitFor({ timeout: T });
}

async function select(page, key) {
  await page.locator(`[data-testid="tree-row"][data-path="${key}"]`).click();
  await page.locator('[data-testid="inspector-path"]').filter({ hasText: key }).waitFor({ timeout: T });
}

const cellValues = (page) => page.locator('[data-testid="vv-cell"]').evaluateAll((cs) => cs.map((c) => Number(c.dataset.value)));

async function waitCells(page, n) {
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid="vv-cell"]').length === n, n, { timeout: T });
}

test('tensor table: columns, sort, filter, statistics once computed, click selects', { timeout: 120_000 }, async () => {
  const { context, page, log } = await openPage(S, PAGE);
  try {
    await openFile(page, 'power.pth');
    await testid(page, 'view-table').click();
    const table = testid(page, 'tensor-table');
    await table.waitFor({ timeout: T });
    assert.equal(Number(await table.getAttribute('data-rows')), Object.keys(X.tensors).length);
    // statistics arrive (the file is small: computed on open)
    await page.locator(`[data-testid="overview"][data-computed="${Object.keys(X.tensors).length}"]`).waitFor({ timeout: T });
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="table-row"] [data-col="mean"]')].every((c) => c.dataset.value !== ''), null, { timeout: T });
    const rows = await page.locator('[data-testid="table-row"]').evaluateAll((rs) => rs.map((r) => ({
      path: r.dataset.path,
      dtype: r.querySelector('[data-col="dtype"]').textContent,
      elements: Number(r.querySelector('[data-col="elements"]').dataset.value),
      mean: Number(r.querySelector('[data-col="mean"]').dataset.value),
    })));
    for (const r of rows) {
      const want = X.tensors[r.path];
      assert.ok(want, `unexpected row ${r.path}`);
      assert.equal(r.elements, want.numel, `${r.path} elements`);
      assert.equal(r.dtype, want.dtype, `${r.path} dtype`);
      close(r.mean, X.means[r.path], `${r.path} mean`);
    }
    // sort by elements, largest first
    await page.locator('[data-testid="table-sort"][data-col="elements"]').click();
    const order = await page.locator('[data-testid="table-row"]').evaluateAll((rs) => rs.map((r) => r.dataset.path));
    const want = Object.entries(X.tensors).sort((a, b) => b[1].numel - a[1].numel).map(([k]) => k);
    assert.deepEqual(order, want);
    assert.equal(await page.locator('[data-testid="table-sort"][data-col="elements"]').getAttribute('aria-sort'), 'descending');
    await page.locator('[data-testid="table-sort"][data-col="elements"]').click();
    const asc = await page.locator('[data-testid="table-row"]').evaluateAll((rs) => rs.map((r) => r.dataset.path));
    assert.deepEqual(asc, [...want].reverse());
    // filter
    await testid(page, 'table-filter').fill('enc.');
    await page.locator('[data-testid="tensor-table"][data-rows="3"]').waitFor({ timeout: T });
    // a click selects: the Inspector shows it
    await page.locator('[data-testid="table-row"][data-path="enc.nd"]').click();
    await page.locator('[data-testid="inspector-path"]').filter({ hasText: 'enc.nd' }).waitFor({ timeout: T });
    await page.screenshot({ path: path.join(ARTIFACTS, 'power-table.png') });
    checkClean(S, log);
  } finally {
    await context.close();
  }
});

test('tensor table: 100,000 tensors stay virtualized, sort and scroll to the end', { timeout: 180_000 }, async () => {
  const { context, page } = await openPage(S, PAGE);
  try {
    await openFile(page, 'many.safetensors');
    await testid(page, 'view-table').click();
    const table = testid(page, 'tensor-table');
    await page.locator('[data-testid="tensor-table"][data-rows="100000"]').waitFor({ timeout: 60_000 });
    const inDom = await page.locator('[data-testid="table-row"]').count();
    assert.ok(inDom > 5 && inDom < 120, `${inDom} rows in the DOM`);
    await page.locator('[data-testid="table-sort"][data-col="name"]').click();
    await page.locator('[data-testid="table-sort"][data-col="name"]').click(); // descending
    await page.locator('[data-testid="table-row"]').first().waitFor({ timeout: T });
    assert.equal(await page.locator('[data-testid="table-row"]').first().getAttribute('data-path'), 'layer.099999.w');
    await table.evaluate((el) => { el.scrollTop = el.scrollHeight; el.dispatchEvent(new Event('scroll')); });
    await page.locator('[data-testid="table-row"][data-path="layer.000000.w"]').waitFor({ timeout: T });
    assert.ok(await page.locator('[data-testid="table-row"]').count() < 120);
    await testid(page, 'table-filter').fill('layer.01234');
    await page.locator('[data-testid="tensor-table"][data-rows="10"]').waitFor({ timeout: T });
  } finally {
    await context.close();
  }
});

test('statistics export: JSON and CSV hold the numbers of `weightscope stats --json`', { timeout: 120_000 }, async () => {
  assert.ok(fs.existsSync(BIN), `${BIN} missing: run cargo build (the CLI)`);
  const cli = JSON.parse(execFileSync(BIN, ['stats', '--json', path.join(S.tmp, 'power.pth')], { encoding: 'utf8' }));
  const { context, page } = await openPage(S, PAGE);
  try {
    await openFile(page, 'power.pth');
    const [dl] = await Promise.all([page.waitForEvent('download', { timeout: T }), testid(page, 'stats-export-json').click()]);
    assert.equal(dl.suggestedFilename(), 'power.stats.json');
    const got = JSON.parse(fs.readFileSync(await dl.path(), 'utf8'));
    assert.deepEqual(got, cli);
    const [dl2] = await Promise.all([page.waitForEvent('download', { timeout: T }), testid(page, 'stats-export-csv').click()]);
    assert.equal(dl2.suggestedFilename(), 'power.stats.csv');
    const lines = fs.readFileSync(await dl2.path(), 'utf8').trim().split('\n');
    const head = lines[0].split(',');
    assert.equal(lines.length - 1, cli.tensors.length);
    cli.tensors.forEach((t, k) => {
      const c = lines[k + 1].split(',');
      const col = (n) => c[head.indexOf(n)];
      assert.equal(col('path'), t.path.join('/'));
      assert.equal(col('dtype'), t.dtype);
      assert.equal(col('shape'), t.shape.join('x'));
      for (const n of ['count', 'min', 'max', 'mean', 'std', 'l2', 'absmax', 'zeros', 'nan', 'inf']) {
        if (t[n] === null) assert.equal(col(n), '', `${t.path} ${n}`);
        else assert.equal(Number(col(n)), t[n], `${t.path} ${n}`);
      }
      if (t.quantiles) assert.equal(Number(col('p50')), t.quantiles.p50);
    });
  } finally {
    await context.close();
  }
});

test('value viewer: pages of a 1-D tensor and any 2-D plane of a 4-D tensor equal torch', { timeout: 120_000 }, async () => {
  const { context, page, log } = await openPage(S, PAGE);
  try {
    await openFile(page, 'power.pth');
    await select(page, 'enc.nd');
    // default plane: the last two axes at index 0 of the others
    await waitCells(page, 30);
    assert.deepEqual(await cellValues(page), X.plane_default);
    // rows along axis 1, columns along axis 3, axis 0 at 2 and axis 2 at 3
    await testid(page, 'vv-row-axis').selectOption('1');
    await page.locator('[data-testid="vv-index"][data-axis="0"]').fill('2');
    await page.locator('[data-testid="vv-index"][data-axis="0"]').dispatchEvent('change');
    await page.locator('[data-testid="vv-index"][data-axis="2"]').fill('3');
    await page.locator('[data-testid="vv-index"][data-axis="2"]').dispatchEvent('change');
    await waitCells(page, 24);
    await page.waitForFunction((want) => {
      const got = [...document.querySelectorAll('[data-testid="vv-cell"]')].map((c) => Number(c.dataset.value));
      return got.length === want.length && got.every((v, i) => v === want[i]);
    }, X.plane_1_3_at_2_x_3, { timeout: T });
    // a transposed plane: rows along axis 3, columns along axis 0; axis 1 at 1, axis 2 at 4
    await testid(page, 'vv-col-axis').selectOption('0');
    await testid(page, 'vv-row-axis').selectOption('3');
    await page.locator('[data-testid="vv-index"][data-axis="1"]').fill('1');
    await page.locator('[data-testid="vv-index"][data-axis="1"]').dispatchEvent('change');
    await page.locator('[data-testid="vv-index"][data-axis="2"]').fill('4');
    await page.locator('[data-testid="vv-index"][data-axis="2"]').dispatchEvent('change');
    await page.waitForFunction((want) => {
      const got = [...document.querySelectorAll('[data-testid="vv-cell"]')].map((c) => Number(c.dataset.value));
      return got.length === want.length && got.every((v, i) => v === want[i]);
    }, X.plane_3_0_at_1_4, { timeout: T });
    await page.screenshot({ path: path.join(ARTIFACTS, 'power-values-plane.png') });

    // a 1-D tensor: the second page
    await select(page, 'enc.flat');
    await waitCells(page, 64);
    await testid(page, 'vv-next').click();
    await page.waitForFunction(() => document.querySelector('[data-testid="vv-cell"]')?.dataset.index === '64', null, { timeout: T });
    assert.deepEqual(await cellValues(page), X.flat_page2);
    assert.match(await testid(page, 'vv-range').textContent(), /elements 64–127 of 200/);

    // a big matrix: go to row 16, one page of columns to the right
    await select(page, 'dec.big');
    await waitCells(page, 128);
    await testid(page, 'vv-goto').fill('16');
    await testid(page, 'vv-goto').dispatchEvent('change');
    await testid(page, 'vv-right').click();
    await page.waitForFunction(() => {
      const c = document.querySelector('[data-testid="vv-cell"]');
      return c?.dataset.row === '16' && c?.dataset.col === '8';
    }, null, { timeout: T });
    assert.deepEqual(await cellValues(page), X.big_rows_16_32);
    checkClean(S, log);
  } finally {
    await context.close();
  }
});

test('heatmap: sized to the panel, colour scale, hover readout equal to torch, aggregation in words', { timeout: 120_000 }, async () => {
  const { context, page } = await openPage(S, PAGE);
  try {
    await openFile(page, 'power.pth');
    // one cell per value
    await select(page, 'dec.small');
    const canvas = testid(page, 'heatmap');
    await page.locator('[data-testid="heatmap"][data-rows="24"][data-cols="40"]').waitFor({ timeout: T });
    const box = await canvas.boundingBox();
    const panel = await testid(page, 'inspector').boundingBox();
    assert.ok(box.width >= panel.width * 0.8, `heatmap ${box.width}px wide in a ${panel.width}px panel`);
    assert.match(await testid(page, 'heatmap-words').textContent(), /one value/);
    const legend = page.locator('.heatmap-view [data-testid="colour-legend"]');
    assert.equal(await legend.getAttribute('data-lo'), '0');
    assert.ok(Number(await legend.getAttribute('data-hi')) > 0);
    for (const [r, c] of [[0, 0], [5, 17], [23, 39]]) {
      await canvas.hover({ position: { x: (c + 0.5) * box.width / 40, y: (r + 0.5) * box.height / 24 } });
      const out = testid(page, 'heatmap-readout');
      await page.waitForFunction(([r, c]) => document.querySelector('[data-testid="heatmap-readout"]').dataset.span === `${r},${r + 1},${c},${c + 1}`, [r, c], { timeout: T });
      close(Number(await out.getAttribute('data-value')), Math.abs(X.small2d[r * 40 + c]), `|x| at ${r},${c}`, 1e-6);
      assert.match(await out.textContent(), new RegExp(`row ${r} · column ${c} · mean \\|x\\| = `));
    }
    // blocks: the readout's block equals torch's mean |x| of those rows and columns
    await select(page, 'dec.big');
    await page.locator('[data-testid="heatmap"][data-cols]').filter({ has: page.locator('xpath=self::*[@data-rows!="24"]') }).waitFor({ timeout: T }).catch(() => {});
    await page.waitForFunction(() => document.querySelector('[data-testid="heatmap"]')?.dataset.cols !== '40', null, { timeout: T });
    assert.match(await testid(page, 'heatmap-words').textContent(), /mean \|x\| of a block of up to \d+ × \d+ values/);
    const b2 = await canvas.boundingBox();
    await canvas.hover({ position: { x: b2.width * 0.7, y: b2.height * 0.4 } });
    await page.waitForFunction(() => document.querySelector('[data-testid="heatmap-readout"]').dataset.span, null, { timeout: T });
    const [r0, r1, c0, c1] = (await testid(page, 'heatmap-readout').getAttribute('data-span')).split(',').map(Number);
    const want = Number(execFileSync(PY, ['-c', `
import torch, sys
sd = torch.load(sys.argv[1], weights_only=True)
print(repr(float(sd["dec.big"][${r0}:${r1}, ${c0}:${c1}].double().abs().mean())))`, path.join(S.tmp, 'power.pth')], { encoding: 'utf8' }));
    close(Number(await testid(page, 'heatmap-readout').getAttribute('data-value')), want, 'block mean |x|', 1e-6);
    await page.screenshot({ path: path.join(ARTIFACTS, 'power-heatmap.png') });
  } finally {
    await context.close();
  }
});

test('statistics say what they cover: complex parts, finite values only', { timeout: 120_000 }, async () => {
  const { context, page } = await openPage(S, PAGE);
  try {
    await openFile(page, 'power.pth');
    await select(page, 'enc.cplx');
    const parts = testid(page, 'stats-complex');
    await parts.waitFor({ timeout: T });
    for (const part of ['real', 'imag']) {
      for (const k of ['min', 'max', 'mean', 'std']) {
        const v = Number(await parts.locator(`tr[data-part="${part}"] [data-stat="${k}"]`).getAttribute('data-value'));
        close(v, X.cplx[part][k], `${part} ${k}`);
      }
    }
    assert.match(await testid(page, 'stats').locator('..').textContent(), /magnitude \|z\|/);
    close(Number(await page.locator('[data-stat="mean"]').first().getAttribute('data-value')), X.cplx.abs_mean, '|z| mean');

    await select(page, 'dec.bad');
    const note = testid(page, 'stats-finite-note');
    await note.waitFor({ timeout: T });
    assert.equal(Number(await note.getAttribute('data-finite')), X.bad.finite);
    assert.match(await note.textContent(), /3 of 40 values are NaN or ±inf: .*mean, std.* cover the 37 finite values only/);
    close(Number(await page.locator('[data-stat="mean"]').first().getAttribute('data-value')), X.bad.mean, 'finite mean');
  } finally {
    await context.close();
  }
});

test('A/B view: both histograms on one axis and the difference histogram equal numpy', { timeout: 120_000 }, async () => {
  const { context, page } = await openPage(S, PAGE);
  try {
    await openFile(page, 'power.pth');
    await openB(page, path.join(S.tmp, 'power_b.pth'));
    await runCompare(page);
    await page.locator('[data-testid="diff-changed"] li[data-key="dec.small"] [data-testid="diff-open"]').click();
    const hist = page.locator('[data-testid="ab-hist"][data-a]');
    await hist.waitFor({ timeout: T });
    assert.equal(await testid(page, 'ab-view').getAttribute('data-key'), 'dec.small');
    assert.deepEqual(JSON.parse(await hist.getAttribute('data-a')), X.ab.a);
    assert.deepEqual(JSON.parse(await hist.getAttribute('data-b')), X.ab.b);
    close(Number(await hist.getAttribute('data-lo')), X.ab.lo, 'common range low');
    close(Number(await hist.getAttribute('data-hi')), X.ab.hi, 'common range high');
    const diff = page.locator('[data-testid="ab-diff"][data-counts]');
    await diff.waitFor({ timeout: T });
    assert.deepEqual(JSON.parse(await diff.getAttribute('data-counts')), X.ab.diff);
    close(Number(await diff.getAttribute('data-lo')), X.ab.diff_lo, 'a − b low');
    await page.screenshot({ path: path.join(ARTIFACTS, 'power-ab.png'), fullPage: true });
  } finally {
    await context.close();
  }
});
