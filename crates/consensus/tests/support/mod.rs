//! The smallest neighbours a driver can run with, for tests of what it
//! does with peer input: a transport that keeps what is sent, a log writer
//! that keeps what is written (every write durable at once), and a state
//! machine whose transactions are opaque bytes.

use consensus::Proposed;
use consensus::driver::{
    Applying, Driver, DriverConfig, DriverError, Installed, LogWriter, MembershipRecord,
    MembershipResult, Prepared, Requester, RoleView, SnapshotId, Staged, StateMachine, StoredConf,
    StoredState, Submission, Transport,
};
use consensus::membership::{Member, MemberRole, Membership, ReconfigError};
use consensus::raft::eraftpb::{ConfState, Entry, HardState, Message, Snapshot};

#[derive(Debug, Default)]
pub(crate) struct Sent {
    pub(crate) raft: Vec<Message>,
    pub(crate) notices: Vec<(u64, Vec<u8>)>,
}

#[derive(Debug, Default)]
pub(crate) struct Net(pub(crate) std::rc::Rc<std::cell::RefCell<Sent>>);

impl Transport for Net {
    fn send(&mut self, message: Message) -> bool {
        self.0.borrow_mut().raft.push(message);
        true
    }

    fn notify(&mut self, to: u64, notice: Vec<u8>) -> bool {
        self.0.borrow_mut().notices.push((to, notice));
        true
    }

    fn set_members(&mut self, _members: &[Member]) {}
}

#[derive(Debug, Default)]
pub(crate) struct Disk {
    pub(crate) records: Vec<MembershipRecord>,
    pub(crate) entries: u64,
    /// The last ready the driver asked to persist.
    pub(crate) last_persist: u64,
}

impl LogWriter for Disk {
    fn append(&mut self, entries: &[Entry]) {
        self.entries += entries.len() as u64;
    }
    fn set_hard_state(&mut self, _hard_state: &HardState) {}
    fn set_membership(&mut self, record: &MembershipRecord) {
        self.records.push(record.clone());
    }
    fn compact(&mut self, _through: u64) {}
    fn persist(&mut self, number: u64, _sync: bool) {
        self.last_persist = number;
    }
    fn sync_now(&mut self) -> Result<(), DriverError> {
        Ok(())
    }
}

/// Transactions are their bytes; a snapshot is accepted when its data is
/// `b"image"`. Asked to make an image, it makes one of `image_bytes` zero
/// bytes (none while that is 0) and counts the requests.
#[derive(Debug, Default)]
pub(crate) struct Machine {
    pub(crate) applied: Vec<u64>,
    pub(crate) image_bytes: u64,
    /// The index of every image asked for.
    pub(crate) makes: Vec<u64>,
    /// The images said to be in use at each of them.
    pub(crate) in_use: Vec<Vec<SnapshotId>>,
    made: Option<SnapshotId>,
}

impl StateMachine<Vec<u8>> for Machine {
    fn prepare(&mut self, s: &Submission<Vec<u8>>, _at: Proposed, _m: &Membership) -> Prepared {
        Prepared::Entry(s.write.clone())
    }
    fn refusal(&mut self, _r: Requester, _e: &ReconfigError, _at: Proposed) -> Vec<u8> {
        b"refused".to_vec()
    }
    fn apply(&mut self, entry: Applying<'_>) -> Result<(), String> {
        self.applied.push(entry.index);
        Ok(())
    }
    fn applied(&mut self, _index: u64, _zxid: i64) {}
    fn make_snapshot(&mut self, index: u64, term: u64, _zxid: i64, in_use: &[SnapshotId]) {
        self.makes.push(index);
        self.in_use.push(in_use.to_vec());
        if self.image_bytes > 0 {
            self.made = Some(SnapshotId {
                index,
                term,
                bytes: self.image_bytes,
                checksum: 0,
            });
        }
    }
    fn snapshot_made(&mut self) -> Option<Result<SnapshotId, String>> {
        self.made.take().map(Ok)
    }
    fn read_snapshot(&mut self, id: &SnapshotId, at: u64, len: usize) -> Result<Vec<u8>, String> {
        if self.image_bytes == 0 || id.bytes != self.image_bytes {
            return Err("no image here".into());
        }
        let left = usize::try_from(id.bytes.saturating_sub(at)).unwrap_or(usize::MAX);
        Ok(vec![0; len.min(left)])
    }
    fn receive_snapshot(
        &mut self,
        _id: &SnapshotId,
        _offset: u64,
        _bytes: &[u8],
    ) -> Result<Staged, String> {
        Err("this machine takes inline images only".into())
    }
    fn check_snapshot(&mut self, _index: u64, _term: u64, data: &[u8]) -> Result<(), String> {
        if data == b"image" {
            Ok(())
        } else {
            Err("not an image".into())
        }
    }
    fn install_snapshot(
        &mut self,
        _index: u64,
        _term: u64,
        data: &[u8],
    ) -> Result<Installed, String> {
        self.check_snapshot(0, 0, data)?;
        Ok(Installed {
            zxid: 0,
            membership: None,
        })
    }
    fn check_entry(&mut self, data: &[u8]) -> Result<(), String> {
        if data.starts_with(b"bad") {
            Err("damaged".into())
        } else {
            Ok(())
        }
    }
    fn bootstrap(&mut self, _index: u64, _term: u64, _zxid: i64, _m: &Membership) {}
    fn role_changed(&mut self, _view: RoleView) {}
    fn read_index_ready(&mut self, _context: u64) {}
    fn submission_failed(&mut self, _requester: Requester) {}
    fn leader_unreachable(&mut self) {}
    fn encode_submission(&self, s: &Submission<Vec<u8>>) -> Vec<u8> {
        s.write.clone()
    }
    fn decode_submission(
        &mut self,
        requester: Requester,
        bytes: &[u8],
    ) -> Result<Submission<Vec<u8>>, String> {
        Ok(Submission {
            requester,
            write: bytes.to_vec(),
        })
    }
    fn status_report(&mut self) -> Vec<u8> {
        Vec::new()
    }
    fn status_heard(&mut self, _from: u64, _report: &[u8]) {}
    fn membership_answered(&mut self, _ticket: u64, _result: MembershipResult) {}
    fn removed(&mut self) {}
}

pub(crate) fn members(n: u64) -> Vec<Member> {
    (1..=n)
        .map(|id| Member {
            id,
            host: format!("s{id}"),
            quorum_port: 2888,
            election_port: 3888,
            role: MemberRole::Participant,
            client: None,
        })
        .collect()
}

pub(crate) type TestDriver = Driver<Vec<u8>, Net, Disk>;

/// Server 1 of a bootstrapped 3-member ensemble whose log holds `last`
/// entries of term 1 after the bootstrap point, `commit` of them committed.
pub(crate) fn member(last: u64, commit: u64) -> (TestDriver, Machine, Net) {
    member_compacted(1, last, commit)
}

/// As [`member`], with the log compacted through index `compacted` (of
/// term 1, applied): a follower behind it needs an image.
pub(crate) fn member_compacted(
    compacted: u64,
    last: u64,
    commit: u64,
) -> (TestDriver, Machine, Net) {
    let net = Net::default();
    let conf = ConfState {
        voters: vec![1, 2, 3],
        ..ConfState::default()
    };
    let entries = (compacted + 1..=last + 1)
        .map(|index| Entry {
            index,
            term: 1,
            data: b"txn".to_vec().into(),
            ..Entry::default()
        })
        .collect();
    let stored = StoredState {
        hard_state: HardState {
            term: 1,
            vote: 0,
            commit: commit + 1,
            ..HardState::default()
        },
        record: Some(MembershipRecord::Member(StoredConf::new(&conf, 1))),
        compacted: (compacted, 1),
        entries,
        applied_index: compacted,
        applied_zxid: 0,
        committed: Some(Membership::new(0x1_0000_0000, members(3))),
    };
    let config = DriverConfig::new(1, members(3), 10, 7);
    let driver =
        Driver::new(config, stored, Net(net.0.clone()), Disk::default()).expect("a member's store");
    (driver, Machine::default(), net)
}

/// Server 1 with an empty store and `conclave.join` (a pod that lost its
/// volume after the ensemble formed, or a new server): joining.
pub(crate) fn joiner() -> (TestDriver, Machine, Net) {
    let net = Net::default();
    let stored = StoredState {
        hard_state: HardState::default(),
        record: Some(MembershipRecord::Joining),
        compacted: (0, 0),
        entries: Vec::new(),
        applied_index: 0,
        applied_zxid: 0,
        committed: None,
    };
    let config = DriverConfig::new(1, members(3), 10, 7);
    let driver =
        Driver::new(config, stored, Net(net.0.clone()), Disk::default()).expect("a joiner's store");
    (driver, Machine::default(), net)
}

/// A snapshot message as a peer would send it.
pub(crate) fn snapshot(from: u64, index: u64, term: u64, conf: ConfState, data: &[u8]) -> Message {
    let mut s = Snapshot::default();
    s.mut_metadata().index = index;
    s.mut_metadata().term = term;
    s.mut_metadata().set_conf_state(conf);
    s.data = data.to_vec().into();
    let mut m = Message::default();
    m.set_msg_type(consensus::raft::eraftpb::MessageType::MsgSnapshot);
    m.from = from;
    m.to = 1;
    m.term = term;
    m.set_snapshot(s);
    m
}
