//! Classifying pickle globals: `allowed` (torch's `weights_only` allow-list, docs/formats.md
//! §4), `dangerous` (a block list at least as wide as picklescan's: code execution, file and
//! network access, imports, nested unpickling) or `unknown` (anything else: inert classes such as
//! `argparse.Namespace`, numpy scalars, Lightning callbacks).
//!
//! Contract: [`map_name`] applies torch's Python-2 → 3 name mapping (docs/formats.md §4) before lookup;
//! [`classify`] is a pure function of the mapped (module, name).

use crate::format::checkpoint::Tier;
use crate::format::dtype::DType;

/// Apply `torch._utils.IMPORT_MAPPING` / `NAME_MAPPING` (docs/formats.md §4).
pub fn map_name(module: &str, name: &str) -> (String, String) {
    let pair = match (module, name) {
        ("__builtin__", "xrange") => Some(("builtins", "range")),
        ("__builtin__", "reduce") => Some(("functools", "reduce")),
        ("__builtin__", "intern") => Some(("sys", "intern")),
        ("__builtin__", "unichr") => Some(("builtins", "chr")),
        ("__builtin__", "unicode") | ("__builtin__", "basestring") => Some(("builtins", "str")),
        ("__builtin__", "long") => Some(("builtins", "int")),
        ("itertools", "izip") => Some(("builtins", "zip")),
        ("itertools", "imap") => Some(("builtins", "map")),
        ("itertools", "ifilter") => Some(("builtins", "filter")),
        ("itertools", "ifilterfalse") => Some(("itertools", "filterfalse")),
        ("itertools", "izip_longest") => Some(("itertools", "zip_longest")),
        ("UserDict", "IterableUserDict") | ("UserDict", "UserDict") => {
            Some(("collections", "UserDict"))
        }
        ("UserList", "UserList") => Some(("collections", "UserList")),
        ("UserString", "UserString") => Some(("collections", "UserString")),
        ("exceptions", "StandardError") => Some(("builtins", "Exception")),
        _ => None,
    };
    if let Some((m, n)) = pair {
        return (m.to_string(), n.to_string());
    }
    let m = match module {
        "__builtin__" => "builtins",
        "copy_reg" => "copyreg",
        "Queue" => "queue",
        "repr" => "reprlib",
        "_abcoll" => "collections.abc",
        "UserDict" | "UserList" | "UserString" => "collections",
        "whichdb" => "dbm",
        "StringIO" | "cStringIO" => "io",
        other => other,
    };
    (m.to_string(), name.to_string())
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

/// Modules every global of which is dangerous (and their submodules).
const DANGEROUS_MODULES: &[(&str, &str)] = &[
    ("os", "runs shell commands, reads, writes and deletes files"),
    (
        "posix",
        "the os module on Linux/macOS: runs shell commands, touches files",
    ),
    (
        "nt",
        "the os module on Windows: runs shell commands, touches files",
    ),
    ("sys", "changes the interpreter, imports and exits"),
    ("subprocess", "starts arbitrary programs"),
    ("_posixsubprocess", "starts arbitrary programs"),
    ("commands", "runs shell commands (Python 2)"),
    ("pty", "spawns arbitrary programs"),
    ("runpy", "runs arbitrary Python modules and code"),
    ("importlib", "imports arbitrary modules"),
    ("imp", "imports arbitrary modules"),
    ("pickle", "unpickles nested data, which can run anything"),
    ("_pickle", "unpickles nested data, which can run anything"),
    ("cPickle", "unpickles nested data, which can run anything"),
    ("dill", "unpickles nested data, which can run anything"),
    ("marshal", "loads compiled code objects"),
    ("shutil", "copies, moves and deletes files"),
    ("socket", "opens network connections"),
    ("ssl", "opens network connections"),
    ("asyncio", "runs programs and opens connections"),
    ("aiohttp", "makes network requests"),
    ("requests", "makes network requests"),
    ("urllib", "makes network requests"),
    ("urllib2", "makes network requests"),
    ("http", "makes network requests"),
    ("httplib", "makes network requests"),
    ("ftplib", "makes network requests"),
    ("smtplib", "sends e-mail"),
    ("telnetlib", "opens network connections"),
    ("webbrowser", "opens web pages"),
    ("ctypes", "calls native code and writes raw memory"),
    ("cffi", "calls native code"),
    ("code", "runs arbitrary Python code"),
    ("codeop", "compiles arbitrary Python code"),
    ("bdb", "runs arbitrary Python code under a debugger"),
    ("pdb", "runs arbitrary Python code under a debugger"),
    ("timeit", "runs arbitrary Python code"),
    ("trace", "runs arbitrary Python code"),
    ("cProfile", "runs arbitrary Python code"),
    ("profile", "runs arbitrary Python code"),
    ("pydoc", "imports arbitrary modules and runs commands"),
    ("pip", "installs packages"),
    ("ensurepip", "installs packages"),
    ("venv", "creates environments and runs programs"),
    ("distutils", "writes files and runs compilers"),
    ("multiprocessing", "starts processes"),
    ("signal", "changes process signal handling"),
    ("platform", "runs shell commands"),
    ("tempfile", "creates files"),
    ("numpy.f2py", "evaluates arbitrary strings"),
    (
        "numpy.testing._private.utils",
        "runstring() executes arbitrary code",
    ),
    ("joblib", "unpickles nested data"),
    ("_winapi", "calls Windows APIs"),
    ("winreg", "edits the Windows registry"),
    ("torch.hub", "downloads and runs code"),
];

/// Single dangerous globals in otherwise unlisted modules.
const DANGEROUS_NAMES: &[(&str, &str, &str)] = &[
    ("builtins", "eval", "evaluates arbitrary Python code"),
    ("builtins", "exec", "executes arbitrary Python code"),
    ("builtins", "execfile", "executes a Python file"),
    ("builtins", "compile", "compiles arbitrary Python code"),
    (
        "builtins",
        "getattr",
        "reaches any attribute, e.g. os.system",
    ),
    ("builtins", "setattr", "changes any attribute"),
    ("builtins", "delattr", "deletes any attribute"),
    ("builtins", "open", "opens files"),
    ("builtins", "__import__", "imports arbitrary modules"),
    ("builtins", "apply", "calls any function"),
    ("builtins", "breakpoint", "starts a debugger"),
    ("builtins", "globals", "reaches interpreter internals"),
    ("builtins", "locals", "reaches interpreter internals"),
    ("builtins", "vars", "reaches interpreter internals"),
    ("builtins", "input", "reads from the terminal"),
    ("builtins", "help", "starts an interactive pager"),
    ("io", "open", "opens files"),
    ("io", "FileIO", "opens files"),
    ("_io", "open", "opens files"),
    ("_io", "FileIO", "opens files"),
    (
        "operator",
        "attrgetter",
        "reaches any attribute, e.g. os.system",
    ),
    ("operator", "itemgetter", "builds call chains"),
    ("operator", "methodcaller", "calls any method"),
    (
        "functools",
        "partial",
        "binds arguments to any function, e.g. os.system",
    ),
    ("functools", "reduce", "calls any function repeatedly"),
    (
        "types",
        "FunctionType",
        "builds functions from code objects",
    ),
    ("types", "CodeType", "builds code objects"),
    ("types", "MethodType", "binds arbitrary functions"),
    (
        "torch",
        "load",
        "loads another pickle, which can run anything",
    ),
    (
        "torch.serialization",
        "load",
        "loads another pickle, which can run anything",
    ),
    ("torch.jit", "load", "loads TorchScript code"),
    (
        "torch._inductor.codecache",
        "compile_file",
        "runs a compiler command",
    ),
    ("torch.utils.collect_env", "run", "runs shell commands"),
    (
        "torch.utils._config_module",
        "ConfigModule.load_config",
        "unpickles nested data",
    ),
    (
        "torch.utils.data.datapipes.utils.decoder",
        "basichandlers",
        "unpickles nested data",
    ),
    (
        "torch.jit.unsupported_tensor_ops",
        "execWrapper",
        "executes arbitrary code",
    ),
    (
        "torch.fx.experimental.symbolic_shapes",
        "ShapeEnv.evaluate_guards_expression",
        "evaluates arbitrary code",
    ),
    (
        "torch._dynamo.guards",
        "GuardBuilder.get",
        "evaluates arbitrary code",
    ),
    ("numpy", "load", "loads pickled data"),
    ("numpy.lib.npyio", "load", "loads pickled data"),
    ("pandas", "read_pickle", "unpickles nested data"),
    ("doctest", "debug_script", "runs arbitrary code"),
    (
        "idlelib.pyshell",
        "ModifiedInterpreter.runcode",
        "runs arbitrary code",
    ),
    ("idlelib.run", "Executive.runcode", "runs arbitrary code"),
];

/// Classify a (mapped) global; the string explains a dangerous or unknown tier for the page.
pub fn classify(module: &str, name: &str) -> (Tier, String) {
    if is_allowed(module, name) {
        return (Tier::Allowed, String::new());
    }
    for (m, why) in DANGEROUS_MODULES {
        if module == *m
            || module
                .strip_prefix(m)
                .is_some_and(|rest| rest.starts_with('.'))
        {
            return (Tier::Dangerous, format!("{module}.{name}: {why}"));
        }
    }
    for (m, n, why) in DANGEROUS_NAMES {
        if module == *m && name == *n {
            return (Tier::Dangerous, format!("{module}.{name}: {why}"));
        }
    }
    (
        Tier::Unknown,
        format!("{module}.{name} is not on torch's weights_only allow-list; weightscope shows it as an inert object and never calls it"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers() {
        assert_eq!(
            classify("torch._utils", "_rebuild_tensor_v2").0,
            Tier::Allowed
        );
        assert_eq!(classify("torch", "FloatStorage").0, Tier::Allowed);
        assert_eq!(classify("torch.cuda", "HalfStorage").0, Tier::Allowed);
        assert_eq!(classify("torch", "float8_e4m3fn").0, Tier::Allowed);
        assert_eq!(classify("torch", "uint4").0, Tier::Allowed);
        assert_eq!(classify("torch", "per_channel_affine").0, Tier::Allowed);
        assert_eq!(classify("collections", "OrderedDict").0, Tier::Allowed);
        assert_eq!(classify("torch", "QUInt8Storage").0, Tier::Allowed);
        assert_eq!(classify("torch.cuda", "QUInt8Storage").0, Tier::Unknown);
        assert_eq!(classify("os", "system").0, Tier::Dangerous);
        assert_eq!(classify("os.path", "join").0, Tier::Dangerous);
        assert_eq!(classify("posix", "system").0, Tier::Dangerous);
        assert_eq!(classify("builtins", "eval").0, Tier::Dangerous);
        assert_eq!(classify("operator", "attrgetter").0, Tier::Dangerous);
        assert_eq!(classify("functools", "partial").0, Tier::Dangerous);
        assert_eq!(classify("torch", "load").0, Tier::Dangerous);
        assert_eq!(classify("osx", "thing").0, Tier::Unknown);
        assert_eq!(classify("argparse", "Namespace").0, Tier::Unknown);
        assert_eq!(classify("numpy.core.multiarray", "scalar").0, Tier::Unknown);
        assert_eq!(
            classify("torch._utils", "_rebuild_nested_tensor").0,
            Tier::Unknown
        );
    }

    #[test]
    fn python2_names_are_mapped() {
        assert_eq!(
            map_name("__builtin__", "set"),
            ("builtins".into(), "set".into())
        );
        assert_eq!(
            map_name("__builtin__", "long"),
            ("builtins".into(), "int".into())
        );
        assert_eq!(
            map_name("copy_reg", "_reconstructor"),
            ("copyreg".into(), "_reconstructor".into())
        );
        assert_eq!(
            map_name("torch", "FloatStorage"),
            ("torch".into(), "FloatStorage".into())
        );
    }
}
