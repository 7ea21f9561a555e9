//! A model of ZooKeeper znodes keyed by path: create, setData, getData
//! (after sync), delete, check and multi, with ZooKeeper 3.8's outcomes;
//! sync itself may be recorded too, and is not checked.
//!
//! The state of a partition is a sorted map from each of its paths that
//! exists to the node's data and `dataVersion`, so it stays small and
//! hashes the same however it was reached. Paths are the keys: operations on
//! different paths are independent, which is what lets the checker split a
//! history by path (Horn & Kroening 2015) and join the paths of a `multi`.
//!
//! Deliberately left out, so keep them out of histories checked with this
//! model: parents and children (a create's parent is assumed to exist, a
//! delete never fails with `NotEmpty`), sequential and ephemeral nodes,
//! ACLs, and Stat fields other than `dataVersion`. Sequential creates have
//! their own direct check, [`sequential`](crate::models::sequential).

mod ops;
mod state;

use std::borrow::Cow;
use std::collections::BTreeMap;

pub use ops::{MultiOp, MultiResult, ZkError, ZnodeOp, ZnodeOutput};
pub use state::{Znode, Znodes};

use crate::model::Model;
use crate::models::data::Data;

impl Znodes {
    /// The output `op` gives from this state, and the state after it.
    /// This is the model's whole sequential specification; tests and
    /// workloads can use it as a reference.
    pub fn apply(&self, op: &ZnodeOp) -> (Znodes, ZnodeOutput) {
        let (next, output) = outcome(self, op);
        (next.into_owned(), output)
    }
}

/// The znode model. It carries the nodes that existed before the history
/// was recorded (none by default).
#[derive(Clone, Debug, Default)]
pub struct ZnodeModel {
    initial: BTreeMap<String, Znode>,
}

impl ZnodeModel {
    /// A model in which no node exists at first.
    pub fn new() -> Self {
        Self::default()
    }

    /// This model with a node at `path` before the history.
    pub fn with_node(
        mut self,
        path: impl Into<String>,
        data: impl Into<Data>,
        version: i32,
    ) -> Self {
        self.initial.insert(
            path.into(),
            Znode {
                data: data.into(),
                version,
            },
        );
        self
    }
}

impl Model for ZnodeModel {
    type State = Znodes;
    type Input = ZnodeOp;
    type Output = ZnodeOutput;
    type Key = String;

    fn init(&self, keys: &[String]) -> Znodes {
        keys.iter()
            .filter_map(|path| {
                self.initial
                    .get(path)
                    .map(|node| (path.clone(), node.clone()))
            })
            .collect()
    }

    fn step(&self, state: &Znodes, input: &ZnodeOp, output: &ZnodeOutput) -> Option<Znodes> {
        let (next, expected) = outcome(state, input);
        (expected == *output).then(|| next.into_owned())
    }

    /// The model is deterministic, so an operation that takes effect has
    /// one successor; one that would fail changes nothing, which is the
    /// same as not taking effect, so it has none.
    fn step_unknown(&self, state: &Znodes, input: &ZnodeOp) -> Vec<Znodes> {
        match outcome(state, input).0 {
            Cow::Owned(next) => vec![next],
            Cow::Borrowed(_) => Vec::new(),
        }
    }

    fn keys(&self, input: &ZnodeOp) -> Vec<String> {
        input.paths().into_iter().map(String::from).collect()
    }

    fn is_read_only(&self, input: &ZnodeOp) -> bool {
        matches!(input, ZnodeOp::GetData { .. } | ZnodeOp::Sync { .. })
    }
}

/// The state after `op` (borrowed when unchanged, so failures and reads
/// cost no copy) and its output.
fn outcome<'s>(nodes: &'s Znodes, op: &ZnodeOp) -> (Cow<'s, Znodes>, ZnodeOutput) {
    let write = match op {
        ZnodeOp::Sync { .. } => return (Cow::Borrowed(nodes), ZnodeOutput::Synced),
        ZnodeOp::GetData { path } => {
            let output = match nodes.get(path) {
                Some(node) => ZnodeOutput::Data {
                    data: node.data.clone(),
                    version: node.version,
                },
                None => ZnodeOutput::Error(ZkError::NoNode),
            };
            return (Cow::Borrowed(nodes), output);
        }
        ZnodeOp::Multi(ops) => {
            // Applied in order on a working copy, each op seeing the ones
            // before it; the first failure discards the copy.
            let mut working = Cow::Borrowed(nodes);
            let mut outputs = Vec::with_capacity(ops.len());
            for (index, op) in ops.iter().enumerate() {
                match apply_write(&mut working, Write::from(op)) {
                    Ok(output) => outputs.push(output),
                    Err(error) => {
                        let failed = MultiResult::Failed { index, error };
                        return (Cow::Borrowed(nodes), ZnodeOutput::Multi(failed));
                    }
                }
            }
            return (working, ZnodeOutput::Multi(MultiResult::Ok(outputs)));
        }
        ZnodeOp::Create { path, data } => Write::Create { path, data },
        ZnodeOp::SetData {
            path,
            data,
            version,
        } => Write::SetData {
            path,
            data,
            version: *version,
        },
        ZnodeOp::Delete { path, version } => Write::Delete {
            path,
            version: *version,
        },
        ZnodeOp::CheckVersion { path, version } => Write::CheckVersion {
            path,
            version: *version,
        },
    };
    let mut working = Cow::Borrowed(nodes);
    let output = apply_write(&mut working, write).unwrap_or_else(ZnodeOutput::Error);
    (working, output)
}

/// A write or check, on its own or inside a multi.
#[derive(Clone, Copy, Debug)]
enum Write<'a> {
    Create {
        path: &'a str,
        data: &'a Data,
    },
    SetData {
        path: &'a str,
        data: &'a Data,
        version: Option<i32>,
    },
    Delete {
        path: &'a str,
        version: Option<i32>,
    },
    CheckVersion {
        path: &'a str,
        version: i32,
    },
}

impl<'a> From<&'a MultiOp> for Write<'a> {
    fn from(op: &'a MultiOp) -> Self {
        match op {
            MultiOp::Create { path, data } => Write::Create { path, data },
            MultiOp::SetData {
                path,
                data,
                version,
            } => Write::SetData {
                path,
                data,
                version: *version,
            },
            MultiOp::Delete { path, version } => Write::Delete {
                path,
                version: *version,
            },
            MultiOp::CheckVersion { path, version } => Write::CheckVersion {
                path,
                version: *version,
            },
        }
    }
}

/// Applies `write` to `nodes`, which is copied only if it changes.
fn apply_write(nodes: &mut Cow<'_, Znodes>, write: Write<'_>) -> Result<ZnodeOutput, ZkError> {
    match write {
        Write::Create { path, data } => {
            if nodes.get(path).is_some() {
                return Err(ZkError::NodeExists);
            }
            let node = Znode {
                data: data.clone(),
                version: 0,
            };
            nodes.to_mut().put(path, node);
            Ok(ZnodeOutput::Created)
        }
        Write::SetData {
            path,
            data,
            version,
        } => {
            let node = existing(nodes, path, version)?;
            // ZooKeeper's dataVersion is an int that wraps.
            let version = node.version.wrapping_add(1);
            nodes.to_mut().put(
                path,
                Znode {
                    data: data.clone(),
                    version,
                },
            );
            Ok(ZnodeOutput::Set { version })
        }
        Write::Delete { path, version } => {
            existing(nodes, path, version)?;
            nodes.to_mut().remove(path);
            Ok(ZnodeOutput::Deleted)
        }
        Write::CheckVersion { path, version } => {
            existing(nodes, path, Some(version))?;
            Ok(ZnodeOutput::Checked)
        }
    }
}

/// The node at `path` if it exists and has the expected version; `None`
/// and ZooKeeper's -1 match any version (`PrepRequestProcessor.
/// checkAndIncVersion`).
fn existing<'n>(
    nodes: &'n Znodes,
    path: &str,
    expected: Option<i32>,
) -> Result<&'n Znode, ZkError> {
    let node = nodes.get(path).ok_or(ZkError::NoNode)?;
    match expected {
        Some(version) if version != -1 && version != node.version => Err(ZkError::BadVersion),
        _ => Ok(node),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(path: &str, data: &str, version: Option<i32>) -> ZnodeOp {
        ZnodeOp::SetData {
            path: path.into(),
            data: data.into(),
            version,
        }
    }

    fn run(ops: &[ZnodeOp]) -> (Znodes, Vec<ZnodeOutput>) {
        let mut state = Znodes::default();
        let mut outputs = Vec::new();
        for op in ops {
            let (next, output) = state.apply(op);
            state = next;
            outputs.push(output);
        }
        (state, outputs)
    }

    #[test]
    fn versions_follow_zookeeper_data_version() {
        let create = ZnodeOp::Create {
            path: "/a".into(),
            data: "0".into(),
        };
        let (state, outputs) = run(&[
            create.clone(),
            create,
            set("/a", "1", Some(0)),
            set("/a", "2", Some(0)),
            set("/a", "3", Some(-1)),
            set("/b", "x", None),
            ZnodeOp::CheckVersion {
                path: "/a".into(),
                version: 2,
            },
            ZnodeOp::GetData { path: "/a".into() },
        ]);
        use ZnodeOutput::*;
        assert_eq!(
            outputs,
            [
                Created,
                Error(ZkError::NodeExists),
                Set { version: 1 },
                Error(ZkError::BadVersion),
                Set { version: 2 },
                Error(ZkError::NoNode),
                Checked,
                Data {
                    data: "3".into(),
                    version: 2
                },
            ]
        );
        assert_eq!(format!("{state:?}"), "{\"/a\": \"3\" v2}");
    }

    #[test]
    fn a_failed_multi_applies_nothing_and_names_the_failing_op() {
        let multi = ZnodeOp::Multi(vec![
            MultiOp::Create {
                path: "/a".into(),
                data: "x".into(),
            },
            MultiOp::SetData {
                path: "/a".into(),
                data: "y".into(),
                version: Some(0),
            },
            MultiOp::Delete {
                path: "/b".into(),
                version: None,
            },
        ]);
        let (state, outputs) = run(std::slice::from_ref(&multi));
        assert_eq!(
            outputs,
            [ZnodeOutput::Multi(MultiResult::Failed {
                index: 2,
                error: ZkError::NoNode
            })]
        );
        assert_eq!(state, Znodes::default());

        let create_b = ZnodeOp::Create {
            path: "/b".into(),
            data: "b".into(),
        };
        let (state, outputs) = run(&[create_b, multi]);
        use ZnodeOutput::*;
        assert_eq!(
            outputs[1],
            Multi(MultiResult::Ok(vec![Created, Set { version: 1 }, Deleted]))
        );
        assert_eq!(format!("{state:?}"), "{\"/a\": \"y\" v1}");
    }

    #[test]
    fn init_keeps_the_partitions_initial_nodes_only() {
        let model = ZnodeModel::new()
            .with_node("/a", "a", 3)
            .with_node("/b", "b", 0);
        let state = model.init(&["/a".into(), "/c".into()]);
        assert_eq!(format!("{state:?}"), "{\"/a\": \"a\" v3}");
    }

    #[test]
    fn failing_unknown_ops_have_no_successor() {
        let model = ZnodeModel::new();
        let delete = ZnodeOp::Delete {
            path: "/a".into(),
            version: None,
        };
        assert!(model.step_unknown(&Znodes::default(), &delete).is_empty());
        let create = ZnodeOp::Create {
            path: "/a".into(),
            data: "x".into(),
        };
        assert_eq!(model.step_unknown(&Znodes::default(), &create).len(), 1);
    }

    #[test]
    fn error_codes_round_trip() {
        for error in [ZkError::NoNode, ZkError::NodeExists, ZkError::BadVersion] {
            assert_eq!(ZkError::from_code(error.code()), Some(error));
        }
        assert_eq!(ZkError::from_code(0), None);
    }
}
