//! The state machine each simulated server runs under the driver: the real
//! data tree (`tree::prepare` on the leader, `tree::apply` everywhere),
//! its effects written through the real store code (`storage::recovery`),
//! snapshots made and installed as the server makes them. What the
//! server's client layer does with an outcome (answer a connection) is the
//! cluster's job here: the machine reports it as an event.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use consensus::driver::{
    ApplyKind, Applying, Installed, MembershipResult, Prepared, Requester, RoleView, SnapshotId,
    Staged, StateMachine, Submission,
};
use consensus::membership::{Membership, ReconfigError};
use consensus::raft::eraftpb::{Entry, EntryType};
use consensus::{Proposed, make_zxid};
use proto::ErrorCode;
use storage::ApplyBatch;
use storage::image::{Images, MemoryDir, Restored};
use storage::writer::WriteCommand;
use tree::{CONFIG, Context, DataTree, Features, Outcome, Pending, Txn, TxnOp, WriteRequest};

use crate::disk::Disk;

/// A write as the simulated clients submit it: the tree's request, and a
/// number that names it in the run's registry (what a forwarded write
/// carries, instead of the server's request encoding).
#[derive(Debug, Clone, PartialEq)]
pub struct SimWrite {
    pub number: u64,
    pub request: WriteRequest,
}

/// Every write submitted in a run, by number: what a forwarded write's
/// bytes name.
pub type Registry = Rc<RefCell<BTreeMap<u64, WriteRequest>>>;

/// What a machine reports to the cluster, in order.
#[derive(Debug, Clone)]
pub enum Event {
    /// An entry applied (every kind), for the history checks.
    Applied {
        index: u64,
        term: u64,
        zxid: i64,
        /// A digest of the entry's data (0 for none).
        digest: u64,
        membership: bool,
    },
    /// A transaction applied: the outcome its requester gets, if it is a
    /// client of this server.
    Outcome {
        requester: Requester,
        outcome: Outcome,
    },
    ReadReady(u64),
    Failed(Requester),
    /// The connection to the leader broke: this server's clients with
    /// something on its way to the leader are failed.
    LeaderUnreachable,
    Role(RoleView),
    MembershipAnswered(u64, bool, String),
    /// A membership change committed (or confirmed).
    Membership {
        index: u64,
        membership: Membership,
    },
    /// A snapshot installed at `index`.
    Installed(u64),
    Removed,
}

/// One server's state machine.
#[derive(Debug)]
pub struct Machine {
    pub id: u64,
    pub tree: DataTree,
    pending: Pending,
    batch: ApplyBatch,
    disk: Disk,
    registry: Registry,
    /// The run's clock (events), stamped as the transactions' time.
    clock: Rc<Cell<i64>>,
    pub events: Vec<Event>,
    /// The broken state machine of `Faults::apply_before_commit`: the last
    /// index it applied from the log directly.
    pub applied_early: u64,
    /// The index of the last `Event::Applied`.
    last_reported: Option<u64>,
    /// Whether the driver last said this server serves clients (what the
    /// server's client layer decides on; `role_changed` keeps it).
    pub serving: bool,
    features: Features,
    /// Snapshot images, on the disk's image directory.
    images: Images<MemoryDir>,
    /// Where the log writer leaves the image it made from its view.
    made: Arc<Mutex<Option<Result<SnapshotId, String>>>>,
}

impl Machine {
    pub fn new(
        id: u64,
        tree: DataTree,
        disk: Disk,
        registry: Registry,
        clock: Rc<Cell<i64>>,
    ) -> Self {
        let images = Images::open(disk.images());
        Machine {
            images,
            made: Arc::new(Mutex::new(None)),
            id,
            tree,
            pending: Pending::new(),
            batch: ApplyBatch::default(),
            disk,
            registry,
            clock,
            events: Vec::new(),
            applied_early: 0,
            last_reported: None,
            serving: false,
            features: Features {
                reconfig_enabled: true,
                ..Features::default()
            },
        }
    }

    fn apply_txn(&mut self, txn: &Txn) -> Outcome {
        let applied = tree::apply(&mut self.tree, txn);
        self.pending.applied(txn.zxid);
        storage::recovery::record_effects(&self.tree, &applied, &mut self.batch);
        applied.outcome
    }

    /// The broken state machine of `Faults::apply_before_commit`: entries
    /// are applied as soon as they reach the log (the next index after the
    /// last one applied; anything at or below counts as done).
    pub fn apply_from_log(&mut self, entries: &[Entry], last_applied: u64) {
        for e in entries {
            let next = self.applied_early.max(last_applied) + 1;
            if e.index != next || e.get_entry_type() != EntryType::EntryNormal {
                continue;
            }
            let zxid = if e.data.is_empty() {
                make_zxid(e.term, 0)
            } else {
                match storage::decode_txn(&e.data) {
                    Ok(txn) => {
                        let outcome = self.apply_txn(&txn);
                        self.events.push(Event::Outcome {
                            requester: Requester {
                                session_id: txn.session_id,
                                cxid: txn.cxid,
                            },
                            outcome,
                        });
                        txn.zxid
                    }
                    Err(_) => continue,
                }
            };
            self.events.push(Event::Applied {
                index: e.index,
                term: e.term,
                zxid,
                digest: digest(&e.data),
                membership: false,
            });
            self.last_reported = Some(e.index);
            self.applied_early = e.index;
        }
    }

    fn error_txn(&self, requester: Requester, code: ErrorCode, at: Proposed) -> Vec<u8> {
        storage::encode_txn(&Txn {
            session_id: requester.session_id,
            cxid: requester.cxid,
            zxid: at.zxid,
            time_ms: self.clock.get(),
            op: TxnOp::Error(code),
        })
    }
}

/// FNV-1a: a digest of an entry's bytes, for the one-history check.
pub fn digest(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

impl StateMachine<SimWrite> for Machine {
    fn prepare(
        &mut self,
        submission: &Submission<SimWrite>,
        at: Proposed,
        membership: &Membership,
    ) -> Prepared {
        let requester = submission.requester;
        if let WriteRequest::Reconfig(request) = &submission.write.request {
            // The simulated clients ask for whole member lists.
            return match consensus::membership::Membership::parse(&request.new_members) {
                Ok(target) if !target.members.is_empty() => {
                    let _ = membership;
                    Prepared::Reconfig {
                        target: target.members,
                    }
                }
                _ => Prepared::Entry(self.error_txn(requester, ErrorCode::BadArguments, at)),
            };
        }
        let ctx = Context {
            session_id: requester.session_id,
            cxid: requester.cxid,
            zxid: at.zxid,
            time_ms: self.clock.get(),
            auth: &[],
            features: &self.features,
        };
        let txn = tree::prepare(
            &self.tree,
            &mut self.pending,
            &submission.write.request,
            &ctx,
        );
        Prepared::Entry(storage::encode_txn(&txn))
    }

    fn refusal(&mut self, requester: Requester, _error: &ReconfigError, at: Proposed) -> Vec<u8> {
        self.error_txn(requester, ErrorCode::NewConfigNoQuorum, at)
    }

    fn apply(&mut self, entry: Applying<'_>) -> Result<(), String> {
        if entry.index <= self.applied_early {
            // The broken state machine applied it when it was written.
            return Ok(());
        }
        let (digest_of, membership) = match entry.kind {
            ApplyKind::Txn(bytes) => {
                let txn = storage::decode_txn(bytes).map_err(|e| e.to_string())?;
                if txn.zxid != entry.zxid {
                    return Err(format!(
                        "it carries zxid {:#x}, its position says {:#x}",
                        txn.zxid, entry.zxid
                    ));
                }
                let outcome = self.apply_txn(&txn);
                self.events.push(Event::Outcome {
                    requester: Requester {
                        session_id: txn.session_id,
                        cxid: txn.cxid,
                    },
                    outcome,
                });
                (digest(bytes), false)
            }
            ApplyKind::LeaderStart => {
                self.tree.advance_zxid(entry.zxid);
                (0, false)
            }
            ApplyKind::Membership {
                membership,
                answers,
                time_ms,
            } => {
                let (session_id, cxid) = answers.map_or((0, 0), |r| (r.session_id, r.cxid));
                let txn = Txn {
                    session_id,
                    cxid,
                    zxid: membership.version,
                    time_ms,
                    op: TxnOp::SetData {
                        path: CONFIG.to_owned(),
                        data: Some(membership.render().into_bytes()),
                        version: -1,
                    },
                };
                let outcome = self.apply_txn(&txn);
                if let Some(requester) = answers {
                    self.events.push(Event::Outcome { requester, outcome });
                }
                self.events.push(Event::Membership {
                    index: entry.index,
                    membership: membership.clone(),
                });
                (digest(membership.render().as_bytes()), true)
            }
        };
        // A leader's first entry that confirms the static membership comes
        // as two applies at one index: the history sees it once.
        if self.last_reported != Some(entry.index) {
            self.last_reported = Some(entry.index);
            self.events.push(Event::Applied {
                index: entry.index,
                term: entry.term,
                zxid: entry.zxid,
                digest: digest_of,
                membership,
            });
        }
        Ok(())
    }

    fn applied(&mut self, index: u64, zxid: i64) {
        let mut batch = std::mem::take(&mut self.batch);
        batch.applied_index = index;
        batch.applied_zxid = zxid;
        self.disk.queue(WriteCommand::Apply(batch));
    }

    /// As the server makes it: from the store's view, taken when the
    /// simulated log writer reaches the request (a later step).
    fn make_snapshot(&mut self, index: u64, term: u64, _zxid: i64, in_use: &[SnapshotId]) {
        let made = self.made.clone();
        let keep = in_use.to_vec();
        let dir = self.images.dir().clone();
        self.disk.queue(WriteCommand::View(Box::new(move |view| {
            let outcome = view
                .and_then(|view| Images::make(&dir, view.as_ref(), index, term, &keep))
                .map_err(|e| e.to_string());
            *made.lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome);
        })));
    }

    fn snapshot_made(&mut self) -> Option<Result<SnapshotId, String>> {
        self.made.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn read_snapshot(
        &mut self,
        id: &SnapshotId,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>, String> {
        self.images.read(id, offset, len)
    }

    fn receive_snapshot(
        &mut self,
        id: &SnapshotId,
        offset: u64,
        bytes: &[u8],
    ) -> Result<Staged, String> {
        self.images.receive(id, offset, bytes)
    }

    fn check_snapshot(&mut self, index: u64, term: u64, data: &[u8]) -> Result<(), String> {
        self.images.prepare(index, term, data)
    }

    fn install_snapshot(
        &mut self,
        index: u64,
        term: u64,
        data: &[u8],
    ) -> Result<Installed, String> {
        let Restored {
            tree,
            zxid,
            install,
        } = self.images.take(index, term, data)?;
        self.disk.queue(install);
        self.tree = tree;
        self.pending = Pending::new();
        self.batch = ApplyBatch::default();
        self.applied_early = self.applied_early.max(index);
        self.events.push(Event::Installed(index));
        let membership = storage::consensus_log::committed_membership(&self.tree)?;
        Ok(Installed { zxid, membership })
    }

    fn check_entry(&mut self, data: &[u8]) -> Result<(), String> {
        storage::decode_txn(data)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn bootstrap(&mut self, index: u64, term: u64, zxid: i64, membership: &Membership) {
        storage::recovery::set_static_membership(&mut self.tree, zxid, &membership.render());
        let image = storage::recovery::image_of(&self.tree, index, term, zxid);
        self.disk.queue(WriteCommand::InstallImage(Box::new(image)));
        // The state jumps to the bootstrap point, as by a snapshot.
        self.events.push(Event::Installed(index));
    }

    fn role_changed(&mut self, view: RoleView) {
        self.serving = view.serving;
        if view.leader_changed {
            // Prepared writes of a lost leadership are forgotten; those
            // that still commit are applied like anyone else's.
            self.pending = Pending::new();
        }
        self.events.push(Event::Role(view));
    }

    fn read_index_ready(&mut self, context: u64) {
        self.events.push(Event::ReadReady(context));
    }

    fn submission_failed(&mut self, requester: Requester) {
        self.events.push(Event::Failed(requester));
    }

    fn leader_unreachable(&mut self) {
        self.events.push(Event::LeaderUnreachable);
    }

    fn encode_submission(&self, submission: &Submission<SimWrite>) -> Vec<u8> {
        submission.write.number.to_be_bytes().to_vec()
    }

    fn decode_submission(
        &mut self,
        requester: Requester,
        bytes: &[u8],
    ) -> Result<Submission<SimWrite>, String> {
        let number = <[u8; 8]>::try_from(bytes)
            .map(u64::from_be_bytes)
            .map_err(|_| "not a write number".to_owned())?;
        let request = self
            .registry
            .borrow()
            .get(&number)
            .cloned()
            .ok_or_else(|| format!("write {number} was never submitted"))?;
        Ok(Submission {
            requester,
            write: SimWrite { number, request },
        })
    }

    fn status_report(&mut self) -> Vec<u8> {
        Vec::new()
    }

    fn status_heard(&mut self, _from: u64, _report: &[u8]) {}

    fn membership_answered(&mut self, ticket: u64, result: MembershipResult) {
        let (ok, text) = match result {
            Ok(answer) => (true, format!("{answer:?}")),
            Err(e) => (false, e.to_string()),
        };
        self.events
            .push(Event::MembershipAnswered(ticket, ok, text));
    }

    fn removed(&mut self) {
        self.events.push(Event::Removed);
    }
}
