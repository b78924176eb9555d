//! The non-tensor leaves of a checkpoint's object tree, as short display texts for the page's
//! tree (epoch, hyper-parameters, optimizer `param_groups`).
//!
//! Contract: [`collect`] walks [`Node`] exactly as the readers build tensor paths (dict items by
//! [`crate::format::Key::segment`], list/tuple/set items by index, object args under
//! `__args__`, a non-dict object state under `__state__`) and returns one [`ValueEntry`] per
//! leaf that is not a tensor. A list/tuple/set holding only scalars is one value (`[0, 1, 2]`),
//! an empty container is one value (`{}`), an object with nothing inside is one value. Texts are
//! cut at [`MAX_TEXT`] characters; at most [`MAX_VALUES`] values are returned.

use super::protocol::ValueEntry;
use crate::display::python_float;
use crate::edit::ENode;
use crate::format::{Key, Node};

/// Longest display text (characters).
pub const MAX_TEXT: usize = 120;
/// Most values returned.
pub const MAX_VALUES: usize = 50_000;

/// The non-tensor leaves of `root`, in tree order.
pub fn collect(root: &Node) -> Vec<ValueEntry> {
    let mut w = Walk {
        out: vec![],
        tensors: 0,
        path: vec![],
    };
    w.node(root);
    w.out
}

/// The non-tensor leaves of an edited tree, in tree order (as [`collect`] for the checkpoint the
/// journal would write; a list of edited nodes holding only scalars is one value, as there).
pub fn collect_edited(root: &ENode) -> Vec<ValueEntry> {
    let mut w = Walk {
        out: vec![],
        tensors: 0,
        path: vec![],
    };
    w.enode(root);
    w.out
}

struct Walk {
    out: Vec<ValueEntry>,
    tensors: u32,
    path: Vec<String>,
}

fn cut(mut s: String) -> String {
    if s.chars().count() > MAX_TEXT {
        s = s.chars().take(MAX_TEXT - 1).collect::<String>() + "…";
    }
    s
}

/// Text and kind of a scalar node, `None` for containers, tensors and objects.
fn scalar(n: &Node) -> Option<(String, &'static str)> {
    Some(match n {
        Node::None => ("None".into(), "none"),
        Node::Bool { value } => ((if *value { "True" } else { "False" }).into(), "bool"),
        Node::Int { value } => (value.to_string(), "int"),
        Node::BigInt { value } => (value.clone(), "int"),
        Node::Float { value } => (python_float(*value), "float"),
        Node::Complex { re, im } => (format!("({re}{im:+}j)"), "complex"),
        Node::Str { value } => (crate::format::pickle::pyrepr::str_repr(value), "str"),
        Node::Bytes { data } => (format!("b'…' ({} bytes)", data.len()), "bytes"),
        Node::Dtype { name } => (format!("torch.{name}"), "dtype"),
        Node::Device { value } => (format!("device('{value}')"), "device"),
        Node::Size { dims } => (
            format!(
                "torch.Size([{}])",
                dims.iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "size",
        ),
        Node::Global { module, name } => (format!("{module}.{name}"), "global"),
        Node::Elided { reason } => (format!("… ({reason})"), "elided"),
        _ => return None,
    })
}

impl Walk {
    fn push(&mut self, text: String, kind: &str) {
        if self.out.len() < MAX_VALUES {
            self.out.push(ValueEntry {
                path: self.path.clone(),
                text: cut(text),
                kind: kind.into(),
                after: self.tensors,
            });
        }
    }

    fn seq(&mut self, items: &[Node], open: &str, close: &str, kind: &str) {
        if items.iter().all(|n| scalar(n).is_some()) {
            let parts: Vec<String> = items
                .iter()
                .filter_map(|n| scalar(n).map(|s| s.0))
                .collect();
            let mut text = String::from(open);
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    text.push_str(", ");
                }
                text.push_str(p);
                if text.len() > MAX_TEXT {
                    break;
                }
            }
            if items.len() == 1 && kind == "tuple" {
                text.push(',');
            }
            text.push_str(close);
            self.push(text, kind);
            return;
        }
        for (i, n) in items.iter().enumerate() {
            self.path.push(i.to_string());
            self.node(n);
            self.path.pop();
        }
    }

    /// A dict's items under their keys (an empty dict is the value `{}`).
    fn dict<T>(&mut self, items: &[(Key, T)], walk: fn(&mut Self, &T)) {
        if items.is_empty() {
            self.push("{}".into(), "dict");
        }
        for (k, v) in items {
            self.path.push(k.segment());
            walk(self, v);
            self.path.pop();
        }
    }

    fn enode(&mut self, n: &ENode) {
        match n {
            ENode::Leaf(v) => self.node(v),
            ENode::Tensor(_) => self.tensors += 1,
            ENode::Dict { items, .. } => self.dict(items, Self::enode),
            ENode::List(items) | ENode::Tuple(items) => {
                let leaves: Option<Vec<Node>> = items
                    .iter()
                    .map(|i| match i {
                        ENode::Leaf(v) if scalar(v).is_some() => Some(v.clone()),
                        _ => None,
                    })
                    .collect();
                let tuple = matches!(n, ENode::Tuple(_));
                match leaves {
                    Some(l) if tuple => self.seq(&l, "(", ")", "tuple"),
                    Some(l) => self.seq(&l, "[", "]", "list"),
                    None => {
                        for (i, v) in items.iter().enumerate() {
                            self.path.push(i.to_string());
                            self.enode(v);
                            self.path.pop();
                        }
                    }
                }
            }
        }
    }

    fn node(&mut self, n: &Node) {
        if let Some((text, kind)) = scalar(n) {
            self.push(text, kind);
            return;
        }
        match n {
            Node::Tensor { .. } => self.tensors += 1,
            Node::List { items } => self.seq(items, "[", "]", "list"),
            Node::Tuple { items } => self.seq(items, "(", ")", "tuple"),
            Node::Set { items, .. } => self.seq(items, "{", "}", "set"),
            Node::Dict { items, .. } => self.dict(items, Self::node),
            Node::Object {
                module,
                name,
                args,
                state,
                items,
            } => {
                // a call with plain arguments reads best as the call: os.system('echo pwned')
                if state.is_none() && items.is_empty() && args.iter().all(|a| scalar(a).is_some()) {
                    let parts: Vec<String> =
                        args.iter().filter_map(|a| scalar(a).map(|s| s.0)).collect();
                    self.push(format!("{module}.{name}({})", parts.join(", ")), "call");
                    return;
                }
                let before = (self.out.len(), self.tensors);
                if !args.is_empty() {
                    self.path.push("__args__".into());
                    self.seq(args, "(", ")", "tuple");
                    self.path.pop();
                }
                if let Some(s) = state {
                    if matches!(**s, Node::Dict { .. }) {
                        self.node(s);
                    } else {
                        self.path.push("__state__".into());
                        self.node(s);
                        self.path.pop();
                    }
                }
                for (k, v) in items {
                    self.path.push(k.segment());
                    self.node(v);
                    self.path.pop();
                }
                if (self.out.len(), self.tensors) == before {
                    self.push(format!("{module}.{name}(…)"), "object");
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{DictKind, Key};

    fn dict(items: Vec<(&str, Node)>) -> Node {
        Node::Dict {
            kind: DictKind::Dict,
            items: items
                .into_iter()
                .map(|(k, v)| (Key::Str(k.into()), v))
                .collect(),
            attrs: vec![],
            state_dict: false,
        }
    }

    #[test]
    fn leaves_get_paths_and_texts_in_tree_order() {
        let root = dict(vec![
            ("epoch", Node::Int { value: 3 }),
            (
                "model",
                dict(vec![
                    ("w", Node::Tensor { index: 0 }),
                    ("b", Node::Tensor { index: 1 }),
                ]),
            ),
            (
                "optimizer",
                dict(vec![(
                    "param_groups",
                    Node::List {
                        items: vec![dict(vec![
                            ("lr", Node::Float { value: 0.001 }),
                            (
                                "params",
                                Node::List {
                                    items: vec![Node::Int { value: 0 }, Node::Int { value: 1 }],
                                },
                            ),
                            (
                                "name",
                                Node::Str {
                                    value: "adam".into(),
                                },
                            ),
                        ])],
                    },
                )]),
            ),
            ("empty", dict(vec![])),
        ]);
        let v = collect(&root);
        let got: Vec<(String, &str, &str, u32)> = v
            .iter()
            .map(|e| (e.path.join("/"), e.text.as_str(), e.kind.as_str(), e.after))
            .collect();
        assert_eq!(
            got,
            vec![
                ("epoch".into(), "3", "int", 0),
                ("optimizer/param_groups/0/lr".into(), "0.001", "float", 2),
                (
                    "optimizer/param_groups/0/params".into(),
                    "[0, 1]",
                    "list",
                    2
                ),
                ("optimizer/param_groups/0/name".into(), "'adam'", "str", 2),
                ("empty".into(), "{}", "dict", 2),
            ]
        );
    }

    #[test]
    fn long_texts_are_cut_and_floats_read_like_python() {
        let root = dict(vec![(
            "s",
            Node::Str {
                value: "x".repeat(500),
            },
        )]);
        let v = collect(&root);
        assert_eq!(v[0].text.chars().count(), MAX_TEXT);
        assert!(v[0].text.ends_with('…'));
        assert_eq!(python_float(1.0), "1.0");
        assert_eq!(python_float(1e-8), "0.00000001");
        assert_eq!(python_float(f64::NAN), "nan");
        assert_eq!(python_float(f64::NEG_INFINITY), "-inf");
    }

    /// An inert object `module.name` built from `args`, with an optional state.
    fn object(global: &str, args: Vec<Node>, state: Option<Node>) -> Node {
        let (module, name) = global.rsplit_once('.').unwrap();
        Node::Object {
            module: module.into(),
            name: name.into(),
            args,
            state: state.map(Box::new),
            items: vec![],
        }
    }

    #[test]
    fn an_inert_object_is_one_value() {
        let root = dict(vec![("args", object("argparse.Namespace", vec![], None))]);
        let v = collect(&root);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].text, "argparse.Namespace()");
        assert_eq!(v[0].kind, "call");
        let root = dict(vec![(
            "payload",
            object(
                "posix.system",
                vec![Node::Str {
                    value: "echo pwned".into(),
                }],
                None,
            ),
        )]);
        let v = collect(&root);
        assert_eq!(v[0].path, vec!["payload".to_string()]);
        assert_eq!(v[0].text, "posix.system('echo pwned')");
        // an object with state is walked
        let root = dict(vec![(
            "ns",
            object(
                "argparse.Namespace",
                vec![],
                Some(dict(vec![("lr", Node::Float { value: 0.5 })])),
            ),
        )]);
        let v = collect(&root);
        assert_eq!(v[0].path, vec!["ns".to_string(), "lr".to_string()]);
    }
}
