// End-to-end test of the Edit panel in headless Chromium: edit a torch fixture in the page (strip a
// prefix, delete a key, cast to float16; undo / redo; a refused collision), download it as
// .pth and as .safetensors, and verify the downloaded files with real torch / safetensors:
// they load with weights_only=True (safe_open), hold the expected keys, and their values equal
// torch's own `.to(torch.float16)` of the input's tensors.
//
// Run by `scripts/dev.sh test` after `trunk build --release` (node --test tests/e2e/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { ARTIFACTS, PY, T, testid, suite, fixture, openPage } from './harness.mjs';


const S = suite({ tmpPrefix: 'weightscope-edit-', needPy: true });
/** The browser context every test of this file opens the page in. */
const PAGE = { acceptDownloads: true, viewport: { width: 1100, height: 900 } };




async function openFile(page, file) {
  await testid(page, 'file-input').setInputFiles(file);
  await page.getByRole('tab', { name: 'Edit' }).click(); // the panel lives in the Edit tab
  await page.locator(`[data-testid="edit-panel"][data-ready="true"]`).waitFor({ timeout: T });
  await page.waitForFunction(
    (n) => document.querySelector('[data-testid="edit-panel"] .card-head .muted')?.textContent?.startsWith(n),
    path.basename(file),
    { timeout: T },
  );
}

async function journalStates(page) {
  return page.locator('[data-testid="journal"] li').evaluateAll((ls) => ls.map((l) => [l.dataset.state, l.textContent.trim()]));
}

async function waitJournal(page, applied, undone = 0) {
  await page.waitForFunction(
    ([a, u]) => {
      const ls = [...document.querySelectorAll('[data-testid="journal"] li')];
      return ls.filter((l) => l.dataset.state === 'applied').length === a
        && ls.filter((l) => l.dataset.state === 'undone').length === u;
    },
    [applied, undone],
    { timeout: T },
  );
}

/** Type `value` into field `id` and wait for a preview of it. */
async function typeAndPreview(page, id, value) {
  const before = await testid(page, 'edit-preview').getAttribute('data-changed').catch(() => null);
  await testid(page, id).fill('');
  await testid(page, id).fill(value);
  await testid(page, 'edit-preview').waitFor({ timeout: T });
  return before;
}

async function download(page, format, dir) {
  await testid(page, 'download-format').selectOption(format);
  const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), testid(page, 'download').click()]);
  const out = path.join(dir, dl.suggestedFilename());
  await dl.saveAs(out);
  await testid(page, 'export-report').waitFor({ timeout: T });
  return { name: dl.suggestedFilename(), path: out };
}

function python(script, ...args) {
  return execFileSync(PY, ['-c', script, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

// Checks one downloaded file against the input with real torch; prints "ok" or raises.
const VERIFY = String.raw`
import sys, json, torch
inp, out, kind = sys.argv[1], sys.argv[2], sys.argv[3]
src = torch.load(inp, weights_only=True)
expect = {}
for k, v in src.items():
    if not k.startswith("module."):
        raise SystemExit(f"fixture key without module.: {k}")
    k = k[len("module."):]
    if k == "3.bias":
        continue
    expect[k] = v.to(torch.float16) if v.is_floating_point() else v
if kind == "torch":
    got = torch.load(out, weights_only=True)
    keys = list(got.keys())
else:
    from safetensors import safe_open
    got = {}
    with safe_open(out, framework="pt") as f:
        keys = list(f.keys())
        for k in keys:
            got[k] = f.get_tensor(k)
if sorted(keys) != sorted(expect.keys()):
    raise SystemExit(f"keys {keys} != {list(expect.keys())}")
if kind == "torch" and keys != list(expect.keys()):
    raise SystemExit(f"order {keys} != {list(expect.keys())}")
for k, v in expect.items():
    g = got[k]
    if g.dtype != v.dtype or g.shape != v.shape or not torch.equal(g, v):
        raise SystemExit(f"{k}: {g.dtype}{list(g.shape)} differs from torch's {v.dtype}{list(v.shape)}")
print("ok", len(keys))
`;

test('strip a prefix, delete a key, cast, undo/redo, download .pth and .safetensors; torch verifies', { timeout: 180_000 }, async () => {
  const input = fixture('dataparallel.pth');
  const { context, page, log } = await openPage(S, PAGE);
  try {
    await openFile(page, input);
    assert.deepEqual(await journalStates(page), []);

    // a collision is previewed, then refused with a message, and changes nothing
    await testid(page, 'op-replace-with').fill('');
    await typeAndPreview(page, 'op-replace-pattern', String.raw`\.(weight|bias)$`);
    await page.locator('[data-testid="edit-preview"][data-ok="false"]').waitFor({ timeout: T });
    assert.match(await testid(page, 'edit-preview').textContent(), /collision/);
    await testid(page, 'op-replace-apply').click();
    await testid(page, 'edit-error').waitFor({ timeout: T });
    const err = await testid(page, 'edit-error').textContent();
    assert.match(err, /refused/);
    assert.match(err, /collision/);
    assert.deepEqual(await journalStates(page), []);

    // strip module.: the preview lists old → new before applying
    await typeAndPreview(page, 'op-strip-prefix', 'module.');
    await page.locator('[data-testid="edit-preview"][data-ok="true"][data-changed="9"]').waitFor({ timeout: T });
    assert.match(await testid(page, 'edit-preview').textContent(), /module\.0\.weight\s*→\s*0\.weight/);
    assert.deepEqual(await journalStates(page), [], 'a preview applies nothing');
    await testid(page, 'op-strip-prefix-apply').click();
    await waitJournal(page, 1);
    assert.equal(await testid(page, 'edit-error').count(), 0);

    // delete one key
    await typeAndPreview(page, 'op-delete', String.raw`^3\.bias$`);
    await page.waitForFunction(() => /3\.bias \(removed\)/.test(document.querySelector('[data-testid="edit-preview"]')?.textContent ?? ''), null, { timeout: T });
    await testid(page, 'op-delete-apply').click();
    await waitJournal(page, 2);

    // cast floats to float16
    await testid(page, 'op-cast').selectOption('float16');
    await testid(page, 'op-cast-apply').click();
    await waitJournal(page, 3);
    const states = await journalStates(page);
    assert.match(states[0][1], /strip prefix "module\."/);
    assert.match(states[1][1], /delete/);
    assert.match(states[2][1], /cast .*float16/);

    // undo / redo move the journal
    await testid(page, 'undo').click();
    await waitJournal(page, 2, 1);
    assert.match((await journalStates(page))[2][1], /cast/);
    await testid(page, 'undo').click();
    await waitJournal(page, 1, 2);
    await testid(page, 'redo').click();
    await waitJournal(page, 2, 1);
    await testid(page, 'redo').click();
    await waitJournal(page, 3, 0);
    assert.equal(await testid(page, 'redo').isDisabled(), true);
    await page.screenshot({ path: path.join(ARTIFACTS, 'edit.png'), fullPage: true });

    // download as torch zip
    const pth = await download(page, 'torch', S.tmp);
    assert.equal(pth.name, 'dataparallel.edited.pth');
    assert.match(python(VERIFY, input, pth.path, 'torch'), /^ok 8/);
    const report = testid(page, 'export-report');
    assert.equal(Number(await report.getAttribute('data-size')), fs.statSync(pth.path).size);

    // and as safetensors
    const st = await download(page, 'safetensors', S.tmp);
    assert.equal(st.name, 'dataparallel.safetensors');
    assert.match(python(VERIFY, input, st.path, 'safetensors'), /^ok 8/);
    assert.deepEqual(log.problems, []);
  } finally {
    await context.close();
  }
});

test('a rename-only export copies tensor bytes as file slices and matches the input bit for bit', { timeout: 120_000 }, async () => {
  const input = fixture('dataparallel.pth');
  const { context, page, log } = await openPage(S, PAGE);
  try {
    await openFile(page, input);
    await typeAndPreview(page, 'op-strip-prefix', 'module.');
    await testid(page, 'op-strip-prefix-apply').click();
    await waitJournal(page, 1);
    const out = await download(page, 'torch', S.tmp);
    const report = testid(page, 'export-report');
    const copied = Number(await report.getAttribute('data-copied'));
    const fresh = Number(await report.getAttribute('data-new'));
    // every tensor record is a slice of the input; only the pickle and zip records are new
    const bytes = python(String.raw`
import sys, torch
t = torch.load(sys.argv[1], weights_only=True)
print(sum(v.untyped_storage().nbytes() for v in t.values()))`, input).trim();
    assert.equal(copied, Number(bytes), `copied ${copied} bytes, new ${fresh}`);
    const check = python(String.raw`
import sys, torch
a = torch.load(sys.argv[1], weights_only=True); b = torch.load(sys.argv[2], weights_only=True)
assert list(b) == [k[len("module."):] for k in a], (list(a), list(b))
for k, v in a.items():
    w = b[k[len("module."):]]
    assert w.dtype == v.dtype and torch.equal(w.view(torch.uint8) if w.dim() else w, v.view(torch.uint8) if v.dim() else v), k
print("ok")`, input, out.path);
    assert.equal(check.trim(), 'ok');
    assert.deepEqual(log.problems, []);
  } finally {
    await context.close();
  }
});

test('a hostile payload is listed as dropped before download; the written file loads with weights_only=True', { timeout: 90_000 }, async () => {
  // torch refuses this file with weights_only=True (posix.system inside the state dict); the
  // torch writer drops the payload, says so before download, and keeps the benign tensors
  const input = fixture('hostile_mixed_state_dict.pth');
  const expected = JSON.parse(fs.readFileSync(fixture('hostile_mixed_state_dict.pth.inspect.json'), 'utf8'));
  const { context, page, log } = await openPage(S, PAGE);
  try {
    await openFile(page, input);
    await testid(page, 'download-format').selectOption('torch');
    await testid(page, 'edit-drops').waitFor({ timeout: T });
    const drops = await testid(page, 'edit-drops').textContent();
    assert.match(drops, /Will not be written/);
    assert.match(drops, /posix|system|object/i, drops);
    const out = await download(page, 'torch', S.tmp);
    assert.equal(out.name, 'hostile_mixed_state_dict.edited.pth');
    const check = python(String.raw`
import sys, json, hashlib, torch
exp = json.load(open(sys.argv[2]))
got = torch.load(sys.argv[1], weights_only=True)
flat = {}
def walk(v, p):
    if isinstance(v, torch.Tensor): flat["/".join(p)] = v
    elif isinstance(v, dict):
        for k, x in v.items(): walk(x, p + [str(k)])
    elif isinstance(v, (list, tuple)):
        for i, x in enumerate(v): walk(x, p + [str(i)])
walk(got, [])
want = {"/".join(e["path"]): e for e in exp["entries"]}
assert sorted(flat) == sorted(want), (sorted(flat), sorted(want))
for k, e in want.items():
    t = flat[k]
    assert str(t.dtype).replace("torch.", "") == e["dtype"] and list(t.shape) == e["shape"], k
    h = hashlib.sha256(t.contiguous().view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"").hexdigest()
    assert h == e["sha256"], k
print("ok", len(flat))`, out.path, fixture('hostile_mixed_state_dict.pth.inspect.json'));
    assert.match(check, new RegExp(`^ok ${expected.entries.length}`));
    assert.deepEqual(log.problems, []);
  } finally {
    await context.close();
  }
});
