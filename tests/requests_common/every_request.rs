// One request of every kind the page sends (every variant of `Request`, `OpSpec`, `Window`,
// `TrendRequest`, `MergeRequest` and `Method`), with the values that must cross bit for bit:
// `u64::MAX`, NaN, negative zero, infinities, Unicode, empty lists. Shared by the native wire
// tests (src/worker/protocol.rs) and the browser's (tests/web.rs) through `include!`: the
// includer brings the names into scope and gives the file handle (`file`) and the disk target
// (`target`) of its side.
fn every_request<F: Clone>(
    file: impl Fn(&str) -> F,
    target: impl Fn() -> DiskTarget,
) -> Vec<Request<F>> {
    let text = |s: &str| s.to_string();
    let maps = vec![(text("module."), text("")), (text("é/ü"), text("∂"))];
    let plane = Window::Plane {
        row_axis: 0,
        col_axis: 2,
        index: vec![u64::MAX, 0, 7],
        row0: u64::MAX - 1,
        rows: u32::MAX,
        col0: 1 << 53,
        cols: 1,
    };
    let flat = Window::Flat {
        first: u64::MAX,
        count: 0,
    };
    let cast = TensorSource {
        input: 1,
        tensor: u32::MAX,
        cast: Some(DType::BF16),
    };
    let spec = |method| MergeSpec {
        method,
        keys: Some(text("^layers\\.[0-9]+\\.")),
    };
    let ops = vec![
        OpSpec::StripPrefix {
            prefix: text("module."),
        },
        OpSpec::AddPrefix { prefix: text("") },
        OpSpec::Rename {
            from: text("a"),
            to: text("b/ç"),
        },
        OpSpec::Replace {
            pattern: text("(\\d+)"),
            replacement: text("$1"),
        },
        OpSpec::Delete {
            pattern: text(".*bias"),
        },
        OpSpec::DeletePath {
            path: vec![text("model"), text("0")],
        },
        OpSpec::Keep {
            pattern: text("^enc"),
        },
        OpSpec::KeepPath { path: vec![] },
        OpSpec::Extract {
            path: text("state_dict"),
        },
        OpSpec::Cast {
            dtype: DType::F16,
            pattern: None,
        },
        OpSpec::Cast {
            dtype: DType::F32,
            pattern: Some(text("w")),
        },
        OpSpec::SetMetadata {
            key: text("k"),
            value: None,
        },
        OpSpec::SetMetadata {
            key: text("k"),
            value: Some(text("v\u{0}")),
        },
        OpSpec::Transplant {
            pattern: text("^b\\."),
            replacement: Some(text("a.")),
            maps: vec![],
        },
        OpSpec::Transplant {
            pattern: text("x"),
            replacement: None,
            maps: maps.clone(),
        },
    ];
    let mut all = vec![
        Request::Open {
            id: 0,
            files: vec![file("a.pth"), file("b.pth")],
        },
        Request::Stats {
            id: u32::MAX,
            tensor: 3,
            bins: 64,
        },
        Request::Values {
            id: 2,
            tensor: 0,
            n: 100,
        },
        Request::Heatmap {
            id: 3,
            tensor: 1,
            w: 256,
            h: 128,
        },
        Request::AllStats { id: 4, bins: 0 },
        Request::Cancel { id: 5 },
        Request::StatsPart {
            id: 6,
            open_id: 1 << 24,
            files: vec![file("model-00001.safetensors"), file("model.index.json")],
            bins: 64,
            tensors: vec![0, 1, u32::MAX],
        },
        Request::Undo { id: 7 },
        Request::Redo { id: 8 },
        Request::JournalList { id: 9 },
        Request::Export {
            id: 10,
            format: OutFormat::Torch,
        },
        Request::Export {
            id: 11,
            format: OutFormat::Safetensors,
        },
        Request::OpenB {
            id: 12,
            file: file("b.safetensors"),
        },
        Request::Diff {
            id: 13,
            maps: maps.clone(),
        },
        Request::Diff {
            id: 14,
            maps: vec![],
        },
        Request::Window {
            id: 15,
            tensor: 2,
            window: flat.clone(),
        },
        Request::StatsReport { id: 16, bins: 32 },
        Request::Ab {
            id: 17,
            key: text("layers.0.weight"),
            maps: maps.clone(),
            bins: 50,
        },
        Request::StatsOf {
            id: 18,
            source: cast,
            bins: 8,
        },
        Request::ValuesOf {
            id: 19,
            source: TensorSource::of(4),
            n: 1,
        },
        Request::HeatmapOf {
            id: 20,
            source: cast,
            w: 1,
            h: 1,
        },
        Request::ChooseB { id: 21, input: 2 },
        Request::WindowOf {
            id: 22,
            source: cast,
            window: plane,
        },
        Request::Trend(TrendRequest::TrendOpen {
            id: 23,
            files: vec![file("step-100.pt")],
        }),
        Request::Trend(TrendRequest::TrendStep {
            id: 24,
            cur: 3,
            prev: None,
        }),
        Request::Trend(TrendRequest::TrendStep {
            id: 25,
            cur: 3,
            prev: Some(2),
        }),
        Request::Merge(MergeRequest::MergeOpen {
            id: 26,
            first: vec![file("first.pth")],
            others: vec![file("x.safetensors"), file("y.safetensors")],
        }),
        Request::Merge(MergeRequest::MergePreview {
            id: 27,
            spec: spec(Method::Linear {
                weights: vec![0.5, f64::NAN, -0.0, f64::INFINITY],
            }),
        }),
        Request::Merge(MergeRequest::MergeExport {
            id: 28,
            spec: spec(Method::AddDifference {
                alpha: f64::MIN_POSITIVE,
            }),
            format: OutFormat::Safetensors,
            shard_size: Some(u64::MAX),
            target: None,
        }),
        Request::Merge(MergeRequest::MergeExport {
            id: 29,
            spec: MergeSpec {
                method: Method::Slerp { t: 1.0 / 3.0 },
                keys: None,
            },
            format: OutFormat::Torch,
            shard_size: None,
            target: Some(target()),
        }),
        Request::Merge(MergeRequest::MergePreview {
            id: 30,
            spec: spec(Method::Ties {
                density: f64::from_bits(0x7ff8_0000_0000_0001),
                alpha: f64::NEG_INFINITY,
            }),
        }),
        Request::Search {
            id: 31,
            pattern: text(r"^é/layers\.\d+$"),
            paths: Some(SearchPaths {
                text: text("é/layers.0∂"),
                ranges: vec![(0, 11), (u32::MAX, 0), (0, 0)],
            }),
        },
        Request::Search {
            id: 32,
            pattern: text("layers"),
            paths: None,
        },
    ];
    for (k, op) in ops.into_iter().enumerate() {
        all.push(Request::Edit {
            id: 100 + k as u32,
            op: op.clone(),
        });
        all.push(Request::Preview {
            id: 200 + k as u32,
            op,
        });
    }
    all
}
