//! The undoable edit journal over one opened checkpoint.
//!
//! Contract: the original tree is never modified. [`Journal::apply`] validates an operation
//! against the current state and either records it (clearing the redo list) or refuses it with
//! a message and changes nothing. [`Journal::undo`] / [`Journal::redo`] move one operation at a
//! time. The current state is always `ops` applied in order to the original.

use super::ops::{Op, Refused};
use super::tree::ETree;

/// Operations over an original tree, with undo and redo.
#[derive(Debug, Clone)]
pub struct Journal {
    original: ETree,
    ops: Vec<Op>,
    redo: Vec<Op>,
    current: ETree,
}

impl Journal {
    pub fn new(original: ETree) -> Journal {
        Journal {
            current: original.clone(),
            original,
            ops: Vec::new(),
            redo: Vec::new(),
        }
    }
    /// The edited tree.
    pub fn current(&self) -> &ETree {
        &self.current
    }
    /// The unedited tree.
    pub fn original(&self) -> &ETree {
        &self.original
    }
    /// Applied operations, oldest first.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }
    /// Operations that `redo` would re-apply, next first.
    pub fn redo_list(&self) -> Vec<&Op> {
        self.redo.iter().rev().collect()
    }
    /// What the operation would produce, without recording it (for previews).
    pub fn preview(&self, op: &Op) -> Result<ETree, Refused> {
        op.apply(&self.current)
    }
    /// Apply and record `op`, or refuse it leaving everything unchanged.
    pub fn apply(&mut self, op: Op) -> Result<(), Refused> {
        let next = op.apply(&self.current)?;
        self.current = next;
        self.ops.push(op);
        self.redo.clear();
        Ok(())
    }
    /// Undo the last operation; false if there is none.
    pub fn undo(&mut self) -> bool {
        let Some(op) = self.ops.pop() else {
            return false;
        };
        self.redo.push(op);
        self.current = self.replay();
        true
    }
    /// Redo the last undone operation; false if there is none.
    pub fn redo(&mut self) -> bool {
        let Some(op) = self.redo.pop() else {
            return false;
        };
        match op.apply(&self.current) {
            Ok(next) => {
                self.current = next;
                self.ops.push(op);
                true
            }
            Err(_) => {
                self.redo.push(op);
                false
            }
        }
    }
    /// True if anything was changed.
    pub fn is_dirty(&self) -> bool {
        !self.ops.is_empty()
    }

    fn replay(&self) -> ETree {
        let mut t = self.original.clone();
        for op in &self.ops {
            // every recorded op applied cleanly to exactly this state before
            t = op
                .apply(&t)
                .expect("a recorded operation re-applies to the same state");
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edit::ops::parse_regex;
    use crate::edit::tree::{ENode, TensorRef};
    use crate::format::{DType, DictKind, Key, Node};

    fn t(i: usize, dtype: DType) -> ENode {
        ENode::Tensor(TensorRef {
            input: 0,
            index: i,
            cast: None,
            dtype,
        })
    }

    fn sd(keys: &[&str]) -> ETree {
        let items = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (Key::Str(k.to_string()), t(i, DType::F32)))
            .collect();
        let meta = Node::Dict {
            kind: DictKind::OrderedDict,
            items: vec![
                (Key::Str("module".into()), Node::Int { value: 1 }),
                (Key::Str("module.fc".into()), Node::Int { value: 2 }),
            ],
            attrs: vec![],
            state_dict: false,
        };
        ETree {
            root: ENode::Dict {
                kind: DictKind::OrderedDict,
                items,
                attrs: vec![(Key::Str("_metadata".into()), meta)],
            },
            metadata: vec![],
        }
    }

    fn keys(t: &ETree) -> Vec<String> {
        t.tensors().into_iter().map(|(p, _)| p.join("/")).collect()
    }

    #[test]
    fn strip_prefix_then_undo_redo() {
        let mut j = Journal::new(sd(&["module.fc.weight", "module.fc.bias"]));
        j.apply(Op::StripPrefix("module.".into())).unwrap();
        assert_eq!(keys(j.current()), ["fc.weight", "fc.bias"]);
        // _metadata module names follow the prefix
        if let ENode::Dict { attrs, .. } = &j.current().root {
            if let Node::Dict { items, .. } = &attrs[0].1 {
                let k: Vec<_> = items.iter().map(|(k, _)| k.segment()).collect();
                assert_eq!(k, ["", "fc"]);
            }
        }
        j.apply(Op::AddPrefix("model.".into())).unwrap();
        assert_eq!(keys(j.current()), ["model.fc.weight", "model.fc.bias"]);
        assert!(j.undo());
        assert_eq!(keys(j.current()), ["fc.weight", "fc.bias"]);
        assert!(j.undo());
        assert_eq!(keys(j.current()), ["module.fc.weight", "module.fc.bias"]);
        assert!(!j.undo());
        assert!(j.redo());
        assert!(j.redo());
        assert_eq!(keys(j.current()), ["model.fc.weight", "model.fc.bias"]);
        assert!(!j.redo());
    }

    #[test]
    fn collisions_and_empty_results_are_refused_and_change_nothing() {
        let mut j = Journal::new(sd(&["module.a", "a"]));
        let rename = |from: &str, to: &str| Op::Rename {
            from: from.into(),
            to: to.into(),
        };
        for (op, why) in [
            (Op::StripPrefix("module.".into()), "collision"),
            (Op::Delete(parse_regex(".").unwrap()), "no tensors"),
            (rename("nope", "x"), "no key"),
            (rename("a", "module.a"), "already exists"),
        ] {
            let e = j.apply(op).unwrap_err();
            assert!(e.0.contains(why), "{e}");
            assert_eq!(keys(j.current()), ["module.a", "a"]);
            assert!(j.ops().is_empty());
        }
        assert!(parse_regex("(").is_err());
    }

    #[test]
    fn rename_of_a_folder_renames_the_keys_under_it() {
        let mut j = Journal::new(sd(&[
            "encoder.layers.0.w",
            "encoder.layers.1.w",
            "encoder.norm.w",
            "encoder_x.w",
        ]));
        j.apply(Op::Rename {
            from: "encoder.layers".into(),
            to: "enc.blocks".into(),
        })
        .unwrap();
        assert_eq!(
            keys(j.current()),
            [
                "enc.blocks.0.w",
                "enc.blocks.1.w",
                "encoder.norm.w",
                "encoder_x.w"
            ]
        );
        // a name that would clash with a kept key is refused
        let mut j = Journal::new(sd(&["a.w", "b.w"]));
        let e = j
            .apply(Op::Rename {
                from: "a".into(),
                to: "b".into(),
            })
            .unwrap_err();
        assert!(e.0.contains("\"b.w\" already exists"), "{e}");
    }

    #[test]
    fn regex_replace_keep_delete_extract_cast() {
        let mut j = Journal::new(sd(&["layers.0.w", "layers.1.w", "head.w"]));
        j.apply(Op::replace(r"^layers\.(\d+)\.", r"blocks.\1.").unwrap())
            .unwrap();
        assert_eq!(keys(j.current()), ["blocks.0.w", "blocks.1.w", "head.w"]);
        j.apply(Op::Delete(parse_regex("^head").unwrap())).unwrap();
        assert_eq!(keys(j.current()), ["blocks.0.w", "blocks.1.w"]);
        j.apply(Op::Keep(parse_regex(r"\.1\.").unwrap())).unwrap();
        assert_eq!(keys(j.current()), ["blocks.1.w"]);
        j.apply(Op::Cast {
            dtype: DType::F16,
            pattern: None,
        })
        .unwrap();
        assert_eq!(j.current().tensors()[0].1.cast, Some(DType::F16));
        // ints are never cast
        let mut root = sd(&["a"]);
        if let ENode::Dict { items, .. } = &mut root.root {
            items.push((Key::Str("steps".into()), t(9, DType::I64)));
        }
        let out = Op::Cast {
            dtype: DType::BF16,
            pattern: None,
        }
        .apply(&root)
        .unwrap();
        let casts: Vec<_> = out.tensors().into_iter().map(|(_, t)| t.cast).collect();
        assert_eq!(casts, [Some(DType::BF16), None]);
        // extract
        let wrapped = ETree {
            root: ENode::Dict {
                kind: DictKind::Dict,
                items: vec![
                    (Key::Str("state_dict".into()), sd(&["x"]).root),
                    (
                        Key::Str("epoch".into()),
                        ENode::Leaf(Node::Int { value: 3 }),
                    ),
                ],
                attrs: vec![],
            },
            metadata: vec![],
        };
        let out = Op::Extract(vec!["state_dict".into()])
            .apply(&wrapped)
            .unwrap();
        assert_eq!(keys(&out), ["x"]);
        assert!(Op::Extract(vec!["epoch".into()]).apply(&wrapped).is_err());
        assert!(Op::Extract(vec!["nope".into()]).apply(&wrapped).is_err());
    }
}
