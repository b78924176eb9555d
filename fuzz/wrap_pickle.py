#!/usr/bin/env python3
"""Wrap raw pickle bytes (a `pickle_vm` finding, dumped with WEIGHTSCOPE_FUZZ_DUMP) in a torch zip
(`archive/data.pkl`, `byteorder`, `version`) so that the CLI reads it as a checkpoint.

    python3 fuzz/wrap_pickle.py PICKLE OUT.pth
"""
import sys
import zipfile

data = open(sys.argv[1], "rb").read()
with zipfile.ZipFile(sys.argv[2], "w", zipfile.ZIP_STORED) as z:
    z.writestr("archive/data.pkl", data)
    z.writestr("archive/byteorder", b"little")
    z.writestr("archive/version", b"3\n")
