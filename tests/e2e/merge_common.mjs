// What the Merge tab's end-to-end suites share: torch scripts that make the inputs (GEN) and
// check an output against torch's own linear merge (VERIFY), the steps that open FIRST and add
// inputs, and the copy of a file out of the Origin Private File System (`opfsCopy`; also used by
// bench/browser_merge_bench.mjs). Not a test file itself (node --test picks up *.test.mjs only).
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { PY, T, testid } from './harness.mjs';

/** Run a Python script with the torch venv; its stdout. */
export function python(script, ...args) {
  return execFileSync(PY, ['-c', script, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 26 });
}

// Writes a.pth (FIRST: float32, bfloat16, float16, int64), b.safetensors (same keys, reversed
// order, other values), bad.safetensors (one shape differs) and, with "big", two 256 MiB
// float32 checkpoints for Cancel.
export const GEN = String.raw`
import sys, os, torch
from safetensors.torch import save_file
d = sys.argv[1]
g = torch.Generator().manual_seed(7)
def sd(scale):
    s = {
        "enc.weight": torch.randn(300, 200, generator=g) * scale,
        "enc.bias": torch.randn(300, generator=g) * scale,
        "head.weight": (torch.randn(10, 300, generator=g) * scale).to(torch.bfloat16),
        "head.bias": (torch.randn(10, generator=g) * scale).to(torch.float16),
        "bn.num_batches_tracked": torch.tensor(int(scale * 100), dtype=torch.int64),
    }
    return s
a = sd(1.0)
torch.save(a, os.path.join(d, "a.pth"))
b = sd(0.5)
save_file({k: b[k].contiguous() for k in reversed(list(b))}, os.path.join(d, "b.safetensors"))
bad = dict(b)
bad["enc.bias"] = torch.zeros(301)
save_file(bad, os.path.join(d, "bad.safetensors"))
if len(sys.argv) > 2:
    for name in ("big_a.pth", "big_b.pth"):
        torch.save({f"layer{i}.weight": torch.randn(1024, 1024, generator=g) for i in range(64)}, os.path.join(d, name))
print("ok")
`;

// Checks downloaded outputs (one file, or an index + shards) against torch's linear merge.
export const VERIFY = String.raw`
import sys, json, os, zipfile, torch
from safetensors.torch import load_file
def load(p):
    if p.endswith(".safetensors"):
        return load_file(p)
    # every record's CRC-32 (data descriptor and central directory) checked by Python's zipfile
    with zipfile.ZipFile(p) as z:
        assert z.testzip() is None, f"{p}: a CRC-32 does not match"
    return torch.load(p, weights_only=True)
a = load(sys.argv[1])
b = load(sys.argv[2])
w = [float(x) for x in sys.argv[3].split(",")]
outs = sys.argv[4:]
got = {}
for o in outs:
    if o.endswith(".index.json"):
        wm = json.load(open(o))["weight_map"]
        continue
    got.update(load(o))
if len(outs) > 1:
    assert sorted(wm) == sorted(got), (sorted(wm), sorted(got))
    assert set(os.path.basename(o) for o in outs if not o.endswith(".json")) == set(wm.values())
assert sorted(got) == sorted(a), (sorted(got), sorted(a))
FLOATS = (torch.float64, torch.float32, torch.float16, torch.bfloat16)
s = sum(w)
for k, f in a.items():
    o = got[k]
    assert o.dtype == f.dtype and o.shape == f.shape, k
    if f.dtype in FLOATS:
        e = ((w[0] / s) * f.double() + (w[1] / s) * b[k].double()).to(f.dtype)
        assert torch.equal(o.view(torch.int16 if o.element_size() == 2 else torch.int32), e.view(torch.int16 if e.element_size() == 2 else torch.int32)), f"{k}: {(o.double() - e.double()).abs().max()}"
    else:
        assert torch.equal(o, f), f"{k} is not FIRST's"
rel = {k: ((((w[0] / s) * f.double() + (w[1] / s) * b[k].double()).to(f.dtype).double() - f.double()).norm() / f.double().norm()).item() for k, f in a.items() if f.dtype in FLOATS}
print("ok", len(got), json.dumps(rel))
`;

export async function openFirst(page, file) {
  await testid(page, 'file-input').setInputFiles(file);
  await page.getByRole('tab', { name: 'Merge' }).click();
  await page.waitForFunction(
    (n) => document.querySelector('[data-testid="merge-first"]')?.textContent?.includes(n),
    path.basename(file),
    { timeout: T },
  );
}

export async function addInputs(page, files, count) {
  await testid(page, 'merge-input').setInputFiles(files);
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid="merge-inputs"] li').length === n, count, { timeout: T });
}

/** Copy OPFS file `parts` (folders…, file) to `dest`, 8 MiB at a time. */
export async function opfsCopy(page, parts, dest) {
  const fd = fs.openSync(dest, 'w');
  try {
    for (let at = 0; ; ) {
      const b64 = await page.evaluate(async ([parts, at]) => {
        let d = await navigator.storage.getDirectory();
        for (const p of parts.slice(0, -1)) d = await d.getDirectoryHandle(p);
        const f = await (await d.getFileHandle(parts[parts.length - 1])).getFile();
        const bytes = new Uint8Array(await f.slice(at, at + (8 << 20)).arrayBuffer());
        let s = '';
        for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
        return btoa(s);
      }, [parts, at]);
      const buf = Buffer.from(b64, 'base64');
      if (buf.length === 0) break;
      fs.writeSync(fd, buf);
      at += buf.length;
    }
  } finally {
    fs.closeSync(fd);
  }
  return dest;
}
