// End-to-end test of the Merge tab's output streamed to disk through the File System Access
// API, in headless Chromium. A native picker cannot be clicked here, so `showSaveFilePicker` /
// `showDirectoryPicker` are replaced (before the page loads) by functions that return real
// handles of the Origin Private File System; the worker writes through
// `FileSystemWritableFileStream` exactly as with a file the user picked. Each output is read
// back from OPFS into the test's tmp dir and checked by torch (VERIFY: torch's float64 linear
// merge rounded to FIRST's dtype). Also: shards go into the picked folder; a write that fails
// names the file and leaves no output; Cancel leaves no file; the worker's wasm memory after
// merging two 256 MiB inputs to disk (printed, bounded).
//
// Run by `scripts/dev.sh test` after `trunk build --release` (node --test tests/e2e/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ARTIFACTS, T, testid, suite, openPage } from './harness.mjs';
import { GEN, VERIFY, python, openFirst, addInputs, opfsCopy } from './merge_common.mjs';

const S = suite({ tmpPrefix: 'weightscope-merge-disk-', needPy: true });

// the pickers answer with OPFS handles: a file named as suggested, the folder `shards`
const OPFS_PICKERS = String.raw`
window.__picked = [];
window.showSaveFilePicker = async (opts) => {
  window.__picked.push('file:' + opts.suggestedName);
  const root = await navigator.storage.getDirectory();
  return root.getFileHandle(opts.suggestedName, { create: true });
};
window.showDirectoryPicker = async (opts) => {
  window.__picked.push('dir:' + opts.mode);
  const root = await navigator.storage.getDirectory();
  return root.getDirectoryHandle('shards', { create: true });
};`;
const PAGE = { acceptDownloads: true, viewport: { width: 1200, height: 1000 }, initScript: OPFS_PICKERS };

/** Names in OPFS folder `dir` ('' = the root) with their sizes (files only). */
async function opfsList(page, dir = '') {
  return page.evaluate(async (dir) => {
    let d = await navigator.storage.getDirectory();
    if (dir) d = await d.getDirectoryHandle(dir);
    const out = {};
    for await (const [name, h] of d.entries()) out[name] = h.kind === 'file' ? (await h.getFile()).size : 'dir';
    return out;
  }, dir);
}

async function setWeights(page) {
  await testid(page, 'merge-method').selectOption('linear');
  for (const [k, w] of [[0, '0.3'], [1, '0.7']]) {
    await testid(page, `merge-weight-${k}`).fill(w);
    await testid(page, `merge-weight-${k}`).dispatchEvent('change');
  }
}

test('merge streamed to disk: one .pth file, safetensors shards into a folder, torch verifies; a failed write names the file', { timeout: 240_000 }, async () => {
  assert.match(python(GEN, S.tmp), /^ok/);
  const a = path.join(S.tmp, 'a.pth');
  const b = path.join(S.tmp, 'b.safetensors');
  const { context, page, log } = await openPage(S, PAGE);
  try {
    let downloads = 0;
    page.on('download', () => downloads++);
    await openFirst(page, a);
    await addInputs(page, [b], 2);
    await setWeights(page);

    // one file: the picker suggests the name, the worker writes it, no Blob download
    await testid(page, 'merge-run').click();
    await page.locator('[data-testid="merge-done"][data-on-disk="true"]').waitFor({ timeout: 60_000 });
    assert.deepEqual(await page.evaluate(() => window.__picked), ['file:a.merged.pth']);
    const saved1 = await testid(page, 'merge-saved').allTextContents();
    assert.equal(saved1.length, 1);
    assert.match(saved1[0], /^a\.merged\.pth /);
    assert.ok((await opfsList(page))['a.merged.pth'] > 0);
    const out = await opfsCopy(page, ['a.merged.pth'], path.join(S.tmp, 'disk.pth'));
    assert.match(python(VERIFY, a, b, '0.3,0.7', out), /^ok 5 /);
    await page.screenshot({ path: path.join(ARTIFACTS, 'merge-disk.png'), fullPage: true });

    // shards: the folder picker, every shard and the index written into it
    await testid(page, 'merge-format').selectOption('safetensors');
    await testid(page, 'merge-shard-size').fill('200kB');
    await testid(page, 'merge-run').click();
    await page.locator('[data-testid="merge-done"][data-files="3"][data-on-disk="true"]').waitFor({ timeout: 60_000 });
    assert.deepEqual(await page.evaluate(() => window.__picked.slice(1)), ['dir:readwrite']);
    const listed = await opfsList(page, 'shards');
    const names = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json'];
    assert.deepEqual(Object.keys(listed).sort(), names);
    const saved = [];
    for (const n of names) saved.push(await opfsCopy(page, ['shards', n], path.join(S.tmp, n)));
    assert.match(python(VERIFY, a, b, '0.3,0.7', ...saved), /^ok 5 /);

    // a write that fails (the second shard's name is taken by a folder): the error names the
    // file, and no shard of this export is left behind
    await page.evaluate(async () => {
      const d = await (await navigator.storage.getDirectory()).getDirectoryHandle('shards');
      for (const n of ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json']) await d.removeEntry(n);
      await d.getDirectoryHandle('model-00002-of-00002.safetensors', { create: true });
    });
    await testid(page, 'merge-run').click();
    await testid(page, 'merge-error').waitFor({ timeout: 60_000 });
    const err = await testid(page, 'merge-error').textContent();
    assert.match(err, /model-00002-of-00002\.safetensors: /);
    await page.waitForFunction(async () => {
      const d = await (await navigator.storage.getDirectory()).getDirectoryHandle('shards');
      const names = [];
      for await (const n of d.keys()) names.push(n);
      return names.join() === 'model-00002-of-00002.safetensors';
    }, null, { timeout: T });
    assert.equal(await testid(page, 'merge-done').count(), 0);
    await page.screenshot({ path: path.join(ARTIFACTS, 'merge-disk-error.png'), fullPage: true });
    assert.equal(downloads, 0);
    assert.deepEqual(log.problems, []);
  } finally {
    await context.close();
  }
});

test('Cancel of a merge to disk leaves no file; 2 × 256 MiB streamed to disk keep the worker small; torch verifies', { timeout: 400_000 }, async () => {
  assert.match(python(GEN, S.tmp, 'big'), /^ok/);
  const { context, page, log } = await openPage(S, PAGE);
  try {
    await openFirst(page, path.join(S.tmp, 'big_a.pth'));
    await addInputs(page, [path.join(S.tmp, 'big_b.pth')], 2);
    await setWeights(page);
    await testid(page, 'merge-format').selectOption('safetensors');
    await testid(page, 'merge-run').click();
    await page.waitForFunction(() => /Merging… [1-9]\d?%/.test(document.querySelector('[data-testid="merge-progress"]')?.textContent ?? ''), null, { timeout: 60_000 });
    await page.screenshot({ path: path.join(ARTIFACTS, 'merge-disk-progress.png'), fullPage: true });
    await testid(page, 'merge-cancel').click();
    await testid(page, 'merge-cancelled').waitFor({ timeout: T });
    // the writable dies with the worker and the picked file is removed: nothing claims success
    await page.waitForFunction(async () => {
      const root = await navigator.storage.getDirectory();
      for await (const n of root.keys()) if (n === 'big_a.merged.safetensors') return false;
      return true;
    }, null, { timeout: T, polling: 200 });
    assert.equal(await testid(page, 'merge-done').count(), 0);

    // the whole merge to disk, as .pth (its CRC-32s filled in as it is written, checked by
    // VERIFY's zipfile pass): wasm memory stays a few pieces
    await testid(page, 'merge-format').selectOption('torch');
    await testid(page, 'merge-run').click();
    await page.locator('[data-testid="merge-done"][data-on-disk="true"]').waitFor({ timeout: 300_000 });
    const mem = Number(await testid(page, 'merge-done').getAttribute('data-wasm-memory'));
    console.log(`worker wasm memory after merging 2 × 256 MiB to disk (.pth): ${(mem / 2 ** 20).toFixed(1)} MiB`);
    assert.ok(mem > 0 && mem <= 64 << 20, `worker wasm memory ${mem} bytes`);
    const size = (await opfsList(page))['big_a.merged.pth'];
    assert.ok(size > 256 << 20, `${size}`);
    const out = await opfsCopy(page, ['big_a.merged.pth'], path.join(S.tmp, 'big.pth'));
    assert.match(python(VERIFY, path.join(S.tmp, 'big_a.pth'), path.join(S.tmp, 'big_b.pth'), '0.3,0.7', out), /^ok 64 /);
    fs.rmSync(out);
    assert.deepEqual(log.problems, []);
  } finally {
    await context.close();
  }
});
