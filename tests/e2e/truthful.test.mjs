// End-to-end tests that what the page says matches what it does: the "Compute all" button states
// the bytes the statistics progress bar counts (a second pass included); a diff row opens the A/B
// view where the user looks, and "Inspect A's tensor" goes to the Inspector; with an edited file
// nothing in the summary header or the overview is cut or hidden behind the action bar at
// 1280×800, 1920×1080 and 420 px, light and dark; the value viewer shows a cast entry's cast
// values and a transplanted entry's B values (as downloaded); the A/B view uses the B chosen in
// Compare when several are open. Expected values come from real torch.
//
// Run by `scripts/dev.sh test` after `trunk build --release` (node --test tests/e2e/).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ARTIFACTS, T, testid, suite, openPage, python, openB, runCompare } from './harness.mjs';

const S = suite({ tmpPrefix: 'weightscope-truthful-', needPy: true });
const PAGE = { viewport: { width: 1280, height: 800 } };

let X;
before(() => {
  // a.pth: w (float32, digits a float16 cast changes), v; b1 / b2: other w's; big.pth: one
  // tensor above the 16 Mi values read in one pass
  X = JSON.parse(python(String.raw`
import json, sys, torch
d = sys.argv[1]
torch.manual_seed(11)
w = torch.randn(6, 10) * 3.3333
torch.save({"w": w, "v": torch.randn(8)}, f"{d}/a.pth")
b1 = {"w": torch.randn(6, 10) * 10 + 40, "v": torch.randn(8)}
b2 = {"w": torch.randn(6, 10) - 40, "v": torch.randn(8)}
torch.save(b1, f"{d}/b1.pth")
torch.save(b2, f"{d}/b2.pth")
big = {"big": torch.randn(24 << 20), "small": torch.randn(1000)}
torch.save(big, f"{d}/big.pth")
exact = 16 << 20
read = sum(t.numel() * t.element_size() * (2 if t.numel() > exact else 1) for t in big.values())
rows = lambda t: [float(x) for x in t[:, :8].reshape(-1).tolist()]
print(json.dumps({
  "w_f16": rows(w.to(torch.float16).double()),
  "w_f32": rows(w.double()),
  "b1_w": rows(b1["w"].double()),
  "b1_min": float(b1["w"].min()), "b2_max": float(b2["w"].max()),
  "big_read": read,
}))`, S.tmp));
});

/** The viewer's cells (row-major, up to 6 × 8) as numbers. */
const cells = (page) => page.locator('[data-testid="value-viewer"] [data-testid="vv-cell"]')
  .evaluateAll((cs) => cs.map((c) => Number(c.dataset.value)));

/** Resolves once the viewer shows its 6 × 8 cells, the first one `first`. */
const cellsFrom = (page, first) => page.waitForFunction((want) => {
  const cs = [...document.querySelectorAll('[data-testid="value-viewer"] [data-testid="vv-cell"]')];
  return cs.length === 48 && Number(cs[0].dataset.value) === want;
}, first, { timeout: T });

async function openA(page, name) {
  await testid(page, 'file-input').setInputFiles(path.join(S.tmp, name));
  // the file is open (the Edit, Compare and Merge tabs are built when first shown)
  await page.locator('[data-testid="tree"]').waitFor({ timeout: T });
}

/** Resolves once the statistics progress bar is shown with its total ("done / total"). */
const barCounting = (page) => page.waitForFunction(() => {
  const t = document.querySelector('[data-testid="progress"] .muted')?.textContent ?? '';
  return t.includes(' / ') && !t.endsWith(' / 0 B');
}, null, { timeout: T });

/** "1.23 MiB"-style total shown by the progress bar ("done / total"). */
const barTotal = async (page) => (await testid(page, 'progress').locator('.muted').textContent()).split(' / ')[1].trim();

test('progress totals: the Compute all button states the bytes the progress bar counts, second pass included', { timeout: 180_000 }, async () => {
  const { context, page } = await openPage(S, PAGE);
  try {
    await testid(page, 'file-input').setInputFiles(path.join(S.tmp, 'big.pth'));
    // the automatic run: its bar counts every planned pass
    await barCounting(page);
    const first = await barTotal(page);
    const total = await testid(page, 'progress').getAttribute('data-total');
    await testid(page, 'cancel').click();
    const button = testid(page, 'compute-all');
    await button.waitFor({ timeout: T });
    const text = await button.textContent();
    assert.ok(text.includes(first), `button "${text}" vs the bar's total ${first}`);
    // both are the planned reads: the big tensor twice (torch's sizes)
    assert.equal(Number(total), X.big_read);
    assert.equal(Number(await button.getAttribute('data-bytes')), X.big_read);
    // the next run counts to what the button said
    await button.click();
    await barCounting(page);
    assert.equal(await barTotal(page), first);
    await testid(page, 'cancel').click();
  } finally {
    await context.close();
  }
});

test('compare: a diff row opens the A/B view in sight; "Inspect A\'s tensor" shows it in the Inspector', { timeout: 120_000 }, async () => {
  const { context, page } = await openPage(S, PAGE);
  try {
    await openA(page, 'a.pth');
    await openB(page, path.join(S.tmp, 'b1.pth'));
    await runCompare(page);
    const open = page.locator('[data-testid="diff-changed"] li[data-key="w"] [data-testid="diff-open"]');
    await open.click();
    const ab = page.locator('[data-testid="ab-view"][data-key="w"]');
    await ab.waitFor({ timeout: T });
    await page.locator('[data-testid="ab-hist"][data-a]').waitFor({ timeout: T });
    // it is where the user looks: inside the window, and the row says it is open
    const box = await ab.boundingBox();
    assert.ok(box.y >= 0 && box.y < 800, `A/B view at ${box.y}px`);
    assert.equal(await open.getAttribute('aria-pressed'), 'true');
    assert.equal(await page.getByRole('tab', { name: 'Compare' }).getAttribute('aria-selected'), 'true');
    // one click to the Inspector, on that tensor
    await testid(page, 'ab-inspect').click();
    assert.equal(await page.getByRole('tab', { name: 'Inspector' }).getAttribute('aria-selected'), 'true');
    await page.locator('[data-testid="inspector-path"]', { hasText: 'w' }).waitFor({ timeout: T });
    assert.equal(await page.locator('[data-testid="tree-row"][data-path="w"]').getAttribute('aria-selected'), 'true');
  } finally {
    await context.close();
  }
});

test('value viewer: a cast entry shows the cast values, a transplanted one B\'s; the A/B view uses the chosen B', { timeout: 180_000 }, async () => {
  const { context, page } = await openPage(S, PAGE);
  try {
    await openA(page, 'a.pth');
    // as stored
    await page.locator('[data-testid="tree-row"][data-path="w"]').click();
    await cellsFrom(page, X.w_f32[0]);
    assert.deepEqual(await cells(page), X.w_f32);
    // cast to float16: the viewer shows what the download holds (torch's .to(float16))
    await page.getByRole('tab', { name: 'Edit' }).click();
    await testid(page, 'op-cast').selectOption('float16');
    await testid(page, 'op-cast-apply').click();
    await page.locator('[data-testid="change-count"][data-count="1"]').waitFor({ timeout: T });
    await page.getByRole('tab', { name: 'Inspector' }).click();
    await page.locator('[data-testid="tree-row"][data-path="w"]').click();
    await cellsFrom(page, X.w_f16[0]);
    assert.deepEqual(await cells(page), X.w_f16);
    await testid(page, 'undo').click();
    await page.locator('[data-testid="change-count"][data-count="0"]').waitFor({ timeout: T });

    // two B files: the second opened is chosen; choosing the first makes the A/B view use it
    await openB(page, path.join(S.tmp, 'b1.pth'));
    await openB(page, path.join(S.tmp, 'b2.pth'));
    await testid(page, 'compare-b-choose').selectOption({ label: '#1 b1.pth' });
    await page.locator('[data-testid="compare-b-name"]', { hasText: 'b1.pth' }).waitFor({ timeout: T });
    await runCompare(page);
    await page.locator('[data-testid="diff-changed"] li[data-key="w"] [data-testid="diff-open"]').click();
    const hist = page.locator('[data-testid="ab-hist"][data-a]');
    await hist.waitFor({ timeout: T });
    // b1's w lies around +40, b2's around −40: the common range starts at A's or b1's minimum
    const lo = Number(await hist.getAttribute('data-lo'));
    assert.ok(lo > X.b2_max, `A/B range starts at ${lo}: b2 (max ${X.b2_max}) was used, not the chosen b1`);

    // transplant w from the chosen B: the viewer shows B's values
    await page.locator('[data-testid="diff-changed"] li[data-key="w"] input[type=checkbox]').check();
    await testid(page, 'transplant-selected').click();
    await page.locator('[data-testid="transplant-result"][data-done="true"][data-applied="1"]').waitFor({ timeout: T });
    await page.getByRole('tab', { name: 'Inspector' }).click();
    await page.locator('[data-testid="tree-row"][data-path="w"]').click();
    await cellsFrom(page, X.b1_w[0]);
    assert.deepEqual(await cells(page), X.b1_w);
    await page.screenshot({ path: path.join(ARTIFACTS, 'truthful-transplant-values.png') });
  } finally {
    await context.close();
  }
});

for (const scheme of ['light', 'dark']) {
  for (const [w, h] of [[1280, 800], [1920, 1080], [420, 900]]) {
    test(`layout ${w}×${h} ${scheme}: with an edited file nothing in the header or overview is cut or behind the action bar`, { timeout: 120_000 }, async () => {
      const { context, page } = await openPage(S, { viewport: { width: w, height: h }, colorScheme: scheme });
      try {
        await openA(page, 'a.pth');
        await page.getByRole('tab', { name: 'Edit' }).click();
        await testid(page, 'op-cast').selectOption('float16');
        await testid(page, 'op-cast-apply').click();
        await page.locator('[data-testid="change-count"][data-count="1"]').waitFor({ timeout: T });
        await testid(page, 'safety-output').waitFor({ timeout: T });
        await page.getByRole('tab', { name: 'Inspector' }).click();
        await page.waitForTimeout(150);
        await page.screenshot({ path: path.join(ARTIFACTS, `truthful-edited-${w}x${h}-${scheme}.png`) });
        // every cell of the header shows its whole text on one line
        const cut = await page.evaluate(() => [...document.querySelectorAll('.card .facts dd')]
          .filter((dd) => dd.offsetParent !== null)
          .map((dd) => {
            const lh = parseFloat(getComputedStyle(dd).lineHeight) || 18;
            return { id: dd.dataset.testid, clipped: dd.scrollWidth > dd.clientWidth + 1, lines: Math.round(dd.getBoundingClientRect().height / lh) };
          })
          .filter((x) => x.clipped || (x.id === 'safety-output' && x.lines > 1)));
        assert.deepEqual(cut, []);
        // the overview's hint line is not behind the action bar: in view without scrolling on the
        // wide windows, and at the end of the page on a narrow one
        const scroll = () => page.evaluate(() => {
          const c = document.querySelector('.content');
          return c.scrollHeight - c.clientHeight;
        });
        if (w >= 1280) assert.ok(await scroll() <= 1, `the page scrolls by ${await scroll()}px`);
        await page.evaluate(() => { const c = document.querySelector('.content'); c.scrollTop = c.scrollHeight; });
        const [hint, bar] = [await page.locator('.overview-hover').boundingBox(), await testid(page, 'action-bar').boundingBox()];
        assert.ok(hint.y + hint.height <= bar.y + 1, `hint ends at ${hint.y + hint.height}px, the action bar starts at ${bar.y}px`);
        const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert.ok(over <= 0, `the page is ${over}px wider than the window`);
      } finally {
        await context.close();
      }
    });
  }
}
