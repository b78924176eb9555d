#!/usr/bin/env python3
"""Generate the malformed-input corpus: damaged, absurd and adversarial checkpoints that every
reader must refuse cleanly (one-line error, exit 2) or read, in bounded time and memory — never
crash.

Usage: make_malformed.py OUT_DIR   (writes OUT_DIR/*.{pth,pt,safetensors,json} + manifest.json)

Standard library only and deterministic (fixed seeds): the same files on every run. The files are
built byte by byte (our own zip writer, pickles emitted opcode by opcode) so that every damage is
exactly the one named. Each manifest entry says what the CLI must do with the file:

  "error": `inspect --json` and `stats --json` both exit 2 with one line naming the file;
           `contains` (optional) must appear in that line.
  "any":   exit 0, 2 or 3 (damage that may leave a readable file, e.g. a flipped bit inside
           tensor bytes, which `inspect` never reads) — still no crash, hang or memory blow-up.
  "ok":    both commands exit 0 (or 3 when `dangerous` is set).
  "dangerous": both exit 3: the file is refused (`contains` says why) and a pickle it holds
           would run `os.system` under torch.load, which the report names.

Classes (the `class` field): truncation at every structural boundary of a torch zip, a legacy
stream and a safetensors file; bit flips; bad CRC-32s; duplicate, case-colliding, overlapping and
ambiguous zip entries; zip bombs and lying sizes; absurd shapes, strides, offsets and counts;
deep nesting and self-reference; memory-budget attacks (one large value referenced many times);
superlinear-work attacks (many globals, huge decimal literals, huge ints, very long dotted keys);
safetensors header attacks; sharded-index attacks.
"""

import json
import os
import random
import struct
import sys
import zlib

# ---------------------------------------------------------------------------------------------
# pickle emission (protocol 2 unless said otherwise)

PROTO2 = b"\x80\x02"


def uni(s):
    # BINUNICODE, as torch's protocol-2 pickles (its weights_only unpickler lacks SHORT_BINUNICODE)
    b = s.encode("utf-8")
    return b"X" + struct.pack("<I", len(b)) + b


def binunicode(s):
    b = s.encode("utf-8")
    return b"X" + struct.pack("<I", len(b)) + b


def glob(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def intop(v):
    if 0 <= v < 256:
        return b"K" + bytes([v])
    if -(2**31) <= v < 2**31:
        return b"J" + struct.pack("<i", v)
    n = (v.bit_length() + 8) // 8
    return b"\x8a" + bytes([n]) + v.to_bytes(n, "little", signed=True)


def tup(items):
    return b"(" + b"".join(items) + b"t"


def storage_pid(key, numel, cls="FloatStorage"):
    # ('storage', torch.FloatStorage, key, 'cpu', numel) → BINPERSID
    return tup([uni("storage"), glob("torch", cls), uni(key), uni("cpu"), intop(numel)]) + b"Q"


def rebuild(pid, offset, shape, stride):
    return (
        glob("torch._utils", "_rebuild_tensor_v2")
        + tup(
            [
                pid,
                intop(offset),
                tup([intop(s) for s in shape]),
                tup([intop(s) for s in stride]),
                b"\x89",  # False
                glob("collections", "OrderedDict") + b")R",
            ]
        )
        + b"R"
    )


def state_dict(entries):
    """entries: [(key, tensor_pickle_bytes)] → an OrderedDict pickle (protocol 2)."""
    body = glob("collections", "OrderedDict") + b")R"
    if entries:
        body += b"(" + b"".join(uni(k) + v for k, v in entries) + b"u"
    return PROTO2 + body + b"."


def f32(values):
    return b"".join(struct.pack("<f", v) for v in values)


# ---------------------------------------------------------------------------------------------
# zip emission (stored records, full control of every field)


def zip_bytes(records, *, central=None, eocd_count=None, cd_offset_delta=0, comment=b""):
    """records: [dict(name, data, crc=None, method=0, size=None, csize=None, extra=b'')].
    `central` (optional) lists (record index, overrides) for the central directory, so entries can
    be duplicated, reordered or pointed elsewhere; by default one entry per record."""
    out = bytearray()
    offsets = []
    for r in records:
        data = r["data"]
        name = r["name"].encode("utf-8")
        crc = r.get("crc", zlib.crc32(data) & 0xFFFFFFFF)
        size = r.get("size", len(r.get("raw", data)))
        csize = r.get("csize", len(data))
        offsets.append(len(out))
        out += struct.pack(
            "<IHHHHHIIIHH", 0x04034B50, 20, 0, r.get("method", 0), 0, 0, crc, csize, size,
            len(name), 0,
        )
        out += name + data
    cd_start = len(out)
    entries = central if central is not None else [(i, {}) for i in range(len(records))]
    for i, ov in entries:
        r = records[i]
        data = r["data"]
        name = ov.get("name", r["name"]).encode("utf-8")
        crc = ov.get("crc", r.get("crc", zlib.crc32(data) & 0xFFFFFFFF))
        size = ov.get("size", r.get("size", len(r.get("raw", data))))
        csize = ov.get("csize", r.get("csize", len(data)))
        off = ov.get("offset", offsets[i])
        extra = ov.get("extra", b"")
        out += struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, r.get("method", 0), 0, 0, crc, csize,
            size, len(name), len(extra), 0, 0, 0, 0, off,
        )
        out += name + extra
    cd_size = len(out) - cd_start
    n = len(entries) if eocd_count is None else eocd_count
    out += struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, n & 0xFFFF, n & 0xFFFF, cd_size,
        (cd_start + cd_offset_delta) & 0xFFFFFFFF, len(comment),
    )
    out += comment
    return bytes(out)


def torch_zip(pkl, storages, prefix="archive/", extra_records=()):
    recs = [dict(name=prefix + "data.pkl", data=pkl), dict(name=prefix + "byteorder", data=b"little")]
    for key, data in storages:
        recs.append(dict(name=prefix + "data/" + key, data=data))
    recs.append(dict(name=prefix + "version", data=b"3\n"))
    recs.extend(extra_records)
    return zip_bytes(recs), recs


# ---------------------------------------------------------------------------------------------
# the base files every damage starts from

W = rebuild(storage_pid("0", 6), 0, (2, 3), (3, 1))
B = rebuild(storage_pid("1", 3), 0, (3,), (1,))
TIED = rebuild(storage_pid("0", 6), 2, (2, 2), (1, 2))
BASE_PKL = state_dict([("layer.weight", W), ("layer.bias", B), ("tied.view", TIED)])
BASE_STORAGES = [("0", f32([1, 2, 3, 4, 5, 6])), ("1", f32([0.5, -0.5, 0.25]))]


def legacy_bytes(obj_pickle, storages):
    """A legacy stream: magic, protocol 1001, sys_info, the object, the storage keys, raw data."""
    magic = PROTO2 + b"\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little") + b"."
    proto = PROTO2 + b"M" + struct.pack("<H", 1001) + b"."
    sysinfo = PROTO2 + b"}(" + uni("little_endian") + b"\x88u."
    keys = PROTO2 + b"(" + b"".join(uni(k) for k, _ in storages) + b"l."
    out = magic + proto + sysinfo + obj_pickle + keys
    for _, data in storages:
        out += struct.pack("<q", len(data) // 4) + data
    return out


def legacy_pid(key, numel):
    return tup([uni("storage"), glob("torch", "FloatStorage"), uni(key), uni("cpu"), intop(numel),
                b"N"]) + b"Q"


LEGACY_OBJ = state_dict([("w", rebuild(legacy_pid("10", 6), 0, (2, 3), (3, 1)))])


def safetensors_bytes(header, data, *, raw_header=None, length=None):
    h = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    n = len(h) if length is None else length
    return struct.pack("<Q", n) + h + data


ST_HEADER = {
    "a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
    "b": {"dtype": "F32", "shape": [3], "data_offsets": [24, 36]},
    "__metadata__": {"format": "pt"},
}
ST_DATA = f32([1, 2, 3, 4, 5, 6, 0.5, -0.5, 0.25])


# ---------------------------------------------------------------------------------------------


class Corpus:
    def __init__(self, out):
        self.out = out
        self.entries = []
        os.makedirs(out, exist_ok=True)

    def add(self, name, data, cls, expect="error", contains=None, files=None):
        path = os.path.join(self.out, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        for extra_name, extra in (files or {}).items():
            with open(os.path.join(os.path.dirname(path), extra_name), "wb") as f:
                f.write(extra)
        e = {"file": name, "class": cls, "expect": expect}
        if contains:
            e["contains"] = contains
        self.entries.append(e)

    def write_manifest(self):
        with open(os.path.join(self.out, "manifest.json"), "w") as f:
            json.dump({"files": self.entries}, f, indent=1)


def opcode_boundaries(pkl):
    """Offsets of every opcode in a pickle (a tiny scanner for the opcodes we emit)."""
    import pickletools

    return [pos for _, _, pos in pickletools.genops(pkl)]


def gen_truncations(c):
    base, recs = torch_zip(BASE_PKL, BASE_STORAGES)
    # every zip structure boundary: local headers, names, data, central entries, EOCD fields
    cuts = set()
    pos = 0
    for r in recs:
        cuts.update([pos, pos + 4, pos + 30, pos + 30 + len(r["name"]), pos + 30 + len(r["name"]) + len(r["data"]) // 2])
        pos += 30 + len(r["name"]) + len(r["data"])
    cd = pos
    for r in recs:
        cuts.update([pos, pos + 20, pos + 46])
        pos += 46 + len(r["name"])
    cuts.update([pos, pos + 10, pos + 21])
    cuts.update(range(len(base) - 22, len(base)))  # inside the EOCD, byte by byte
    cuts.update(range(0, len(base), max(1, len(base) // 40)))
    for n in sorted(x for x in cuts if 0 <= x < len(base)):
        c.add(f"trunc/zip_{n:05d}.pth", base[:n], "truncation")
    del cd
    # data.pkl cut at every opcode boundary, re-zipped with a correct CRC (the VM meets the end)
    for n in opcode_boundaries(BASE_PKL)[1:]:
        z, _ = torch_zip(BASE_PKL[:n], BASE_STORAGES)
        c.add(f"trunc/pkl_{n:04d}.pth", z, "truncation", contains="data.pkl")
    # storage records cut short (directory consistent): the size check names the record
    for cut in (0, 1, 4, 23):
        z, _ = torch_zip(BASE_PKL, [("0", BASE_STORAGES[0][1][:cut]), BASE_STORAGES[1]])
        c.add(f"trunc/storage_{cut:02d}.pth", z, "truncation", contains="data/0")
    # legacy stream cut at every pickle and storage boundary, and inside each
    leg = legacy_bytes(LEGACY_OBJ, [("10", f32([1, 2, 3, 4, 5, 6]))])
    bounds = set(range(0, len(leg), 7))
    for n in sorted(bounds):
        if n > 16:  # shorter prefixes are not recognised as legacy streams at all
            c.add(f"trunc/legacy_{n:04d}.pt", leg[:n], "truncation")
    # safetensors: the length, the header, the data
    st = safetensors_bytes(ST_HEADER, ST_DATA)
    for n in sorted(set(list(range(0, 12)) + list(range(12, len(st), 5)))):
        c.add(f"trunc/st_{n:04d}.safetensors", st[:n], "truncation")


def gen_bitflips(c):
    rng = random.Random(12)
    base, _ = torch_zip(BASE_PKL, BASE_STORAGES)
    for i in range(60):
        b = bytearray(base)
        for _ in range(1 + i % 3):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        c.add(f"flip/zip_{i:03d}.pth", bytes(b), "bit flip", expect="any")
    leg = legacy_bytes(LEGACY_OBJ, [("10", f32([1, 2, 3, 4, 5, 6]))])
    for i in range(30):
        b = bytearray(leg)
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        c.add(f"flip/legacy_{i:03d}.pt", bytes(b), "bit flip", expect="any")
    st = safetensors_bytes(ST_HEADER, ST_DATA)
    for i in range(30):
        b = bytearray(st)
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        c.add(f"flip/st_{i:03d}.safetensors", bytes(b), "bit flip", expect="any")
    # opcode bytes replaced inside data.pkl (CRC kept right: the pickle itself is damaged)
    ops = opcode_boundaries(BASE_PKL)
    for i in range(40):
        p = bytearray(BASE_PKL)
        p[ops[rng.randrange(len(ops))]] = rng.choice(b"()tlduRQbsaeKJMNX\x8c\x93\x94\x85\x86\x87.0123")
        z, _ = torch_zip(bytes(p), BASE_STORAGES)
        c.add(f"flip/pkl_{i:03d}.pth", z, "bit flip", expect="any")


def gen_crc(c):
    _, recs = torch_zip(BASE_PKL, BASE_STORAGES)
    for i, r in enumerate(recs):
        rs = [dict(x) for x in recs]
        rs[i]["crc"] = (zlib.crc32(r["data"]) ^ 0x5A5A5A5A) & 0xFFFFFFFF
        name = r["name"].replace("/", "_")
        # a bad CRC on a record that is read at open (data.pkl, byteorder, version) fails both
        # commands; on a tensor record, `inspect` never reads the bytes but `stats` does
        c.add(f"crc/{name}.pth", zip_bytes(rs), "bad crc",
              expect="error" if "data/" not in r["name"] else "any")


def gen_zip_structure(c):
    _, recs = torch_zip(BASE_PKL, BASE_STORAGES)
    n = len(recs)
    evil = state_dict([("x", glob("os", "system") + b"(" + uni("echo") + b"tR")])
    # duplicate data.pkl: harmless first / dangerous first
    for order, (first, second) in enumerate([(BASE_PKL, evil), (evil, BASE_PKL)]):
        rs = [dict(name="archive/data.pkl", data=first)] + recs[1:] + [dict(name="archive/data.pkl", data=second)]
        c.add(f"zip/dup_datapkl_{order}.pth", zip_bytes(rs), "duplicate entry", contains="duplicate")
    # duplicate storage record with different bytes
    rs = recs + [dict(name="archive/data/0", data=f32([9, 9, 9, 9, 9, 9]))]
    c.add("zip/dup_storage.pth", zip_bytes(rs), "duplicate entry", contains="duplicate")
    # the same record listed twice in the central directory
    c.add("zip/dup_central.pth", zip_bytes(recs, central=[(i, {}) for i in range(n)] + [(0, {})]),
          "duplicate entry", contains="duplicate")
    # names that differ only in case
    for nm in ("archive/DATA.pkl", "archive/Data/0", "ARCHIVE/data.pkl", "archive/Version"):
        rs = recs + [dict(name=nm, data=BASE_PKL if nm.endswith(".pkl") else b"3\n")]
        c.add(f"zip/case_{nm.replace('/', '_')}.pth", zip_bytes(rs), "case collision", contains="case")
    # more than one candidate data.pkl (different prefixes)
    for i, other in enumerate(["other/data.pkl", "data.pkl", "archive/sub/data.pkl", "a/b/data.pkl"]):
        rs = recs + [dict(name=other, data=evil)]
        # refused as ambiguous, and every candidate is scanned: the evil one makes it dangerous
        c.add(f"zip/two_datapkl_{i}.pth", zip_bytes(rs), "ambiguous data.pkl", expect="dangerous",
              contains="more than one data.pkl")
        rs = [dict(name=other, data=evil)] + recs
        c.add(f"zip/two_datapkl_first_{i}.pth", zip_bytes(rs), "ambiguous data.pkl",
              expect="dangerous", contains="more than one data.pkl")
    # overlapping entries: two central entries pointing at the same local header, under two names
    c.add("zip/overlap_same_header.pth",
          zip_bytes(recs, central=[(i, {}) for i in range(n)] + [(2, {"name": "archive/data/7"})]),
          "overlapping entries", expect="any")
    # storage record's central entry pointing at data.pkl's header (sizes disagree)
    c.add("zip/overlap_pointed.pth",
          zip_bytes(recs, central=[(i, {"offset": 0} if i == 2 else {}) for i in range(n)]),
          "overlapping entries", expect="any")
    # central directory offsets and counts that lie
    for k, (cnt, delta) in enumerate([(0xFFFF, 0), (n + 1, 0), (n, 1), (n, -1), (n, 0x7FFFFFFF), (n, -46)]):
        c.add(f"zip/eocd_lies_{k}.pth", zip_bytes(recs, eocd_count=cnt, cd_offset_delta=delta), "eocd lies")
    # local header offsets past the end / negative-looking
    for k, off in enumerate([0xFFFFFFFF, 0x7FFFFFFF, 1, 3]):
        ov = [(i, {"offset": off} if i == 0 else {}) for i in range(n)]
        c.add(f"zip/bad_local_{k}.pth", zip_bytes(recs, central=ov), "bad local header")
    # sizes that lie in the central directory (huge / zip64 markers without an extra field)
    for k, size in enumerate([0xFFFFFFFF, 0xFFFFFFFE, 1 << 31, 10**9]):
        ov = [(i, {"size": size, "csize": size} if i == 0 else {}) for i in range(n)]
        c.add(f"zip/size_lies_{k}.pth", zip_bytes(recs, central=ov), "size lies")
    # zip64 extra field with absurd values
    for k, val in enumerate([2**64 - 1, 2**63, 2**40]):
        extra = struct.pack("<HHQQQ", 1, 24, val, val, val)
        ov = [(i, {"size": 0xFFFFFFFF, "csize": 0xFFFFFFFF, "offset": 0xFFFFFFFF, "extra": extra}
               if i == 2 else {}) for i in range(n)]
        c.add(f"zip/zip64_absurd_{k}.pth", zip_bytes(recs, central=ov), "zip64 absurd")
    # zip bombs: a deflated data.pkl / storage that inflates to far more than it says
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = bomb.compress(b"\x00" * (64 << 20)) + bomb.flush()
    for k, (target, claimed) in enumerate([(0, 1 << 30), (0, 100), (2, 24), (2, 1 << 40)]):
        rs = [dict(x) for x in recs]
        rs[target] = dict(name=recs[target]["name"], data=payload, method=8, size=claimed & 0xFFFFFFFF,
                          crc=0x12345678)
        c.add(f"zip/bomb_{k}.pth", zip_bytes(rs), "zip bomb", expect="any")
    # a comment that hides a fake EOCD, EOCD-only file, garbage between records
    c.add("zip/eocd_only.pth", struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0, 0, 0, 0, 0), "empty zip")
    fake = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 5, 5, 1000, 10**6, 0)
    c.add("zip/comment_fake_eocd.pth", zip_bytes(recs, comment=fake), "eocd lies", expect="any")
    # a record named with NUL / .. / absolute paths
    for k, nm in enumerate(["archive/data/0\x00x", "../archive/data.pkl", "/archive/data.pkl"]):
        rs = recs + [dict(name=nm, data=b"x")]
        c.add(f"zip/odd_name_{k}.pth", zip_bytes(rs), "odd names", expect="any")
    # compressed data.pkl (method 8, honest)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    cp = comp.compress(BASE_PKL) + comp.flush()
    rs = [dict(name="archive/data.pkl", data=cp, method=8, size=len(BASE_PKL),
               crc=zlib.crc32(BASE_PKL) & 0xFFFFFFFF)] + recs[1:]
    c.add("zip/deflated_datapkl.pth", zip_bytes(rs), "compressed", expect="any")
    # byteorder / version garbage
    for k, (nm, data) in enumerate([("archive/byteorder", b"middle"), ("archive/byteorder", b"\xff" * 4000),
                                    ("archive/version", b"x" * 100000)]):
        rs = [dict(x) for x in recs]
        for r in rs:
            if r["name"] == nm:
                r["data"] = data
        c.add(f"zip/record_garbage_{k}.pth", zip_bytes(rs), "bad records")


def gen_absurd_numbers(c):
    big = [2**31 - 1, 2**32, 2**59, 2**62, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 2**100, -1, -(2**63)]
    k = 0

    def add(name, pkl, storages=BASE_STORAGES, contains=None, expect="error"):
        nonlocal k
        z, _ = torch_zip(pkl, storages)
        c.add(f"absurd/{k:03d}_{name}.pth", z, "absurd numbers", contains=contains, expect=expect)
        k += 1

    # shapes whose element count overflows / exceeds the storage
    for v in big:
        add("shape", state_dict([("w", rebuild(storage_pid("0", 6), 0, (v, 4), (4, 1)))]))
        add("shape3", state_dict([("w", rebuild(storage_pid("0", 6), 0, (v, v, v), (1, 1, 1)))]))
    # strides that reach outside the storage (torch: "out of bounds for storage")
    for v in big:
        add("stride", state_dict([("w", rebuild(storage_pid("0", 6), 0, (2,), (v,)))]))
        add("stride2", state_dict([("w", rebuild(storage_pid("0", 6), 0, (2, 3), (v, 1)))]))
    add("stride_2_59", state_dict([("w", rebuild(storage_pid("s", 2), 0, (2,), (2**59,)))]),
        storages=[("s", f32([1, 2]))], contains="w")
    # offsets
    for v in big:
        add("offset", state_dict([("w", rebuild(storage_pid("0", 6), v, (2,), (1,)))]))
        # an empty view may have any offset (torch checks nothing when there are no elements)
        if v >= 0:
            add("offset0", state_dict([("w", rebuild(storage_pid("0", 6), v, (0,), (1,)))]), expect="any")
    # storage element counts that overflow bytes / disagree with the record
    for v in big:
        add("numel", state_dict([("w", rebuild(storage_pid("0", v), 0, (2,), (1,)))]))
    # many dimensions, huge dims lists
    add("dims_1000", state_dict([("w", rebuild(storage_pid("0", 6), 0, (1,) * 1000, (1,) * 1000))]), expect="any")
    add("dims_mismatch", state_dict([("w", rebuild(storage_pid("0", 6), 0, (2, 3), (1,)))]))
    add("shape_float", state_dict([("w", rebuild(storage_pid("0", 6), 0, (), ()).replace(b"(t", b"(G" + struct.pack(">d", 2.5) + b"t", 1))]))
    # a storage referenced with two sizes; an unknown storage class; a missing record
    add("two_sizes", state_dict([("a", rebuild(storage_pid("0", 6), 0, (6,), (1,))),
                                 ("b", rebuild(storage_pid("0", 7), 0, (6,), (1,)))]))
    add("missing_record", state_dict([("a", rebuild(storage_pid("42", 6), 0, (6,), (1,)))]))
    add("bad_storage_cls", state_dict([("a", rebuild(storage_pid("0", 6, "NoSuchStorage"), 0, (6,), (1,)))]),
        contains=None)
    # legacy streams: absurd raw counts, views past their root
    for v in [2**62, 2**63 - 1, -5, 7, 2**61 + 1]:
        leg = legacy_bytes(LEGACY_OBJ, [("10", f32([1, 2, 3, 4, 5, 6]))])
        head = leg[: len(leg) - 24 - 8]
        c.add(f"absurd/legacy_count_{k:03d}.pt", head + struct.pack("<q", v) + f32([1, 2, 3, 4, 5, 6]),
              "absurd numbers")
        k += 1
    for v in big[:9]:
        obj = state_dict([("w", rebuild(legacy_pid("10", v), 0, (2,), (1,)))])
        c.add(f"absurd/legacy_numel_{k:03d}.pt", legacy_bytes(obj, [("10", f32([1, 2, 3, 4, 5, 6]))]),
              "absurd numbers")
        k += 1
        view_pid = tup([uni("storage"), glob("torch", "FloatStorage"), uni("11"), uni("cpu"), intop(4),
                        tup([uni("10"), intop(v), intop(4)])]) + b"Q"
        obj = state_dict([("w", rebuild(legacy_pid("10", 6), 0, (2,), (1,))),
                          ("v", rebuild(view_pid, 0, (4,), (1,)))])
        c.add(f"absurd/legacy_view_{k:03d}.pt", legacy_bytes(obj, [("10", f32([1, 2, 3, 4, 5, 6]))]),
              "absurd numbers")
        k += 1


def gen_expanded(c):
    # zero-stride views: logical sizes far beyond the storage. They are valid (torch loads them),
    # so both commands must answer — quickly, from the storage's distinct elements.
    for k, (shape, stride) in enumerate([((2**40,), (0,)), ((2**20, 2**20), (0, 0)), ((2**31, 3), (0, 1)),
                                         ((2**50,), (0,)), ((2**62,), (0,))]):
        pkl = state_dict([("e", rebuild(storage_pid("z", 3), 0, shape, stride))])
        z, _ = torch_zip(pkl, [("z", f32([0, 1, 2]))])
        # 2**62 float32 elements are 2**64 bytes: past what a byte count can hold
        c.add(f"expand/expand_{k}.pth", z, "expanded view", expect="ok" if k < 4 else "error")


def gen_nesting(c):
    def add(name, body, expect="error", contains=None):
        z, _ = torch_zip(PROTO2 + body + b".", BASE_STORAGES)
        c.add(f"deep/{name}.pth", z, "deep nesting", expect=expect, contains=contains)

    add("tuple1_1e6", b"N" + b"\x85" * 1_000_000, contains="nesting deeper")
    add("tuple1_256", b"N" + b"\x85" * 256, contains="nesting deeper than 256")
    add("tuple1_255", b"N" + b"\x85" * 255, expect="ok")
    add("list_marks_1e5", b"(" * 100_000 + b"l" * 100_000, contains="nesting deeper")
    add("empty_list_append_3e5", b"]" + b"]" * 300_000 + b"a" * 300_000, contains="nesting deeper")
    add("dict_setitem_2e5", (b"}" + uni("k")) * 200_000 + b"N" + b"s" * 200_000, contains="nesting deeper")
    # depth built by mutation after memoization (each list appended into the previous one)
    n = 50_000
    body = b"".join(b"]r" + struct.pack("<I", i) for i in range(n)) + b"0" * n
    body += b"".join(b"j" + struct.pack("<I", i) + b"j" + struct.pack("<I", i + 1) + b"a0" for i in range(n - 1))
    body += b"j" + struct.pack("<I", 0)
    add("mutation_chain_5e4", body, contains="nesting deeper")
    # a list that contains itself; a _rebuild_ call whose argument list contains itself
    add("self_list", b"]q\x00h\x00a", expect="ok")
    self_args = (
        glob("torch._utils", "_rebuild_tensor_v2") + b"]q\x00" + b"h\x00a" + b"h\x00" + b"\x85R"
    )
    add("rebuild_args_self", b"}" + uni("w") + self_args + b"s", expect="any")
    self_args2 = (glob("torch._utils", "_rebuild_tensor_v2") + b"(]q\x00h\x00ah\x00tq\x01h\x01R")
    add("rebuild_args_self_tuple", b"}" + uni("w") + self_args2 + b"s", expect="any")
    # deep nesting inside a tensor's arguments (the size tuple) and inside an inert object's state
    deep = b"N" + b"\x85" * 5000
    add("deep_in_shape", b"}" + uni("w") + rebuild(storage_pid("0", 6), 0, (2,), (1,)).replace(
        b"(K\x02t", b"(" + deep + b"t", 1) + b"s", expect="error")
    add("deep_in_object_state", glob("argparse", "Namespace") + b")\x81" + b"}" + uni("x") + deep + b"sb",
        contains="nesting deeper")
    add("deep_set", b"(" * 2000 + b"N" + b"\x91" * 2000, expect="error")
    add("deep_obj_args", (glob("argparse", "Namespace")) * 3000 + b"N" + b"\x85\x81" * 3000,
        contains="nesting deeper")


def gen_budget(c):
    def add(name, body, expect="error", contains=None):
        z, _ = torch_zip(PROTO2 + body + b".", BASE_STORAGES)
        c.add(f"budget/{name}.pth", z, "memory budget", expect=expect, contains=contains)

    mib = b"\x00" * (1 << 20)
    ba = glob("builtins", "bytearray") + b"(B" + struct.pack("<I", len(mib)) + mib + b"tR"
    # a 1 MiB bytearray referenced 50,000 times through the memo
    add("bytearray_memo_50000", ba + b"q\x00" + b"(" + b"h\x00" * 50_000 + b"l", contains="budget")
    add("bytes_memo_50000", b"B" + struct.pack("<I", len(mib)) + mib + b"q\x00(" + b"h\x00" * 50_000 + b"l",
        contains="budget")
    add("str_memo_50000", binunicode("x" * (1 << 20)) + b"q\x00(" + b"h\x00" * 50_000 + b"l",
        contains="budget")
    # a dict key of 1 MiB used under 50,000 paths (per-path strings)
    add("key_paths", b"}" + binunicode("k" * (1 << 20)) + b"Ns" + b"q\x00(" + b"h\x00" * 50_000 + b"l",
        contains="budget")
    # BUILD state copies: one 1 MiB state dict applied to 50,000 dicts
    state = b"}" + b"(" + uni("s") + binunicode("y" * (1 << 20)) + b"u" + b"q\x00"
    add("build_state_copies", state + b"0" + b"(" + (b"}h\x00b") * 50_000 + b"l", contains="budget")
    # inert objects whose arguments are the same big list
    add("inert_args", b"(" + b"B" + struct.pack("<I", len(mib)) + mib + b"lq\x00" + b"0(" +
        (glob("argparse", "Namespace") + b"h\x00\x85R") * 20_000 + b"l", contains="budget")
    # a set / frozenset of the same large value many times
    add("frozenset_memo", b"B" + struct.pack("<I", len(mib)) + mib + b"q\x00(" + b"h\x00" * 50_000 + b"\x91",
        contains="budget")
    # a doubling chain: each list holds the previous one twice (2^40 paths)
    body = b"]q\x00"
    for i in range(40):
        body += b"(h" + bytes([i]) + b"h" + bytes([i]) + b"lq" + bytes([i + 1])
    add("doubling_chain", body, expect="any")


def gen_superlinear(c):
    def add(name, body, expect="error", contains=None):
        z, _ = torch_zip(PROTO2 + body + b".", BASE_STORAGES)
        c.add(f"slow/{name}.pth", z, "superlinear", expect=expect, contains=contains)

    # 200,000 distinct (unknown) globals
    add("many_globals", b"(" + b"".join(glob("m%d" % i, "f") for i in range(200_000)) + b"l", expect="ok")
    # decimal literals far beyond CPython's 4300-digit limit
    add("int_digits", b"I" + b"7" * 1_000_000 + b"\n", contains="digits")
    add("long_digits", b"L" + b"7" * 1_000_000 + b"L\n", contains="digits")
    add("int_digits_4301", b"I" + b"7" * 4301 + b"\n", contains="digits")
    add("int_digits_4300", b"I" + b"7" * 4300 + b"\n", expect="ok")
    # a 1 MB LONG4 (printing in decimal would be quadratic)
    add("long4_1mb", b"\x8b" + struct.pack("<i", 1 << 20) + b"\x01" * (1 << 20), expect="any")
    # many LONG4s of 64 KiB each
    add("long4_many", b"(" + (b"\x8b" + struct.pack("<i", 1 << 16) + b"\x05" * (1 << 16)) * 64 + b"l", expect="any")
    # a very long dotted key (folder paths) and many keys sharing a long dotted prefix
    key = ".".join(["a"] * 200_000)
    add("long_dotted_key", b"}" + binunicode(key) + rebuild(storage_pid("0", 6), 0, (6,), (1,)) + b"s", expect="ok")
    prefix = ".".join(["p"] * 2000)
    items = b"".join(binunicode(f"{prefix}.{i}") + rebuild(storage_pid("0", 6), 0, (6,), (1,)) for i in range(2000))
    add("many_long_keys", b"}(" + items + b"u", expect="ok")
    # a dict with 200,000 copies of the same key
    add("dup_keys", b"}(" + (uni("k") + b"N") * 200_000 + b"u", expect="ok")
    # a huge memo index (sparse memo) and many PUTs
    add("sparse_memo", b"N" + b"r" + struct.pack("<I", 0xFFFFFFFF) + b"j" + struct.pack("<I", 0xFFFFFFFF), expect="ok")
    add("memo_puts", b"N" + b"\x94" * 500_000, expect="ok")
    # FRAME claiming an absurd size, text INT/FLOAT/GET lines without end
    add("frame_absurd", b"\x95" + struct.pack("<Q", 2**63) + b"N", expect="ok")
    add("get_no_newline", b"g" + b"1" * 100_000, contains="data.pkl")
    add("float_garbage", b"F" + b"9" * 100_000 + b"\n", expect="any")


def gen_safetensors(c):
    k = 0

    def add(name, data, expect="error", contains=None):
        nonlocal k
        c.add(f"st/{k:03d}_{name}.safetensors", data, "safetensors", expect=expect, contains=contains)
        k += 1

    def hdr(h, data=ST_DATA, **kw):
        return safetensors_bytes(h, data, **kw)

    add("len_huge", hdr(ST_HEADER, length=2**63))
    add("len_past_end", hdr(ST_HEADER, length=10**6))
    add("not_json", hdr(None, raw_header=b"{" * 100000))
    add("deep_json", hdr(None, raw_header=b"[" * 100000 + b"]" * 100000))
    add("deep_json_obj", hdr(None, raw_header=b'{"a":' * 50000 + b"1" + b"}" * 50000))
    add("dup_key", hdr(None, raw_header=b'{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},'
                                            b'"a":{"dtype":"F32","shape":[3],"data_offsets":[24,36]}}'))
    for dims in (65, 1000, 100000):
        add(f"dims_{dims}", hdr({"a": {"dtype": "F32", "shape": [1] * dims, "data_offsets": [0, 4]}},
                                data=f32([1])), contains="dimensions")
    add("meta_many", hdr({"__metadata__": {f"k{i}": "v" for i in range(200_000)}}, data=b""),
        contains="metadata")
    add("meta_big", hdr({"__metadata__": {"k": "v" * 20_000_000}}, data=b""), contains="metadata")
    add("meta_nonstr", hdr({"__metadata__": {"k": {"x": 1}}}, data=b""))
    for v in [2**64 - 1, 2**64, 2**63, -1, 10**30]:
        add("shape_big", hdr({"a": {"dtype": "F32", "shape": [v, 2], "data_offsets": [0, 24]}}))
        add("offset_big", hdr({"a": {"dtype": "F32", "shape": [6], "data_offsets": [v, 24]}}))
        add("offset_end_big", hdr({"a": {"dtype": "F32", "shape": [6], "data_offsets": [0, v]}}))
    add("shape_overflow", hdr({"a": {"dtype": "F32", "shape": [2**32, 2**32, 2**32], "data_offsets": [0, 24]}}))
    add("overlap", hdr({"a": {"dtype": "F32", "shape": [6], "data_offsets": [0, 24]},
                        "b": {"dtype": "F32", "shape": [6], "data_offsets": [12, 36]}}))
    add("bad_dtype", hdr({"a": {"dtype": "F33", "shape": [6], "data_offsets": [0, 24]}}))
    add("many_tensors", hdr({f"t{i}": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]} for i in range(100_000)},
                            data=b""), expect="any")
    add("float_shape", hdr(None, raw_header=b'{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,24]}}'))
    add("nan_json", hdr(None, raw_header=b'{"a":NaN}'))
    add("big_number_text", hdr(None, raw_header=b'{"a":{"dtype":"F32","shape":[' + b"9" * 100000 + b'],"data_offsets":[0,24]}}'))


def gen_sharded(c):
    st = safetensors_bytes({"a": {"dtype": "F32", "shape": [6], "data_offsets": [0, 24]}}, f32([1, 2, 3, 4, 5, 6]))
    files = {"s1.safetensors": st}

    def add(name, index, expect="error", contains=None):
        c.add(f"sharded_{name}/model.safetensors.index.json", json.dumps(index).encode(), "sharded",
              expect=expect, contains=contains, files=files)

    add("missing_shard", {"weight_map": {"a": "nope.safetensors"}})
    add("escape", {"weight_map": {"a": "../s1.safetensors"}})
    add("wrong_key", {"weight_map": {"b": "s1.safetensors"}})
    add("many_keys", {"weight_map": {f"k{i}": "s1.safetensors" for i in range(100_000)}})
    add("not_map", {"weight_map": [1, 2, 3]})
    c.add("sharded_dupkeys/model.safetensors.index.json",
          b'{"weight_map":{' + b",".join(b'"a":"s1.safetensors"' for _ in range(100_000)) + b"}}",
          "sharded", expect="any", files=files)
    c.add("sharded_deep/model.safetensors.index.json", b'{"weight_map":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
          "sharded", files=files)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    c = Corpus(sys.argv[1])
    for g in (gen_truncations, gen_bitflips, gen_crc, gen_zip_structure, gen_absurd_numbers, gen_expanded,
              gen_nesting, gen_budget, gen_superlinear, gen_safetensors, gen_sharded):
        g(c)
    c.write_manifest()
    print(f"{len(c.entries)} malformed files in {sys.argv[1]}")


if __name__ == "__main__":
    main()
