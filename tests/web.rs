//! Browser tests (wasm-bindgen-test, headless Chromium, inside a dedicated worker — the only
//! place `FileReaderSync` exists): the Blob source, the requests' encoding with real `File`s
//! (every request kind, through postcard bytes and back),
//! the worker's handling of an `open` request, and its edit / export requests (the exported Blob equals
//! the native export byte for byte).
//!
//! Run: `cargo test --target wasm32-unknown-unknown --test web` (runner in .cargo/config.toml,
//! `CHROMEDRIVER=/usr/bin/chromedriver`; scripts/dev.sh test does this).
#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;
use web_sys::{Blob, File};
use weightscope::export::merge::Method;
use weightscope::format::DType;
use weightscope::format::Source;
use weightscope::worker::blob::{self, BlobSource, CACHE_BLOCK};
use weightscope::worker::merge::{DiskTarget, MergeRequest, MergeSpec};
use weightscope::worker::protocol::{
    request_from_message, to_message, to_wire, JsFile, OpSpec, OutFormat, Request, Response,
    SearchPaths, TensorSource, Window,
};
use weightscope::worker::service;
use weightscope::worker::session::Session;
use weightscope::worker::trend::TrendRequest;

wasm_bindgen_test_configure!(run_in_dedicated_worker);

/// Deterministic bytes that differ at every offset modulo 251.
fn pattern(start: u64, n: usize) -> Vec<u8> {
    (0..n as u64).map(|i| ((start + i) % 251) as u8).collect()
}

fn parts(chunks: &[&[u8]]) -> Array {
    let arr = Array::new();
    for c in chunks {
        arr.push(&Uint8Array::from(*c));
    }
    arr
}

fn blob_of(chunks: &[&[u8]]) -> Blob {
    Blob::new_with_u8_array_sequence(&parts(chunks)).unwrap()
}

fn file_of(bytes: &[u8], name: &str) -> File {
    File::new_with_u8_array_sequence(&parts(&[bytes]), name).unwrap()
}

#[wasm_bindgen_test]
fn blob_source_reads_exact_ranges_across_parts() {
    let data = pattern(0, 300_000);
    // three parts, so reads cross the places where the blob was glued together
    let blob = blob_of(&[&data[..100_000], &data[100_000..200_003], &data[200_003..]]);
    let src = BlobSource::new(blob).unwrap();
    assert_eq!(src.len(), 300_000);
    for (off, n) in [
        (0u64, 1usize),
        (0, 512),
        (99_990, 20),
        (200_000, 10),
        (123_457, 70_001),
        (299_999, 1),
        (0, 300_000),
    ] {
        let mut buf = vec![0u8; n];
        src.read_at(off, &mut buf).unwrap();
        assert_eq!(buf, &data[off as usize..off as usize + n], "at {off}+{n}");
    }
    let reads = src.reads();
    assert_eq!(reads, 7);
    // an empty read reads nothing
    src.read_at(5, &mut []).unwrap();
    assert_eq!(src.reads(), reads);
    // past the end is an error, not a short read
    let err = src.read_at(299_999, &mut [0u8; 2]).unwrap_err();
    assert!(err.0.contains("past the end"), "{err}");
    let err = src.read_at(u64::MAX - 1, &mut [0u8; 4]).unwrap_err();
    assert!(err.0.contains("past the end"), "{err}");
}

#[wasm_bindgen_test]
fn blob_source_reads_past_2_gib() {
    // 2600 references to one 1 MiB blob: a 2.54 GiB blob without 2.5 GiB of memory.
    const MIB: u64 = 1 << 20;
    let base = blob_of(&[&pattern(0, MIB as usize)]);
    let refs = Array::new();
    for _ in 0..2600 {
        refs.push(&base);
    }
    let big = Blob::new_with_blob_sequence(&refs).unwrap();
    let src = BlobSource::new(big).unwrap();
    assert_eq!(src.len(), 2600 * MIB);
    // offsets past i32::MAX and past u32::MAX / 2: the i32 slice methods would overflow here
    for off in [(1u64 << 31) - 3, (1u64 << 31) + 12_345, 2600 * MIB - 100] {
        let mut buf = vec![0u8; 100];
        src.read_at(off, &mut buf).unwrap();
        let expect: Vec<u8> = (0..100u64)
            .map(|i| (((off + i) % MIB) % 251) as u8)
            .collect();
        assert_eq!(buf, expect, "at {off}");
    }
}

#[wasm_bindgen_test]
fn cached_blob_source_batches_small_reads() {
    let data = pattern(0, 4 * CACHE_BLOCK + 777);
    let src = blob::cached(blob_of(&[&data])).unwrap();
    // a zip reader walking backwards from the end in 1 KiB steps, then many tiny reads at the start
    let len = src.len();
    let mut off = len;
    while off >= 1024 && len - off < 3 * CACHE_BLOCK as u64 {
        off -= 1024;
        let mut buf = [0u8; 1024];
        src.read_at(off, &mut buf).unwrap();
        assert_eq!(&buf[..], &data[off as usize..off as usize + 1024]);
    }
    for i in 0..500u64 {
        let mut b = [0u8; 30];
        src.read_at(i * 13, &mut b).unwrap();
        assert_eq!(&b[..], &data[(i * 13) as usize..(i * 13) as usize + 30]);
    }
    // five 64 KiB blocks cover everything read above (block 0 and the last four)
    assert!(
        src.inner().reads() <= 5,
        "{} FileReaderSync calls",
        src.inner().reads()
    );
    // a large read bypasses the cache and is exact
    let mut big = vec![0u8; 2 * CACHE_BLOCK + 3];
    src.read_at(1, &mut big).unwrap();
    assert_eq!(big, &data[1..1 + big.len()]);
}

#[wasm_bindgen_test]
fn open_request_carries_the_same_file_object() {
    let file = file_of(b"PK\x03\x04 hello", "model.pth");
    let req = Request::Open {
        id: 42,
        files: vec![JsFile(file.clone())],
    };
    let v = to_message(&req).unwrap();
    // the wire shape the worker expects: [postcard bytes, File]; the bytes name the file by its
    // position (variant 0 `open`, id 42, one file, at position 0)
    let list: &Array = v.unchecked_ref();
    assert_eq!(list.length(), 2);
    let bytes: Uint8Array = list.get(0).unchecked_into();
    assert_eq!(bytes.to_vec(), [0, 42, 1, 0]);
    assert!(
        JsValue::from(file.clone()) == list.get(1),
        "not the same File object"
    );
    let back: Request<JsFile> = request_from_message(&v).unwrap();
    let Request::Open { id, files } = back else {
        panic!("not an open request")
    };
    assert_eq!(id, 42);
    assert!(JsValue::from(file) == JsValue::from(files[0].0.clone()));
    assert_eq!(files[0].0.name(), "model.pth");
    assert_eq!(files[0].0.size(), 10.0);
}

include!("requests_common/every_request.rs");

/// Every request kind crosses as postcard bytes plus its JS values and decodes back: the same
/// bytes when encoded again (bit for bit: `u64::MAX`, NaN payloads, `-0.0`), the same `File` and
/// disk-target objects at the same positions.
#[wasm_bindgen_test]
fn every_request_crosses_as_bytes_and_handles_and_back() {
    let target = js_sys::Object::new();
    let all = every_request(
        |name| JsFile(file_of(name.as_bytes(), name)),
        || DiskTarget(target.clone().into()),
    );
    let mut kinds = std::collections::BTreeSet::new();
    for r in &all {
        let (bytes, handles) = to_wire(r).unwrap();
        let back: Request<JsFile> = request_from_message(&to_message(r).unwrap()).unwrap();
        let (again, handles_again) = to_wire(&back).unwrap();
        assert_eq!(again, bytes, "{r:?}");
        assert_eq!(handles_again.len(), handles.len());
        assert!(handles.iter().zip(&handles_again).all(|(a, b)| a == b));
        assert_eq!(back.id(), r.id());
        kinds.insert(bytes[0]);
    }
    assert_eq!(kinds.len(), 26, "every variant of Request");
    // a disk target crosses as the same object; a File's position holding another value is
    // refused
    let Some(Request::Merge(MergeRequest::MergeExport {
        target: Some(DiskTarget(t)),
        ..
    })) = all
        .iter()
        .find(|r| r.id() == 29)
        .map(|r| request_from_message::<JsFile>(&to_message(r).unwrap()).unwrap())
    else {
        panic!("no merge export to disk")
    };
    assert!(t == JsValue::from(target));
    let not_a_file = Array::of2(&Uint8Array::from(&[0u8, 1, 1, 0][..]), &JsValue::from(1));
    assert!(request_from_message::<JsFile>(&not_a_file.into()).is_err());
}

fn handle(session: &mut Session, req: JsValue) -> Vec<Response> {
    let mut out = vec![];
    service::handle(session, req, &mut |r| out.push(r));
    out
}

fn open_req(id: u32, files: Vec<File>) -> JsValue {
    to_message(&Request::Open {
        id,
        files: files.into_iter().map(JsFile).collect(),
    })
    .unwrap()
}

#[wasm_bindgen_test]
fn worker_detects_a_real_file_by_its_bytes() {
    let mut s = Session::new();
    // a safetensors header in a file named .pth: the bytes decide
    let mut st = 2u64.to_le_bytes().to_vec();
    st.extend_from_slice(b"{}");
    let out = handle(&mut s, open_req(1, vec![file_of(&st, "weights.pth")]));
    let Response::Detected(d) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!((d.id, d.name.as_str(), d.size), (1, "weights.pth", 10));
    assert_eq!(d.format, "safetensors");
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[1].id(), Some(1));

    // random bytes: detected as unknown, then a real (not "unsupported") error naming the file
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let out = handle(&mut s, open_req(2, vec![file_of(&noise, "noise.pth")]));
    assert!(matches!(&out[0], Response::Detected(d) if d.format == "unknown" && d.size == 4096));
    let Response::Error(e) = &out[1] else {
        panic!("{out:?}")
    };
    assert_eq!(e.id, Some(2));
    assert_eq!(e.kind, weightscope::worker::protocol::ErrorKind::File);
    assert!(e.error.starts_with("noise.pth: "), "{}", e.error);
}

#[wasm_bindgen_test]
fn undecodable_message_is_answered() {
    let mut s = Session::new();
    let out = handle(&mut s, JsValue::from_str("hello"));
    assert!(
        matches!(&out[..], [Response::Error(e)] if e.id.is_none() && e.error.contains("bad request"))
    );
    // a JS object (the old wire shape), an open without its files, an unknown request kind
    let v = js_sys::JSON::parse(r#"{"open": {"id": 3, "files": []}}"#).unwrap();
    let cut = Array::of1(&Uint8Array::from(&[0u8, 3][..]));
    let unknown = Array::of1(&Uint8Array::from(&[99u8, 3][..]));
    for v in [v, cut.into(), unknown.into()] {
        let out = handle(&mut s, v);
        assert!(
            matches!(&out[..], [Response::Error(e)] if e.id.is_none()),
            "{out:?}"
        );
    }
}

#[wasm_bindgen_test]
fn answers_cross_as_bytes_and_decode_back() {
    let mut s = Session::new();
    let out = handle(&mut s, open_req(9, vec![file_of(b"PK\x03\x04", "a.pth")]));
    // an answer is [bytes] (postcard), its buffer transferred
    let v = service::encode(&out[0]);
    let list: &Array = v.unchecked_ref();
    assert_eq!(list.length(), 1);
    assert!(list.get(0).is_instance_of::<Uint8Array>());
    assert_eq!(service::transfer_list(&v).length(), 1);
    assert!(!service::carries_index(&v));
    // and the page decodes what the worker encodes
    assert!(matches!(&out[0], Response::Detected(d) if d.format == "torch-zip" && d.size == 4));
    assert_eq!(service::decode(v), Ok(out[0].clone()));
    // what is not an encoded answer is refused, not guessed at
    assert!(service::decode(JsValue::from_str("ready")).is_err());
    assert!(service::decode(Array::of1(&Uint8Array::from(&[200u8, 1][..])).into()).is_err());
    // an index decodes back unchanged (globals with and without an explanation, values,
    // metadata), and is told apart from other answers before it is decoded
    let summary = Response::Summary(weightscope::worker::protocol::Summary {
        id: 4,
        tensors: 1,
        params: 6,
        verdict: weightscope::format::Verdict::Safe,
        globals: vec![
            weightscope::worker::protocol::GlobalInfo {
                module: "torch._utils".into(),
                name: "_rebuild_tensor_v2".into(),
                tier: weightscope::format::Tier::Allowed,
                why: String::new(),
            },
            weightscope::worker::protocol::GlobalInfo {
                module: "os".into(),
                name: "system".into(),
                tier: weightscope::format::Tier::Dangerous,
                why: "runs a shell command".into(),
            },
        ],
        values: vec![weightscope::worker::protocol::ValueEntry {
            path: vec!["epoch".into()],
            text: "3".into(),
            kind: "int".into(),
            after: 1,
        }],
        metadata: vec![("format".into(), "pt".into())],
        entries: vec![weightscope::worker::protocol::Entry {
            path: vec!["w".into()],
            dtype: weightscope::format::DType::F32,
            shape: vec![2, 3],
            strides: vec![3, 1],
            storage_offset: 0,
            numel: 6,
            bytes: 24,
            storage: Some(0),
        }],
        ..Default::default()
    });
    let v = service::encode(&summary);
    assert!(service::carries_index(&v));
    assert_eq!(service::transfer_list(&v).length(), 1);
    assert_eq!(service::decode(v), Ok(summary));
    assert_eq!(
        service::decode(service::encode(&Response::Ready)),
        Ok(Response::Ready)
    );
    // statistics rows cross as bytes too, and decode back unchanged
    let summary = |count: u64, min: Option<f64>| weightscope::stats::ValueSummary {
        count,
        min,
        max: min.map(|m| m + 1.0),
        mean: min,
        std: Some(0.5),
        zeros: 1,
        nan: 2,
        posinf: 0,
        neginf: 3,
    };
    let rows = Response::StatsRows {
        id: 9,
        rows: vec![
            weightscope::worker::protocol::StatsRow {
                tensor: 7,
                summary: summary(8, Some(-1.5)),
                l2: 3.25,
                absmax: Some(2.0),
            },
            weightscope::worker::protocol::StatsRow {
                tensor: 40_000,
                summary: summary(0, None),
                l2: 0.0,
                absmax: None,
            },
        ],
    };
    let v = service::encode(&rows);
    assert!(!service::carries_index(&v));
    assert_eq!(service::transfer_list(&v).length(), 1);
    assert_eq!(service::decode(v), Ok(rows));
    // a JS value an answer carries (an export's Blob) crosses beside the bytes, the same object
    let blob = blob_of(&[b"abc"]);
    let exported = Response::Exported(weightscope::worker::protocol::ExportReply {
        id: 5,
        name: "m.pth".into(),
        size: 3,
        blob: weightscope::worker::protocol::BlobHandle(blob.clone().into()),
        tensors: 1,
        dropped: vec!["x".into()],
        aliases: vec![],
        overflow: vec![("w".into(), u64::MAX)],
        copied_bytes: 0,
        new_bytes: 3,
        millis: f64::NAN,
        wasm_memory_before: 1,
        wasm_memory_after: 2,
    });
    let v = service::encode(&exported);
    let list: &Array = v.unchecked_ref();
    assert_eq!(list.length(), 2);
    let Ok(Response::Exported(back)) = service::decode(v) else {
        panic!("not an export")
    };
    assert_eq!(back.blob.0, JsValue::from(blob), "not the same Blob object");
    // u64 past 2^53 and NaN cross exactly
    assert_eq!(back.overflow, vec![("w".to_string(), u64::MAX)]);
    assert!(back.millis.is_nan());
}

// --- edit & export

/// A safetensors file of float32 tensors `(name, values)`.
fn st_file(tensors: &[(&str, &[f32])]) -> Vec<u8> {
    let mut header = String::from("{");
    let mut data = vec![];
    for (i, (name, vals)) in tensors.iter().enumerate() {
        let start = data.len();
        for v in *vals {
            data.extend_from_slice(&v.to_le_bytes());
        }
        if i > 0 {
            header.push(',');
        }
        header.push_str(&format!(
            r#""{name}":{{"dtype":"F32","shape":[{}],"data_offsets":[{start},{}]}}"#,
            vals.len(),
            data.len()
        ));
    }
    header.push('}');
    while !header.len().is_multiple_of(8) {
        header.push(' ');
    }
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header.into_bytes());
    out.extend(data);
    out
}

fn blob_bytes(b: &Blob) -> Vec<u8> {
    let r = web_sys::FileReaderSync::new().unwrap();
    Uint8Array::new(&r.read_as_array_buffer(b).unwrap()).to_vec()
}

/// The same export done natively over the bytes in memory (slices copied from `input`).
fn native_export(
    input: &[u8],
    ops: &[weightscope::edit::Op],
    format: weightscope::export::plan::OutFormat,
    name: &str,
) -> Vec<u8> {
    use weightscope::export::plan::{export, Part};
    use weightscope::export::writer::Inputs;
    use weightscope::format::MemSource;
    let src = MemSource(input.to_vec());
    let ckpt = weightscope::format::open(&src, "m.safetensors").unwrap();
    let mut j =
        weightscope::edit::Journal::new(weightscope::edit::ETree::from_checkpoint(&ckpt, 0));
    for op in ops {
        j.apply(op.clone()).unwrap();
    }
    let inputs = Inputs {
        ckpts: vec![&ckpt],
        sources: vec![vec![&src as &dyn Source]],
        deferred: None,
    };
    let mut out = vec![];
    export(j.current(), &inputs, format, name, &mut |p| {
        match p {
            Part::Bytes(b) => out.extend(b),
            Part::Slice { offset, len, .. } => {
                out.extend_from_slice(&input[offset as usize..(offset + len) as usize])
            }
        }
        Ok(())
    })
    .unwrap();
    out
}

fn send(s: &mut Session, req: Request<JsFile>) -> Vec<Response> {
    handle(s, to_message(&req).unwrap())
}

#[wasm_bindgen_test]
fn worker_exports_an_edited_file_as_a_blob_of_slices_and_new_bytes() {
    use weightscope::edit::Op;
    use weightscope::export::plan::OutFormat;
    use weightscope::worker::protocol::OpSpec;
    let input = st_file(&[
        ("module.a", &[1.0, 2.0, 3.0]),
        ("module.b", &[-0.5, 65504.0 * 4.0]),
    ]);
    let mut s = Session::new();
    let out = handle(&mut s, open_req(1, vec![file_of(&input, "m.safetensors")]));
    assert!(matches!(&out[1], Response::Summary(_)), "{out:?}");
    let out = send(
        &mut s,
        Request::Edit {
            id: 2,
            op: OpSpec::StripPrefix {
                prefix: "module.".into(),
            },
        },
    );
    let Response::Journal(j) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!((j.error.as_ref(), j.ops.len()), (None, 1));
    assert_eq!(j.file, "m.safetensors");

    // rename only: the tensor data travels as a slice of the File, the bytes equal the native export
    for (fmt, name) in [
        (OutFormat::Safetensors, "m.edited.safetensors"),
        (OutFormat::Torch, "m.pth"),
    ] {
        let out = send(&mut s, Request::Export { id: 3, format: fmt });
        let Some(Response::Exported(e)) = out.last() else {
            panic!("{out:?}")
        };
        assert_eq!(e.name, name);
        assert_eq!(
            e.copied_bytes, 20,
            "{fmt:?}: tensor bytes are slices of the input"
        );
        let blob: Blob = e.blob.0.clone().unchecked_into();
        let got = blob_bytes(&blob);
        assert_eq!(got.len() as u64, e.size);
        let want = native_export(&input, &[Op::StripPrefix("module.".into())], fmt, name);
        assert_eq!(got, want, "{fmt:?}");
    }

    // a cast streams new bytes and counts the value that overflows float16
    let out = send(
        &mut s,
        Request::Edit {
            id: 4,
            op: OpSpec::Cast {
                dtype: weightscope::format::DType::F16,
                pattern: None,
            },
        },
    );
    assert!(
        matches!(&out[0], Response::Journal(j) if j.error.is_none()),
        "{out:?}"
    );
    let out = send(
        &mut s,
        Request::Export {
            id: 5,
            format: weightscope::export::OutFormat::Safetensors,
        },
    );
    let Some(Response::Exported(e)) = out.last() else {
        panic!("{out:?}")
    };
    assert_eq!(e.copied_bytes, 0);
    assert_eq!(e.overflow, vec![("b".to_string(), 1)]);
    let blob: Blob = e.blob.0.clone().unchecked_into();
    let want = native_export(
        &input,
        &[
            Op::StripPrefix("module.".into()),
            Op::Cast {
                dtype: weightscope::format::DType::F16,
                pattern: None,
            },
        ],
        OutFormat::Safetensors,
        "m.edited.safetensors",
    );
    assert_eq!(blob_bytes(&blob), want);

    // a refused operation changes nothing; undo goes back
    let out = send(
        &mut s,
        Request::Edit {
            id: 6,
            op: OpSpec::Delete {
                pattern: ".".into(),
            },
        },
    );
    let Response::Journal(j) = &out[0] else {
        panic!("{out:?}")
    };
    assert!(j.error.as_deref().unwrap().contains("refused"));
    assert_eq!(j.ops.len(), 2);
    let out = send(&mut s, Request::Undo { id: 7 });
    assert!(matches!(&out[0], Response::Journal(j) if j.ops.len() == 1 && j.redo.len() == 1));
}

/// A safetensors file with one float32 tensor `w` of shape [2, 3].
fn small_safetensors() -> Vec<u8> {
    let h = r#"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}"#;
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(h.as_bytes());
    for v in [1.0f32, -2.0, 3.0, 4.0, 0.0, 6.0] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

#[wasm_bindgen_test]
fn tensor_requests_read_the_file_through_the_blob() {
    let mut s = Session::new();
    let out = handle(
        &mut s,
        open_req(1, vec![file_of(&small_safetensors(), "m.safetensors")]),
    );
    let Response::Summary(sum) = &out[1] else {
        panic!("{out:?}")
    };
    assert_eq!(sum.entries.len(), 1);
    assert_eq!(sum.entries[0].shape, vec![2, 3]);
    let req = |r: &Request<JsFile>| to_message(r).unwrap();
    let out = handle(
        &mut s,
        req(&Request::Stats {
            id: 2,
            tensor: 0,
            bins: 8,
        }),
    );
    let Some(Response::Stats(st)) = out.last() else {
        panic!("{out:?}")
    };
    assert_eq!(
        (
            st.stats.summary.min,
            st.stats.summary.max,
            st.stats.summary.count
        ),
        (Some(-2.0), Some(6.0), 6)
    );
    // the encoded answer decodes on the page side unchanged
    let back: Response = service::decode(service::encode(&out[out.len() - 1])).unwrap();
    assert_eq!(&back, out.last().unwrap());
    let out = handle(
        &mut s,
        req(&Request::Values {
            id: 3,
            tensor: 0,
            n: 3,
        }),
    );
    assert!(
        matches!(&out[..], [Response::Values(v)] if v.values == ["1", "-2", "3"] && v.total == 6),
        "{out:?}"
    );
    let out = handle(
        &mut s,
        req(&Request::Heatmap {
            id: 4,
            tensor: 0,
            w: 3,
            h: 2,
        }),
    );
    assert!(
        matches!(&out[..], [Response::Heatmap(h)] if h.cells == [1.0, 2.0, 3.0, 4.0, 0.0, 6.0]),
        "{out:?}"
    );
    // a whole-file run is driven by the service's slices; here, by hand
    let out = handle(&mut s, req(&Request::AllStats { id: 5, bins: 64 }));
    assert!(
        matches!(
            &out[..],
            [Response::Progress {
                id: 5,
                total: 24,
                ..
            }]
        ),
        "{out:?}"
    );
    assert!(s.busy());
    let mut more = vec![];
    s.all_stats_step(&mut || true, &mut |r| more.push(r));
    assert!(matches!(
        more.last(),
        Some(Response::AllStatsDone {
            id: 5,
            cancelled: false
        })
    ));
}

// --- the page's message hub

/// The Inspector (through the context's `PageCheckpoint`) and the Edit / Compare tabs (through the
/// hub) draw request ids from one counter, so an answer reaches only the request it belongs to.
/// (Each once had its own counter starting at 2^24 + 1: an Inspector error reached the Edit tab.)
#[wasm_bindgen_test]
fn inspector_and_edit_tab_request_ids_never_collide() {
    use weightscope::ui::{context::PageCheckpoint, hub};
    let ck = PageCheckpoint::new();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..4 {
        let (inspector, edit) = (ck.new_id(), hub::next_id());
        assert!(seen.insert(inspector), "id {inspector} handed out twice");
        assert!(seen.insert(edit), "id {edit} handed out twice");
        assert!(
            inspector > 1 << 24 && edit > 1 << 24,
            "ids clear of the open flow's"
        );
    }
}

/// The worker's warm-up goes through its message handler with a `File` and returns the index of
/// assets/warm.pth (made by scripts/make_warm.py: these four tensors under `model`, in this order).
#[wasm_bindgen_test]
fn the_warm_up_opens_its_checkpoint_through_the_message_handler() {
    let Some(Response::Summary(s)) = service::warm_up() else {
        panic!("the warm-up gave no summary");
    };
    assert_eq!(s.id, weightscope::worker::protocol::WARM_ID);
    let paths: Vec<String> = s.entries.iter().map(|e| e.path.join("/")).collect();
    assert_eq!(
        paths,
        [
            "model/layers.0.weight",
            "model/layers.0.bias",
            "model/layers.1.weight",
            "model/steps"
        ]
    );
    let shapes: Vec<Vec<u64>> = s.entries.iter().map(|e| e.shape.clone()).collect();
    assert_eq!(shapes, [vec![4, 4], vec![4], vec![2, 4], vec![1]]);
}

#[wasm_bindgen_test]
fn the_tree_search_is_answered_by_the_worker_with_each_paths_first_match() {
    let mut s = Session::new();
    let paths = |text: &str, ranges: &[(u32, u32)]| {
        Some(SearchPaths {
            text: text.into(),
            ranges: ranges.to_vec(),
        })
    };
    let search = |s: &mut Session, pattern: &str, paths: Option<SearchPaths>| {
        let out = send(
            s,
            Request::Search {
                id: 77,
                pattern: pattern.into(),
                paths,
            },
        );
        assert_eq!(out.len(), 1);
        // the page decodes the answer as the worker encoded it
        assert_eq!(
            service::decode(service::encode(&out[0])),
            Ok(out[0].clone())
        );
        match &out[0] {
            Response::Search(r) if r.id == 77 => (r.matches.clone(), r.error.clone()),
            other => panic!("{other:?}"),
        }
    };
    // nothing to search before the page sent its paths
    assert_eq!(search(&mut s, "layers", None), (vec![], None));
    let text = "state_dict/layers.0.weightstate_dict/layers.10.bias";
    let tree = paths(text, &[(0, 26), (26, 51), (0, 10)]);
    assert_eq!(
        search(&mut s, r"layers\.\d+\.w", tree),
        (vec![(0, 11, 21)], None)
    );
    // later searches go through the kept paths (the fixed-form path: literals and `.`)
    assert_eq!(search(&mut s, "layers.1", None), (vec![(1, 11, 19)], None));
    let (m, e) = search(&mut s, "(", None);
    assert!(m.is_empty() && e.is_some_and(|e| e.starts_with("bad pattern")));
    // new paths replace them
    let other = paths("a/layers.1x", &[(0, 11)]);
    assert_eq!(search(&mut s, "layers.1", other), (vec![(0, 2, 10)], None));
}
