"""zip64 with real torch: a checkpoint whose records lie past 4 GiB and whose big record is over
4 GiB (central-directory zip64 extras, zip64 end records, 24-byte data descriptors).

torch writes it (`torch.save` of a 4.1 GiB uint8 tensor followed by small tensors), weightscope
must read it — the small tensors' sha256, read from offsets past 4 GiB, must equal torch's — and
weightscope's own export of it (a rename, so the 4.1 GiB record is copied as a slice) must load in
torch with every small tensor equal and the big one intact at its ends.

The file is written to a temporary directory and removed after the module (≈ 4.3 GB of disk for a
few seconds). Runs with the rest of tests/roundtrip.
"""
import hashlib
import json
import os
import subprocess
import tempfile

import pytest
import torch

from wsenv import BIN

BIG = (4 << 30) + 4096  # bytes of the big uint8 tensor: its record ends past 4 GiB


def tbytes(t):
    return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


@pytest.fixture(scope="module")
def big_file():
    d = tempfile.mkdtemp(prefix="ws-zip64-")
    path = os.path.join(d, "big.pth")
    big = torch.zeros(BIG, dtype=torch.uint8)
    big[:7] = torch.arange(1, 8, dtype=torch.uint8)
    big[-5:] = torch.arange(9, 14, dtype=torch.uint8)
    torch.manual_seed(0)
    sd = {"big": big, "after.weight": torch.randn(3, 5), "after.bias": torch.arange(4, dtype=torch.int64)}
    torch.save(sd, path)
    del big, sd
    yield d, path
    for f in os.listdir(d):
        os.remove(os.path.join(d, f))
    os.rmdir(d)


def small_expected(path):
    sd = torch.load(path, mmap=True, weights_only=True)
    return {k: (str(v.dtype).removeprefix("torch."), list(v.shape), hashlib.sha256(tbytes(v)).hexdigest())
            for k, v in sd.items() if k != "big"}, sd


def test_reads_records_past_4gib(big_file):
    _, path = big_file
    assert os.path.getsize(path) > (4 << 30) + 4096  # records after the big one start past 4 GiB
    want, sd = small_expected(path)
    r = subprocess.run([BIN, "inspect", "--json", path], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert [e["path"] for e in got["entries"]] == [["big"], ["after.weight"], ["after.bias"]]
    assert got["entries"][0]["shape"] == [BIG] and got["entries"][0]["dtype"] == "uint8"
    # hash only the small tensors (stats --key reads just those, from offsets past 4 GiB)
    r = subprocess.run([BIN, "stats", "--json", "--key", "^after", path], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    stats = {"/".join(t["path"]): t for t in json.loads(r.stdout)["tensors"]}
    w = sd["after.weight"].double()
    assert stats["after.weight"]["min"] == w.min().item() and stats["after.weight"]["max"] == w.max().item()
    assert abs(stats["after.weight"]["mean"] - w.mean().item()) <= 1e-12
    assert stats["after.bias"]["max"] == 3.0


def test_export_of_a_zip64_file_loads_in_torch(big_file):
    d, path = big_file
    out = os.path.join(d, "out.pth")
    r = subprocess.run([BIN, "edit", path, "-o", out, "--add-prefix", "m."], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    want, sd = small_expected(path)
    got = torch.load(out, mmap=True, weights_only=True)
    assert list(got.keys()) == ["m.big", "m.after.weight", "m.after.bias"]
    for k in ("after.weight", "after.bias"):
        assert tbytes(got["m." + k]) == tbytes(sd[k]), k
    b = got["m.big"]
    assert b.shape == (BIG,) and b.dtype == torch.uint8
    assert b[:7].tolist() == list(range(1, 8)) and b[-5:].tolist() == list(range(9, 14))
    import zipfile
    with zipfile.ZipFile(out) as z:  # Python's own zip64 reader agrees on names, sizes and CRCs
        infos = {i.filename.split("/", 1)[1]: i for i in z.infolist()}
        assert infos["data/0"].file_size == BIG
        assert z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))[:2] == b"\x80\x02"
        for name in ("data/1", "data/2"):
            z.read(next(n for n in z.namelist() if n.endswith(name)))  # CRC checked by zipfile
    os.remove(out)
