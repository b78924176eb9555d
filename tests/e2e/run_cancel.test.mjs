// End-to-end test of Cancel in the Run view: two 256 MiB checkpoints (made here by torch) are
// picked in the Run view; while their steps are being computed (progress between 0 and the total)
// Cancel terminates the run's workers at once — inside a step: the page's worker count drops back
// to the reader alone, no result appears afterwards — and Resume computes the run to the end.
//
// Run by `scripts/dev.sh test` after `trunk build --release` (node --test tests/e2e/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { ARTIFACTS, PY, T, testid, suite, openPage } from './harness.mjs';

const S = suite({ tmpPrefix: 'weightscope-run-cancel-', needPy: true });
const PAGE = { viewport: { width: 1300, height: 1000 } };

const MAKE = String.raw`
import sys, torch
d = sys.argv[1]
g = torch.Generator().manual_seed(3)
w = {f"layer{i}.weight": torch.randn(1024, 1024, generator=g) for i in range(64)}
for step in (1, 2):
    torch.save({"global_step": step, "model": {k: v * step for k, v in w.items()}}, f"{d}/step{step}.pth")
print(f"{d}/step1.pth\n{d}/step2.pth")
`;

test('Run view: Cancel stops the steps being computed at once; Resume finishes the run', { timeout: 240_000 }, async () => {
  const files = execFileSync(PY, ['-c', MAKE, S.tmp], { encoding: 'utf8' }).trim().split('\n');
  const { context, page, log } = await openPage(S, PAGE);
  try {
    const readerOnly = page.workers().length;
    await testid(page, 'run-mode').click();
    await testid(page, 'run-panel').waitFor({ timeout: T });
    await testid(page, 'run-input').setInputFiles(files);
    // inside the steps: some bytes done, not all
    await page.waitForFunction(() => {
      const p = document.querySelector('[data-testid="run-progress"]');
      return p && Number(p.value) > 0 && Number(p.value) < 0.9 * Number(p.max);
    }, null, { timeout: 60_000, polling: 50 });
    assert.ok(page.workers().length > readerOnly, 'the run has workers of its own');
    await testid(page, 'run-cancel').click();
    await testid(page, 'run-resume').waitFor({ timeout: T });
    assert.equal(await testid(page, 'run-progress').count(), 0);
    for (let i = 0; i < 50 && page.workers().length !== readerOnly; i++) await page.waitForTimeout(100);
    assert.equal(page.workers().length, readerOnly, 'the run\'s workers are terminated, not left to finish their step');
    await page.waitForTimeout(1500);
    assert.equal(await testid(page, 'run-done').count(), 0, 'no result arrives after Cancel');
    await page.screenshot({ path: path.join(ARTIFACTS, 'run-cancelled.png'), fullPage: true });

    await testid(page, 'run-resume').click();
    await testid(page, 'run-done').waitFor({ timeout: 120_000 });
    assert.equal(await testid(page, 'run-done').getAttribute('data-tensors'), '64');
    assert.deepEqual(log.problems, []);
  } finally {
    await context.close();
  }
});
