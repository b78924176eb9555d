// Screenshots of each main state — Inspector, Table, Edit, Compare (with the A/B view), Run — at
// 1280×800, 1920×1080 and 420 px wide, light and dark, written to tests/artifacts/screens/ for a
// person to look at; each state is also checked for a page wider than the window (something
// clipped or pushed off-screen).
//
// Run by `scripts/dev.sh test` after `trunk build --release` (node --test tests/e2e/).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { ARTIFACTS, PY, ROOT, T, testid, suite, openPage, openB, runCompare } from './harness.mjs';

const S = suite({ tmpPrefix: 'weightscope-screens-', needPy: true });
const OUT = path.join(ARTIFACTS, 'screens');
const SIZES = [[1280, 800], [1920, 1080], [420, 900]];
let RUN = [];

before(() => {
  execFileSync(PY, [path.join(ROOT, 'tests/e2e/gen/make_power.py'), S.tmp], { stdio: 'pipe' });
  RUN = execFileSync(PY, ['-c', String.raw`
import sys, torch
d = sys.argv[1]
torch.manual_seed(3)
w, names = torch.randn(16, 16), []
for i in range(5):
    w = w * 1.05 + 0.01 * torch.randn(16, 16)
    sd = {"enc.weight": w.clone(), "enc.bias": torch.randn(16), "head.weight": torch.randn(4, 16)}
    if i == 3:
        sd["head.weight"] = sd["head.weight"] * 20
    p = f"{d}/step{i}.pth"
    torch.save({"step": 100 * (i + 1), "model": sd}, p)
    names.append(p)
print("\n".join(names))`, S.tmp], { encoding: 'utf8' }).trim().split('\n');
  fs.mkdirSync(OUT, { recursive: true });
});

async function shot(page, name) {
  await page.waitForTimeout(150);
  await page.screenshot({ path: path.join(OUT, `${name}.png`) });
  const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(over <= 0, `${name}: the page is ${over}px wider than the window`);
}

for (const scheme of ['light', 'dark']) {
  for (const [w, h] of SIZES) {
    test(`screens ${w}×${h} ${scheme}`, { timeout: 180_000 }, async () => {
      const { context, page } = await openPage(S, { viewport: { width: w, height: h }, colorScheme: scheme });
      const tag = `${w}x${h}-${scheme}`;
      try {
        await testid(page, 'file-input').setInputFiles(path.join(S.tmp, 'power.pth'));
        await page.locator('[data-testid="tree-row"][data-path="dec.big"]').click();
        await page.locator('[data-testid="histogram"][data-drawn]').waitFor({ timeout: T });
        await page.locator('[data-testid="heatmap"][data-rows]').waitFor({ timeout: T });
        await shot(page, `inspector-${tag}`);
        await testid(page, 'view-table').click();
        await testid(page, 'tensor-table').waitFor({ timeout: T });
        await shot(page, `table-${tag}`);
        await testid(page, 'view-tree').click();
        await page.getByRole('tab', { name: 'Edit' }).click();
        await shot(page, `edit-${tag}`);
        await openB(page, path.join(S.tmp, 'power_b.pth'));
        await runCompare(page);
        await page.locator('[data-testid="diff-changed"] li[data-key="dec.small"] [data-testid="diff-open"]').click();
        await page.locator('[data-testid="ab-hist"][data-a]').waitFor({ timeout: T });
        await shot(page, `compare-${tag}`);
        await testid(page, 'run-mode').click();
        await testid(page, 'run-input').setInputFiles(RUN);
        await testid(page, 'run-done').waitFor({ timeout: 60_000 });
        await page.locator('[data-testid="run-flag"]').first().click().catch(() => {});
        await shot(page, `run-${tag}`);
      } finally {
        await context.close();
      }
    });
  }
}
