// End-to-end test of the Merge tab in headless Chromium: open a torch checkpoint (FIRST), add a
// safetensors one, preview the relative change per tensor, merge (linear 0.3 / 0.7) and download
// as .pth and as safetensors shards; real torch computes the expected merge from the inputs and
// checks the downloads bit for bit. Also: a refusal (different shapes) is shown next to the
// buttons and nothing is downloaded; Cancel stops a long merge (nothing downloaded) and the next
// merge works; merging two 256 MiB inputs leaves the worker's wasm memory at most 64 MiB. All
// through the Blob download (the File System Access API removed, as in browsers without it).
//
// The inputs are made by torch (GEN, merge_common.mjs); the expected values are torch's float64
// computation of the formula rounded with `.to(FIRST's dtype)` (VERIFY), never our output.
//
// Run by `scripts/dev.sh test` after `trunk build --release` (node --test tests/e2e/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ARTIFACTS, T, testid, suite, openPage } from './harness.mjs';
import { GEN, VERIFY, python, openFirst, addInputs } from './merge_common.mjs';

const S = suite({ tmpPrefix: 'weightscope-merge-', needPy: true });
// this suite tests the Blob download: the File System Access pickers are absent (as in Firefox
// and Safari); merge_disk.test.mjs tests the output streamed to disk
const NO_FSA = 'window.showSaveFilePicker = undefined; window.showDirectoryPicker = undefined;';
const PAGE = { acceptDownloads: true, viewport: { width: 1200, height: 1000 }, initScript: NO_FSA };

/** The page's worker count once it is `want` (or after 5 s). */
async function workersAfter(page, want) {
  for (let i = 0; i < 50 && page.workers().length !== want; i++) await page.waitForTimeout(100);
  return page.workers().length;
}

test('merge in the page: preview, download .pth and safetensors shards; torch verifies; a refusal', { timeout: 240_000 }, async () => {
  assert.match(python(GEN, S.tmp), /^ok/);
  const a = path.join(S.tmp, 'a.pth');
  const b = path.join(S.tmp, 'b.safetensors');
  const { context, page, log } = await openPage(S, PAGE);
  try {
    await openFirst(page, a);
    await addInputs(page, [b], 2);
    const tensors = await page.locator('[data-testid="merge-inputs"] li').evaluateAll((ls) => ls.map((l) => l.dataset.tensors));
    assert.deepEqual(tensors, ['5', '5']);

    // linear 0.3 / 0.7: preview first
    await testid(page, 'merge-method').selectOption('linear');
    await testid(page, 'merge-weight-0').fill('0.3');
    await testid(page, 'merge-weight-0').dispatchEvent('change');
    await testid(page, 'merge-weight-1').fill('0.7');
    await testid(page, 'merge-weight-1').dispatchEvent('change');
    await testid(page, 'merge-preview').click();
    await testid(page, 'merge-summary').waitFor({ timeout: T });
    assert.equal(await testid(page, 'merge-summary').getAttribute('data-merged'), '4');
    assert.equal(await testid(page, 'merge-summary').getAttribute('data-copied'), '1');
    assert.equal(await testid(page, 'merge-chart').getAttribute('data-points'), '4');
    const summary = await testid(page, 'merge-summary').textContent();

    // one .pth file
    const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), testid(page, 'merge-run').click()]);
    assert.equal(dl.suggestedFilename(), 'a.merged.pth');
    const out = path.join(S.tmp, 'out.pth');
    await dl.saveAs(out);
    await testid(page, 'merge-done').waitFor({ timeout: T });
    assert.equal(await testid(page, 'merge-done').getAttribute('data-on-disk'), 'false');
    const v = python(VERIFY, a, b, '0.3,0.7', out);
    assert.match(v, /^ok 5 /);
    // the preview's largest change is torch's largest relative change
    const rel = JSON.parse(v.slice(v.indexOf('{')));
    const [topKey, topVal] = Object.entries(rel).sort((x, y) => y[1] - x[1])[0];
    const m = summary.match(/largest change: (\S+) \(([^)]+)\)/);
    assert.ok(m, summary);
    assert.equal(m[1], topKey);
    assert.ok(Math.abs(Number(m[2]) - topVal) <= 1e-3 * topVal, `${m[2]} vs torch ${topVal}`);
    await page.screenshot({ path: path.join(ARTIFACTS, 'merge.png'), fullPage: true });

    // safetensors shards of at most 200 kB: one link per shard plus the index
    await testid(page, 'merge-format').selectOption('safetensors');
    await testid(page, 'merge-shard-size').fill('200kB');
    await testid(page, 'merge-run').click();
    await page.locator('[data-testid="merge-done"][data-files="3"]').waitFor({ timeout: T });
    const links = testid(page, 'merge-file');
    const names = await links.evaluateAll((ls) => ls.map((l) => l.getAttribute('download')));
    assert.deepEqual(names, ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json']);
    const saved = [];
    for (let i = 0; i < names.length; i++) {
      const [d] = await Promise.all([page.waitForEvent('download', { timeout: T }), links.nth(i).click()]);
      const p = path.join(S.tmp, d.suggestedFilename());
      await d.saveAs(p);
      saved.push(p);
    }
    assert.match(python(VERIFY, a, b, '0.3,0.7', ...saved), /^ok 5 /);

    // a refusal: a shape differs; shown by the button, nothing downloaded
    await testid(page, 'merge-clear').click();
    await addInputs(page, [path.join(S.tmp, 'bad.safetensors')], 2);
    let downloads = 0;
    page.on('download', () => downloads++);
    await testid(page, 'merge-shard-size').fill('');
    await testid(page, 'merge-run').click();
    await testid(page, 'merge-error').waitFor({ timeout: T });
    const err = await testid(page, 'merge-error').textContent();
    assert.match(err, /refused \(nothing written\)/);
    assert.match(err, /enc\.bias \[300\] vs \[301\]/);
    await page.screenshot({ path: path.join(ARTIFACTS, 'merge-refused.png'), fullPage: true });
    await page.waitForTimeout(500);
    assert.equal(downloads, 0);
    assert.equal(await testid(page, 'merge-done').count(), 0);
    assert.deepEqual(log.problems, []);
  } finally {
    await context.close();
  }
});

test('Cancel stops a long merge, nothing is downloaded, the next merge works, wasm memory stays bounded', { timeout: 300_000 }, async () => {
  assert.match(python(GEN, S.tmp, 'big'), /^ok/);
  const { context, page, log } = await openPage(S, PAGE);
  try {
    await openFirst(page, path.join(S.tmp, 'big_a.pth'));
    await addInputs(page, [path.join(S.tmp, 'big_b.pth')], 2);
    let downloads = 0;
    page.on('download', () => downloads++);
    await testid(page, 'merge-run').click();
    // wait until the merge has made progress, then cancel it
    await page.waitForFunction(() => /Merging… [1-9]\d?%/.test(document.querySelector('[data-testid="merge-progress"]')?.textContent ?? ''), null, { timeout: 60_000 });
    await page.screenshot({ path: path.join(ARTIFACTS, 'merge-progress.png'), fullPage: true });
    const during = page.workers().length;
    await testid(page, 'merge-cancel').click();
    await testid(page, 'merge-cancelled').waitFor({ timeout: T });
    assert.equal(await workersAfter(page, during - 1), during - 1, 'the merge worker is terminated');
    assert.equal(await testid(page, 'merge-progress').count(), 0);
    await page.waitForTimeout(1500);
    assert.equal(downloads, 0);
    assert.equal(await testid(page, 'merge-done').count(), 0);

    // the next action runs on a fresh worker: a small merge of the same inputs (one key)
    await testid(page, 'merge-keys').fill(String.raw`^layer0\.`);
    await testid(page, 'merge-preview').click();
    await testid(page, 'merge-summary').waitFor({ timeout: 60_000 });
    assert.equal(await testid(page, 'merge-summary').getAttribute('data-merged'), '1');
    assert.equal(await testid(page, 'merge-summary').getAttribute('data-copied'), '63');

    // the whole merge of the two 256 MiB inputs: the worker's wasm memory stays a few chunks
    await testid(page, 'merge-keys').fill('');
    const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 120_000 }), testid(page, 'merge-run').click()]);
    const out = path.join(S.tmp, 'big.pth');
    await dl.saveAs(out);
    await testid(page, 'merge-done').waitFor({ timeout: T });
    const mem = Number(await testid(page, 'merge-done').getAttribute('data-wasm-memory'));
    assert.ok(mem > 0 && mem <= 64 << 20, `worker wasm memory ${mem} bytes after merging 2 × 256 MiB`);
    assert.ok(fs.statSync(out).size > 256 << 20);
    fs.rmSync(out);
    assert.deepEqual(log.problems, []);
  } finally {
    await context.close();
  }
});
