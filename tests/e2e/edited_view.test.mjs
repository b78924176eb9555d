// End-to-end test of the edited view in headless Chromium at 1280×800: after each edit the tree,
// the summary header and the Inspector show the checkpoint as it will be downloaded (renames,
// removals, casts, transplants marked where they happen), the action bar (Undo / Redo /
// N changes / Download / status line) is in view without scrolling, Ctrl+Z / Ctrl+Shift+Z work
// outside text fields, a no-op edit is refused, opening another file asks first, and the header
// counts each storage once with optimizer state apart. Expected numbers come from real torch.
//
// Run by `scripts/dev.sh test` after `trunk build --release` (node --test tests/e2e/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ARTIFACTS, T, testid, suite, fixture, openPage, python, openB, runCompare } from './harness.mjs';

const S = suite({ tmpPrefix: 'weightscope-edited-', needPy: true });
const PAGE = { acceptDownloads: true, viewport: { width: 1280, height: 800 } };


async function open(page, file) {
  await testid(page, 'file-input').setInputFiles(file);
  await page.waitForFunction(
    (n) => document.querySelector('[data-testid="file-name"]')?.textContent === n
      && document.querySelector('[data-testid="action-bar"] [data-testid="change-count"]'),
    path.basename(file),
    { timeout: T },
  );
}

const changes = async (page) => Number(await testid(page, 'change-count').getAttribute('data-count'));
const waitChanges = (page, n) => page.locator(`[data-testid="change-count"][data-count="${n}"]`).waitFor({ timeout: T });
const treePaths = (page) => page.locator('[data-testid="tree-row"][data-path]').evaluateAll((rs) => rs.map((r) => r.dataset.path));
const row = (page, p) => page.locator(`[data-testid="tree-row"][data-path="${p}"]`);

/** The action bar lies inside the 1280×800 viewport (no scrolling needed). */
async function barInView(page) {
  const box = await testid(page, 'action-bar').boundingBox();
  assert.ok(box && box.y >= 0 && box.y + box.height <= 800, `action bar at ${JSON.stringify(box)}`);
  for (const id of ['undo', 'redo', 'change-count', 'download']) {
    const b = await testid(page, id).boundingBox();
    assert.ok(b && b.y + b.height <= 800 && b.x + b.width <= 1280, `${id} at ${JSON.stringify(b)}`);
  }
}

async function statOf(page, name) {
  return Number(await page.locator(`[data-testid="stats"] [data-stat="${name}"]`).getAttribute('data-value'));
}

test('strip, delete, cast: tree, header and Inspector show the download; bar, keys, no-op refusal; torch verifies', { timeout: 180_000 }, async () => {
  const input = fixture('dataparallel.pth');
  const { context, page, log } = await openPage(S, PAGE);
  try {
    await open(page, input);
    await barInView(page);
    assert.equal(await changes(page), 0);
    assert.ok((await treePaths(page)).includes('module.0.weight'));

    // the strip field starts empty; the prefix the file carries is suggested
    await page.getByRole('tab', { name: 'Edit' }).click();
    assert.equal(await testid(page, 'op-strip-prefix').inputValue(), '');
    assert.deepEqual(await testid(page, 'prefix-suggestion').allTextContents(), ['module.']);
    await testid(page, 'prefix-suggestion').click();
    assert.equal(await testid(page, 'op-strip-prefix').inputValue(), 'module.');
    await testid(page, 'op-strip-prefix-apply').click();
    await waitChanges(page, 1);
    assert.match(await testid(page, 'status').textContent(), /Applied: strip prefix "module\."/);
    assert.equal(await testid(page, 'status').getAttribute('data-kind'), 'done');

    // the tree shows the new names, each with its old one
    await row(page, '0.weight').waitFor({ timeout: T });
    const paths = await treePaths(page);
    assert.ok(!paths.some((p) => p.startsWith('module.')), paths.join(' '));
    assert.match(await row(page, '0.weight').locator('[data-testid="renamed-from"]').textContent(), /module\.0\.weight/);
    assert.equal(await row(page, '0.weight').getAttribute('data-change'), 'renamed');
    assert.equal(await testid(page, 'file-summary').getAttribute('data-view'), 'edited');

    // a no-op edit is refused with the reason, and not journaled
    await testid(page, 'op-strip-prefix').fill('module.');
    await testid(page, 'op-strip-prefix-apply').click();
    await page.locator('[data-testid="status"][data-kind="refused"]').waitFor({ timeout: T });
    assert.match(await testid(page, 'status').textContent(), /changes nothing/);
    assert.equal(await changes(page), 1);
    // and the stale refusal clears at the next keystroke
    await testid(page, 'edit-error').waitFor({ timeout: T });
    await testid(page, 'op-delete').fill('^3');
    assert.equal(await testid(page, 'edit-error').count(), 0);

    // delete one key: gone from the tree; "show removed" shows it struck through
    await testid(page, 'op-delete').fill(String.raw`^3\.bias$`);
    await testid(page, 'op-delete-apply').click();
    await waitChanges(page, 2);
    await page.waitForFunction(() => !document.querySelector('[data-testid="tree-row"][data-path="3.bias"]'), null, { timeout: T });
    assert.equal(await testid(page, 'tensor-count').textContent(), '8');
    await testid(page, 'show-removed').check();
    await row(page, 'module.3.bias').waitFor({ timeout: T });
    assert.equal(await row(page, 'module.3.bias').getAttribute('data-change'), 'removed');
    assert.equal(await row(page, 'module.3.bias').locator('.label').evaluate((e) => getComputedStyle(e).textDecorationLine), 'line-through');
    assert.equal(await testid(page, 'tensor-count').textContent(), '8', 'removed entries are not counted');
    await testid(page, 'show-removed').uncheck();

    // cast to float16: badge in the tree; the Inspector's statistics are of the float16 values
    await testid(page, 'op-cast').selectOption('float16');
    await testid(page, 'op-cast-apply').click();
    await waitChanges(page, 3);
    await row(page, '0.weight').locator('[data-testid="badge-cast"]').waitFor({ timeout: T });
    await page.getByRole('tab', { name: 'Inspector' }).click();
    await row(page, '0.weight').click();
    await page.locator('[data-testid="inspector-path"]', { hasText: '0.weight' }).waitFor({ timeout: T });
    assert.equal(await testid(page, 'inspector-dtype').textContent(), 'float16');
    await testid(page, 'inspector-cast').waitFor({ timeout: T });
    await page.locator('[data-testid="stats"] [data-stat="mean"]').waitFor({ timeout: T });
    const torchMean = Number(python(String.raw`
import sys, torch
t = torch.load(sys.argv[1], weights_only=True)["module.0.weight"]
print(repr(t.to(torch.float16).double().mean().item()))`, input).trim());
    const mean = await statOf(page, 'mean');
    assert.ok(Math.abs(mean - torchMean) <= 1e-9 * Math.max(1, Math.abs(torchMean)), `mean ${mean} vs torch ${torchMean}`);
    // the header counts what will be written (bytes after the cast)
    const bytes = Number(python(String.raw`
import sys, torch
d = {k[len("module."):]: v for k, v in torch.load(sys.argv[1], weights_only=True).items() if k != "module.3.bias"}
print(sum(v.numel() * (2 if v.is_floating_point() else v.element_size()) for v in d.values()))`, input).trim());
    assert.equal(Number(await testid(page, 'tensor-bytes').getAttribute('data-bytes')), bytes);
    await page.screenshot({ path: path.join(ARTIFACTS, 'edited-view-1280x800.png') });
    await barInView(page);

    // the original, one click away
    await testid(page, 'view-original').click();
    await row(page, 'module.0.weight').waitFor({ timeout: T });
    assert.equal(await testid(page, 'tensor-count').textContent(), '9');
    assert.equal(await testid(page, 'file-summary').getAttribute('data-view'), 'original');
    await testid(page, 'view-edited').click();
    await row(page, '0.weight').waitFor({ timeout: T });

    // Ctrl+Z / Ctrl+Shift+Z outside text fields; inside one they belong to the field
    await testid(page, 'tree').focus();
    await page.keyboard.press('Control+z');
    await waitChanges(page, 2);
    assert.match(await testid(page, 'status').textContent(), /Undone: cast/);
    await page.keyboard.press('Control+Shift+z');
    await waitChanges(page, 3);
    assert.match(await testid(page, 'status').textContent(), /Redone: cast/);
    await page.getByRole('tab', { name: 'Edit' }).click();
    await testid(page, 'op-add-prefix').focus();
    await page.keyboard.press('Control+z');
    await page.waitForTimeout(300);
    assert.equal(await changes(page), 3);

    // the download is what the page showed
    const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), testid(page, 'download').click()]);
    const out = path.join(S.tmp, dl.suggestedFilename());
    await dl.saveAs(out);
    const check = python(String.raw`
import sys, torch
src = torch.load(sys.argv[1], weights_only=True)
got = torch.load(sys.argv[2], weights_only=True)
want = {k[len("module."):]: (v.to(torch.float16) if v.is_floating_point() else v) for k, v in src.items() if k != "module.3.bias"}
assert list(got) == list(want), (list(got), list(want))
for k, v in want.items():
    assert got[k].dtype == v.dtype and torch.equal(got[k], v), k
print("ok", len(got))`, input, out);
    assert.equal(check.trim(), 'ok 8');
    assert.deepEqual(log.problems, []);
  } finally {
    await context.close();
  }
});

test('a transplanted tensor is marked and inspected from B\'s bytes', { timeout: 120_000 }, async () => {
  const { context, page, log } = await openPage(S, PAGE);
  try {
    await open(page, fixture('diff/dp_a.pth'));
    await openB(page, fixture('diff/dp_b.pth'));
    await runCompare(page, 'module.=');
    const changed = await page.locator('[data-testid="diff-changed"] li').evaluateAll((ls) => ls.map((l) => l.dataset.key));
    assert.ok(changed.length > 0);
    for (const k of changed) await page.locator(`[data-testid="diff-changed"] li[data-key="${k}"] input[type=checkbox]`).check();
    await testid(page, 'transplant-selected').click();
    await waitChanges(page, 1);
    const added = page.locator('[data-testid="tree-row"][data-change="added"]');
    await added.first().waitFor({ timeout: T });
    const key = await added.first().getAttribute('data-path');
    await added.first().locator('[data-testid="badge-added"]').waitFor({ timeout: T });
    await page.getByRole('tab', { name: 'Inspector' }).click();
    await added.first().click();
    await testid(page, 'inspector-from-b').waitFor({ timeout: T });
    await page.locator('[data-testid="stats"] [data-stat="mean"]').waitFor({ timeout: T });
    const want = JSON.parse(python(String.raw`
import sys, json, torch
a = torch.load(sys.argv[1], weights_only=True); b = torch.load(sys.argv[2], weights_only=True)
k = sys.argv[3]
bk = k[len("module."):] if k.startswith("module.") else k
print(json.dumps({"b": b[bk].double().mean().item(), "a": a[k].double().mean().item() if k in a else None}))`,
    fixture('diff/dp_a.pth'), fixture('diff/dp_b.pth'), key));
    const mean = await statOf(page, 'mean');
    assert.ok(Math.abs(mean - want.b) <= 1e-6 * Math.max(1, Math.abs(want.b)), `${key}: mean ${mean} vs torch (B) ${want.b}, A ${want.a}`);
    assert.notEqual(want.a, want.b, 'the fixture\'s A and B differ for this key');
    assert.deepEqual(log.problems, []);
  } finally {
    await context.close();
  }
});

test('opening another file with changes in the journal asks first', { timeout: 90_000 }, async () => {
  const { context, page, log } = await openPage(S, PAGE);
  try {
    await open(page, fixture('dataparallel.pth'));
    await page.getByRole('tab', { name: 'Edit' }).click();
    await testid(page, 'op-strip-prefix').fill('module.');
    await testid(page, 'op-strip-prefix-apply').click();
    await waitChanges(page, 1);
    // declined: the edited file and its journal stay
    let asked = '';
    page.once('dialog', (d) => { asked = d.message(); d.dismiss(); });
    await testid(page, 'file-input').setInputFiles(fixture('shared_storage.pth'));
    await page.waitForTimeout(500);
    assert.match(asked, /1 edit/);
    assert.equal(await testid(page, 'file-name').textContent(), 'dataparallel.pth');
    assert.equal(await changes(page), 1);
    // accepted: the other file opens with a fresh journal
    page.once('dialog', (d) => d.accept());
    await testid(page, 'file-input').setInputFiles(fixture('shared_storage.pth'));
    await page.waitForFunction(() => document.querySelector('[data-testid="file-name"]')?.textContent === 'shared_storage.pth', null, { timeout: T });
    await waitChanges(page, 0);
    assert.deepEqual(log.problems, []);
  } finally {
    await context.close();
  }
});

test('the header counts each storage once and optimizer state apart (torch\'s numbers)', { timeout: 90_000 }, async () => {
  const COUNT = String.raw`
import sys, json, torch
obj = torch.load(sys.argv[1], weights_only=False)
seen = {}
def walk(v, path):
    if isinstance(v, torch.Tensor):
        s = v.untyped_storage()
        optim = any(str(p).lower().startswith("optim") for p in path)
        n = s.nbytes() // v.element_size() if v.numel() else 0
        key = s.data_ptr() if s.nbytes() else id(v)
        seen[key] = (max(seen.get(key, (0, False))[0], n), optim)
    elif isinstance(v, dict):
        for k, x in v.items(): walk(x, path + [k])
    elif isinstance(v, (list, tuple)):
        for i, x in enumerate(v): walk(x, path + [i])
walk(obj, [])
print(json.dumps({"params": sum(n for n, _ in seen.values()), "optimizer": sum(n for n, o in seen.values() if o)}))`;
  const { context, page, log } = await openPage(S, PAGE);
  try {
    for (const name of ['shared_storage.pth', 'lightning.ckpt']) {
      const want = JSON.parse(python(COUNT, fixture(name)));
      await open(page, fixture(name));
      const pc = testid(page, 'param-count');
      assert.equal(Number(await pc.getAttribute('data-count')), want.params, `${name}: parameters`);
      assert.equal(Number(await pc.getAttribute('data-optimizer')), want.optimizer, `${name}: optimizer state`);
      if (want.optimizer > 0) assert.match(await pc.textContent(), /optimizer state/);
    }
    assert.deepEqual(log.problems, []);
  } finally {
    await context.close();
  }
});

test('the Inspector names the tensors sharing a storage (torch\'s grouping by storage)', { timeout: 90_000 }, async () => {
  const GROUPS = String.raw`
import sys, json, torch
sd = torch.load(sys.argv[1], weights_only=True)
by = {}
for k, v in sd.items():
    by.setdefault(v.untyped_storage().data_ptr(), []).append(k)
print(json.dumps({k: sorted(x for x in g if x != k) for g in by.values() for k in g}))`;
  const name = 'shared_storage.pth';
  const want = JSON.parse(python(GROUPS, fixture(name)));
  assert.ok(Object.values(want).some((o) => o.length >= 2), 'the fixture has a storage shared three ways');
  const { context, page, log } = await openPage(S, PAGE);
  try {
    await open(page, fixture(name));
    for (const [key, others] of Object.entries(want)) {
      await row(page, key).click();
      await page.locator('[data-testid="inspector-path"]', { hasText: key }).waitFor({ timeout: T });
      const dd = page.locator('.inspector dt', { hasText: 'storage' }).locator('xpath=following-sibling::dd[1]');
      const text = (await dd.textContent()) ?? '';
      if (others.length === 0) assert.match(text, /not shared/, key);
      else {
        assert.match(text, new RegExp(`shared with ${others.length}(?!\\d)`), `${key}: ${text}`);
        assert.deepEqual((await dd.locator('ul.shared code').allTextContents()).sort(), others, key);
      }
    }
    assert.deepEqual(log.problems, []);
  } finally {
    await context.close();
  }
});

test('small ones: arrow keys inspect, folders highlighted by a search, folder rename, empty file', { timeout: 90_000 }, async () => {
  const { context, page, log } = await openPage(S, PAGE);
  try {
    await open(page, fixture('dataparallel.pth'));
    // arrow keys move the cursor and inspect the tensor under it
    await testid(page, 'tree').focus();
    for (let i = 0; i < 3; i++) await page.keyboard.press('ArrowDown');
    const cursor = await page.locator('[data-testid="tree-row"].cursor').getAttribute('data-path');
    assert.ok(cursor, 'the cursor is on a tensor');
    await page.locator('[data-testid="inspector-path"]', { hasText: cursor }).waitFor({ timeout: T });
    // a substring search highlights the matching folder's name
    await testid(page, 'search').fill('modul');
    await page.locator('[data-testid="tree-row"].folder mark', { hasText: 'modul' }).first().waitFor({ timeout: T });
    await testid(page, 'search').fill('');
    // rename a folder: every key under it
    await page.getByRole('tab', { name: 'Edit' }).click();
    await testid(page, 'op-rename-from').fill('module.1');
    await testid(page, 'op-rename-to').fill('module.bn');
    await testid(page, 'op-rename-apply').click();
    await waitChanges(page, 1);
    for (const k of ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']) {
      await row(page, `module.bn.${k}`).waitFor({ state: 'attached', timeout: T });
    }
    assert.equal(await row(page, 'module.1.weight').count(), 0);
    // an empty file says so (the open file stays)
    const empty = path.join(S.tmp, 'empty.pth');
    (await import('node:fs')).writeFileSync(empty, Buffer.alloc(0));
    page.once('dialog', (d) => d.accept());
    await testid(page, 'file-input').setInputFiles(empty);
    await testid(page, 'error').waitFor({ timeout: T });
    assert.match(await testid(page, 'error').textContent(), /empty\.pth: empty file/);
    assert.equal(await testid(page, 'file-name').textContent(), 'dataparallel.pth');
    assert.deepEqual(log.problems, []);
  } finally {
    await context.close();
  }
});

test('a sharded set: the header shows the set, the download is named after the model, the index alone says what to add', { timeout: 90_000 }, async () => {
  const fs = await import('node:fs');
  const dir = fixture('sharded_st_2');
  const files = fs.readdirSync(dir).filter((f) => !f.endsWith('.inspect.json')).map((f) => path.join(dir, f));
  const total = files.reduce((s, f) => s + fs.statSync(f).size, 0);
  const { context, page, log } = await openPage(S, PAGE);
  try {
    await testid(page, 'file-input').setInputFiles(files);
    await page.waitForFunction(() => document.querySelector('[data-testid="file-name"]')?.textContent === 'model.safetensors.index.json', null, { timeout: T });
    assert.match(await testid(page, 'file-size').textContent(), /^2 shards · /);
    assert.equal(Number(await testid(page, 'file-size').getAttribute('data-bytes')), total);
    assert.equal(await testid(page, 'details-note').count(), 0, 'no "only the first is read" note');
    await testid(page, 'download-format').selectOption('safetensors');
    const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), testid(page, 'download').click()]);
    assert.equal(dl.suggestedFilename(), 'model.edited.safetensors');
    const out = path.join(S.tmp, 'sharded-out.safetensors');
    await dl.saveAs(out);
    const check = python(String.raw`
import sys, json, torch
from safetensors.torch import load_file
idx = json.load(open(sys.argv[1] + "/model.safetensors.index.json"))
want = {}
for shard in sorted(set(idx["weight_map"].values())):
    want.update(load_file(sys.argv[1] + "/" + shard))
got = load_file(sys.argv[2])
assert sorted(got) == sorted(want), (sorted(got), sorted(want))
assert all(torch.equal(got[k], want[k]) for k in want)
print("ok", len(got))`, dir, out);
    assert.match(check, /^ok \d+/);
    // the index alone: which files to add, in the user's words
    page.once('dialog', (d) => d.accept());
    await testid(page, 'file-input').setInputFiles(path.join(dir, 'model.safetensors.index.json'));
    await testid(page, 'error').waitFor({ timeout: T });
    const msg = await testid(page, 'error').textContent();
    assert.match(msg, /index of a sharded checkpoint: its tensors are in 2 other files\. Open or drop the index together with those files: model-00001-of-00002\.safetensors, model-00002-of-00002\.safetensors/);
    assert.doesNotMatch(msg, /format::|open_sharded/);
    assert.deepEqual(log.problems, []);
  } finally {
    await context.close();
  }
});
