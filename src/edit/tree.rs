//! The editable view of a checkpoint: its tree with tensors as references into the opened
//! checkpoint(s), each optionally cast. Edits rebuild this tree; writers serialise it.
//!
//! Contract: building an [`ETree`] copies only metadata. Tensors are listed depth-first in
//! insertion order, as in the index; inert objects (`Node::Object`) and elided values are kept
//! as leaves here and dropped (and listed) by the writers.

use crate::format::{Checkpoint, DType, DictKind, Key, Node, TensorInfo};

/// A tensor in an edited tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TensorRef {
    /// Which input checkpoint (0 = the file being edited; 1.. = transplant sources).
    pub input: usize,
    /// Index into that checkpoint's tensors.
    pub index: usize,
    /// Cast to this dtype on export.
    pub cast: Option<DType>,
    /// The tensor's stored dtype (casts skip integer and bool tensors).
    pub dtype: DType,
}

/// A node of the edited tree.
#[derive(Debug, Clone, PartialEq)]
pub enum ENode {
    /// Any non-container, non-tensor value (and inert objects), as read.
    Leaf(Node),
    Tensor(TensorRef),
    Dict {
        kind: DictKind,
        items: Vec<(Key, ENode)>,
        attrs: Vec<(Key, Node)>,
    },
    List(Vec<ENode>),
    Tuple(Vec<ENode>),
}

impl ENode {
    /// The children of a dict, list or tuple, each with its path segment (the key's text, the
    /// list index); none for a leaf or a tensor.
    pub fn children(&self) -> impl Iterator<Item = (String, &ENode)> + '_ {
        let (dict, list): (&[(Key, ENode)], &[ENode]) = match self {
            ENode::Dict { items, .. } => (items, &[]),
            ENode::List(items) | ENode::Tuple(items) => (&[], items),
            ENode::Leaf(_) | ENode::Tensor(_) => (&[], &[]),
        };
        let keyed = dict.iter().map(|(k, v)| (k.segment(), v));
        keyed.chain(list.iter().enumerate().map(|(i, v)| (i.to_string(), v)))
    }

    /// [`ENode::children`], mutable.
    pub fn children_mut(&mut self) -> impl Iterator<Item = (String, &mut ENode)> + '_ {
        let (dict, list): (&mut [(Key, ENode)], &mut [ENode]) = match self {
            ENode::Dict { items, .. } => (items, &mut []),
            ENode::List(items) | ENode::Tuple(items) => (&mut [], items),
            ENode::Leaf(_) | ENode::Tensor(_) => (&mut [], &mut []),
        };
        let keyed = dict.iter_mut().map(|(k, v)| (k.segment(), v));
        keyed.chain(list.iter_mut().enumerate().map(|(i, v)| (i.to_string(), v)))
    }
}

/// The edited tree plus the safetensors metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct ETree {
    pub root: ENode,
    pub metadata: Vec<(String, String)>,
}

impl ETree {
    /// The unedited view of input `input`.
    pub fn from_checkpoint(c: &Checkpoint, input: usize) -> ETree {
        ETree {
            root: from_node(&c.root, input, &c.tensors),
            metadata: c.metadata.clone(),
        }
    }

    /// Every tensor with its path (keys from the root; list indices as decimal strings).
    pub fn tensors(&self) -> Vec<(Vec<String>, TensorRef)> {
        let mut out = Vec::new();
        let mut path = Vec::new();
        collect(&self.root, &mut path, &mut out);
        out
    }
}

/// Convert an index node into an editable node (`tensors`: the checkpoint's tensor list).
pub fn from_node(n: &Node, input: usize, tensors: &[TensorInfo]) -> ENode {
    match n {
        Node::Tensor { index } => ENode::Tensor(TensorRef {
            input,
            index: *index,
            cast: None,
            dtype: tensors.get(*index).map(|t| t.dtype).unwrap_or(DType::U8),
        }),
        Node::Dict {
            kind, items, attrs, ..
        } => ENode::Dict {
            kind: *kind,
            items: items
                .iter()
                .map(|(k, v)| (k.clone(), from_node(v, input, tensors)))
                .collect(),
            attrs: attrs.clone(),
        },
        Node::List { items } => {
            ENode::List(items.iter().map(|v| from_node(v, input, tensors)).collect())
        }
        Node::Tuple { items } => {
            ENode::Tuple(items.iter().map(|v| from_node(v, input, tensors)).collect())
        }
        // An inert object that holds tensors (a full-module pickle, a TorchScript module) becomes
        // a dict of its attributes, so its tensors can be edited and exported; tensor-less
        // objects stay leaves (writers drop them and say so).
        Node::Object {
            module,
            name,
            state: Some(state),
            items,
            ..
        } if holds_tensor(n) => {
            let mut out = match from_node(state, input, tensors) {
                ENode::Dict { items, .. } => items,
                other => vec![(Key::Str("__state__".into()), other)],
            };
            out.extend(
                items
                    .iter()
                    .map(|(k, v)| (k.clone(), from_node(v, input, tensors))),
            );
            ENode::Dict {
                kind: DictKind::Dict,
                items: out,
                attrs: vec![(
                    Key::Str(OBJECT_MARK.into()),
                    Node::Global {
                        module: module.clone(),
                        name: name.clone(),
                    },
                )],
            }
        }
        other => ENode::Leaf(other.clone()),
    }
}

/// The attribute that marks a dict made from an inert object's attributes (never a real
/// attribute: BUILD-set attributes of dicts are module metadata such as `_metadata`).
pub const OBJECT_MARK: &str = "__weightscope_object__";

fn holds_tensor(n: &Node) -> bool {
    match n {
        Node::Tensor { .. } => true,
        Node::Dict { items, .. } => items.iter().any(|(_, v)| holds_tensor(v)),
        Node::List { items } | Node::Tuple { items } | Node::Set { items, .. } => {
            items.iter().any(holds_tensor)
        }
        Node::Object {
            args, state, items, ..
        } => {
            args.iter().any(holds_tensor)
                || state.as_deref().is_some_and(holds_tensor)
                || items.iter().any(|(_, v)| holds_tensor(v))
        }
        _ => false,
    }
}

fn collect(n: &ENode, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, TensorRef)>) {
    if let ENode::Tensor(t) = n {
        out.push((path.clone(), *t));
    }
    for (seg, v) in n.children() {
        path.push(seg);
        collect(v, path, out);
        path.pop();
    }
}
