//! Worker-side edit logic over small in-memory safetensors files.

use super::*;
use crate::format::safetensors::{f32_tensor, test_file};
use crate::format::MemSource;
use serde_json::json;

/// A safetensors file of float32 tensors `(name, values)` (1-D), plus one int64 scalar `steps`.
fn st(tensors: &[(&str, &[f32])]) -> Vec<u8> {
    let mut all: Vec<_> = tensors.iter().map(|&(n, v)| f32_tensor(n, v)).collect();
    all.push(("steps", "I64", vec![], 7i64.to_le_bytes().to_vec()));
    test_file(&all)
}

fn open(name: &str, bytes: Vec<u8>) -> Checkpoint {
    format::open(&MemSource(bytes), name).unwrap()
}

fn model_a() -> Checkpoint {
    open(
        "a.safetensors",
        st(&[
            ("module.fc.weight", &[1.0, 2.0]),
            ("module.fc.bias", &[0.5]),
            ("fc.bias", &[9.0]),
        ]),
    )
}

fn spec(v: serde_json::Value) -> OpSpec {
    serde_json::from_value(v).unwrap()
}

#[test]
fn op_specs_decode_from_the_page_wire_shape() {
    let a = model_a();
    let mut e = Editor::new();
    e.reset(&a);
    let cases = [
        (
            json!({"strip_prefix": {"prefix": "module."}}),
            "strip prefix",
        ),
        (json!({"add_prefix": {"prefix": "m."}}), "add prefix"),
        (json!({"rename": {"from": "a", "to": "b"}}), "rename"),
        (
            json!({"replace": {"pattern": "^x", "replacement": "y"}}),
            "replace",
        ),
        (json!({"delete": {"pattern": "bias$"}}), "delete"),
        (json!({"delete_path": {"path": ["fc.bias"]}}), "delete"),
        (json!({"keep": {"pattern": "weight"}}), "keep only"),
        (json!({"keep_path": {"path": ["fc.bias"]}}), "keep only"),
        (json!({"extract": {"path": "state_dict/"}}), "extract"),
        (json!({"cast": {"dtype": "float16"}}), "cast"),
        (
            json!({"cast": {"dtype": "bfloat16", "pattern": "weight"}}),
            "cast",
        ),
        (
            json!({"set_metadata": {"key": "k", "value": "v"}}),
            "metadata",
        ),
        (json!({"set_metadata": {"key": "k"}}), "remove metadata"),
    ];
    for (v, starts) in cases {
        let op = e.decode(&a, &spec(v.clone())).unwrap();
        assert!(op.describe().starts_with(starts), "{v}: {}", op.describe());
    }
    // path selections are anchored and escaped
    let Op::Delete(r) = e
        .decode(&a, &spec(json!({"delete_path": {"path": ["fc.bias"]}})))
        .unwrap()
    else {
        panic!()
    };
    assert!(r.is_match("fc.bias") && !r.is_match("module.fc.bias") && !r.is_match("fcxbias"));
    // refusals
    for (v, msg) in [
        (json!({"cast": {"dtype": "int8"}}), "not a cast target"),
        (json!({"cast": {"dtype": "float64"}}), "not a cast target"),
        (json!({"delete": {"pattern": "("}}), "bad pattern"),
        (json!({"delete": {"pattern": ""}}), "empty"),
        (json!({"extract": {"path": "/"}}), "empty"),
        (json!({"transplant": {"pattern": "."}}), "open a file B"),
    ] {
        let err = e.decode(&a, &spec(v.clone())).unwrap_err();
        assert!(err.0.contains(msg), "{v}: {err}");
    }
    assert!(serde_json::from_value::<OpSpec>(json!({"format_disk": {}})).is_err());
}

#[test]
fn preview_lists_renames_and_collisions_without_applying() {
    let a = model_a();
    let mut e = Editor::new();
    e.reset(&a);
    // module.fc.bias → fc.bias collides with the existing fc.bias
    let p = e.preview(1, &a, &spec(json!({"strip_prefix": {"prefix": "module."}})));
    let err = p.error.expect("a collision");
    assert!(
        err.contains("collision") && err.contains("fc.bias"),
        "{err}"
    );
    assert!(e.journal().unwrap().ops().is_empty());
    let r = e.apply(2, &a, &spec(json!({"strip_prefix": {"prefix": "module."}})));
    assert!(r.error.unwrap().contains("refused"));
    assert!(r.ops.is_empty());
    assert_eq!(r.tensors, 4);

    let p = e.preview(3, &a, &spec(json!({"add_prefix": {"prefix": "net."}})));
    assert_eq!(p.error, None);
    assert_eq!(p.changed, 4);
    assert_eq!(
        p.renames[0],
        (
            "module.fc.weight".to_string(),
            "net.module.fc.weight".to_string()
        )
    );
    let p = e.preview(4, &a, &spec(json!({"delete": {"pattern": "bias$"}})));
    assert_eq!(p.removed, ["module.fc.bias", "fc.bias"]);
    assert!(p.renames.is_empty() && p.added.is_empty());
    let p = e.preview(5, &a, &spec(json!({"cast": {"dtype": "float16"}})));
    // the int64 scalar is never cast
    assert_eq!(p.changed, 3);
    assert_eq!(p.renames[0].1, "module.fc.weight as float16");
    assert!(
        e.journal().unwrap().ops().is_empty(),
        "previews change nothing"
    );
}

#[test]
fn apply_undo_redo_report_the_journal() {
    let a = model_a();
    let mut e = Editor::new();
    e.reset(&a);
    let r = e.apply(1, &a, &spec(json!({"delete_path": {"path": ["fc.bias"]}})));
    assert_eq!(r.error, None);
    let r = e.apply(2, &a, &spec(json!({"strip_prefix": {"prefix": "module."}})));
    assert_eq!(r.error, None);
    assert_eq!(r.ops.len(), 2);
    assert_eq!(r.keys, ["fc.weight", "fc.bias", "steps"]);
    let r = e.undo(3, &a);
    assert_eq!((r.ops.len(), r.redo.len()), (1, 1));
    assert_eq!(r.redo[0], "strip prefix \"module.\"");
    assert_eq!(r.keys, ["module.fc.weight", "module.fc.bias", "steps"]);
    let r = e.redo(4, &a);
    assert_eq!((r.ops.len(), r.redo.len(), r.error), (2, 0, None));
    let r = e.redo(5, &a);
    assert_eq!(r.error.as_deref(), Some("nothing to redo"));
    // an operation that leaves nothing is refused and changes nothing
    let r = e.apply(6, &a, &spec(json!({"delete": {"pattern": "."}})));
    assert!(r.error.unwrap().contains("no tensors"));
    assert_eq!(r.ops.len(), 2);
    // a fresh file starts a fresh journal
    e.reset(&a);
    assert!(e.list(7, &a).ops.is_empty());
}

#[test]
fn transplant_from_b_is_an_undoable_op_with_shape_checks() {
    let a = model_a();
    let mut e = Editor::new();
    e.reset(&a);
    let b_bytes = st(&[("fc.weight", &[5.0, 6.0]), ("fc.bias", &[1.0, 2.0])]);
    assert_eq!(
        e.open_b(NamedSource::in_memory("b.safetensors", b_bytes))
            .unwrap(),
        1
    );
    // B's fc.weight lands in A as module.fc.weight (same shape): replaced
    let r = e.apply(
        1,
        &a,
        &spec(
            json!({"transplant": {"pattern": "^fc\\.weight$", "replacement": "module.fc.weight"}}),
        ),
    );
    assert_eq!(r.error, None, "{r:?}");
    assert_eq!(r.ops.len(), 1);
    assert_eq!(r.ops[0], "transplant 1 tensor from B as module.fc.weight");
    let t = e.journal().unwrap().current().tensors();
    assert_eq!(t[0].1.input, 1, "module.fc.weight now comes from B");
    // B's fc.bias has shape [2], A's fc.bias [1]: refused
    let r = e.apply(
        2,
        &a,
        &spec(json!({"transplant": {"pattern": "^fc\\.bias$"}})),
    );
    let err = r.error.unwrap();
    assert!(
        err.contains("shape mismatch") && err.contains("fc.bias"),
        "{err}"
    );
    let r = e.undo(3, &a);
    assert!(r.ops.is_empty());
    assert_eq!(e.journal().unwrap().current().tensors()[0].1.input, 0);
}

#[test]
fn diff_lists_keys_through_prefix_maps() {
    let a = model_a();
    let a_bytes = st(&[
        ("module.fc.weight", &[1.0, 2.0]),
        ("module.fc.bias", &[0.5]),
        ("fc.bias", &[9.0]),
    ]);
    let mut e = Editor::new();
    e.reset(&a);
    let b = st(&[("fc.weight", &[1.0, 2.0]), ("fc.bias", &[0.5, 1.0])]);
    e.open_b(NamedSource::in_memory("b.safetensors", b))
        .unwrap();
    let src = MemSource(a_bytes);
    let srcs: Vec<&dyn Source> = vec![&src];
    let maps = vec![("module.".to_string(), String::new())];
    let r = e.diff(1, &a, &srcs, &maps, &mut |_, _| true);
    assert_eq!(r.error, None);
    // both A's module.fc.bias (mapped) and fc.bias (unmapped) meet B's fc.bias
    assert!(r.only_a.is_empty() && r.only_b.is_empty(), "{r:?}");
    let keys: Vec<_> = r.mismatched.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(keys, ["module.fc.bias", "fc.bias"]);
    assert_eq!(r.mismatched[0].b, "float32[2]");
    // module.fc.weight ↔ fc.weight and steps ↔ steps hold the same bytes
    assert_eq!(r.identical, 2);
    // without the map, A's module.* keys are only in A
    let r = e.diff(2, &a, &srcs, &[], &mut |_, _| true);
    assert_eq!(r.only_a, ["module.fc.weight", "module.fc.bias"]);
    assert_eq!(r.only_b, ["fc.weight"]);
}

#[test]
fn planned_drops_and_output_bytes() {
    let a = model_a();
    let t = ETree::from_checkpoint(&a, 0);
    assert!(planned_drops(&t, &[&a], OutFormat::Torch).is_empty());
    assert!(planned_drops(&t, &[&a], OutFormat::Safetensors).is_empty());
    // 4 floats + 1 int64
    assert_eq!(output_bytes(&t, &[&a]), 16 + 8);
    let cast = Op::Cast {
        dtype: DType::F16,
        pattern: None,
    }
    .apply(&t)
    .unwrap();
    assert_eq!(output_bytes(&cast, &[&a]), 8 + 8);
}

#[test]
fn the_chosen_b_is_the_one_diff_and_transplant_use() {
    let a_bytes = st(&[("fc.weight", &[1.0, 2.0])]);
    let a = open("a.safetensors", a_bytes.clone());
    let mut e = Editor::new();
    e.reset(&a);
    assert!(e.b().is_none());
    assert!(e.choose_b(1).is_err(), "no B is open yet");
    // b1 has fc.weight of A's shape, b2 one of another shape
    e.open_b(NamedSource::in_memory(
        "b1.safetensors",
        st(&[("fc.weight", &[5.0, 6.0])]),
    ))
    .unwrap();
    e.open_b(NamedSource::in_memory(
        "b2.safetensors",
        st(&[("fc.weight", &[7.0])]),
    ))
    .unwrap();
    assert_eq!(
        e.b().map(|(i, _)| i),
        Some(2),
        "the latest opened is chosen"
    );
    let src = MemSource(a_bytes);
    let srcs: Vec<&dyn Source> = vec![&src];
    let r = e.diff(1, &a, &srcs, &[], &mut |_, _| true);
    assert_eq!(r.mismatched.len(), 1, "{r:?}");
    let t = spec(json!({"transplant": {"pattern": "^fc\\.weight$"}}));
    assert!(e.apply(2, &a, &t).error.is_some(), "b2's shape differs");
    // choose b1: the diff and the transplant follow
    e.choose_b(1).unwrap();
    assert_eq!(e.b().map(|(i, _)| i), Some(1));
    let r = e.diff(3, &a, &srcs, &[], &mut |_, _| true);
    assert!(r.mismatched.is_empty() && r.changed.len() == 1, "{r:?}");
    let r = e.apply(4, &a, &t);
    assert_eq!(r.error, None, "{r:?}");
    assert_eq!(e.journal().unwrap().current().tensors()[0].1.input, 1);
    assert!(e.choose_b(3).is_err() && e.choose_b(0).is_err());
    // a new A forgets every B
    e.reset(&a);
    assert!(e.b().is_none());
}
