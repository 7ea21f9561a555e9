//! Helpers shared by the integration tests: short constructors for znode
//! operations and outputs, a builder for hand-written histories, and a
//! generator of concurrent histories from a seed (clients with one request
//! in flight each, every request taking effect at a random moment between
//! its invocation and its completion, as a correct server would).

#![allow(dead_code)]

use lincheck::models::znode::{
    MultiOp, MultiResult, ZkError, ZnodeModel, ZnodeOp, ZnodeOutput, Znodes,
};
use lincheck::{Budget, History, Recorder, Report, check};

pub(crate) type ZnodeHistory = History<ZnodeOp, ZnodeOutput>;

pub(crate) fn create(path: &str, data: &str) -> ZnodeOp {
    ZnodeOp::Create {
        path: path.into(),
        data: data.into(),
    }
}

pub(crate) fn set(path: &str, data: &str) -> ZnodeOp {
    ZnodeOp::SetData {
        path: path.into(),
        data: data.into(),
        version: None,
    }
}

pub(crate) fn set_if(path: &str, data: &str, version: i32) -> ZnodeOp {
    ZnodeOp::SetData {
        path: path.into(),
        data: data.into(),
        version: Some(version),
    }
}

pub(crate) fn get(path: &str) -> ZnodeOp {
    ZnodeOp::GetData { path: path.into() }
}

pub(crate) fn delete(path: &str) -> ZnodeOp {
    ZnodeOp::Delete {
        path: path.into(),
        version: None,
    }
}

pub(crate) fn multi(ops: Vec<MultiOp>) -> ZnodeOp {
    ZnodeOp::Multi(ops)
}

pub(crate) fn m_create(path: &str, data: &str) -> MultiOp {
    MultiOp::Create {
        path: path.into(),
        data: data.into(),
    }
}

pub(crate) fn m_set(path: &str, data: &str) -> MultiOp {
    MultiOp::SetData {
        path: path.into(),
        data: data.into(),
        version: None,
    }
}

pub(crate) fn m_check(path: &str, version: i32) -> MultiOp {
    MultiOp::CheckVersion {
        path: path.into(),
        version,
    }
}

pub(crate) fn data(data: &str, version: i32) -> ZnodeOutput {
    ZnodeOutput::Data {
        data: data.into(),
        version,
    }
}

pub(crate) fn set_ok(version: i32) -> ZnodeOutput {
    ZnodeOutput::Set { version }
}

pub(crate) fn error(error: ZkError) -> ZnodeOutput {
    ZnodeOutput::Error(error)
}

pub(crate) fn multi_ok(outputs: Vec<ZnodeOutput>) -> ZnodeOutput {
    ZnodeOutput::Multi(MultiResult::Ok(outputs))
}

pub(crate) fn multi_failed(index: usize, error: ZkError) -> ZnodeOutput {
    ZnodeOutput::Multi(MultiResult::Failed { index, error })
}

/// A hand-written history: `ok(client, invoked, completed, input, output)`
/// and `unknown(client, invoked, input)`.
#[derive(Debug, Default)]
pub(crate) struct Script {
    pub(crate) history: ZnodeHistory,
}

impl Script {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn ok(
        mut self,
        client: u64,
        invoked: u64,
        completed: u64,
        input: ZnodeOp,
        output: ZnodeOutput,
    ) -> Self {
        self.history
            .push_completed(client, invoked, completed, input, output)
            .expect("a completion after the invocation");
        self
    }

    pub(crate) fn unknown(mut self, client: u64, invoked: u64, input: ZnodeOp) -> Self {
        self.history
            .push_unknown(client, invoked, input)
            .expect("always accepted");
        self
    }

    pub(crate) fn check(&self) -> Report {
        check(&ZnodeModel::new(), &self.history, Budget::default())
    }

    #[track_caller]
    pub(crate) fn assert_linearizable(&self) {
        let report = self.check();
        assert!(
            report.verdict.is_linearizable(),
            "expected linearizable, got {report}"
        );
    }

    #[track_caller]
    pub(crate) fn assert_violation(&self) -> Report {
        let report = self.check();
        assert!(
            report.verdict.is_violation(),
            "expected a violation, got {report}"
        );
        report
    }
}

/// SplitMix64 (Steele, Lea & Flood 2014): enough randomness for workloads,
/// reproducible from a seed.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    pub(crate) fn chance_per_mille(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// The shape of a generated workload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Workload {
    pub(crate) clients: u64,
    pub(crate) keys: u64,
    pub(crate) operations: usize,
    /// Per mille of operations that end without an outcome (half of them
    /// took effect, half never reached the server).
    pub(crate) unknown_per_mille: u64,
    /// Per mille of operations that are a multi over two or three keys.
    pub(crate) multi_per_mille: u64,
    /// A multi's keys come from one group of this many consecutive keys
    /// (`keys` for any keys): the history then has `keys / multi_group`
    /// partitions.
    pub(crate) multi_group: u64,
}

fn random_path(rng: &mut Rng, keys: u64) -> String {
    format!("/k{}", rng.below(keys))
}

fn random_version(rng: &mut Rng, state: &Znodes, path: &str) -> Option<i32> {
    match rng.below(3) {
        0 => None,
        // Usually the current version, so conditional writes often succeed.
        1 => Some(state.get(path).map_or(0, |node| node.version)),
        _ => Some(rng.below(4) as i32),
    }
}

fn random_op(rng: &mut Rng, state: &Znodes, workload: &Workload, serial: usize) -> ZnodeOp {
    let data = format!("v{serial}");
    if rng.chance_per_mille(workload.multi_per_mille) {
        let count = 2 + rng.below(2);
        let group = workload.multi_group.clamp(1, workload.keys);
        let first_key = rng.below(workload.keys / group) * group;
        let ops = (0..count)
            .map(|_| {
                let path = format!("/k{}", first_key + rng.below(group));
                match rng.below(4) {
                    0 => MultiOp::Create {
                        path,
                        data: data.as_str().into(),
                    },
                    1 => {
                        let version = random_version(rng, state, &path);
                        MultiOp::Delete { path, version }
                    }
                    2 => {
                        let version = state.get(&path).map_or(0, |node| node.version);
                        MultiOp::CheckVersion { path, version }
                    }
                    _ => {
                        let version = random_version(rng, state, &path);
                        MultiOp::SetData {
                            path,
                            data: data.as_str().into(),
                            version,
                        }
                    }
                }
            })
            .collect();
        return ZnodeOp::Multi(ops);
    }
    let path = random_path(rng, workload.keys);
    match rng.below(20) {
        0..=3 => ZnodeOp::Create {
            path,
            data: data.into(),
        },
        4..=9 => {
            let version = random_version(rng, state, &path);
            ZnodeOp::SetData {
                path,
                data: data.into(),
                version,
            }
        }
        10..=16 => ZnodeOp::GetData { path },
        17..=18 => {
            let version = random_version(rng, state, &path);
            ZnodeOp::Delete { path, version }
        }
        _ => {
            let version = state.get(&path).map_or(0, |node| node.version);
            ZnodeOp::CheckVersion { path, version }
        }
    }
}

/// A client's request in flight: its id, input, and the output once the
/// "server" applied it.
#[derive(Debug)]
struct InFlight {
    op: lincheck::OpId,
    input: ZnodeOp,
    output: Option<ZnodeOutput>,
}

/// A linearizable history of a correct server under `workload`, recorded
/// through a [`Recorder`].
pub(crate) fn concurrent_history(seed: u64, workload: Workload) -> ZnodeHistory {
    let mut rng = Rng::new(seed);
    let mut recorder = Recorder::new();
    let mut truth = Znodes::default();
    let mut in_flight: Vec<Option<InFlight>> = (0..workload.clients).map(|_| None).collect();
    let mut invoked = 0;
    while invoked < workload.operations || in_flight.iter().any(Option::is_some) {
        let client = rng.below(workload.clients);
        let slot = &mut in_flight[client as usize];
        match slot.take() {
            None if invoked < workload.operations => {
                let input = random_op(&mut rng, &truth, &workload, invoked);
                let op = recorder.invoke(client, input.clone());
                invoked += 1;
                *slot = Some(InFlight {
                    op,
                    input,
                    output: None,
                });
            }
            None => {}
            Some(InFlight {
                op,
                input,
                output: None,
            }) => {
                if rng.chance_per_mille(workload.unknown_per_mille / 2) {
                    // Lost before it reached the server.
                    recorder.fail_unknown(op).expect("each operation ends once");
                } else {
                    let (next, output) = truth.apply(&input);
                    truth = next;
                    *slot = Some(InFlight {
                        op,
                        input,
                        output: Some(output),
                    });
                }
            }
            Some(InFlight {
                op,
                output: Some(output),
                ..
            }) => {
                if rng.chance_per_mille(workload.unknown_per_mille / 2) {
                    // Applied, but the response was lost.
                    recorder.fail_unknown(op).expect("each operation ends once");
                } else {
                    recorder
                        .complete(op, output)
                        .expect("each operation ends once");
                }
            }
        }
    }
    recorder.into_history()
}

/// An output `input` can never produce, whatever the state.
pub(crate) fn impossible_output(input: &ZnodeOp) -> ZnodeOutput {
    match input {
        ZnodeOp::Create { .. } => error(ZkError::BadVersion),
        ZnodeOp::SetData { .. } => set_ok(-5),
        ZnodeOp::GetData { .. } => data("a value nobody wrote", 0),
        ZnodeOp::Delete { .. } | ZnodeOp::CheckVersion { .. } => error(ZkError::NodeExists),
        ZnodeOp::Multi(ops) => multi_failed(ops.len() + 1, ZkError::NoNode),
        ZnodeOp::Sync { .. } => error(ZkError::NoNode),
    }
}
