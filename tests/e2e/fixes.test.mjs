// End-to-end tests of defects a new user met, fixed: Compare / transplant (messages next to the
// action, mismatched rows explained, a batch applies what is valid and lists what was refused,
// a pattern transplant replaces A's tensors through the prefix map, journal lines in plain
// words, the map hint, a map suggested when nothing matched, a row opens its tensor, B's name,
// the chart in dark mode), the overview (zeros on their own line on the log axis, collapse),
// layout at 1280×800 and below 900 px, and the Run view's colour scale and step labels.
// Expected numbers come from torch (tests/e2e/gen/make_power.py, the fixtures' diff files).
//
// Run by `scripts/dev.sh test` after `trunk build --release` (node --test tests/e2e/).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { ARTIFACTS, PY, ROOT, T, testid, suite, fixture, openPage, python, openB, runCompare, downloadAs, DP_FC_FROM_B } from './harness.mjs';

const S = suite({ tmpPrefix: 'weightscope-fixes-', needPy: true, needFixtures: true });
const PAGE = { acceptDownloads: true, viewport: { width: 1280, height: 800 } };

let X;
before(() => {
  execFileSync(PY, [path.join(ROOT, 'tests/e2e/gen/make_power.py'), S.tmp], { stdio: 'pipe' });
  X = JSON.parse(fs.readFileSync(path.join(S.tmp, 'power.expect.json'), 'utf8'));
});

const close = (got, want, what, rel = 1e-6) =>
  assert.ok(Math.abs(got - want) <= rel * Math.abs(want) + 1e-12, `${what}: ${got} vs torch ${want}`);

/** Open fixture `a` as A and fixture `b` as B in the Compare tab. */
async function openAB(page, a, b) {
  await testid(page, 'file-input').setInputFiles(fixture(a));
  // the file is open (the Compare tab is built when first shown: openB shows it)
  await page.locator('[data-testid="tree"]').waitFor({ timeout: T });
  await openB(page, fixture(b));
}

/** Vertical distance between the bottom of `a` and the top of `b` (px). */
async function below(a, b) {
  const [x, y] = [await a.boundingBox(), await b.boundingBox()];
  return y.y - (x.y + x.height);
}

test('compare: messages next to the action, B named, map hint, suggestion when nothing matches, rows open tensors', { timeout: 120_000 }, async () => {
  const { context, page } = await openPage(S, PAGE);
  try {
    await openAB(page, 'diff/dp_a.pth', 'diff/dp_b.pth');
    assert.equal(await testid(page, 'compare-b-name').textContent(), 'dp_b.pth');
    assert.match(await testid(page, 'compare-map').getAttribute('placeholder'), /^=module\./);
    // a bad map: the message sits right under the Compare button
    await testid(page, 'compare-map').fill('nonsense');
    await testid(page, 'compare-run').click();
    const err = testid(page, 'compare-error');
    await err.waitFor({ timeout: T });
    const gap = await below(testid(page, 'compare-run'), err);
    assert.ok(gap >= 0 && gap < 40, `compare error ${gap}px under the button`);
    // no map: no name matches (A has module.*), a map is suggested; using it compares
    await runCompare(page, '');
    const sug = testid(page, 'compare-suggest');
    await sug.waitFor({ timeout: T });
    assert.equal(await sug.getAttribute('data-map'), 'module.=');
    await testid(page, 'compare-suggest-use').click();
    await page.locator('[data-testid="diff-identical"][data-count="14"]').waitFor({ timeout: T });
    assert.equal(await testid(page, 'compare-map').inputValue(), 'module.=');
    // a row's name opens A's tensor
    await page.locator('[data-testid="diff-changed"] li[data-key="module.fc.weight"] [data-testid="diff-open"]').click();
    await testid(page, 'ab-inspect').click();
    await page.locator('[data-testid="inspector-path"]').filter({ hasText: 'module' }).waitFor({ timeout: T });
    assert.match(await testid(page, 'inspector-path').textContent(), /fc.*weight/);
  } finally {
    await context.close();
  }
});

test('transplant: a batch applies the valid rows and lists the refused; a pattern maps B names to A; plain journal', { timeout: 120_000 }, async () => {
  const { context, page } = await openPage(S, PAGE);
  try {
    // partial_a / partial_b: changed and mismatched rows
    await openAB(page, 'diff/partial_a.pth', 'diff/partial_b.pth');
    await runCompare(page, '');
    const mm = page.locator('[data-testid="diff-mismatched"] li[data-key="head.weight"]');
    assert.match(await mm.textContent(), /refuses/);
    await page.locator('[data-testid="diff-changed"] li[data-key="stem.bias"] input[type=checkbox]').check();
    await mm.locator('input[type=checkbox]').check();
    await testid(page, 'transplant-selected').click();
    const res = page.locator('[data-testid="transplant-result"][data-done="true"]');
    await res.waitFor({ timeout: T });
    assert.equal(await res.getAttribute('data-applied'), '1');
    assert.equal(await res.getAttribute('data-refused'), '1');
    assert.match(await res.textContent(), /head\.weight: A is .* B is /);
    const gap = await below(testid(page, 'transplant-selected'), res);
    assert.ok(gap < 40, `result ${gap}px from the button`);
    await page.getByRole('tab', { name: 'Edit' }).click();
    const lines = await page.locator('[data-testid="journal"] li').allTextContents();
    assert.ok(lines.some((l) => /transplant 1 tensor from B as stem\.bias/.test(l)), lines.join(' | '));
    assert.ok(lines.every((l) => !l.includes('${')), lines.join(' | '));
    await context.close();

    // dp_a (module.*) and dp_b (plain names): a pattern on B's names, no replacement, map module.=
    const { context: c2, page: p2 } = await openPage(S, PAGE);
    try {
      await openAB(p2, 'diff/dp_a.pth', 'diff/dp_b.pth');
      await testid(p2, 'compare-map').fill('module.=');
      await testid(p2, 'transplant-pattern').fill(String.raw`^fc\.`);
      await testid(p2, 'transplant-apply').click();
      await p2.locator('[data-testid="transplant-count"][data-count="1"]').waitFor({ timeout: T });
      assert.equal(await testid(p2, 'transplant-error').count(), 0);
      // a refused pattern: the message is next to it
      await testid(p2, 'transplant-pattern').fill(String.raw`^fc\.weight$`);
      await testid(p2, 'transplant-replacement').fill('module.conv1.weight');
      await testid(p2, 'transplant-apply').click();
      const terr = testid(p2, 'transplant-error');
      await terr.waitFor({ timeout: T });
      const gap2 = await below(testid(p2, 'transplant-apply'), terr);
      assert.ok(gap2 > -60 && gap2 < 60, `pattern error ${gap2}px from the button`);
      await p2.getByRole('tab', { name: 'Edit' }).click();
      const jl = await p2.locator('[data-testid="journal"] li[data-state="applied"]').allTextContents();
      assert.equal(jl.length, 1);
      assert.match(jl[0], /transplant 2 tensors from B as module\.fc\.weight, module\.fc\.bias/);
      const out = await downloadAs(p2, 'torch', S.tmp);
      const check = python(DP_FC_FROM_B, fixture('diff/dp_a.pth'), fixture('diff/dp_b.pth'), out);
      assert.equal(check.trim(), 'ok');
    } finally {
      await c2.close();
    }
  } finally {
    await context.close().catch(() => {});
  }
});

test('compare chart follows dark mode', { timeout: 120_000 }, async () => {
  const { context, page } = await openPage(S, { ...PAGE, colorScheme: 'dark' });
  try {
    await openAB(page, 'diff/train_a.pth', 'diff/train_b.pth');
    await runCompare(page, '');
    const bg = await testid(page, 'diff-chart').evaluate((c) => Array.from(c.getContext('2d').getImageData(2, 2, 1, 1).data));
    assert.ok(bg[0] + bg[1] + bg[2] < 200, `chart background ${bg} in dark mode`);
    await page.screenshot({ path: path.join(ARTIFACTS, 'fixes-compare-dark.png') });
  } finally {
    await context.close();
  }
});

test('overview: zeros on their own line on the log axis; the chart collapses', { timeout: 120_000 }, async () => {
  const { context, page } = await openPage(S, PAGE);
  try {
    await testid(page, 'file-input').setInputFiles(path.join(S.tmp, 'power.pth'));
    const n = Object.keys(X.tensors).length;
    const ov = testid(page, 'overview');
    await page.locator(`[data-testid="overview"][data-computed="${n}"]`).waitFor({ timeout: T });
    await page.locator('.overview-head .toggle input').check();
    await page.waitForFunction(() => document.querySelector('[data-testid="overview"]').dataset.baseline !== '0', null, { timeout: T });
    const stds = Object.values(X.stds);
    const nonzero = stds.filter((v) => v !== 0 && v !== null);
    assert.equal(Number(await ov.getAttribute('data-baseline')), stds.filter((v) => v === 0).length);
    close(Number(await ov.getAttribute('data-ylo')), Math.log10(Math.min(...nonzero)), 'log axis bottom');
    close(Number(await ov.getAttribute('data-yhi')), Math.log10(Math.max(...nonzero)), 'log axis top');
    assert.match(await testid(page, 'overview-zero-note').textContent(), /2 at 0/);
    await page.screenshot({ path: path.join(ARTIFACTS, 'fixes-overview-log.png') });
    const before = (await page.locator('.overview-pane').boundingBox()).height;
    await testid(page, 'overview-collapse').click();
    assert.equal(await ov.isVisible(), false);
    const after = (await page.locator('.overview-pane').boundingBox()).height;
    assert.ok(after < 60 && after < before, `overview ${before}px → ${after}px`);
    await testid(page, 'overview-collapse').click();
    assert.equal(await ov.isVisible(), true);
  } finally {
    await context.close();
  }
});

test('layout: histogram without scrolling at 1280×800, panes stack below 900 px, nothing clipped at 800 px', { timeout: 120_000 }, async () => {
  const { context, page } = await openPage(S, PAGE);
  try {
    await testid(page, 'file-input').setInputFiles(path.join(S.tmp, 'power.pth'));
    await page.locator('[data-testid="tree-row"][data-path="dec.big"]').click();
    const hist = page.locator('[data-testid="histogram"][data-drawn]');
    await hist.waitFor({ timeout: T });
    const h = await hist.boundingBox();
    const body = await page.locator('.tab-body').boundingBox();
    assert.ok(h.y + h.height <= 800 && h.y + h.height <= body.y + body.height + 1,
      `histogram bottom at ${h.y + h.height}px (window 800, tab body ends ${body.y + body.height})`);
    // below 900 px the panes stack
    await page.setViewportSize({ width: 860, height: 800 });
    const [tree, side] = [await page.locator('.tree-pane').boundingBox(), await page.locator('.side-pane').boundingBox()];
    assert.ok(side.y >= tree.y + tree.height - 1, `side pane at ${side.y}, tree ends ${tree.y + tree.height}`);
    // a dtype and its count stay on one line, even at 420 px
    await page.setViewportSize({ width: 420, height: 800 });
    const lines = await page.locator('.dtypes').evaluate((dd) => {
      const text = dd.firstChild;
      const out = [];
      let at = 0;
      for (const item of dd.textContent.split(' · ')) {
        const r = document.createRange();
        r.setStart(text, at);
        r.setEnd(text, at + item.length);
        const tops = new Set([...r.getClientRects()].map((x) => Math.round(x.top)));
        out.push([item, tops.size]);
        at += item.length + 3;
      }
      return out;
    });
    assert.ok(lines.length > 1 && lines.every(([, n]) => n === 1), JSON.stringify(lines));
    // nothing clipped at 800 px: the safety line and the edit buttons fit their boxes
    await page.setViewportSize({ width: 800, height: 800 });
    const clipped = await page.evaluate(() => [...document.querySelectorAll('[data-testid="safety"], .card, .side-pane button, .topbar')]
      .filter((e) => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1).map((e) => e.className || e.dataset.testid));
    assert.deepEqual(clipped, []);
    const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(over <= 0, `page ${over}px wider than the window`);
  } finally {
    await context.close();
  }
});

test('Run view: the heatmap has a colour scale, the line chart step labels', { timeout: 180_000 }, async () => {
  const files = python(String.raw`
import sys, torch
d = sys.argv[1]
torch.manual_seed(1)
names = []
w = torch.randn(4, 4)
for i, step in enumerate([10, 20, 30]):
    w = w * 1.1
    p = f"{d}/run{i}.pth"
    torch.save({"step": step, "model": {"l.weight": w.clone(), "l.bias": torch.randn(4)}}, p)
    names.append(p)
print("\n".join(names))`, S.tmp).trim().split('\n');
  const { context, page } = await openPage(S, PAGE);
  try {
    await testid(page, 'run-mode').click();
    await testid(page, 'run-input').setInputFiles(files);
    await testid(page, 'run-done').waitFor({ timeout: 60_000 });
    const legend = page.locator('[data-testid="run-panel"] [data-testid="colour-legend"]');
    await legend.waitFor({ timeout: T });
    assert.match(await legend.textContent(), /row min.*row max/);
    await page.locator('[data-testid="run-cell"][data-key="l.weight"]').first().click();
    await testid(page, 'run-chart').waitFor({ timeout: T });
    const labels = await page.locator('[data-testid="run-chart"] .run-step-label').allTextContents();
    assert.deepEqual(labels, ['10', '20', '30']);
    await page.screenshot({ path: path.join(ARTIFACTS, 'fixes-run.png'), fullPage: true });
  } finally {
    await context.close();
  }
});
