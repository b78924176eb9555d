// End-to-end test of the Run view in headless Chromium: six checkpoints of a small training run
// (made here by real torch: .pth, a Lightning-like .ckpt and .safetensors, each carrying its
// step, with a planted anomaly) are dropped on the page in the Run view; the heatmap and the
// flags appear, clicking a flag selects that layer and step, moving a checkpoint recomputes, and
// the CSV export equals `weightscope trend --csv` on the same files.
//
// Run by `scripts/dev.sh test` after `cargo test` (the CLI's debug build) and
// `trunk build --release` (node --test tests/e2e/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { ARTIFACTS, PY, ROOT, T, testid, suite, openPage, checkClean } from './harness.mjs';

const S = suite({ tmpPrefix: 'weightscope-run-', needPy: true });
const PAGE = { acceptDownloads: true, viewport: { width: 1300, height: 1000 }, network: true };
const BIN = process.env.WEIGHTSCOPE_BIN ?? path.join(
  process.env.CARGO_TARGET_DIR ?? path.join(ROOT, 'target'), 'debug', 'weightscope');

// Six steps; l1 (weight and bias) ×10 at index 3 behind a LayerNorm; a NaN in l3.weight from 4.
const MAKE_RUN = `
import sys, torch
from safetensors.torch import save_file
d = sys.argv[1]
torch.manual_seed(0)
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = torch.nn.Linear(8, 16); self.norm = torch.nn.LayerNorm(16)
        self.l2 = torch.nn.Linear(16, 16); self.l3 = torch.nn.Linear(16, 2)
        with torch.no_grad():
            self.norm.weight.normal_(1.0, 0.1); self.norm.bias.normal_(0.0, 0.1)
    def forward(self, x):
        return self.l3(torch.relu(self.l2(self.norm(self.l1(x)))))
net = Net()
opt = torch.optim.SGD(net.parameters(), lr=0.02)
names = []
for i in range(6):
    x, y = torch.randn(32, 8), torch.randn(32, 2)
    opt.zero_grad(); torch.nn.functional.mse_loss(net(x), y).backward(); opt.step()
    if i == 3:
        with torch.no_grad():
            net.l1.weight.mul_(10); net.l1.bias.mul_(10)
    sd = {k: v.detach().clone() for k, v in net.state_dict().items()}
    if i >= 4:
        sd["l3.weight"][0, 1] = float("nan")
    step = 50 * (i + 1)
    # names do not sort by step: the step inside each file orders them
    base = f"{d}/ck-{'fedcba'[i]}"
    if i % 3 == 0:
        torch.save({"global_step": step, "state_dict": sd, "epoch": 0}, base + ".ckpt"); names.append(base + ".ckpt")
    elif i % 3 == 1:
        torch.save({"step": step, "model": sd}, base + ".pth"); names.append(base + ".pth")
    else:
        save_file(sd, base + ".safetensors", metadata={"step": str(step)}); names.append(base + ".safetensors")
print("\\n".join(names))
`;

/** Fire a real drop of `files` (paths) on the page's drop zone. */
async function dropFiles(page, files) {
  const payload = files.map((f) => [fs.readFileSync(f).toString('base64'), path.basename(f)]);
  const dt = await page.evaluateHandle((items) => {
    const dt = new DataTransfer();
    for (const [b, n] of items) dt.items.add(new File([Uint8Array.from(atob(b), (c) => c.charCodeAt(0))], n));
    return dt;
  }, payload);
  const zone = testid(page, 'drop-zone');
  await zone.dispatchEvent('dragenter', { dataTransfer: dt });
  await zone.dispatchEvent('dragover', { dataTransfer: dt });
  await zone.dispatchEvent('drop', { dataTransfer: dt });
}

const attrs = (loc, names) => loc.evaluateAll((els, ns) => els.map((e) => ns.map((n) => e.getAttribute(n))), names);

test('Run view: six dropped checkpoints → heatmap, flags, selection, reorder, CSV equal to the CLI', { timeout: 180_000 }, async () => {
  assert.ok(fs.existsSync(BIN), `${BIN} missing: run cargo build`);
  const files = execFileSync(PY, ['-c', MAKE_RUN, S.tmp], { encoding: 'utf8' }).trim().split('\n');
  assert.equal(files.length, 6);
  const names = files.map((f) => path.basename(f));
  // the reference: the CLI on the same files, named as the page names them (base names)
  const cli = (args) => execFileSync(BIN, ['trend', ...args, ...names], { cwd: S.tmp, encoding: 'utf8' });
  const want = JSON.parse(cli(['--json']));
  const wantFlags = want.flags.map((f) => [f.key, String(f.step_index), f.kind]);
  assert.deepEqual(wantFlags.map((f) => f.join(' ')).sort(),
    ['l1.bias 3 jump', 'l1.weight 3 jump', 'l3.weight 4 nonfinite']);

  const { context, page, log } = await openPage(S, PAGE);
  try {
    await testid(page, 'run-mode').click();
    await testid(page, 'run-panel').waitFor({ timeout: T });
    await dropFiles(page, [...files].reverse());
    const done = testid(page, 'run-done');
    await done.waitFor({ timeout: 60_000 });
    // order by the steps inside the files
    const items = await attrs(testid(page, 'run-item'), ['data-name', 'data-step']);
    assert.deepEqual(items, want.steps.map((s) => [s.file, String(s.step)]));
    assert.equal(await done.getAttribute('data-tensors'), String(want.tensors.length));
    assert.equal(await done.getAttribute('data-flags'), '3');
    // the heatmap: one cell per tensor and step, flagged cells marked
    const cells = testid(page, 'run-cell');
    assert.equal(await cells.count(), want.tensors.length * 6);
    const flagged = (await attrs(page.locator('[data-testid="run-cell"].flagged'), ['data-key', 'data-step', 'data-flags']));
    assert.deepEqual(flagged.map((c) => c.join(' ')).sort(), wantFlags.map((f) => f.join(' ')).sort());
    // the metric select drives the cells' values
    await testid(page, 'run-metric').selectOption('std');
    const l2w = want.tensors.find((t) => t.key === 'l2.weight');
    const std2 = await page.locator('[data-testid="run-cell"][data-key="l2.weight"][data-step="2"]').getAttribute('data-value');
    assert.equal(Number(std2), l2w.std[2]);
    // the flags list; clicking one selects its layer and step
    const flags = await attrs(testid(page, 'run-flag'), ['data-key', 'data-step', 'data-kind']);
    assert.deepEqual(flags, wantFlags);
    await page.locator('[data-testid="run-flag"][data-kind="nonfinite"]').click();
    const sel = testid(page, 'run-selected');
    await sel.waitFor({ timeout: T });
    assert.deepEqual([await sel.getAttribute('data-key'), await sel.getAttribute('data-step')], ['l3.weight', '4']);
    assert.equal(await page.locator('[data-testid="run-cell"].selected').getAttribute('data-key'), 'l3.weight');
    await page.locator('[data-testid="run-chart"] polyline[data-key="l3.weight"]').waitFor({ timeout: T });
    await page.screenshot({ path: path.join(ARTIFACTS, 'run-view.png'), fullPage: true });
    // CSV export equals the CLI's --csv byte for byte
    const [dl] = await Promise.all([page.waitForEvent('download', { timeout: T }), testid(page, 'run-export-csv').click()]);
    const csv = fs.readFileSync(await dl.path(), 'utf8');
    assert.equal(dl.suggestedFilename(), 'trend.csv');
    assert.equal(csv, cli(['--csv']));
    const [dj] = await Promise.all([page.waitForEvent('download', { timeout: T }), testid(page, 'run-export-json').click()]);
    assert.deepEqual(JSON.parse(fs.readFileSync(await dj.path(), 'utf8')), want);
    // moving the last checkpoint up recomputes the pairs that changed; the last pair is now
    // (step index 4 after 5): ‖w4 − w5‖/‖w5‖ = rel_change[5] · ‖w4‖/‖w5‖ of the CLI's table
    await testid(page, 'run-metric').selectOption('rel_change');
    await testid(page, 'run-up').last().click();
    await page.locator(`[data-testid="run-item"]:nth-child(5)[data-name="${want.steps[5].file}"]`).waitFor({ timeout: T });
    await done.waitFor({ timeout: 60_000 });
    const a = want.tensors.find((t) => t.key === 'l2.weight');
    const got = Number(await page.locator('[data-testid="run-cell"][data-key="l2.weight"][data-step="5"]').getAttribute('data-value'));
    const expect = (a.rel_change[5] * a.l2[4]) / a.l2[5];
    assert.ok(Math.abs(got - expect) <= 1e-9 * expect, `reordered rel_change ${got} vs ${expect}`);
    checkClean(S, log);
  } finally {
    await context.close();
  }
});
