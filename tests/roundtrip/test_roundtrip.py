"""Round-trip suite for `weightscope edit`: every export is checked with real torch.

Run (from the repository root, after `cargo build` and make_fixtures.py):

    ~/.cache/weightscope/venv/bin/python -m pytest -q tests/roundtrip

Inputs
- Fixtures: `$WEIGHTSCOPE_FIXTURES` (default `tests/fixtures/gen`, written by
  `tests/fixtures/make_fixtures.py`). Missing fixtures are a collection error, never a skip.
- CLI: `$WEIGHTSCOPE_BIN` (default `$CARGO_TARGET_DIR/debug/weightscope`, else
  `target/debug/weightscope`). A missing binary is a collection error, never a skip.

The rule for expected values: they come from torch (`torch.load` of the input, torch ops such as
`.to(dtype)` and `consume_prefix_in_state_dict_if_present`, `safetensors.safe_open`), or from the
fixture manifest that make_fixtures.py computed with torch. Never from weightscope. Fixture files
other than the hostile ones are our own generated files, so they may be loaded with
`weights_only=False` when torch's restricted loader refuses them (lightning.ckpt holds an
argparse.Namespace; protocol_1/4/5 use opcodes it rejects). Hostile files are never loaded with
torch: their expected tensors are the sha256 values in their `.inspect.json` (made by torch from
the benign objects). Every written output is loaded with `torch.load(out, weights_only=True)`.

Contract under test: `weightscope edit IN... -o OUT [ops...]`, ops applied in order:
`--strip-prefix P`, `--add-prefix P`, `--rename OLD=NEW`, `--replace REGEX=REPL`, `--delete REGEX`,
`--keep REGEX`, `--extract PATH`, `--cast DTYPE[:REGEX]`, `--set-metadata KEY=VALUE`. The writer
follows OUT's extension (`.pth .pt .bin .ckpt` torch zip, `.safetensors`) or `--format`. A refused
edit exits 2, prints a message and leaves nothing behind (the output directory stays empty).

Decisions this suite makes where the contract is silent (each is pinned by a test, so a different
choice shows up as a failure to discuss, not as a silent pass):
1. Comparisons are bit for bit: `t.contiguous()` viewed as uint8 (NaN payloads and -0.0 count);
   quantized tensors compare `int_repr()` plus their qparams. dtype and shape must be equal.
2. Torch-zip output of a torch input is the same object: same container types (dict/OrderedDict,
   list vs tuple, torch.Size), same key order and key types (int keys stay ints), the OrderedDict
   `_metadata` in the same order, non-tensor values equal (floats bit-exact, bytearray may become
   bytes), nn.Parameter stays a Parameter with its requires_grad, and every tensor keeps its
   storage_offset and strides. Tensors that share a storage in the input share one in the output
   and no others do (checked with `untyped_storage().data_ptr()`).
3. Inert unknown objects (argparse.Namespace in lightning.ckpt's hyper_parameters) are dropped:
   the output either lacks the dict entry or holds None there; stderr names the object. Hostile
   payload entries are likewise dropped; with the torch writer stderr mentions the dropped entry
   (`payload`); the safetensors writer drops every non-tensor value by design and need not list
   them. For hostile inputs the exit status may be 0 or 3 (dangerous input reported) but the
   output must be written.
4. safetensors output keys are the tensor's path joined by "." (a plain state dict keeps its keys;
   int keys and list indices are decimal). A root tensor (parameter.pt) has the empty path: any
   single name is accepted for it. Tensors that are the same view of one storage (same storage,
   offset, shape, strides, dtype) are written once; every other name of the group is recorded in
   `__metadata__` as `{"removed_name": "kept_name"}` (HF convention; which name is kept is not
   pinned). Different views of one storage are written as separate contiguous tensors.
   `__metadata__` always contains `format: pt` for torch inputs and the input's metadata for
   safetensors inputs; `--set-metadata` entries are added (and override).
5. dtypes the real safetensors library cannot write (complex128, complex32, quantized, bits*)
   must be refused (exit 2, named in the message) or dropped with a message naming the tensor.
   float4_e2m1fn_x2 is one the library *can* write (F4); the lead listed it as impossible, so
   either a correct F4 tensor or a refusal/drop with a message is accepted. If every tensor is
   dropped the export must be refused (exit 2), by analogy with "an op leaving no tensors is
   refused": a safetensors file with no tensors is never what the user asked for.
6. Sharded inputs are given as their index JSON (`model.safetensors.index.json`,
   `pytorch_model.bin.index.json`), like `inspect`; the output is the merged flat state dict.
   Several inputs (`IN...`, per `edit --help`: "their top-level dicts concatenated") give the
   first input's top-level dict followed by the others' entries, in order; a key present in two
   inputs is refused (exit 2) rather than silently overwritten.
7. TorchScript input (scripted.pt): the tensors are exported under their attribute paths
   (safetensors names = `torch.jit.load(f).state_dict()` keys); a torch-zip output must hold the
   same tensors at the same paths (container types not pinned).
8. big_endian.pth: the output must hold the logical values. torch itself does not swap v3
   dtypes (uint16) of a big-endian file, so the expected uint16 values are byte-swapped after
   torch.load; all expectations are cross-checked against the manifest's sha256 values.
9. Reference semantics for the ops are applied to the torch-loaded input by this file
   (`ref_*` below): patterns are Python `re.search` against the entry's own key or its
   `/`-joined path; key ops rename string keys of dicts that directly hold a tensor; prefix ops
   also rename `_metadata` module entries (strip: torch's own
   `consume_prefix_in_state_dict_if_present`; add: `""` -> prefix without its dot, `k` ->
   prefix + k); `--replace` uses Python `re.sub` with `\\1` group references; `--delete` removes
   matching dict entries of any kind; `--keep` removes non-matching tensor entries only;
   `--cast` applies `t.to(dtype)` to matching floating-point tensors only. After a cast, values
   are compared but layout is not; whether tied tensors stay tied after a cast has its own test.
10. Overflow on `--cast`: for every tensor where torch turns finite values into ±inf, some stderr
    line must contain the tensor's key and the count (computed by torch) and the word
    "overflow" or "inf".
"""
import collections
import copy
import functools
import hashlib
import json
import math
import os
import re
import shlex
import struct
import subprocess
import zipfile

import pytest
import torch
import torch.nn as nn
from safetensors import safe_open
import safetensors.torch as st

pytestmark = pytest.mark.filterwarnings("ignore")

from wsenv import BIN, FIX, manifest

MANIFEST = manifest()["fixtures"]
BY_FILE = {f["file"]: f for f in MANIFEST}
READABLE = ("torch-zip", "torch-legacy", "torch-tar", "torchscript", "safetensors", "safetensors-sharded",
            "torch-sharded")
OK_FIXTURES = [f["file"] for f in MANIFEST if f["expect"] == "ok" and f["format"] in READABLE]
HOSTILE = [f["file"] for f in MANIFEST if f["expect"] == "dangerous"]
BROKEN = [f["file"] for f in MANIFEST if f["expect"] == "error"]
WRITERS = {"torch": ".pth", "safetensors": ".safetensors"}


# ---------------------------------------------------------------------------------------------
# Running the CLI
# ---------------------------------------------------------------------------------------------

class Run:
    def __init__(self, cmd, proc, out):
        self.cmd, self.code, self.out = cmd, proc.returncode, out
        self.stdout = proc.stdout.decode("utf-8", "replace")
        self.stderr = proc.stderr.decode("utf-8", "replace")

    def __str__(self):
        return (f"\n  $ {shlex.join(self.cmd)}\n  exit {self.code}\n  stderr: "
                + self.stderr.strip().replace("\n", "\n          ")[:3000])

    def ok(self):
        assert self.code == 0, f"edit failed{self}"
        assert os.path.isfile(self.out), f"exit 0 but no output file{self}"
        return self

    def refused(self, code=2):
        assert self.code == code, f"expected a refusal with exit {code}{self}"
        assert self.stderr.strip(), f"refused without a message{self}"
        assert not os.path.exists(self.out), f"refused but {self.out} exists{self}"
        left = os.listdir(os.path.dirname(self.out))
        assert not left, f"refused but files were left behind: {left}{self}"
        return self


def fx(rel):
    return os.path.join(FIX, rel)


def edit(inputs, out, *ops):
    """Run `weightscope edit INPUTS -o OUT OPS...`; OUT's directory must start empty."""
    if isinstance(inputs, str):
        inputs = [inputs]
    os.makedirs(os.path.dirname(out), exist_ok=True)
    cmd = [BIN, "edit", *[fx(i) for i in inputs], "-o", str(out), *ops]
    proc = subprocess.run(cmd, capture_output=True, timeout=300)
    return Run(cmd, proc, str(out))


@pytest.fixture(scope="session")
def noop_runs(tmp_path_factory):
    """No-op exports, cached: several tests look at the same output."""
    base = tmp_path_factory.mktemp("noop")
    cache = {}

    def get(rel, writer):
        if (rel, writer) not in cache:
            d = base / f"{len(cache)}"
            cache[(rel, writer)] = edit(rel, str(d / ("out" + WRITERS[writer])))
        return cache[(rel, writer)]
    return get


def new_out(tmp_path, ext=".pth", name="out"):
    d = tmp_path / f"o{len(os.listdir(tmp_path))}"
    d.mkdir()
    return str(d / (name + ext))


# ---------------------------------------------------------------------------------------------
# Tensor comparison
# ---------------------------------------------------------------------------------------------

def tbytes(t: torch.Tensor) -> bytes:
    """Row-major little-endian element bytes (quantized: int_repr)."""
    t = t.detach()
    if t.is_quantized:
        t = t.int_repr()
    if t.is_conj():
        t = t.resolve_conj()
    if t.is_neg():
        t = t.resolve_neg()
    return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def sha(t):
    return hashlib.sha256(tbytes(t)).hexdigest()


def qparams(t):
    if not t.is_quantized:
        return None
    qs = t.qscheme()
    if qs in (torch.per_tensor_affine, torch.per_tensor_symmetric):
        return (str(qs), t.q_scale(), t.q_zero_point())
    return (str(qs), tbytes(t.q_per_channel_scales()), tbytes(t.q_per_channel_zero_points()),
            t.q_per_channel_axis())


# Casts only: NaN *payloads* are not compared. torch itself gives different NaN bit patterns
# for one input depending on the code path (the scalar c10 conversion gives bfloat16 0x7FC0,
# the AVX2/AVX-512 vectorised one 0xFFFF; which path an element takes depends on its position in
# the tensor). NaN positions are still compared exactly, and every non-NaN element bit for bit.
NAN_PAYLOADS_FREE = {"on": False}


class nan_payloads_free:
    def __enter__(self):
        NAN_PAYLOADS_FREE["on"] = True

    def __exit__(self, *a):
        NAN_PAYLOADS_FREE["on"] = False


def canonical_nan(t):
    if NAN_PAYLOADS_FREE["on"] and t.is_floating_point() and t.numel():
        t = t.detach().clone()
        t[t.isnan()] = float("nan")
    return t


def check_tensor(where, got, exp, layout=False):
    assert isinstance(got, torch.Tensor), f"{where}: expected a tensor, got {type(got).__name__}"
    assert got.dtype == exp.dtype, f"{where}: dtype {got.dtype}, expected {exp.dtype}"
    assert tuple(got.shape) == tuple(exp.shape), f"{where}: shape {tuple(got.shape)}, expected {tuple(exp.shape)}"
    assert qparams(got) == qparams(exp), f"{where}: qparams {qparams(got)}, expected {qparams(exp)}"
    gb, eb = tbytes(canonical_nan(got)), tbytes(canonical_nan(exp))
    if gb != eb:
        i = next(i for i in range(min(len(gb), len(eb))) if gb[i] != eb[i]) if len(gb) == len(eb) else -1
        raise AssertionError(f"{where}: bytes differ ({len(gb)} vs {len(eb)} bytes, first difference at "
                             f"byte {i}: got {gb[max(i, 0):max(i, 0) + 8].hex()} expected {eb[max(i, 0):max(i, 0) + 8].hex()})")
    if layout:
        assert got.storage_offset() == exp.storage_offset(), \
            f"{where}: storage_offset {got.storage_offset()}, expected {exp.storage_offset()}"
        assert got.stride() == exp.stride(), f"{where}: stride {got.stride()}, expected {exp.stride()}"


def fbits(x):
    return struct.pack("<d", x)


def deep_compare(got, exp, where="root", layout=True, ordered=True, md_ordered=True):
    """`got` (loaded output) equals `exp` (torch's object), as decision 2 describes."""
    if isinstance(exp, torch.Tensor):
        check_tensor(where, got, exp, layout)
        assert isinstance(got, nn.Parameter) == isinstance(exp, nn.Parameter), \
            f"{where}: {'an nn.Parameter' if isinstance(exp, nn.Parameter) else 'a plain tensor'} expected, got {type(got).__name__}"
        assert got.requires_grad == exp.requires_grad, f"{where}: requires_grad {got.requires_grad}"
        return
    if isinstance(exp, dict):
        assert isinstance(got, dict), f"{where}: expected a dict, got {type(got).__name__}"
        gk, ek = list(got.keys()), list(exp.keys())
        if (gk if ordered else sorted(map(repr, gk))) != (ek if ordered else sorted(map(repr, ek))):
            missing = [k for k in ek if k not in got][:5]
            extra = [k for k in gk if k not in exp][:5]
            raise AssertionError(f"{where}: keys differ: missing {missing}, unexpected {extra}, "
                                 f"order got {gk[:6]}... expected {ek[:6]}...")
        if isinstance(exp, collections.OrderedDict) and ordered:
            assert isinstance(got, collections.OrderedDict), f"{where}: OrderedDict became {type(got).__name__}"
        em = getattr(exp, "_metadata", None)
        if em is not None:
            gm = getattr(got, "_metadata", None)
            assert gm is not None, f"{where}: _metadata lost"
            if md_ordered:
                assert list(gm.items()) == list(em.items()), f"{where}: _metadata {gm} expected {em}"
            else:
                assert dict(gm) == dict(em), f"{where}: _metadata {dict(gm)} expected {dict(em)}"
        for k in ek:
            deep_compare(got[k], exp[k], f"{where}/{k}", layout, ordered, md_ordered)
        return
    if isinstance(exp, bytearray):
        assert isinstance(got, (bytes, bytearray)) and bytes(got) == bytes(exp), f"{where}: {got!r} != {exp!r}"
        return
    if isinstance(exp, (list, tuple)):
        assert type(got) is type(exp), f"{where}: {type(exp).__name__} became {type(got).__name__}"
        assert len(got) == len(exp), f"{where}: length {len(got)}, expected {len(exp)}"
        for i, (g, e) in enumerate(zip(got, exp)):
            deep_compare(g, e, f"{where}/{i}", layout, ordered, md_ordered)
        return
    assert type(got) is type(exp), f"{where}: {type(exp).__name__} {exp!r} became {type(got).__name__} {got!r}"
    if isinstance(exp, float):
        assert fbits(got) == fbits(exp), f"{where}: {got!r} != {exp!r} (bitwise)"
    elif isinstance(exp, complex):
        assert fbits(got.real) + fbits(got.imag) == fbits(exp.real) + fbits(exp.imag), f"{where}: {got!r} != {exp!r}"
    else:
        assert got == exp, f"{where}: {got!r} != {exp!r}"


def key_str(k):
    return k if isinstance(k, str) else str(k)


def walk(obj, path=()):
    """(path, tensor) for every tensor reachable through dicts, lists and tuples, depth first."""
    if isinstance(obj, torch.Tensor):
        yield path, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from walk(v, path + (key_str(k),))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from walk(v, path + (str(i),))


def storage_key(t):
    if t.is_quantized:
        return None
    s = t.untyped_storage()
    return (s.data_ptr(), s.nbytes()) if s.nbytes() else None


def sharing(pairs):
    """The partition of tensor paths into groups that share one storage (groups of 2+)."""
    groups = collections.defaultdict(set)
    for p, t in pairs:
        k = storage_key(t)
        if k is not None:
            groups[k].add("/".join(p))
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)


def check_sharing(got_obj, exp_obj):
    g, e = sharing(walk(got_obj)), sharing(walk(exp_obj))
    assert g == e, f"storage sharing differs:\n  got      {g}\n  expected {e}"


def alias_groups(pairs):
    """Groups of names that are the same view of one storage (safetensors writes them once)."""
    groups = collections.defaultdict(list)
    for name, t in pairs:
        k = storage_key(t)
        if k is not None:
            groups[(k, t.storage_offset(), tuple(t.shape), t.stride(), t.dtype)].append(name)
    return [g for g in groups.values() if len(g) > 1]


# ---------------------------------------------------------------------------------------------
# Expected inputs (from torch)
# ---------------------------------------------------------------------------------------------

def manifest_entries(rel):
    return json.load(open(fx(BY_FILE[rel]["inspect"]), encoding="utf-8"))["entries"]


def torch_load_trusted(path):
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except Exception:
        return torch.load(path, weights_only=False, map_location="cpu")  # our own generated fixture


def st_load(path):
    with safe_open(path, framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})


class Expected:
    """What torch says the input holds.

    obj: the loaded root object (None for TorchScript); pairs: [(path, tensor)];
    ordered: whether container order is meaningful for the torch writer; meta: safetensors
    metadata of a safetensors input.
    """

    def __init__(self, obj, pairs, ordered=True, meta=None, structured=True):
        self.obj, self.pairs, self.ordered, self.meta, self.structured = obj, pairs, ordered, meta, structured


@functools.lru_cache(maxsize=None)
def expected(rel) -> Expected:
    f = BY_FILE[rel]
    path, fmt = fx(rel), f["format"]
    if fmt == "safetensors":
        d, meta = st_load(path)
        e = Expected(d, list(walk(d)), ordered=False, meta=meta)
    elif fmt in ("safetensors-sharded", "torch-sharded"):
        merged = {}
        for shard in f["shards"]:
            part = st_load(fx(shard))[0] if fmt == "safetensors-sharded" else torch_load_trusted(fx(shard))
            assert not set(part) & set(merged)
            merged.update(part)
        weight_map = json.load(open(path))["weight_map"]
        assert set(merged) == set(weight_map), "fixture sanity: shards hold the index's tensors"
        e = Expected(merged, list(walk(merged)), ordered=False,
                     meta={"format": "pt"} if fmt == "safetensors-sharded" else None)
    elif fmt == "torchscript":
        sd = torch.jit.load(path, map_location="cpu").state_dict()
        pairs = [(tuple(k.split(".")), t) for k, t in sd.items()]
        e = Expected(None, pairs, structured=False)
    else:
        obj = torch_load_trusted(path)
        if rel == "big_endian.pth":  # torch does not swap v3 dtypes itself (decision 8)
            for k, t in list(obj.items()):
                if t.dtype in (torch.uint16, torch.uint32, torch.uint64):
                    w = t.element_size()
                    swapped = t.contiguous().view(torch.uint8).reshape(-1, w).flip(1).reshape(-1)
                    obj[k] = swapped.view(t.dtype).reshape(t.shape)
        e = Expected(obj, list(walk(obj)))
    # the expectation itself must agree with the manifest torch wrote
    want = {tuple(x["path"]): x["sha256"] for x in manifest_entries(rel)}
    have = {p: sha(t) for p, t in e.pairs}
    assert have == want, f"fixture sanity: torch's view of {rel} differs from its manifest"
    return e


# ---------------------------------------------------------------------------------------------
# Reading outputs
# ---------------------------------------------------------------------------------------------

def load_torch_out(r: Run):
    assert zipfile.is_zipfile(r.out), f"torch output is not a zip{r}"
    try:
        return torch.load(r.out, weights_only=True, map_location="cpu")
    except Exception as e:  # noqa: BLE001
        raise AssertionError(f"torch.load(weights_only=True) failed: {type(e).__name__}: {e}{r}")


def load_st_out(r: Run):
    try:
        tensors, meta = st_load(r.out)
    except Exception as e:  # noqa: BLE001
        raise AssertionError(f"safetensors.safe_open failed: {type(e).__name__}: {e}{r}")
    if r.out.endswith(".safetensors"):
        via_torch = torch.load(r.out, weights_only=True)
        assert set(via_torch) == set(tensors)
    return tensors, meta


_ST_OK = {}


def st_can_write(dtype):
    """Whether the real safetensors library writes this dtype (decision 5)."""
    if dtype not in _ST_OK:
        try:
            st.save({"x": torch.zeros(dtype.itemsize, dtype=torch.uint8).view(dtype)})
            _ST_OK[dtype] = True
        except Exception:  # noqa: BLE001
            _ST_OK[dtype] = False
    return _ST_OK[dtype]


def st_class(t):
    """'ok' | 'impossible' | 'either' for a tensor going into safetensors."""
    if t.is_quantized:
        return "impossible"
    if t.dtype == getattr(torch, "float4_e2m1fn_x2", None):
        return "either"
    return "ok" if st_can_write(t.dtype) else "impossible"


def check_st_output(r: Run, pairs, base_meta):
    """A safetensors output against expected (path, tensor) pairs (decision 4 and 5).

    Returns (tensors, metadata) of the output for further checks.
    """
    names = [(".".join(p), t) for p, t in pairs]
    assert len({n for n, _ in names}) == len(names), "test sanity: dotted names collide"
    special = [(n, t) for n, t in names if st_class(t) != "ok"]
    if r.code != 0:
        assert any(st_class(t) == "impossible" or st_class(t) == "either" for _, t in special), \
            f"export to safetensors failed though every dtype is writable{r}"
        r.refused(2)
        low = r.stderr.lower()
        assert any(n.lower() in low or str(t.dtype).removeprefix("torch.") in low for n, t in special), \
            f"refusal does not name an unwritable tensor or dtype{r}"
        return None, None
    r.ok()
    tensors, meta = load_st_out(r)
    assert tensors or not names, f"every tensor was dropped, yet an empty file was written (exit 0){r}"
    for k, v in base_meta.items():
        assert meta.get(k) == v, f"__metadata__[{k!r}] = {meta.get(k)!r}, expected {v!r} (all: {meta}){r}"
    root_tensor = len(names) == 1 and names[0][0] == ""
    if root_tensor:  # decision 4: any single name
        assert len(tensors) == 1, f"expected one tensor, got {list(tensors)}{r}"
        names = [(next(iter(tensors)), names[0][1])]
    aliases = alias_groups([(n, t) for n, t in names if st_class(t) == "ok"])
    alias_of = {}
    for g in aliases:
        kept = [n for n in g if n in tensors]
        assert len(kept) == 1, f"alias group {g}: expected exactly one written, got {kept}{r}"
        for n in g:
            if n != kept[0]:
                assert meta.get(n) == kept[0], \
                    f"alias {n!r} of {kept[0]!r} not recorded in __metadata__ ({meta}){r}"
                alias_of[n] = kept[0]
    expected_names = set()
    for n, t in names:
        cls = st_class(t)
        if cls == "impossible" or (cls == "either" and n not in tensors):
            assert n not in tensors, f"{n}: {t.dtype} cannot be in safetensors but was written{r}"
            assert n.lower() in r.stderr.lower() or "/".join(n.split(".")).lower() in r.stderr.lower(), \
                f"{n} ({t.dtype}) dropped without a message naming it{r}"
            continue
        src = alias_of.get(n, n)
        expected_names.add(src)
        assert src in tensors, f"{n}: missing from the safetensors output{r}"
        check_tensor(f"{n}", tensors[src], t)
    extra = set(tensors) - expected_names
    assert not extra, f"unexpected tensors in output: {sorted(extra)[:8]}{r}"
    return tensors, meta


def st_base_meta(rel):
    e = expected(rel)
    return dict(e.meta) if e.meta is not None else {"format": "pt"}


# ---------------------------------------------------------------------------------------------
# Reference semantics of the operations (decision 9), applied to torch-loaded objects
# ---------------------------------------------------------------------------------------------

class Refused(Exception):
    pass


def _new_dict(like, items):
    n = collections.OrderedDict(items) if isinstance(like, collections.OrderedDict) else dict(items)
    if hasattr(like, "_metadata"):
        n._metadata = collections.OrderedDict(like._metadata)
    return n


def _rebuild(o, fn):
    """Rebuild containers bottom-up with fn(dict) for dicts; tensors and leaves are reused."""
    if isinstance(o, dict):
        return fn(_new_dict(o, [(k, _rebuild(v, fn)) for k, v in o.items()]))
    if type(o) is list:
        return [_rebuild(v, fn) for v in o]
    if type(o) is tuple:
        return tuple(_rebuild(v, fn) for v in o)
    return o


def ref_rename_keys(obj, f, md=None):
    def fn(d):
        if not any(isinstance(v, torch.Tensor) for v in d.values()):
            return d
        items = [(f(k) if isinstance(k, str) else k, v) for k, v in d.items()]
        if len({k for k, _ in items}) != len(items):
            raise Refused("collision")
        n = _new_dict(d, items)
        if md is not None and hasattr(n, "_metadata"):
            n._metadata = md(n._metadata)
        return n
    return _rebuild(obj, fn)


def ref_strip(obj, p):
    def md(m):
        holder = collections.OrderedDict()
        holder._metadata = collections.OrderedDict(m)
        torch.nn.modules.utils.consume_prefix_in_state_dict_if_present(holder, p)
        return holder._metadata
    return ref_rename_keys(obj, lambda k: k[len(p):] if k.startswith(p) else k, md)


def ref_add(obj, p):
    mod = p[:-1] if p.endswith(".") else p
    md = lambda m: collections.OrderedDict(((mod if k == "" else p + k), v) for k, v in m.items())
    return ref_rename_keys(obj, lambda k: p + k, md)


def ref_replace(obj, pattern, repl):
    rx = re.compile(pattern)
    return ref_rename_keys(obj, lambda k: rx.sub(repl, k))


def _matches(rx, key, path):
    return rx.search(key) is not None or rx.search("/".join(path)) is not None


def ref_prune(obj, drop, path=()):
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            p = path + (key_str(k),)
            if not drop(key_str(k), p, v):
                items.append((k, ref_prune(v, drop, p)))
        return _new_dict(obj, items)
    if type(obj) is list:
        return [ref_prune(v, drop, path + (str(i),)) for i, v in enumerate(obj)]
    if type(obj) is tuple:
        return tuple(ref_prune(v, drop, path + (str(i),)) for i, v in enumerate(obj))
    return obj


def ref_delete(obj, pattern):
    rx = re.compile(pattern)
    return ref_prune(obj, lambda k, p, v: _matches(rx, k, p))


def ref_keep(obj, pattern):
    rx = re.compile(pattern)
    for p, _ in walk(obj):  # this suite only keeps on fixtures whose tensors are dict values
        assert _container_of(obj, p) == "dict", "test sanity: --keep reference needs dict-held tensors"
    return ref_prune(obj, lambda k, p, v: isinstance(v, torch.Tensor) and not _matches(rx, k, p))


def _container_of(obj, path):
    for s in path[:-1]:
        obj = obj[_find_key(obj, s)] if isinstance(obj, dict) else obj[int(s)]
    return "dict" if isinstance(obj, dict) else "seq"


def _find_key(d, seg):
    return next(k for k in d if key_str(k) == seg)


def ref_extract(obj, path):
    for s in path.split("/"):
        obj = obj[_find_key(obj, s)] if isinstance(obj, dict) else obj[int(s)]
    return obj


def ref_cast(obj, dtype, pattern=None, path=()):
    rx = re.compile(pattern) if pattern else None
    def go(o, path):
        if isinstance(o, torch.Tensor):
            key = path[-1] if path else ""
            if o.is_floating_point() and (rx is None or _matches(rx, key, path)):
                return o.detach().to(dtype)
            return o
        if isinstance(o, dict):
            return _new_dict(o, [(k, go(v, path + (key_str(k),))) for k, v in o.items()])
        if type(o) is list:
            return [go(v, path + (str(i),)) for i, v in enumerate(o)]
        if type(o) is tuple:
            return tuple(go(v, path + (str(i),)) for i, v in enumerate(o))
        return o
    return go(obj, path)


def overflow_counts(obj, dtype, pattern=None):
    rx = re.compile(pattern) if pattern else None
    out = {}
    for p, t in walk(obj):
        if t.is_floating_point() and (rx is None or _matches(rx, p[-1], p)):
            n = int((torch.isfinite(t.double()) & torch.isinf(t.to(dtype).double())).sum())
            if n:
                out[p[-1]] = n
    return out


def check_overflow_report(r: Run, counts):
    lines = r.stderr.splitlines()
    for key, n in counts.items():
        hit = [l for l in lines if key in l and re.search(rf"(?<![\d.]){n}(?![\d.])", l)
               and re.search(r"overflow|inf", l, re.I)]
        assert hit, f"no stderr line reports {n} overflow(s) to ±inf for {key!r}{r}"


# ---------------------------------------------------------------------------------------------
# 1. No-op export of every readable fixture with both writers
# ---------------------------------------------------------------------------------------------

DROPPED = {"lightning.ckpt": [("hyper_parameters", "hparams")]}  # decision 3


def _without(obj, parents, last, check):
    """A copy of obj (containers along the path only) without the entry parents/last."""
    if not parents:
        if check:
            assert last not in obj or obj[last] is None, f"{last!r} should have been dropped"
        return _new_dict(obj, [(k, v) for k, v in obj.items() if k != last])
    return _new_dict(obj, [(k, _without(v, parents[1:], last, check) if k == parents[0] else v)
                           for k, v in obj.items()])


def without_drops(rel, got, exp):
    for *parents, last in DROPPED.get(rel, []):
        got, exp = _without(got, parents, last, True), _without(exp, parents, last, False)
    return got, exp


@pytest.mark.parametrize("rel", OK_FIXTURES)
def test_noop_torch(rel, noop_runs):
    r = noop_runs(rel, "torch").ok()
    got = load_torch_out(r)
    e = expected(rel)
    if not e.structured:  # TorchScript (decision 7): same tensors at the same paths
        have = {p: t for p, t in walk(got)}
        assert set(have) == {p for p, _ in e.pairs}, f"paths {sorted(have)} expected {[p for p, _ in e.pairs]}{r}"
        for p, t in e.pairs:
            check_tensor("/".join(p), have[p], t)
        return
    got, exp = without_drops(rel, got, e.obj)
    try:
        deep_compare(got, exp, ordered=e.ordered, layout=e.ordered)
        check_sharing(got, exp)
    except AssertionError as ex:
        raise AssertionError(f"{ex}{r}") from None


@pytest.mark.parametrize("rel", OK_FIXTURES)
def test_noop_safetensors(rel, noop_runs):
    r = noop_runs(rel, "safetensors")
    check_st_output(r, expected(rel).pairs, st_base_meta(rel))


def test_tied_gpt2_stays_tied(noop_runs):
    got = load_torch_out(noop_runs("hf_gpt2_tiny.bin", "torch").ok())
    a, b = got["lm_head.weight"], got["transformer.wte.weight"]
    assert a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr(), "lm_head/wte no longer share storage"


def test_tied_gpt2_safetensors_alias(noop_runs):
    r = noop_runs("hf_gpt2_tiny.bin", "safetensors").ok()
    tensors, meta = load_st_out(r)
    pair = {"lm_head.weight", "transformer.wte.weight"}
    kept = pair & set(tensors)
    assert len(kept) == 1, f"expected one of {pair} written, got {kept}{r}"
    (removed,) = pair - kept
    assert meta.get(removed) == next(iter(kept)), f"__metadata__ lacks {removed!r}: {meta}{r}"


def test_shared_storage_fixture(noop_runs):
    got = load_torch_out(noop_runs("shared_storage.pth", "torch").ok())
    ptr = lambda k: got[k].untyped_storage().data_ptr()
    assert ptr("a") == ptr("a_again") == ptr("a_as_2x3")
    assert ptr("emb.weight") == ptr("head.weight") == ptr("param_itself")
    assert ptr("a") != ptr("emb.weight")
    assert isinstance(got["param_itself"], nn.Parameter)


def test_views_keep_offsets_and_strides(noop_runs):
    got = load_torch_out(noop_runs("views.pth", "torch").ok())
    exp = expected("views.pth").obj
    for k, t in exp.items():
        assert (got[k].storage_offset(), got[k].stride()) == (t.storage_offset(), t.stride()), k
        assert got[k].untyped_storage().nbytes() == t.untyped_storage().nbytes(), \
            f"{k}: storage of {got[k].untyped_storage().nbytes()} bytes, expected {t.untyped_storage().nbytes()}"
    base = got["base"].untyped_storage().data_ptr()
    for k in ("view_3x4", "row1", "transposed", "slice_5_9", "column2"):
        assert got[k].untyped_storage().data_ptr() == base, f"{k} no longer a view of base"


def test_metadata_preserved(noop_runs):
    for rel in ("tv_mobilenet_v3_small.pth", "ordered_metadata.pth", "dataparallel.pth"):
        got = load_torch_out(noop_runs(rel, "torch").ok())
        exp = expected(rel).obj
        assert isinstance(got, collections.OrderedDict), rel
        assert list(got._metadata.items()) == list(exp._metadata.items()), rel


def test_nested_values_preserved(noop_runs):
    got = load_torch_out(noop_runs("nested_values.pth", "torch").ok())
    m = got["meta"]
    assert m["big_int"] == 2 ** 70 and m["neg_int"] == -123456789012
    assert m["inf"] == math.inf and m["neg_inf"] == -math.inf and math.isnan(m["nan"])
    assert m["bytes"] == b"\x00\x01\xfe\xffabc" and bytes(m["bytearray"]) == b"xyz\x80"
    assert m["set"] == {1, 2, 3} and m["complex"] == complex(1.5, -2.0)
    assert type(m["size"]) is torch.Size and m["size"] == torch.Size([2, 3, 4])
    assert m["device"] == torch.device("cpu") and m["dtype"] is torch.float16
    assert type(m["tuple"]) is tuple and m["str"] == "héllo wörld ✓ 模型 🚀"
    assert 7 in got and -3 in got, "int keys lost"
    deep_compare(got, expected("nested_values.pth").obj)


def test_lightning_drops_namespace(noop_runs):
    r = noop_runs("lightning.ckpt", "torch").ok()
    got = load_torch_out(r)
    assert "namespace" in r.stderr.lower(), f"dropped argparse.Namespace not listed on stderr{r}"
    hp = got["hyper_parameters"]
    assert hp.get("hparams") is None and hp["lr"] == 1e-3 and hp["layers"] == [6, 16, 3]
    exp = expected("lightning.ckpt").obj
    deep_compare(got["state_dict"], exp["state_dict"])
    deep_compare(got["optimizer_states"], exp["optimizer_states"])
    deep_compare(got["callbacks"], exp["callbacks"])


def test_parameter_root(noop_runs):
    got = load_torch_out(noop_runs("parameter.pt", "torch").ok())
    exp = expected("parameter.pt").obj
    assert isinstance(got, nn.Parameter) and got.requires_grad == exp.requires_grad
    check_tensor("root", got, exp, layout=True)


@pytest.mark.parametrize("ext", [".pt", ".bin", ".ckpt"])
def test_torch_extensions(ext, tmp_path):
    r = edit("dataparallel.pth", new_out(tmp_path, ext)).ok()
    deep_compare(load_torch_out(r), expected("dataparallel.pth").obj)


def test_format_flag_overrides_extension(tmp_path):
    r = edit("dataparallel.pth", new_out(tmp_path, ".pth"), "--format", "safetensors").ok()
    assert not zipfile.is_zipfile(r.out), f"--format safetensors wrote a zip{r}"
    check_st_output(r, expected("dataparallel.pth").pairs, {"format": "pt"})
    # (torch.load hands any *.safetensors path to safetensors, so the zip gets another name)
    r = edit("st_metadata.safetensors", new_out(tmp_path, ".dat"), "--format", "torch").ok()
    got = load_torch_out(r)
    deep_compare(got, expected("st_metadata.safetensors").obj, ordered=False)
    r = edit("dataparallel.pth", new_out(tmp_path, ".weights"), "--format", "torch").ok()
    deep_compare(load_torch_out(r), expected("dataparallel.pth").obj)


def test_unknown_extension_without_format(tmp_path):
    r = edit("dataparallel.pth", new_out(tmp_path, ".weights"))
    assert r.code in (1, 2), f"no format for .weights, yet it exited {r.code}{r}"
    assert re.search(r"format|extension", r.stderr, re.I), f"message does not say the format is unknown{r}"
    assert not os.path.exists(r.out) and not os.listdir(os.path.dirname(r.out)), f"output left behind{r}"


# ---------------------------------------------------------------------------------------------
# 2. Hostile and broken inputs
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("writer", list(WRITERS))
@pytest.mark.parametrize("rel", HOSTILE)
def test_hostile_export(rel, writer, tmp_path):
    """Dangerous objects dropped; the benign tensors survive; the output loads with weights_only."""
    want = [(tuple(x["path"]), x["sha256"], x["dtype"], x["shape"]) for x in manifest_entries(rel)]
    r = edit(rel, new_out(tmp_path, WRITERS[writer]))
    if not want and r.code == 2:  # nothing but a payload: refusing is fine
        r.refused(2)
        return
    assert r.code in (0, 3), f"hostile export not written{r}"
    assert os.path.isfile(r.out), f"no output{r}"
    if want and writer == "torch":
        assert "payload" in r.stderr.lower(), f"the dropped payload entry is not listed on stderr{r}"
    if writer == "torch":
        got = load_torch_out(r)
        if isinstance(got, dict):
            assert not any("payload" in key_str(k) for k in got), f"payload entry kept: {list(got)}{r}"
        have = [(p, sha(t), str(t.dtype).removeprefix("torch."), list(t.shape)) for p, t in walk(got)]
    else:
        tensors, _ = load_st_out(r)
        have = sorted((k, sha(t), str(t.dtype).removeprefix("torch."), list(t.shape))
                      for k, t in tensors.items())
        want = sorted((".".join(p), *rest) for p, *rest in want)
    assert have == want, f"tensors {have} expected {want}{r}"


@pytest.mark.parametrize("rel", BROKEN)
def test_broken_input_refused(rel, tmp_path):
    r = edit(rel, new_out(tmp_path)).refused(2)
    needle = BY_FILE[rel]["error_contains"]
    assert needle.lower() in r.stderr.lower(), f"message lacks {needle!r}{r}"


# ---------------------------------------------------------------------------------------------
# 3. Operations
# ---------------------------------------------------------------------------------------------

def check_torch_op(r, exp_obj, layout=True, sharing_too=True):
    got = load_torch_out(r)
    try:
        deep_compare(got, exp_obj, layout=layout, md_ordered=False)
        if sharing_too:
            check_sharing(got, exp_obj)
    except AssertionError as ex:
        raise AssertionError(f"{ex}{r}") from None
    return got


def test_strip_module_prefix_dataparallel(tmp_path):
    sd = expected("dataparallel.pth").obj
    r = edit("dataparallel.pth", new_out(tmp_path), "--strip-prefix", "module.").ok()
    plain = copy.deepcopy(sd)
    torch.nn.modules.utils.consume_prefix_in_state_dict_if_present(plain, "module.")
    got = check_torch_op(r, plain)
    assert not any(k.startswith("module.") for k in got)
    deep_compare(got, ref_strip(sd, "module."), md_ordered=False)


def test_strip_prefix_to_safetensors(tmp_path):
    sd = expected("dataparallel.pth").obj
    r = edit("dataparallel.pth", new_out(tmp_path, ".safetensors"), "--strip-prefix", "module.")
    check_st_output(r, list(walk(ref_strip(sd, "module."))), {"format": "pt"})


def test_add_prefix(tmp_path):
    sd = expected("tv_mobilenet_v3_small.pth").obj
    r = edit("tv_mobilenet_v3_small.pth", new_out(tmp_path), "--add-prefix", "model.").ok()
    got = check_torch_op(r, ref_add(sd, "model."))
    assert list(got) == ["model." + k for k in sd]
    # torch's own inverse restores the original, _metadata included
    back = copy.deepcopy(got)
    torch.nn.modules.utils.consume_prefix_in_state_dict_if_present(back, "model.")
    deep_compare(back, sd, md_ordered=False)


def test_ops_apply_in_order(tmp_path):
    sd = expected("dataparallel.pth").obj
    r = edit("dataparallel.pth", new_out(tmp_path), "--strip-prefix", "module.", "--add-prefix", "model.").ok()
    got = check_torch_op(r, ref_add(ref_strip(sd, "module."), "model."))
    assert all(k.startswith("model.") and not k.startswith("model.module.") for k in got)
    r = edit("dataparallel.pth", new_out(tmp_path), "--add-prefix", "model.", "--strip-prefix", "module.").ok()
    got = check_torch_op(r, ref_strip(ref_add(sd, "model."), "module."))
    assert all(k.startswith("model.module.") for k in got)


def test_rename_keeps_tie(tmp_path):
    sd = expected("hf_gpt2_tiny.bin").obj
    r = edit("hf_gpt2_tiny.bin", new_out(tmp_path), "--rename", "lm_head.weight=output.weight").ok()
    exp = ref_rename_keys(sd, lambda k: "output.weight" if k == "lm_head.weight" else k)
    got = check_torch_op(r, exp)
    assert list(got)[-1] == "output.weight", "renamed entry moved"
    assert got["output.weight"].untyped_storage().data_ptr() == got["transformer.wte.weight"].untyped_storage().data_ptr()


def test_rename_by_full_path(tmp_path):
    ck = expected("lightning.ckpt").obj
    r = edit("lightning.ckpt", new_out(tmp_path), "--rename", "state_dict/model.0.weight=model.first.weight").ok()
    got = load_torch_out(r)
    exp_sd = ref_rename_keys(ck["state_dict"], lambda k: "model.first.weight" if k == "model.0.weight" else k)
    deep_compare(got["state_dict"], exp_sd)
    deep_compare(got["optimizer_states"], ck["optimizer_states"])


def test_replace_with_capture_group(tmp_path):
    sd = expected("tv_mobilenet_v3_small.pth").obj
    pat, repl = r"^features\.(\d+)\.", r"blocks.\1."
    r = edit("tv_mobilenet_v3_small.pth", new_out(tmp_path), "--replace", f"{pat}={repl}").ok()
    got = check_torch_op(r, ref_replace(sd, pat, repl))
    assert "blocks.12.0.weight" in got and not any(k.startswith("features.") for k in got)


def test_replace_in_lightning_after_extract(tmp_path):
    ck = expected("lightning.ckpt").obj
    pat, repl = r"^model\.(\d+)\.", r"layers.\1."
    r = edit("lightning.ckpt", new_out(tmp_path), "--extract", "state_dict", "--replace", f"{pat}={repl}").ok()
    check_torch_op(r, ref_replace(ck["state_dict"], pat, repl))


def test_delete_by_pattern(tmp_path):
    sd = expected("tv_mobilenet_v3_small.pth").obj
    r = edit("tv_mobilenet_v3_small.pth", new_out(tmp_path), "--delete", r"num_batches_tracked$").ok()
    got = check_torch_op(r, ref_delete(sd, r"num_batches_tracked$"))
    assert len(got) == len(sd) - sum(k.endswith("num_batches_tracked") for k in sd)


def test_delete_subtrees_and_values(tmp_path):
    ck = expected("lightning.ckpt").obj
    pat = r"^(optimizer_states|callbacks|loops|epoch)$"
    r = edit("lightning.ckpt", new_out(tmp_path), "--delete", pat).ok()
    got = load_torch_out(r)
    exp = ref_delete(ck, pat)
    got, exp = without_drops("lightning.ckpt", got, exp)
    deep_compare(got, exp, md_ordered=False)


def test_keep(tmp_path):
    sd = expected("tv_mobilenet_v3_small.pth").obj
    r = edit("tv_mobilenet_v3_small.pth", new_out(tmp_path), "--keep", r"^classifier\.").ok()
    got = check_torch_op(r, ref_keep(sd, r"^classifier\."))
    assert list(got) == [k for k in sd if k.startswith("classifier.")]


def test_keep_by_path_keeps_non_tensors(tmp_path):
    ck = expected("lightning.ckpt").obj
    r = edit("lightning.ckpt", new_out(tmp_path), "--keep", r"^state_dict/").ok()
    got = load_torch_out(r)
    exp = ref_keep(ck, r"^state_dict/")
    got, exp = without_drops("lightning.ckpt", got, exp)
    deep_compare(got, exp, md_ordered=False)
    assert got["epoch"] == 2 and got["callbacks"]


def test_extract_state_dict(tmp_path):
    ck = expected("lightning.ckpt").obj
    r = edit("lightning.ckpt", new_out(tmp_path), "--extract", "state_dict").ok()
    got = check_torch_op(r, ck["state_dict"])
    assert list(got._metadata.items()) == list(ck["state_dict"]._metadata.items())


def test_extract_state_dict_to_safetensors(tmp_path):
    ck = expected("lightning.ckpt").obj
    r = edit("lightning.ckpt", new_out(tmp_path, ".safetensors"), "--extract", "state_dict")
    tensors, _ = check_st_output(r, list(walk(ck["state_dict"])), {"format": "pt"})
    assert set(tensors) == set(ck["state_dict"])


def test_extract_nested_path_with_int_keys(tmp_path):
    ck = expected("lightning.ckpt").obj
    r = edit("lightning.ckpt", new_out(tmp_path), "--extract", "optimizer_states/0/state").ok()
    got = check_torch_op(r, ref_extract(ck, "optimizer_states/0/state"))
    assert list(got) == list(range(7))


def test_lightning_full_to_safetensors_names(noop_runs):
    """Without --extract, safetensors names are full dotted paths (decision 4)."""
    tensors, _ = load_st_out(noop_runs("lightning.ckpt", "safetensors").ok())
    assert "state_dict.model.0.weight" in tensors and "optimizer_states.0.state.0.exp_avg" in tensors


CAST_FIXTURES = ["dtype_zoo.pth", "stats_cases.pth"]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("rel", CAST_FIXTURES)
def test_cast(rel, dtype, tmp_path):
    dt = getattr(torch, dtype)
    obj = expected(rel).obj
    r = edit(rel, new_out(tmp_path), "--cast", dtype).ok()
    with nan_payloads_free():
        got = check_torch_op(r, ref_cast(obj, dt), layout=False, sharing_too=False)
    for k, t in obj.items():
        if not t.is_floating_point():
            check_tensor(k, got[k], t, layout=True)  # ints, bools, complex, quantized: untouched
    check_overflow_report(r, overflow_counts(obj, dt))


def test_cast_overflow_fp16_reported(tmp_path):
    obj = expected("stats_cases.pth").obj
    counts = overflow_counts(obj, torch.float16)
    assert counts.get("large_range_f32", 0) >= 1, "test sanity: a tensor with |x| > 65504"
    r = edit("stats_cases.pth", new_out(tmp_path), "--cast", "float16").ok()
    check_overflow_report(r, counts)


def test_cast_with_pattern(tmp_path):
    obj = expected("dtype_zoo.pth").obj
    pat = r"^float(32|64)$"
    r = edit("dtype_zoo.pth", new_out(tmp_path), "--cast", f"bfloat16:{pat}").ok()
    got = check_torch_op(r, ref_cast(obj, torch.bfloat16, pat), layout=False, sharing_too=False)
    assert got["float16"].dtype == torch.float16 and got["float32"].dtype == torch.bfloat16


def test_cast_to_safetensors(tmp_path):
    sd = expected("tv_mobilenet_v3_small.pth").obj
    r = edit("tv_mobilenet_v3_small.pth", new_out(tmp_path, ".safetensors"), "--cast", "float16")
    tensors, _ = check_st_output(r, list(walk(ref_cast(sd, torch.float16))), {"format": "pt"})
    assert tensors["features.0.1.num_batches_tracked"].dtype == torch.int64


def test_cast_keeps_tie(tmp_path):
    """After a cast, tied weights should still be one tensor (the lead's writer rule)."""
    sd = expected("hf_gpt2_tiny.bin").obj
    r = edit("hf_gpt2_tiny.bin", new_out(tmp_path), "--cast", "bfloat16").ok()
    got = check_torch_op(r, ref_cast(sd, torch.bfloat16), layout=False, sharing_too=False)
    assert got["lm_head.weight"].untyped_storage().data_ptr() == \
        got["transformer.wte.weight"].untyped_storage().data_ptr(), f"tie broken by the cast{r}"


def test_set_metadata(tmp_path):
    r = edit("tv_mobilenet_v3_small.pth", new_out(tmp_path, ".safetensors"),
             "--set-metadata", "note=hi there", "--set-metadata", "license=mit")
    check_st_output(r, expected("tv_mobilenet_v3_small.pth").pairs,
                    {"format": "pt", "note": "hi there", "license": "mit"})
    r = edit("st_metadata.safetensors", new_out(tmp_path, ".safetensors"), "--set-metadata", "note=bye",
             "--set-metadata", "extra=x=y")
    check_st_output(r, expected("st_metadata.safetensors").pairs, {"format": "pt", "note": "bye", "extra": "x=y"})


def test_safetensors_metadata_kept(noop_runs):
    r = noop_runs("st_metadata.safetensors", "safetensors").ok()
    _, meta = load_st_out(r)
    assert meta.get("note") == "hello" and meta.get("format") == "pt", f"{meta}{r}"


# ---------------------------------------------------------------------------------------------
# 4. Refusals: exit 2, a message, nothing written
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rel,ops", [
    ("hf_gpt2_tiny.bin", ["--rename", "lm_head.weight=transformer.wte.weight"]),
    ("tv_mobilenet_v3_small.pth", ["--replace", r"\.(weight|bias)$=.param"]),
    ("dataparallel.pth", ["--add-prefix", "a.", "--replace", r"^a\.module\.[01]\.=z."]),
    ("ordered_metadata.pth", ["--replace", r"^\d+\.=x."]),
], ids=["rename-onto-existing", "replace-merges", "add-then-replace", "replace-nested"])
def test_collision_refused(rel, ops, tmp_path):
    r = edit(rel, new_out(tmp_path), *ops).refused(2)
    assert re.search(r"collision|exist|both|duplicate|clash", r.stderr, re.I), f"message does not say why{r}"


def test_collision_sanity():
    """The cases above really collide (by the reference semantics on torch's load)."""
    with pytest.raises(Refused):
        ref_replace(expected("tv_mobilenet_v3_small.pth").obj, r"\.(weight|bias)$", ".param")
    with pytest.raises(Refused):
        ref_replace(ref_add(expected("dataparallel.pth").obj, "a."), r"^a\.module\.[01]\.", "z.")
    with pytest.raises(Refused):
        ref_replace(expected("ordered_metadata.pth").obj, r"^\d+\.", "x.")


@pytest.mark.parametrize("ops", [
    ["--delete", "("], ["--keep", "[z-a]"], ["--replace", "(?P<x=y"], ["--cast", "float16:("],
    ["--add-prefix", "m.", "--delete", "*"],
], ids=["delete", "keep", "replace", "cast", "after-valid-op"])
def test_bad_regex_refused(ops, tmp_path):
    r = edit("tv_mobilenet_v3_small.pth", new_out(tmp_path), *ops).refused(2)
    assert re.search(r"pattern|regex|regular", r.stderr, re.I), f"message does not name the pattern{r}"


@pytest.mark.parametrize("rel,ops", [
    ("tv_mobilenet_v3_small.pth", ["--delete", "."]),
    ("tv_mobilenet_v3_small.pth", ["--keep", "^no-such-key$"]),
    ("nested_values.pth", ["--extract", "meta"]),
    ("lightning.ckpt", ["--extract", "state_dict", "--delete", "weight|bias|running|loss|num_batches"]),
], ids=["delete-all", "keep-none", "extract-no-tensors", "extract-then-delete-all"])
def test_nothing_left_refused(rel, ops, tmp_path):
    r = edit(rel, new_out(tmp_path), *ops).refused(2)
    assert "tensor" in r.stderr.lower(), f"message does not say no tensors are left{r}"


@pytest.mark.parametrize("writer", list(WRITERS))
def test_missing_extract_path_refused(writer, tmp_path):
    edit("lightning.ckpt", new_out(tmp_path, WRITERS[writer]), "--extract", "no_such/path").refused(2)


@pytest.mark.parametrize("target", ["int8", "complex64", "float99"])
def test_cast_to_bad_dtype_refused(target, tmp_path):
    r = edit("dtype_zoo.pth", new_out(tmp_path), "--cast", target)
    assert r.code in (1, 2), f"cast to {target} accepted{r}"
    assert target in r.stderr, f"message does not name {target}{r}"
    assert not os.listdir(os.path.dirname(r.out)), f"output left behind{r}"


def test_impossible_safetensors_dtypes_named(tmp_path):
    """dtype_zoo to safetensors: complex128/complex32/quint8 refused or dropped with a message."""
    r = edit("dtype_zoo.pth", new_out(tmp_path, ".safetensors"))
    check_st_output(r, expected("dtype_zoo.pth").pairs, {"format": "pt"})
    assert any(k in r.stderr for k in ("complex128", "complex32", "quint8")), f"no message{r}"


# ---------------------------------------------------------------------------------------------
# 5. Several inputs (decision 6)
# ---------------------------------------------------------------------------------------------

def test_merge_two_inputs(tmp_path):
    a, b = expected("dataparallel.pth").obj, expected("ordered_metadata.pth").obj
    assert not set(a) & set(b)
    r = edit(["dataparallel.pth", "ordered_metadata.pth"], new_out(tmp_path)).ok()
    got = load_torch_out(r)
    exp = dict(list(a.items()) + list(b.items()))
    deep_compare(dict(got), exp)


def test_merge_two_inputs_to_safetensors(tmp_path):
    a, b = expected("dataparallel.pth").obj, expected("ordered_metadata.pth").obj
    r = edit(["dataparallel.pth", "ordered_metadata.pth"], new_out(tmp_path, ".safetensors"))
    check_st_output(r, list(walk(dict(list(a.items()) + list(b.items())))), {"format": "pt"})


def test_merge_duplicate_keys_refused(tmp_path):
    assert set(expected("protocol_2.pth").obj) == set(expected("bytesio.pth").obj)
    edit(["protocol_2.pth", "bytesio.pth"], new_out(tmp_path)).refused(2)
