//! The safety verdict of a pickle global: what `torch.load(weights_only=False)` would do with it.
//!
//! Contract:
//! - [`resolve`] turns the (module, name) a GLOBAL / INST / STACK_GLOBAL opcode names into the
//!   object Python's `pickle.Unpickler.find_class` would look up, as torch's unpickler wraps it:
//!   a name that is one of torch's storage types (`FloatStorage`) becomes that storage type
//!   whatever the module (nothing is imported); module `torch.tensor` reads as `torch._tensor`;
//!   for protocols 0–2 the Python 2 names of `_compat_pickle` are mapped ([`super::compat_names`]:
//!   a pair in `NAME_MAPPING` first (`compat_names::map_name`), else the module in `IMPORT_MAPPING`); from protocol 4 a
//!   dotted name is an attribute path walked from the module (`torch` + `os.system` is
//!   `os.system`, `builtins` + `eval.__call__` is `eval`), below 4 it is one attribute name that
//!   no module has, so loading fails there.
//! - [`classify`] gives the tier: `allowed` (torch's `weights_only` allow-list,
//!   docs/formats.md), `dangerous` (loading would call or import something that can touch the
//!   system: the block list below), or `unknown` (anything else, shown as an inert object).
//!   It is a pure function of the resolved (module, name) and the pickle's protocol, O(length
//!   of the names × log(table size)).
//!
//! The block list is our own data table ([`FAMILIES`], [`SAFE_BUILTINS`],
//! [`PRIVATE_STDLIB`]), grouped by family. It is at least the union of the lists of
//! picklescan 1.0.5 (mmaitre314/picklescan commit f15d54d, `_unsafe_globals`) and fickling
//! 0.1.12 (trailofbits/fickling commit 854c99a: `UNSAFE_IMPORTS` with its rule that any dotted
//! component of the module or name counts, builtins outside its safe set, private stdlib
//! modules, and the ML lists of `UnsafeImportsML`), plus the families weightscope adds: nested
//! loaders (torch, numpy, pandas, yaml, joblib, dill, cloudpickle), code generators (torch.fx
//! graph-module source, sympy, typing forward references, dataclasses, logging.config,
//! cpp_extension, setuptools.sandbox), importers and callers, threads and processes, files,
//! processes and network. An entry without a dot (`os`) matches the module and its submodules
//! and any dotted component of the module or of an attribute path (`mypkg.os.thing`,
//! `torch` + `os.system`); an entry with a dot (`torch.hub`) matches that module and its
//! submodules.

use super::compat_names::{map_name, IMPORT_MAPPING};
use crate::format::checkpoint::Tier;
use crate::format::dtype::DType;

/// A global as `find_class` would look it up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub module: String,
    pub name: String,
    /// torch's unpickler turns any name that is a storage type into that type (no import).
    pub storage_type: bool,
}

/// torch's legacy storage type names, which torch's `find_class` intercepts by name alone.
const STORAGE_TYPES: &[&str] = &[
    "DoubleStorage",
    "FloatStorage",
    "HalfStorage",
    "LongStorage",
    "IntStorage",
    "ShortStorage",
    "CharStorage",
    "ByteStorage",
    "BoolStorage",
    "BFloat16Storage",
    "ComplexDoubleStorage",
    "ComplexFloatStorage",
    "QInt8Storage",
    "QInt32Storage",
    "QUInt8Storage",
    "QUInt4x2Storage",
    "QUInt2x4Storage",
];

/// Resolve a global named by a pickle running at `protocol` (the last PROTO seen; 0 without).
pub fn resolve(module: &str, name: &str, protocol: u8) -> Resolved {
    if STORAGE_TYPES.contains(&name) {
        return Resolved {
            module: module.to_string(),
            name: name.to_string(),
            storage_type: true,
        };
    }
    let module = if module == "torch.tensor" {
        "torch._tensor"
    } else {
        module
    };
    let (m, n) = if protocol < 3 {
        map_python2(module, name)
    } else {
        (module, name)
    };
    Resolved {
        module: m.to_string(),
        name: n.to_string(),
        storage_type: false,
    }
}

/// `_compat_pickle`'s mapping as `find_class` applies it (protocols 0–2).
pub fn map_python2<'a>(module: &'a str, name: &'a str) -> (&'a str, &'a str) {
    if let Some(pair) = map_name(module, name) {
        return pair;
    }
    if let Ok(i) = IMPORT_MAPPING.binary_search_by(|(k, _)| k.cmp(&module)) {
        return (IMPORT_MAPPING[i].1, name);
    }
    (module, name)
}

const REBUILD: &[&str] = &[
    "_rebuild_tensor",
    "_rebuild_tensor_v2",
    "_rebuild_tensor_v3",
    "_rebuild_parameter",
    "_rebuild_parameter_with_state",
    "_rebuild_qtensor",
    "_rebuild_sparse_tensor",
    "_rebuild_meta_tensor_no_storage",
    "_rebuild_wrapper_subclass",
    "_rebuild_device_tensor_from_numpy",
    "_rebuild_device_tensor_from_cpu_tensor",
];

const STORAGE_NAMES: &[&str] = &[
    "Double",
    "Float",
    "Half",
    "BFloat16",
    "Long",
    "Int",
    "Short",
    "Char",
    "Byte",
    "Bool",
    "ComplexDouble",
    "ComplexFloat",
];
const TENSOR_TYPE_NAMES: &[&str] = &[
    "Double", "Float", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool",
];
const EXTRA_DTYPES: &[&str] = &[
    "bcomplex32",
    "uint1",
    "uint2",
    "uint3",
    "uint4",
    "uint5",
    "uint6",
    "uint7",
    "int1",
    "int2",
    "int3",
    "int4",
    "int5",
    "int6",
    "int7",
];
const QSCHEMES: &[&str] = &[
    "per_tensor_affine",
    "per_tensor_symmetric",
    "per_channel_affine",
    "per_channel_symmetric",
    "per_channel_affine_float_qparams",
];

/// Is (module, name) on torch's default `weights_only` allow-list?
pub fn is_allowed(module: &str, name: &str) -> bool {
    match module {
        "collections" => matches!(name, "OrderedDict" | "Counter"),
        "builtins" => matches!(name, "set" | "complex" | "bytearray"),
        "_codecs" => name == "encode",
        "torch._utils" => REBUILD.contains(&name),
        "torch._tensor" => name == "_rebuild_from_type_v2",
        "torch.nn.parameter" => name == "Parameter",
        "torch.serialization" => name == "_get_layout",
        "torch.storage" => matches!(name, "TypedStorage" | "UntypedStorage"),
        "torch" => {
            matches!(name, "Size" | "Tensor" | "device")
                || DType::from_name(name).is_some_and(|d| d.name() == name)
                || EXTRA_DTYPES.contains(&name)
                || QSCHEMES.contains(&name)
                || name.strip_suffix("Storage").is_some_and(|n| {
                    STORAGE_NAMES.contains(&n)
                        || matches!(n, "QInt8" | "QInt32" | "QUInt8" | "QUInt4x2" | "QUInt2x4")
                })
                || name
                    .strip_suffix("Tensor")
                    .is_some_and(|n| TENSOR_TYPE_NAMES.contains(&n))
        }
        "torch.cuda" => {
            name.strip_suffix("Storage")
                .is_some_and(|n| STORAGE_NAMES.contains(&n))
                || name
                    .strip_suffix("Tensor")
                    .is_some_and(|n| TENSOR_TYPE_NAMES.contains(&n))
        }
        "torch.sparse" | "torch.cuda.sparse" => name
            .strip_suffix("Tensor")
            .is_some_and(|n| TENSOR_TYPE_NAMES.contains(&n) && n != "Bool"),
        _ => false,
    }
}

/// A family of dangerous globals: why they are dangerous, whole modules (with their submodules)
/// and single (module, name) pairs.
pub struct Family {
    pub why: &'static str,
    pub modules: &'static [&'static str],
    pub names: &'static [(&'static str, &'static str)],
}

const NESTED: &str = "loads another pickle or serialized program, which can run anything";
const CODE: &str = "evaluates, compiles or runs code given as data";

/// The block list, by family.
pub const FAMILIES: &[Family] = &[
    Family {
        why: "runs programs or shell commands, or touches files (os and its platform modules)",
        modules: &[
            "os",
            "posix",
            "nt",
            "_posixsubprocess",
            "subprocess",
            "commands",
            "pty",
            "pexpect",
            "pipes",
            "_bootsubprocess",
            "_winapi",
            "winreg",
            "_winreg",
            "msvcrt",
            "_osx_support",
            "_aix_support",
            "_pyrepl",
            "platform",
            "uuid",
            "_uuid",
        ],
        names: &[],
    },
    Family {
        why: "reads, writes, copies or deletes files",
        modules: &[
            "shutil",
            "tempfile",
            "filecmp",
            "fileinput",
            "glob",
            "linecache",
            "difflib",
            "mmap",
            "sqlite3",
            "_sqlite3",
            "shelve",
            "dbm",
            "tarfile",
            "zipfile",
            "compileall",
            "py_compile",
            "distutils",
            "numpy.distutils",
            "setuptools",
            "logging",
            "syslog",
            "_io",
            "_pyio",
        ],
        names: &[
            ("io", "open"),
            ("io", "open_code"),
            ("io", "FileIO"),
            ("io", "BufferedRandom"),
            ("codecs", "open"),
            ("codecs", "EncodedFile"),
            ("numpy", "fromfile"),
            ("numpy", "memmap"),
            ("numpy", "save"),
            ("numpy", "savez"),
            ("numpy", "savez_compressed"),
            ("numpy", "savetxt"),
            ("numpy", "loadtxt"),
            ("numpy", "genfromtxt"),
            ("torch", "save"),
            ("torch", "from_file"),
        ],
    },
    Family {
        why: "opens network connections, serves or downloads",
        modules: &[
            "socket",
            "_socket",
            "ssl",
            "_ssl",
            "http",
            "httplib",
            "urllib",
            "urllib2",
            "urllib3",
            "requests",
            "httpx",
            "aiohttp",
            "ftplib",
            "smtplib",
            "poplib",
            "imaplib",
            "nntplib",
            "telnetlib",
            "xmlrpc",
            "xmlrpclib",
            "SimpleXMLRPCServer",
            "socketserver",
            "SocketServer",
            "webbrowser",
            "antigravity",
            "select",
            "selectors",
            "asyncio",
            "_asyncio",
            "wsgiref",
            "mailbox",
            "smtpd",
            "torch.distributed.rpc",
            "torch.distributed.elastic.rendezvous",
        ],
        names: &[],
    },
    Family {
        why: "starts threads or processes, or changes signal and exit handling",
        modules: &[
            "multiprocessing",
            "_multiprocessing",
            "threading",
            "_thread",
            "thread",
            "_threading_local",
            "concurrent",
            "signal",
            "_signal",
            "atexit",
            "_interpreters",
            "_xxsubinterpreters",
            "_interpchannels",
            "_interpqueues",
            "interpreters",
            "torch.multiprocessing",
            "sched",
        ],
        names: &[],
    },
    Family {
        why: "changes the interpreter, imports modules or reaches interpreter internals",
        modules: &[
            "sys",
            "importlib",
            "_frozen_importlib",
            "_frozen_importlib_external",
            "_imp",
            "imp",
            "pkgutil",
            "zipimport",
            "gc",
            "site",
            "sysconfig",
            "inspect",
            "ctypes",
            "_ctypes",
            "cffi",
            "marshal",
            "types",
            "_sitebuiltins",
            "test",
            "unittest",
            "__builtins__",
            "_tracemalloc",
            "faulthandler",
            "resource",
        ],
        names: &[
            ("torch._utils", "_import_dotted_name"),
            ("torch._ops", "import_module"),
            ("torch.utils._import_utils", "import_module"),
            ("pydoc", "locate"),
            ("copyreg", "add_extension"),
        ],
    },
    Family {
        why: "calls or reaches any function it is given (a way to call os.system or eval)",
        modules: &["operator", "_operator", "functools", "_functools"],
        names: &[],
    },
    Family {
        why: CODE,
        modules: &[
            "code",
            "codeop",
            "runpy",
            "doctest",
            "pdb",
            "bdb",
            "timeit",
            "trace",
            "cProfile",
            "profile",
            "_lsprof",
            "pydoc",
            "idlelib",
            "lib2to3",
            "numpy.f2py",
            "numpy.testing._private.utils",
            "torch.fx.graph_module",
            "torch.package",
            "torch._dynamo",
            "torch._inductor",
            "torch.jit",
            "torch.utils.cpp_extension",
            "torch.utils.bottleneck",
            "torch.utils.collect_env",
            "torch._export",
            "setuptools.sandbox",
            "logging.config",
            "sympy.parsing",
            "sympy.core.sympify",
            "torch.compile",
            "eval",
            "exec",
            "compile",
        ],
        names: &[
            ("torch", "compile"),
            ("torch.fx.experimental.symbolic_shapes", "ShapeEnv"),
            ("torch._dynamo.guards", "GuardBuilder"),
            ("torch.jit.unsupported_tensor_ops", "execWrapper"),
            ("sympy", "sympify"),
            ("sympy", "parse_expr"),
            ("sympy", "lambdify"),
            ("sympy.utilities.lambdify", "lambdify"),
            ("typing", "ForwardRef"),
            ("typing", "_eval_type"),
            ("typing", "get_type_hints"),
            ("typing", "evaluate_forward_ref"),
            ("annotationlib", "ForwardRef"),
            ("annotationlib", "call_evaluate_function"),
            ("dataclasses", "_create_fn"),
            ("dataclasses", "_FuncBuilder"),
            ("dataclasses", "make_dataclass"),
            ("pandas", "eval"),
            ("pandas.core.computation.eval", "eval"),
            ("numpy", "lookfor"),
        ],
    },
    Family {
        why: NESTED,
        modules: &[
            "pickle",
            "_pickle",
            "cPickle",
            "pickletools",
            "copy_reg_unpickle",
            "dill",
            "cloudpickle",
            "joblib",
            "jsonpickle",
            "torch.hub",
            "model_zoo",
            "torch.serialization",
            "pandas.io",
        ],
        names: &[
            ("torch", "load"),
            ("torch.storage", "_load_from_bytes"),
            ("torch.utils._config_module", "ConfigModule"),
            ("torch.utils.data.datapipes.utils.decoder", "basichandlers"),
            ("torch.distributed.elastic.rendezvous.api", "basichandlers"),
            ("numpy", "load"),
            ("numpy.lib.npyio", "load"),
            ("numpy.lib._npyio_impl", "load"),
            ("numpy.lib.format", "read_array"),
            ("numpy.ctypeslib", "load_library"),
            ("pandas", "read_pickle"),
            ("pandas", "read_csv"),
            ("pandas", "read_table"),
            ("pandas", "read_json"),
            ("pandas", "read_html"),
            ("pandas", "read_xml"),
            ("pandas", "read_excel"),
            ("pandas", "read_parquet"),
            ("pandas", "read_feather"),
            ("pandas", "read_hdf"),
            ("pandas", "read_sql"),
            ("pandas", "read_orc"),
            ("pandas", "read_stata"),
            ("pandas", "read_sas"),
            ("pandas", "read_spss"),
            ("pandas", "read_fwf"),
            ("pandas", "read_clipboard"),
            ("yaml", "load"),
            ("yaml", "load_all"),
            ("yaml", "unsafe_load"),
            ("yaml", "unsafe_load_all"),
            ("yaml", "full_load"),
            ("yaml", "full_load_all"),
        ],
    },
    Family {
        why: "installs packages or creates environments",
        modules: &["pip", "ensurepip", "venv", "conda"],
        names: &[],
    },
    Family {
        why: "imports a pickle-scanning tool (an attempt to switch off a scanner)",
        modules: &[
            "fickling",
            "picklescan",
            "modelscan",
            "model_unpickler",
            "saferpickle",
            "modelaudit",
        ],
        names: &[],
    },
];

/// The builtins that only build data (fickling's safe set plus torch's allow-list); every
/// other builtin (eval, exec, compile, open, getattr, __import__, type, print, …) is dangerous.
pub const SAFE_BUILTINS: &[&str] = &[
    "abs",
    "all",
    "any",
    "ascii",
    "bin",
    "bool",
    "bytearray",
    "bytes",
    "callable",
    "chr",
    "complex",
    "dict",
    "divmod",
    "enumerate",
    "filter",
    "float",
    "format",
    "frozenset",
    "hash",
    "hex",
    "id",
    "int",
    "isinstance",
    "issubclass",
    "iter",
    "len",
    "list",
    "map",
    "max",
    "min",
    "next",
    "object",
    "oct",
    "ord",
    "pow",
    "range",
    "repr",
    "reversed",
    "round",
    "set",
    "slice",
    "sorted",
    "str",
    "sum",
    "tuple",
    "zip",
];

/// Private (underscore) modules of the standard library (CPython 3.9–3.14): internals that no
/// data pickle names; every global in them is dangerous except `_codecs.encode` (allowed) and
/// `__future__`.
pub const PRIVATE_STDLIB: &[&str] = &[
    "_abc",
    "_aix_support",
    "_android_support",
    "_apple_support",
    "_ast",
    "_asyncio",
    "_bisect",
    "_blake2",
    "_bootsubprocess",
    "_bz2",
    "_codecs",
    "_codecs_cn",
    "_codecs_hk",
    "_codecs_iso2022",
    "_codecs_jp",
    "_codecs_kr",
    "_codecs_tw",
    "_collections",
    "_collections_abc",
    "_colorize",
    "_compat_pickle",
    "_compression",
    "_contextvars",
    "_crypt",
    "_csv",
    "_ctypes",
    "_curses",
    "_curses_panel",
    "_datetime",
    "_dbm",
    "_decimal",
    "_elementtree",
    "_frozen_importlib",
    "_frozen_importlib_external",
    "_functools",
    "_gdbm",
    "_hashlib",
    "_heapq",
    "_hmac",
    "_imp",
    "_interpchannels",
    "_interpqueues",
    "_interpreters",
    "_io",
    "_ios_support",
    "_json",
    "_locale",
    "_lsprof",
    "_lzma",
    "_markupbase",
    "_md5",
    "_msi",
    "_multibytecodec",
    "_multiprocessing",
    "_opcode",
    "_opcode_metadata",
    "_operator",
    "_osx_support",
    "_overlapped",
    "_pickle",
    "_posixshmem",
    "_posixsubprocess",
    "_py_abc",
    "_py_warnings",
    "_pydatetime",
    "_pydecimal",
    "_pyio",
    "_pylong",
    "_pyrepl",
    "_queue",
    "_random",
    "_remote_debugging",
    "_scproxy",
    "_sha1",
    "_sha2",
    "_sha256",
    "_sha3",
    "_sha512",
    "_signal",
    "_sitebuiltins",
    "_socket",
    "_sqlite3",
    "_sre",
    "_ssl",
    "_stat",
    "_statistics",
    "_string",
    "_strptime",
    "_struct",
    "_suggestions",
    "_symtable",
    "_sysconfig",
    "_thread",
    "_threading_local",
    "_tkinter",
    "_tokenize",
    "_tracemalloc",
    "_typing",
    "_uuid",
    "_warnings",
    "_weakref",
    "_weakrefset",
    "_winapi",
    "_wmi",
    "_xxsubinterpreters",
    "_zoneinfo",
    "_zstd",
];

/// The family of a module entry matching `module` (the module itself, a parent module, or —
/// for entries without a dot — any dotted component).
fn module_family(module: &str) -> Option<(&'static str, &'static Family)> {
    for f in FAMILIES {
        for &m in f.modules {
            let hit = if m.contains('.') {
                module == m
                    || module
                        .strip_prefix(m)
                        .is_some_and(|rest| rest.starts_with('.'))
            } else {
                module.split('.').any(|c| c == m)
            };
            if hit {
                return Some((m, f));
            }
        }
    }
    None
}

fn name_family(module: &str, name: &str) -> Option<&'static Family> {
    FAMILIES
        .iter()
        .find(|f| f.names.iter().any(|&(m, n)| m == module && n == name))
}

/// Classify a resolved global read by a pickle at `protocol`; the text says why (for the page
/// and the CLI), empty for allowed globals.
pub fn classify(g: &Resolved, protocol: u8) -> (Tier, String) {
    let (module, name) = (g.module.as_str(), g.name.as_str());
    let full = format!("{module}.{name}");
    if g.storage_type {
        if is_allowed(module, name) {
            return (Tier::Allowed, String::new());
        }
        return (
            Tier::Unknown,
            format!("{full}: torch.load turns any global named {name} into its storage type without importing {module}"),
        );
    }
    if is_allowed(module, name) {
        return (Tier::Allowed, String::new());
    }
    let danger = |why: &str| (Tier::Dangerous, format!("{full}: {why}"));
    if let Some((m, f)) = module_family(module) {
        return danger(&format!("module {m} {}", f.why));
    }
    let top = module.split('.').next().unwrap_or(module);
    if PRIVATE_STDLIB.contains(&top) {
        return danger(
            "an internal module of the Python standard library; no data pickle names it",
        );
    }
    let dotted = name.contains('.');
    if dotted && protocol < 4 {
        return (
            Tier::Unknown,
            format!("{full}: below protocol 4 Python looks this dotted name up as one attribute, which no module has: loading fails here"),
        );
    }
    let first = name.split('.').next().unwrap_or(name);
    if matches!(module, "builtins" | "__builtin__") && !SAFE_BUILTINS.contains(&first) {
        return danger(&format!("builtin {first} is not a plain data constructor (eval, exec, compile, open, getattr, __import__ and the like reach code, files or any attribute)"));
    }
    if let Some(f) = name_family(module, first) {
        return danger(f.why);
    }
    if dotted {
        if let Some((m, f)) = module_family(name) {
            return danger(&format!("the attribute path reaches {m}, which {}", f.why));
        }
        return danger("a dotted attribute path (protocol 4 and later): attributes of attributes reach any module, e.g. torch + os.system or builtins + eval.__call__");
    }
    (
        Tier::Unknown,
        format!("{full} is not on torch's weights_only allow-list; weightscope shows it as an inert object and never calls it"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tier(module: &str, name: &str, protocol: u8) -> Tier {
        classify(&resolve(module, name, protocol), protocol).0
    }

    #[test]
    fn tiers() {
        for (m, n, t) in [
            ("torch._utils", "_rebuild_tensor_v2", Tier::Allowed),
            ("torch", "FloatStorage", Tier::Allowed),
            ("torch.cuda", "HalfStorage", Tier::Allowed),
            ("torch", "float8_e4m3fn", Tier::Allowed),
            ("torch", "uint4", Tier::Allowed),
            ("torch", "per_channel_affine", Tier::Allowed),
            ("collections", "OrderedDict", Tier::Allowed),
            ("torch", "QUInt8Storage", Tier::Allowed),
            ("_codecs", "encode", Tier::Allowed),
            ("os", "system", Tier::Dangerous),
            ("os.path", "join", Tier::Dangerous),
            ("posix", "system", Tier::Dangerous),
            ("builtins", "eval", Tier::Dangerous),
            ("builtins", "print", Tier::Dangerous),
            ("operator", "attrgetter", Tier::Dangerous),
            ("_operator", "methodcaller", Tier::Dangerous),
            ("functools", "partial", Tier::Dangerous),
            ("_functools", "partial", Tier::Dangerous),
            ("torch", "load", Tier::Dangerous),
            ("torch.serialization", "_legacy_load", Tier::Dangerous),
            ("torch.storage", "_load_from_bytes", Tier::Dangerous),
            ("torch._utils", "_import_dotted_name", Tier::Dangerous),
            (
                "torch.fx.graph_module",
                "reduce_graph_module",
                Tier::Dangerous,
            ),
            ("torch.utils.cpp_extension", "load_inline", Tier::Dangerous),
            ("numpy", "load", Tier::Dangerous),
            ("pandas", "read_pickle", Tier::Dangerous),
            ("dill", "loads", Tier::Dangerous),
            ("joblib", "load", Tier::Dangerous),
            ("sympy", "sympify", Tier::Dangerous),
            ("typing", "ForwardRef", Tier::Dangerous),
            ("dataclasses", "_create_fn", Tier::Dangerous),
            ("logging.config", "dictConfig", Tier::Dangerous),
            ("setuptools.sandbox", "run_setup", Tier::Dangerous),
            ("pkgutil", "resolve_name", Tier::Dangerous),
            ("_thread", "start_new_thread", Tier::Dangerous),
            ("io", "open", Tier::Dangerous),
            ("codecs", "open", Tier::Dangerous),
            ("antigravity", "geohash", Tier::Dangerous),
            ("mypkg.socket", "thing", Tier::Dangerous),
            ("_socket", "socket", Tier::Dangerous),
            ("torch.cuda", "QUInt8Storage", Tier::Unknown),
            ("os", "FloatStorage", Tier::Unknown),
            ("osx", "thing", Tier::Unknown),
            ("argparse", "Namespace", Tier::Unknown),
            ("__main__", "Net", Tier::Unknown),
            ("builtins", "str", Tier::Unknown),
            ("numpy.core.multiarray", "scalar", Tier::Unknown),
            ("torch._utils", "_rebuild_nested_tensor", Tier::Unknown),
        ] {
            assert_eq!(tier(m, n, 2), t, "{m}.{n}");
            assert_eq!(tier(m, n, 4), t, "{m}.{n} at protocol 4");
        }
    }

    #[test]
    fn dotted_names_resolve_from_protocol_4() {
        // find_class walks attributes from protocol 4: torch + os.system is os.system
        assert_eq!(tier("torch", "os.system", 4), Tier::Dangerous);
        assert_eq!(tier("builtins", "eval.__call__", 4), Tier::Dangerous);
        assert_eq!(
            tier("collections", "OrderedDict.fromkeys", 4),
            Tier::Dangerous
        );
        assert_eq!(tier("mymodule", "Outer.Inner", 5), Tier::Dangerous);
        // below 4 the dotted name is one attribute no module has: loading fails there
        assert_eq!(tier("mymodule", "Outer.Inner", 3), Tier::Unknown);
        // ... but a dangerous module stays dangerous (its import runs first)
        assert_eq!(tier("os", "path.join", 2), Tier::Dangerous);
    }

    #[test]
    fn python2_names_map_below_protocol_3() {
        let r = resolve("__builtin__", "set", 2);
        assert_eq!((r.module.as_str(), r.name.as_str()), ("builtins", "set"));
        let r = resolve("__builtin__", "long", 0);
        assert_eq!((r.module.as_str(), r.name.as_str()), ("builtins", "int"));
        let r = resolve("copy_reg", "_reconstructor", 1);
        assert_eq!(r.module, "copyreg");
        let r = resolve("commands", "getoutput", 2);
        assert_eq!(r.module, "subprocess");
        assert_eq!(tier("commands", "getoutput", 2), Tier::Dangerous);
        let r = resolve("__builtin__", "reduce", 2);
        assert_eq!(
            (r.module.as_str(), r.name.as_str()),
            ("functools", "reduce")
        );
        // protocol 3 and later: no mapping (Python 3 would fail to import __builtin__)
        let r = resolve("__builtin__", "set", 3);
        assert_eq!(r.module, "__builtin__");
        assert_eq!(tier("__builtin__", "eval", 3), Tier::Dangerous);
        // torch's own module rename
        assert_eq!(
            resolve("torch.tensor", "_rebuild_from_type_v2", 4).module,
            "torch._tensor"
        );
    }

    #[test]
    fn tables_are_sorted_for_binary_search() {
        use super::super::compat_names::{
            MULTIPROCESSING_EXCEPTIONS, NAME_PAIRS, PYTHON2_EXCEPTIONS,
        };
        assert!(NAME_PAIRS.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(PYTHON2_EXCEPTIONS.windows(2).all(|w| w[0] < w[1]));
        assert!(MULTIPROCESSING_EXCEPTIONS.windows(2).all(|w| w[0] < w[1]));
        assert!(IMPORT_MAPPING.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
