//! How hostile a run is: the rates of every fault the simulator injects
//! (per mille of events), and the deliberately broken behaviours that show
//! its checks can fail.

use consensus::driver::DriverFaults;

#[derive(Debug, Clone)]
pub struct Faults {
    /// A message is lost, duplicated, or held back for a while (it is
    /// delivered in any order anyway).
    pub drop: u64,
    pub duplicate: u64,
    pub delay: u64,
    /// A server's process dies: what its log writer had not synced is lost
    /// (a prefix of it may have reached the disk).
    pub crash: u64,
    pub restart: u64,
    /// The servers split in two sides, nothing crossing (or, `one_way`,
    /// only one direction crossing); `heal` ends it.
    pub partition: u64,
    pub one_way: u64,
    pub heal: u64,
    /// A server's clock changes speed.
    pub drift: u64,
    /// A stopped server's disk is lost: it starts again empty, with the
    /// same id (a Kubernetes volume lost, the pod back with its ordinal).
    pub lose_disk: u64,
    /// A stopped server's store fails its checks at start: the server
    /// refuses it; the operator empties it (the documented way back) and
    /// the server rejoins.
    pub corrupt_disk: u64,
    /// A server restarts with a zoo.cfg that lists a member too many or one
    /// too few, or with another server's id.
    pub stale_config: u64,
    /// A server (the leader more often) stops for a while and resumes: a
    /// GC pause or SIGSTOP, longer than an election timeout at times.
    pub pause: u64,
    /// How many of the disk faults a run may inject: the guarantees hold
    /// for one lost disk at a time, and a disk is whole again once its
    /// server has rejoined.
    pub max_lost_disks: usize,
    /// Deliberately broken: votes and acknowledgements go out before the
    /// sync that makes them true (the disk reports a write durable at
    /// once).
    pub ack_before_sync: bool,
    /// Deliberately broken: `sync` and reads after it are answered from
    /// this server's state, without a ReadIndex round.
    pub sync_locally: bool,
    /// Deliberately broken: a session re-open is answered from this
    /// server's own copy, without the leader.
    pub reopen_locally: bool,
    /// Deliberately broken: the state machine applies entries as soon as
    /// they reach the log, before they are committed.
    pub apply_before_commit: bool,
    /// Deliberately misconfigured: the servers' zoo.cfg makes the
    /// observers participants (the checks still count them as observers).
    pub observers_vote: bool,
    /// Deliberately broken driver behaviours (`consensus::driver`).
    pub driver: DriverFaults,
}

impl Default for Faults {
    fn default() -> Faults {
        Faults {
            drop: 50,
            duplicate: 20,
            delay: 30,
            crash: 5,
            restart: 30,
            partition: 3,
            one_way: 1,
            heal: 20,
            drift: 6,
            lose_disk: 2,
            corrupt_disk: 1,
            stale_config: 1,
            pause: 2,
            max_lost_disks: 1,
            ack_before_sync: false,
            sync_locally: false,
            reopen_locally: false,
            apply_before_commit: false,
            observers_vote: false,
            driver: DriverFaults::default(),
        }
    }
}

impl Faults {
    /// No fault at all: for the settling phase and for tests that want a
    /// calm run.
    pub fn none() -> Faults {
        Faults {
            drop: 0,
            duplicate: 0,
            delay: 0,
            crash: 0,
            restart: 0,
            partition: 0,
            one_way: 0,
            heal: 0,
            drift: 0,
            lose_disk: 0,
            corrupt_disk: 0,
            stale_config: 0,
            pause: 0,
            max_lost_disks: 0,
            ..Faults::default()
        }
    }
}
