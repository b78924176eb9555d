// End-to-end test of the Compare panel in headless Chromium: open A, pick B in the Compare panel, diff
// them through a prefix map, compare the lists and numbers with the torch-computed expectations
// of the fixture script (tests/fixtures/gen/diff/*.diff.json), filter by status, see the chart,
// transplant selected keys from B into A, download, and verify the result with real torch.
//
// Run by `scripts/dev.sh test` after `trunk build --release` (node --test tests/e2e/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ARTIFACTS, T, testid, suite, fixture, openPage, python, openB, runCompare, downloadAs, DP_FC_FROM_B } from './harness.mjs';


const S = suite({ tmpPrefix: 'weightscope-compare-', needPy: true });
/** The browser context every test of this file opens the page in. */
const PAGE = { acceptDownloads: true, viewport: { width: 1100, height: 900 } };

const expectation = (name) => JSON.parse(fs.readFileSync(fixture(name), 'utf8'));


/** Open A in the page and B in the Compare panel, then run the diff through `map`. */
async function compare(page, a, b, map) {
  await testid(page, 'file-input').setInputFiles(fixture(a));
  // the file is open (the Compare tab is built when first shown: openB shows it)
  await page.locator('[data-testid="tree"]').waitFor({ timeout: T });
  await openB(page, fixture(b));
  await runCompare(page, map);
}

const keysOf = (page, id) => page.locator(`[data-testid="${id}"] li`).evaluateAll((ls) => ls.map((l) => l.dataset.key));

/** Parse "max|Δ| 1.234e-3 · rel L2 … · cos …" of each changed row. */
async function changedRows(page) {
  const rows = await page.locator('[data-testid="diff-changed"] li').evaluateAll((ls) => ls.map((l) => [l.dataset.key, l.textContent]));
  return rows.map(([key, t]) => {
    const num = (label) => {
      const m = t.match(new RegExp(`${label} (\\S+)`));
      return m && m[1] !== '–' ? Number(m[1]) : null;
    };
    return { key, max_abs: num('max\\|Δ\\|'), rel_l2: num('rel L2'), cosine: num('cos') };
  });
}

const close = (got, want, what) => {
  if (want === null) return assert.equal(got, null, what);
  assert.ok(got !== null && Math.abs(got - want) <= 1e-3 * Math.abs(want) + 1e-12, `${what}: ${got} vs torch ${want}`);
};

test('diff lists and numbers match torch; filter; chart in file order', { timeout: 120_000 }, async () => {
  const { context, page, log } = await openPage(S, PAGE);
  try {
    // two models with partly matching keys
    const want = expectation('diff/partial.diff.json');
    await compare(page, 'diff/partial_a.pth', 'diff/partial_b.pth', '');
    assert.deepEqual(await keysOf(page, 'diff-only-a'), want.only_a);
    assert.deepEqual(await keysOf(page, 'diff-only-b'), want.only_b);
    assert.deepEqual((await keysOf(page, 'diff-mismatched')).sort(), want.mismatched.map((m) => m.key).sort());
    assert.equal(Number(await testid(page, 'diff-identical').getAttribute('data-count')), want.identical);
    const rows = await changedRows(page);
    assert.deepEqual(rows.map((r) => r.key).sort(), want.changed.map((c) => c.key).sort());
    for (const c of want.changed) {
      const r = rows.find((x) => x.key === c.key);
      close(r.max_abs, c.max_abs, `${c.key} max_abs`);
      close(r.rel_l2, c.rel_l2, `${c.key} rel_l2`);
      close(r.cosine, c.cosine, `${c.key} cosine`);
    }
    // the filter shows one status at a time
    await testid(page, 'diff-filter').selectOption('only_b');
    assert.equal(await testid(page, 'diff-only-b').isVisible(), true);
    assert.equal(await testid(page, 'diff-changed').isVisible(), false);
    assert.equal(await testid(page, 'diff-only-a').isVisible(), false);
    await testid(page, 'diff-filter').selectOption('all');

    // two training checkpoints: the chart has one bar per changed tensor, in A's file order
    const train = expectation('diff/train.diff.json');
    await compare(page, 'diff/train_a.pth', 'diff/train_b.pth', '');
    const changedKeys = (await changedRows(page)).map((r) => r.key);
    const fileOrder = train.changed.map((c) => c.key);
    assert.deepEqual([...changedKeys].sort(), [...fileOrder].sort());
    const inA = python(String.raw`
import sys, torch
print("\n".join(torch.load(sys.argv[1], weights_only=True).keys()))`, fixture('diff/train_a.pth')).trim().split('\n');
    assert.deepEqual(changedKeys, inA.filter((k) => changedKeys.includes(k)), 'changed rows are in A file order');
    const chart = testid(page, 'diff-chart');
    assert.equal(Number(await chart.getAttribute('data-bars')), train.changed.length);
    const painted = await chart.evaluate((c) => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let blue = 0;
      // the light theme's accent (charts.rs palette)
      for (let i = 0; i < d.length; i += 4) if (d[i] === 59 && d[i + 1] === 91 && d[i + 2] === 219) blue++;
      return blue;
    });
    assert.ok(painted > 100, `the chart drew ${painted} bar pixels`);
    await page.screenshot({ path: path.join(ARTIFACTS, 'compare.png'), fullPage: true });
    assert.deepEqual(log.problems, []);
  } finally {
    await context.close();
  }
});


test('transplant selected keys from B into A through a prefix map, undo, download; torch verifies', { timeout: 120_000 }, async () => {
  const want = expectation('diff/dp.diff.json');
  const { context, page, log } = await openPage(S, PAGE);
  try {
    await compare(page, 'diff/dp_a.pth', 'diff/dp_b.pth', 'module.=');
    assert.deepEqual(await keysOf(page, 'diff-only-a'), want.only_a);
    assert.deepEqual(await keysOf(page, 'diff-only-b'), want.only_b);
    const changed = await keysOf(page, 'diff-changed');
    assert.deepEqual(changed, want.changed.map((c) => c.key));
    assert.equal(Number(await testid(page, 'diff-identical').getAttribute('data-count')), want.identical);

    // select the changed rows (A's module.fc.*, B's fc.*) and transplant them
    for (const k of changed) await page.locator(`[data-testid="diff-changed"] li[data-key="${k}"] input[type=checkbox]`).check();
    await testid(page, 'transplant-selected').click();
    await page.locator('[data-testid="transplant-count"][data-count="1"]').waitFor({ timeout: T });
    assert.equal(await testid(page, 'compare-error').count(), 0);
    // the journal is in the Edit tab (built when first shown)
    await page.getByRole('tab', { name: 'Edit' }).click();
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="journal"] li[data-state="applied"]')].some((l) => /transplant 2 tensors/.test(l.textContent)), null, { timeout: T });
    await page.getByRole('tab', { name: 'Compare' }).click();

    // a transplant with a shape mismatch is refused with a message
    await testid(page, 'transplant-pattern').fill(String.raw`^fc\.weight$`);
    await testid(page, 'transplant-replacement').fill('module.conv1.weight');
    await testid(page, 'transplant-apply').click();
    await testid(page, 'transplant-error').waitFor({ timeout: T });
    assert.match(await testid(page, 'transplant-error').textContent(), /shape mismatch/);
    assert.equal(await page.locator('[data-testid="journal"] li[data-state="applied"]').count(), 1);

    // undo and redo the transplant in the Edit panel
    await page.getByRole('tab', { name: 'Edit' }).click();
    await testid(page, 'undo').click();
    await page.locator('[data-testid="journal"] li[data-state="undone"]').waitFor({ timeout: T });
    await testid(page, 'redo').click();
    await page.locator('[data-testid="journal"] li[data-state="applied"]').waitFor({ timeout: T });

    const out = await downloadAs(page, 'torch', S.tmp);
    assert.equal(path.basename(out), 'dp_a.edited.pth');
    const check = python(DP_FC_FROM_B, fixture('diff/dp_a.pth'), fixture('diff/dp_b.pth'), out);
    assert.equal(check.trim(), 'ok');
    assert.deepEqual(log.problems, []);
  } finally {
    await context.close();
  }
});
