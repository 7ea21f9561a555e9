//! The driver's three neighbours, as traits: the network ([`Transport`]),
//! the disk ([`LogWriter`]) and the ZooKeeper layer above
//! ([`StateMachine`]). The server implements them over its peer
//! connections, its log writer thread and its data tree with its clients;
//! the simulator over a simulated network, an in-memory store and the same
//! data tree. Nothing else reaches the driver, which is what lets the
//! simulator run the driver that ships.

use raft::eraftpb::{Entry, HardState, Message};

use super::error::DriverError;
pub use super::image_stream::SnapshotId;
use super::notice::Requester;
use super::record::MembershipRecord;
use crate::membership::{Member, Membership, ReconfigError};
use crate::node::{Proposed, Role};

/// The peer network, as the driver uses it. Sends never block: a message
/// that cannot be queued is dropped (Raft tolerates loss) and `false`
/// says so.
pub trait Transport {
    /// A Raft message for `message.to`.
    fn send(&mut self, message: Message) -> bool;
    /// An encoded [`super::Notice`] for `to` — a member, or a server that
    /// contacted this one (a joiner asking to be discovered).
    fn notify(&mut self, to: u64, notice: Vec<u8>) -> bool;
    /// The servers to keep connections to, and to accept Raft messages
    /// from, changed.
    fn set_members(&mut self, members: &[Member]);
}

/// The store's log, as the driver writes it. Every call queues a write in
/// order; writes are readable at once and durable after a sync. The
/// state machine's own writes (applied effects, installed images) go
/// through the same queue, so they keep their order with these.
pub trait LogWriter {
    /// Appends entries, replacing everything from the first one's index
    /// on.
    fn append(&mut self, entries: &[Entry]);
    fn set_hard_state(&mut self, hard_state: &HardState);
    fn set_membership(&mut self, record: &MembershipRecord);
    /// Drops log entries up to `through` (they are applied; laggards get a
    /// snapshot instead).
    fn compact(&mut self, through: u64);
    /// Everything queued so far belongs to ready `number`: report it
    /// durable ([`super::Driver::persisted`]) once written, after a sync
    /// if `sync`.
    fn persist(&mut self, number: u64, sync: bool);
    /// Writes and syncs everything queued, waiting for it (installing a
    /// snapshot, bootstrapping: rare).
    fn sync_now(&mut self) -> Result<(), DriverError>;
}

/// A client's write (or the state machine's own), with whom it answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission<W> {
    pub requester: Requester,
    pub write: W,
}

/// What the state machine made of a submission the leader is about to
/// propose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    /// The entry to propose (an encoded transaction: a change, or the
    /// error the write fails with).
    Entry(Vec<u8>),
    /// ZooKeeper's `reconfig`, checked: the driver carries the change out
    /// towards `target`, and the last step answers the requester.
    Reconfig { target: Vec<Member> },
}

/// One committed entry for the state machine, in log order.
#[derive(Debug, Clone, Copy)]
pub struct Applying<'a> {
    pub index: u64,
    pub term: u64,
    pub zxid: i64,
    pub kind: ApplyKind<'a>,
}

#[derive(Debug, Clone, Copy)]
pub enum ApplyKind<'a> {
    /// A transaction (the bytes the leader's state machine prepared).
    Txn(&'a [u8]),
    /// A new leader's first entry: nothing changes but the last zxid.
    LeaderStart,
    /// The committed membership changed (or the first leader confirmed
    /// the static one): `/zookeeper/config` is rewritten, with this
    /// entry's zxid as its version; `answers` is the reconfig it
    /// completes.
    Membership {
        membership: &'a Membership,
        answers: Option<Requester>,
        time_ms: i64,
    },
}

/// How much of an image a receiver holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Staged {
    /// The first this many bytes.
    At(u64),
    /// All of it, checked against its checksum.
    Complete,
}

/// What the state machine holds after installing a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// The zxid of the snapshot's last entry.
    pub zxid: i64,
    /// The committed membership it holds (`/zookeeper/config`).
    pub membership: Option<Membership>,
}

/// This server's part in the ensemble, as the state machine needs it to
/// decide whom it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleView {
    pub role: Role,
    pub leader: Option<u64>,
    pub term: u64,
    /// The leader (or its term) changed: what went through the old one is
    /// in doubt.
    pub leader_changed: bool,
    /// A leader is known and this server is a member with its state: it
    /// serves clients.
    pub serving: bool,
    /// The leaderless moment is a planned hand-over: clients keep their
    /// connections.
    pub planned_handover: bool,
}

/// The result of an admin membership request.
pub type MembershipResult = Result<MembershipAnswer, ReconfigError>;

/// The admin API's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipAnswer {
    /// The committed membership after the change.
    Committed(Membership),
    /// Leadership moved to this server.
    Transferred { leader: u64 },
}

/// The ZooKeeper layer, as the driver sees it: it prepares writes on the
/// leader, applies committed entries everywhere, makes and installs
/// snapshots, and hears what concerns its clients. `W` is its write type
/// (a client's request with its identities).
pub trait StateMachine<W> {
    /// The leader prepares `submission` into the entry it proposes at
    /// `at` (its index and zxid), judging it against the applied state
    /// plus the writes it prepared before. `membership` is the committed
    /// one (a reconfig is judged against it).
    fn prepare(
        &mut self,
        submission: &Submission<W>,
        at: Proposed,
        membership: &Membership,
    ) -> Prepared;

    /// The error transaction that answers a reconfig the driver refused
    /// (or that failed on its way), at `at`.
    fn refusal(&mut self, requester: Requester, error: &ReconfigError, at: Proposed) -> Vec<u8>;

    /// Applies one committed entry. An error stops the server: a committed
    /// entry that does not apply means the state or the log is damaged.
    fn apply(&mut self, entry: Applying<'_>) -> Result<(), String>;

    /// Every committed entry up to `index` (whose zxid is `zxid`) has
    /// been applied: the effects go to the store, in one batch.
    fn applied(&mut self, index: u64, zxid: i64);

    /// Starts making an image of the applied state, for followers too far
    /// behind (the last applied entry is `index` of `term`, zxid `zxid`):
    /// from a consistent point of the store, off the thread that serves
    /// clients. [`StateMachine::snapshot_made`] says when it is done.
    /// The images in `in_use` are still being sent to other followers:
    /// they must stay readable ([`StateMachine::read_snapshot`]); any other
    /// image made before may go.
    fn make_snapshot(&mut self, index: u64, term: u64, zxid: i64, in_use: &[SnapshotId]);

    /// The image [`StateMachine::make_snapshot`] started, once made (or
    /// why it could not be); `None` while it is being made. Asked every
    /// tick while one is.
    fn snapshot_made(&mut self) -> Option<Result<SnapshotId, String>>;

    /// `len` bytes at `offset` of an image this server made, to send.
    fn read_snapshot(
        &mut self,
        id: &SnapshotId,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>, String>;

    /// A chunk of image `id` at `offset`, from the leader: staged if it
    /// follows what is staged of that image (a partial image of another id
    /// is dropped first). Says how much is staged, or that the whole image
    /// is and its checksum matches; an error drops the partial image.
    fn receive_snapshot(
        &mut self,
        id: &SnapshotId,
        offset: u64,
        bytes: &[u8],
    ) -> Result<Staged, String>;

    /// Whether a snapshot's data from a peer can be installed (checked
    /// before it reaches Raft, which would otherwise take it): a
    /// [`SnapshotId`] whose image is staged whole.
    fn check_snapshot(&mut self, index: u64, term: u64, data: &[u8]) -> Result<(), String>;

    /// Replaces the state with a snapshot's (the image `data` names, which
    /// is staged) and queues the store's replacement (the driver syncs
    /// it).
    fn install_snapshot(&mut self, index: u64, term: u64, data: &[u8])
    -> Result<Installed, String>;

    /// Whether an entry a peer sends could be applied here (a transaction
    /// that decodes): checked before it reaches Raft, so a damaged entry
    /// never reaches the log.
    fn check_entry(&mut self, data: &[u8]) -> Result<(), String>;

    /// A brand-new ensemble forms: the state as it is (the empty tree),
    /// with `membership` (version 0: not yet confirmed by a leader) as the
    /// committed one, becomes the store's image at the bootstrap point. A
    /// restart then reads the membership from the store, not from a
    /// zoo.cfg that may have changed since.
    fn bootstrap(&mut self, index: u64, term: u64, zxid: i64, membership: &Membership);

    /// This server's role or leader changed.
    fn role_changed(&mut self, view: RoleView);

    /// A ReadIndex round asked with `context` is done: this server has
    /// applied everything the leader had committed when it was asked.
    fn read_index_ready(&mut self, context: u64);

    /// A submission could not go to a leader (none is known, or
    /// leadership changed under it).
    fn submission_failed(&mut self, requester: Requester);

    /// The connection to the leader broke: writes forwarded through it and
    /// ReadIndex rounds asked of it may be lost; their clients are failed.
    fn leader_unreachable(&mut self);

    /// A submission's bytes, to forward it to the leader.
    fn encode_submission(&self, submission: &Submission<W>) -> Vec<u8>;

    /// A forwarded submission, decoded.
    fn decode_submission(
        &mut self,
        requester: Requester,
        bytes: &[u8],
    ) -> Result<Submission<W>, String>;

    /// What a follower reports to its leader with its status (the
    /// sessions its clients used).
    fn status_report(&mut self) -> Vec<u8>;

    /// The leader heard a follower's report.
    fn status_heard(&mut self, from: u64, report: &[u8]);

    /// An admin membership request (the ticket given) is answered.
    fn membership_answered(&mut self, ticket: u64, result: MembershipResult);

    /// This server is no longer a member: it serves nobody.
    fn removed(&mut self);
}
