#!/usr/bin/env python3
"""Write assets/warm.pth: the tiny checkpoint the page's worker opens once it has started (as a
File made from its bytes, through its own message handler), so the wasm code of the open path is
compiled before the user's first file arrives (src/worker/service.rs, `warm_up`). Its content is
never shown (tests/web.rs checks its index against the tensors made here).

    ~/.cache/weightscope/venv/bin/python scripts/make_warm.py assets/warm.pth
"""
import collections
import sys

import torch

g = torch.Generator().manual_seed(0)
sd = collections.OrderedDict()
sd["layers.0.weight"] = torch.randn(4, 4, generator=g)
sd["layers.0.bias"] = torch.zeros(4)
sd["layers.1.weight"] = torch.randn(2, 4, generator=g).to(torch.bfloat16)
sd["steps"] = torch.tensor([3], dtype=torch.int64)
torch.save({"model": sd, "epoch": 1}, sys.argv[1])
