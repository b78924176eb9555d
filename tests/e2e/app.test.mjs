// End-to-end tests of the built page (dist/) in headless Chromium via playwright-core.
//
// Run by `scripts/dev.sh test` after `trunk build --release`:
//   node --test tests/e2e/
// Good files are real torch fixtures from tests/fixtures/gen (written by
// tests/fixtures/make_fixtures.py; the test fails if they are absent). The unknown file is
// random bytes made here. Every request the page (and its worker) makes is recorded: any URL
// outside the test server's origin fails, and so does any request after the load event that
// is not a GET of a file that exists in dist/. Screenshots go to tests/artifacts/ (git-ignored).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { GEN, ARTIFACTS, T, testid, suite, openPage, checkClean } from './harness.mjs';


const S = suite();
/** The browser context every test of this file opens the page in. */
const PAGE = { network: true, colorScheme: 'light', viewport: { width: 1100, height: 700 } };

// --- fixtures -------------------------------------------------------------------------------

/** Torch-made single-file fixtures the generator marks as readable, with their manifest data. */
function goodFixtures() {
  const manifestPath = path.join(GEN, 'manifest.json');
  assert.ok(
    fs.existsSync(manifestPath),
    `${manifestPath} missing: generate it with ~/.cache/weightscope/venv/bin/python tests/fixtures/make_fixtures.py tests/fixtures/gen`,
  );
  const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
  const single = new Set(['torch-zip', 'torch-legacy', 'torch-tar', 'safetensors']);
  const good = manifest.fixtures
    .filter((f) => f.expect === 'ok' && single.has(f.format) && !f.file.includes('/'))
    .map((f) => ({ ...f, path: path.join(GEN, f.file), size: fs.statSync(path.join(GEN, f.file)).size }))
    .filter((f) => f.size <= 4 << 20);
  assert.ok(good.length >= 2, `need two readable single-file fixtures in ${manifestPath}, found ${good.length}`);
  return good;
}

/** A torch zip fixture, and a second fixture of another format when there is one. */
function pickFixtures() {
  const good = goodFixtures();
  const zip = good.find((f) => f.format === 'torch-zip');
  assert.ok(zip, 'no torch-zip fixture');
  // the dropped file travels into the page as base64: keep it small
  const small = good.filter((f) => f !== zip && f.size <= 1 << 20);
  const other =
    small.find((f) => f.format === 'torch-legacy') ??
    small.find((f) => f.format === 'safetensors') ??
    small[0];
  assert.ok(other, 'no second readable fixture of at most 1 MiB');
  return { zip, other };
}

/** Random bytes (not a checkpoint), with a checkpoint-like name: the name must not matter. */
function randomFile() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weightscope-e2e-'));
  const p = path.join(dir, 'random.pth');
  let bytes = crypto.randomBytes(4096);
  bytes[0] = 0x00; // never a zip/pickle/tar/safetensors signature by chance
  fs.writeFileSync(p, bytes);
  return { path: p, name: 'random.pth', size: 4096 };
}

const grouped = (n) => n.toLocaleString('en-US');

// --- page harness ---------------------------------------------------------------------------





const text = async (loc) => (await loc.textContent())?.trim() ?? '';

/** Wait until the summary card shows file `name`, then check name, size and format. */
async function expectSummary(page, fx) {
  const name = path.basename(fx.file ?? fx.path);
  await page.waitForFunction(
    (n) => document.querySelector('[data-testid="file-summary"] [data-testid="file-name"]')?.textContent === n,
    name,
    { timeout: T },
  );
  const card = testid(page, 'file-summary');
  assert.equal(await text(card.locator('[data-testid="file-name"]')), name);
  const size = card.locator('[data-testid="file-size"]');
  assert.equal(await size.getAttribute('data-bytes'), String(fx.size));
  assert.ok((await text(size)).includes(`${grouped(fx.size)} bytes`), await text(size));
  assert.equal(await text(card.locator('[data-testid="file-format"]')), fx.format);
  await testid(page, 'progress').waitFor({ state: 'detached', timeout: T });
  // The index, compared with what torch wrote.
  const counts = card.locator('[data-testid="tensor-count"]');
  assert.equal(await counts.count(), 1, 'the summary shows the tensor count');
  if (fx.inspect) {
    const expected = JSON.parse(fs.readFileSync(path.join(GEN, fx.inspect), 'utf8'));
    assert.equal(await text(counts), grouped(expected.entries.length));
    const params = expected.entries.reduce((s, e) => s + e.shape.reduce((a, b) => a * b, 1), 0);
    assert.equal(await card.locator('[data-testid="param-count"]').getAttribute('data-numel'), String(params));
    assert.ok(await card.locator('[data-testid="safety"]').isVisible());
  }
}

/** Build a DataTransfer holding `fx`'s bytes in the page and fire a real drag-and-drop. */
async function dropFile(page, fx, name) {
  const b64 = fs.readFileSync(fx.path).toString('base64');
  const dt = await page.evaluateHandle(
    ([b, n]) => {
      const bytes = Uint8Array.from(atob(b), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], n));
      return dt;
    },
    [b64, name],
  );
  const zone = testid(page, 'drop-zone');
  await zone.dispatchEvent('dragenter', { dataTransfer: dt });
  await zone.dispatchEvent('dragover', { dataTransfer: dt });
  assert.equal(await zone.evaluate((e) => e.classList.contains('dragging')), true, 'no drag styling');
  await page.screenshot({ path: path.join(ARTIFACTS, 'dragging.png') });
  await zone.dispatchEvent('drop', { dataTransfer: dt });
  assert.equal(await zone.evaluate((e) => e.classList.contains('dragging')), false);
}

// --- tests ----------------------------------------------------------------------------------

test('the page loads with an empty drop zone and a file picker', { timeout: 60_000 }, async () => {
  const { context, page, log } = await openPage(S, PAGE);
  try {
    assert.equal(await page.title(), 'weightscope');
    assert.equal(await testid(page, 'file-input').getAttribute('type'), 'file');
    assert.equal(await testid(page, 'file-input').evaluate((e) => e.multiple), true);
    const zone = await testid(page, 'drop-zone').boundingBox();
    const vp = page.viewportSize();
    assert.ok(zone.width >= vp.width && zone.height >= vp.height, 'the drop zone does not cover the window');
    assert.equal(await testid(page, 'file-summary').count(), 0);
    assert.equal(await testid(page, 'error').count(), 0);
    await page.screenshot({ path: path.join(ARTIFACTS, 'empty.png') });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.screenshot({ path: path.join(ARTIFACTS, 'empty-dark.png') });
    checkClean(S, log);
  } finally {
    await context.close();
  }
});

test('a torch file set through the file input shows name, size and format', { timeout: 60_000 }, async () => {
  const { zip } = pickFixtures();
  const { context, page, log } = await openPage(S, PAGE);
  try {
    await testid(page, 'file-input').setInputFiles(zip.path);
    await expectSummary(page, zip);
    assert.equal(await testid(page, 'error').count(), 0);
    await page.screenshot({ path: path.join(ARTIFACTS, 'detected.png') });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.screenshot({ path: path.join(ARTIFACTS, 'detected-dark.png') });
    checkClean(S, log);
  } finally {
    await context.close();
  }
});

test('a torch file delivered by a drop event shows name, size and format', { timeout: 60_000 }, async () => {
  const { other } = pickFixtures();
  const { context, page, log } = await openPage(S, PAGE);
  try {
    await dropFile(page, other, path.basename(other.file));
    await expectSummary(page, other);
    assert.equal(await testid(page, 'error').count(), 0);
    checkClean(S, log);
  } finally {
    await context.close();
  }
});

test('an unknown file shows an error, keeps the last summary, and the next file works', { timeout: 90_000 }, async () => {
  const { zip, other } = pickFixtures();
  const noise = randomFile();
  const { context, page, log } = await openPage(S, PAGE);
  try {
    const before = log.requests.length;
    await testid(page, 'file-input').setInputFiles(zip.path);
    await expectSummary(page, zip);

    await testid(page, 'file-input').setInputFiles(noise.path);
    const error = testid(page, 'error');
    await error.waitFor({ state: 'visible', timeout: T });
    const message = await text(error);
    assert.ok(message.includes('random.pth'), message);
    assert.ok(/not a PyTorch or safetensors checkpoint/.test(message), message);
    // the previous file stays shown next to the error
    assert.equal(await text(testid(page, 'file-name')), path.basename(zip.file));
    assert.equal(await testid(page, 'progress').count(), 0);
    await page.screenshot({ path: path.join(ARTIFACTS, 'error.png') });

    // the page takes the next file (by drop this time) and the error goes away
    await dropFile(page, other, path.basename(other.file));
    await expectSummary(page, other);
    assert.equal(await testid(page, 'error').count(), 0);

    // reading files made no request at all
    assert.deepEqual(log.requests.slice(before).map((r) => r.url), []);
    checkClean(S, log);
  } finally {
    await context.close();
    fs.rmSync(path.dirname(noise.path), { recursive: true, force: true });
  }
});
