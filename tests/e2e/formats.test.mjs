// End-to-end: the two containers read since deflated records and the 0.1.x tar format joined the
// reader — a torch zip whose records were re-zipped deflated (`deflated.pth`) and a PyTorch
// 0.1.x tar (`legacy_tar.pth`), both made by tests/fixtures/make_fixtures.py with real torch.
// Each opens through the file input; the summary matches torch's entries and parameter count;
// the largest tensor's statistics (streamed through the worker: inflated in pieces for the zip,
// read from the tar member at its offset) equal numpy's; the deflated file says it was
// compressed; no request is made beyond the page's own files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { GEN, ARTIFACTS, T, testid, suite, openPage, checkClean, fixture } from './harness.mjs';

const S = suite({ needFixtures: true });
const PAGE = { network: true, colorScheme: 'light', viewport: { width: 1200, height: 800 } };
const grouped = (n) => n.toLocaleString('en-US');
const text = async (loc) => (await loc.textContent())?.trim() ?? '';
const json = (rel) => JSON.parse(fs.readFileSync(path.join(GEN, rel), 'utf8'));

/** Open `name`, check the summary against torch's inspect JSON, and the statistics of `key`. */
async function openAndCheck(name, format, key) {
  const manifest = json('manifest.json');
  const fx = manifest.fixtures.find((f) => f.file === name);
  assert.ok(fx, `${name} is not in the manifest`);
  assert.equal(fx.format, format);
  const expected = json(fx.inspect);
  const stats = json(fx.stats).tensors.find((t) => t.path.join('/') === key);
  assert.ok(stats, `no torch statistics for ${key}`);
  const { context, page, log } = await openPage(S, PAGE);
  try {
    await testid(page, 'file-input').setInputFiles(fixture(name));
    await page.waitForFunction(
      (n) => document.querySelector('[data-testid="file-summary"] [data-testid="file-name"]')?.textContent === n
        && document.querySelector('[data-testid="tree"]'),
      name,
      { timeout: T },
    );
    const card = testid(page, 'file-summary');
    assert.equal(await text(card.locator('[data-testid="file-format"]')), format);
    assert.equal(await text(testid(page, 'tensor-count')), grouped(expected.entries.length));
    const params = expected.entries.reduce((s, e) => s + e.shape.reduce((a, b) => a * b, 1), 0);
    assert.equal(await testid(page, 'param-count').getAttribute('data-numel'), String(params));
    assert.equal(await testid(page, 'error').count(), 0);

    await testid(page, 'search').fill(key);
    await page.locator(`[data-testid="tree-row"][data-path="${key}"]`).first().click();
    await page.waitForFunction(
      (q) => document.querySelector('[data-testid="inspector-path"]')?.textContent === q, key, { timeout: T });
    const stat = (k) => testid(page, 'stats').locator(`[data-stat="${k}"]`);
    await stat('max').waitFor({ timeout: T });
    assert.equal(Number(await stat('count').getAttribute('data-value')), stats.count);
    assert.equal(Number(await stat('min').getAttribute('data-value')), stats.min);
    assert.equal(Number(await stat('max').getAttribute('data-value')), stats.max);
    await page.screenshot({ path: path.join(ARTIFACTS, `${path.parse(name).name}.png`) });
    checkClean(S, log);
    return { page, context, card };
  } catch (e) {
    await context.close();
    throw e;
  }
}

test('a torch zip with deflated records opens, says it was compressed, and streams statistics', { timeout: 90_000 }, async () => {
  const { context, card } = await openAndCheck('deflated.pth', 'torch-zip', 'big');
  try {
    assert.match(await text(card), /compressed input: \d+ of \d+ zip records are deflated/);
  } finally {
    await context.close();
  }
});

test('a PyTorch 0.1.x tar checkpoint opens and its tensors are read on demand', { timeout: 90_000 }, async () => {
  const { context } = await openAndCheck('legacy_tar.pth', 'torch-tar', 'big');
  await context.close();
});
