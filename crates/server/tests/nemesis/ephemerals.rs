//! Workload 3, ephemerals and session expiry. Each client thread, over and
//! over: opens a session (3 s timeout) on some member, creates a few
//! ephemerals `/eph/e<client>-<n>` on it, then either
//!
//! - keeps it alive: reads the children of `/eph` after `sync` from a new
//!   session (another member, likely), then creates one more ephemeral on
//!   the kept session, a few times, and closes it (`closeSession`); or
//! - lets it expire: drops the connection without closing, waits longer
//!   than the timeout without touching it, and re-opens it by id and
//!   password until a server answers that it expired; then reads `/eph`
//!   after `sync` from a new session.
//!
//! Everything is recorded with a `lincheck::SharedRecorder` (the recorder's
//! ticks give real-time order) and checked directly ([`check`]):
//!
//! 1. a read (children of `/eph` right after `sync`, so linearizable)
//!    invoked after the client observed its session expired (or closed)
//!    shows none of that session's ephemerals — acknowledged or not: the
//!    close deleted them, and no create can succeed after it;
//! 2. a read shows an acknowledged ephemeral of a live session: if the
//!    create completed before the read was invoked, and the session
//!    created another ephemeral successfully in a request invoked after
//!    the read completed, the session was alive at every point between
//!    (expiry is final, and a create on an expired session fails), so the
//!    node existed when the read took effect;
//! 3. a read shows no name that no create was invoked for before it
//!    completed, nor one whose create failed with `NoNode`, `NodeExists` or
//!    `SessionExpired`.
//!
//! Re-opening a session is not evidence that it is alive (a follower that
//! has not applied the expiry yet may accept it); only a successful write
//! is.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use lincheck::{History, SharedRecorder};
use proto::{CreateMode, OpCode, Response};
use serde::{Deserialize, Serialize};

use crate::raw_client::{Client, Connected, create_request, get_children_request, sync_request};
use crate::rng::Rng;
use crate::workload::{Env, REQUEST_TIMEOUT, SESSION_MS};

pub const PARENT: &str = "/eph";

/// The session timeout these clients ask for: short, so sessions expire
/// often within a run (the servers grant 400 ms to 4 s with tickTime=200).
pub const EPHEMERAL_SESSION_MS: i32 = 3000;

/// Error codes after which a create certainly did not happen.
const DEFINITE_FAILURES: &[i32] = &[-101, -110, -112];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EphOp {
    /// `create(path, EPHEMERAL)` on `session`.
    Create { path: String, session: i64 },
    /// Re-opening `session` by id and password, expecting it expired.
    Reopen { session: i64 },
    /// `closeSession` of `session`.
    Close { session: i64 },
    /// `getChildren(/eph)` right after `sync`, from a session of its own.
    Read,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EphOutput {
    Created,
    /// The request failed with this ZooKeeper error code.
    Error(i32),
    /// The server said the session expired.
    Expired,
    /// The server took the session back (it had not expired yet).
    Reopened,
    Closed,
    Children(Vec<String>),
}

pub type Recorder = SharedRecorder<EphOp, EphOutput>;

/// One client thread: sessions, created, kept or let expire, until the
/// run stops (the session in hand is finished first).
pub fn client(env: Env, recorder: Recorder, id: u64, mut home: usize, mut rng: Rng) {
    let mut n = 0u64;
    while !env.stopped() {
        let Some(mut session) = env.connect(&mut home, &mut rng, EPHEMERAL_SESSION_MS) else {
            break;
        };
        let (sid, password, timeout_ms) = (
            session.session_id,
            session.password.clone(),
            session.timeout_ms,
        );
        let mut alive = true;
        for _ in 0..1 + rng.below(3) {
            n += 1;
            if !create(&mut session, &recorder, id, n) {
                alive = false;
                break;
            }
        }
        let mut expire = !alive || rng.percent(50);
        if !expire {
            for _ in 0..1 + rng.below(3) {
                read(&env, &recorder, id, &mut rng);
                n += 1;
                if !create(&mut session, &recorder, id, n) {
                    expire = true;
                    break;
                }
            }
        }
        if expire {
            drop(session);
            await_expiry(&env, &recorder, id, &mut rng, sid, &password, timeout_ms);
            read(&env, &recorder, id, &mut rng);
        } else {
            let handle = recorder.invoke(id, EphOp::Close { session: sid });
            match session.close_session(REQUEST_TIMEOUT) {
                Ok(true) => recorder
                    .complete(handle, EphOutput::Closed)
                    .expect("record"),
                _ => recorder.fail_unknown(handle).expect("record"),
            }
        }
        env.move_on(&mut home, &mut rng);
    }
}

/// Creates `/eph/e<id>-<n>` on `session`; whether the session is still
/// usable (its create succeeded).
fn create(session: &mut Client, recorder: &Recorder, id: u64, n: u64) -> bool {
    let path = format!("{PARENT}/e{id}-{n}");
    let handle = recorder.invoke(
        id,
        EphOp::Create {
            path: path.clone(),
            session: session.session_id,
        },
    );
    let request = create_request(&path, b"", CreateMode::Ephemeral as i32);
    match session.call(&request, REQUEST_TIMEOUT) {
        Ok(reply) if reply.err == 0 => {
            recorder
                .complete(handle, EphOutput::Created)
                .expect("record");
            true
        }
        Ok(reply) => {
            recorder
                .complete(handle, EphOutput::Error(reply.err))
                .expect("record");
            false
        }
        Err(_) => {
            recorder.fail_unknown(handle).expect("record");
            false
        }
    }
}

/// Leaves the session alone longer than its timeout, then re-opens it
/// until a server says it expired (each re-open that succeeds touched it:
/// wait again). Gives up after a minute (counted by the check as a
/// session never seen expired).
fn await_expiry(
    env: &Env,
    recorder: &Recorder,
    id: u64,
    rng: &mut Rng,
    session: i64,
    password: &[u8],
    timeout_ms: i32,
) {
    let quiet = std::time::Duration::from_millis(timeout_ms as u64 + 500);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut touched = std::time::Instant::now();
    let mut member = rng.index(env.addrs.len());
    while std::time::Instant::now() < deadline {
        let wait = quiet.saturating_sub(touched.elapsed());
        std::thread::sleep(wait);
        let handle = recorder.invoke(id, EphOp::Reopen { session });
        match Client::resume(env.addrs[member], session, password, timeout_ms) {
            Ok(Connected::Expired) => {
                recorder
                    .complete(handle, EphOutput::Expired)
                    .expect("record");
                return;
            }
            Ok(Connected::Session(client)) => {
                recorder
                    .complete(handle, EphOutput::Reopened)
                    .expect("record");
                drop(client);
                touched = std::time::Instant::now();
            }
            Err(_) => {
                // Refused (no leader there, down, paused): it may or may
                // not have touched the session.
                recorder.fail_unknown(handle).expect("record");
                touched = std::time::Instant::now();
                env.move_on(&mut member, rng);
            }
        }
    }
}

/// From a new session: `sync`, then the children of `/eph`, recorded as
/// one read invoked before the `sync`.
pub fn read(env: &Env, recorder: &Recorder, id: u64, rng: &mut Rng) -> Option<Vec<String>> {
    let mut member = rng.index(env.addrs.len());
    // Not `env.connect`: the final reads run after the stop flag is set.
    let mut client = None;
    for _ in 0..50 {
        if let Ok(c) = Client::connect(env.addrs[member], SESSION_MS) {
            client = Some(c);
            break;
        }
        env.move_on(&mut member, rng);
        std::thread::sleep(rng.millis(20, 100));
    }
    let mut client = client?;
    let children = read_on(&mut client, env, recorder, id);
    let _ = client.close_session(REQUEST_TIMEOUT);
    children
}

/// `sync` + children of `/eph` on `client`, recorded.
pub fn read_on(
    client: &mut Client,
    env: &Env,
    recorder: &Recorder,
    id: u64,
) -> Option<Vec<String>> {
    let handle = recorder.invoke(id, EphOp::Read);
    let unknown = || recorder.fail_unknown(handle).expect("record");
    match client.call(&sync_request(), REQUEST_TIMEOUT) {
        Ok(reply) if reply.err == 0 => {}
        Ok(reply) => {
            env.stats.unexpected("ephemerals (sync)", reply.err);
            unknown();
            return None;
        }
        Err(_) => {
            unknown();
            return None;
        }
    }
    match client.call(&get_children_request(PARENT), REQUEST_TIMEOUT) {
        Ok(reply) if reply.err == 0 => match reply.response(OpCode::GetChildren2) {
            Some(Response::GetChildren2(r)) => {
                recorder
                    .complete(handle, EphOutput::Children(r.children.clone()))
                    .expect("record");
                Some(r.children)
            }
            _ => {
                unknown();
                None
            }
        },
        Ok(reply) => {
            env.stats.unexpected("ephemerals (getChildren)", reply.err);
            recorder
                .complete(handle, EphOutput::Error(reply.err))
                .expect("record");
            None
        }
        Err(_) => {
            unknown();
            None
        }
    }
}

/// A broken promise about ephemerals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// Rule 1: shown after its session was observed expired or closed.
    AfterSessionEnded {
        path: String,
        session: i64,
        ended_by: usize,
        read: usize,
    },
    /// Rule 2: missing while its session was provably alive.
    MissingWhileAlive {
        path: String,
        session: i64,
        created_by: usize,
        alive_until: usize,
        read: usize,
    },
    /// Rule 3: shown, but no create of it had been invoked by then.
    Invented { path: String, read: usize },
    /// Rule 3: shown, though its create failed.
    FailedCreatePresent {
        path: String,
        create: usize,
        code: i32,
        read: usize,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::AfterSessionEnded {
                path,
                session,
                ended_by,
                read,
            } => write!(
                f,
                "read {read} shows {path} of session 0x{session:x}, which operation {ended_by} \
                 had observed expired or closed before the read was invoked"
            ),
            Violation::MissingWhileAlive {
                path,
                session,
                created_by,
                alive_until,
                read,
            } => write!(
                f,
                "read {read} misses {path} (created by {created_by} before it) although its \
                 session 0x{session:x} created a node in {alive_until}, invoked after the read \
                 completed"
            ),
            Violation::Invented { path, read } => {
                write!(
                    f,
                    "read {read} shows {path}, which no create had been invoked for"
                )
            }
            Violation::FailedCreatePresent {
                path,
                create,
                code,
                read,
            } => write!(
                f,
                "read {read} shows {path}, whose create {create} failed with error {code}"
            ),
        }
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub creates_acknowledged: usize,
    pub creates_unknown: usize,
    pub sessions: usize,
    pub sessions_expired: usize,
    pub sessions_closed: usize,
    /// Sessions whose client waited for expiry and never saw it.
    pub sessions_never_expired: Vec<i64>,
    pub reads: usize,
    /// (read, ephemeral) pairs that rule 1 or rule 2 decided.
    pub absent_checked: usize,
    pub present_checked: usize,
    pub violations: Vec<Violation>,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty() && self.sessions_never_expired.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} violations; {} ephemerals acknowledged, {} unknown, in {} sessions ({} seen \
             expired, {} closed, {} never seen expired); {} reads: {} ephemerals checked absent \
             after their session ended, {} checked present while their session lived",
            self.violations.len(),
            self.creates_acknowledged,
            self.creates_unknown,
            self.sessions,
            self.sessions_expired,
            self.sessions_closed,
            self.sessions_never_expired.len(),
            self.reads,
            self.absent_checked,
            self.present_checked
        )?;
        for session in &self.sessions_never_expired {
            write!(f, "\n  session 0x{session:x} was never seen expired")?;
        }
        for violation in self.violations.iter().take(40) {
            write!(f, "\n  {violation}")?;
        }
        if self.violations.len() > 40 {
            write!(f, "\n  ... {} more", self.violations.len() - 40)?;
        }
        Ok(())
    }
}

/// One create as the check sees it.
struct CreateInfo {
    op: usize,
    session: i64,
    invoked: u64,
    completed: Option<u64>,
    output: Option<EphOutput>,
}

/// Checks the rules of the module documentation.
pub fn check(history: &History<EphOp, EphOutput>) -> Report {
    let mut report = Report::default();
    let mut creates: BTreeMap<String, CreateInfo> = BTreeMap::new();
    // Per session: when (and by which op) its end was observed, the
    // invocations of its successful creates, and its acknowledged creates.
    let mut ended: BTreeMap<i64, (u64, usize)> = BTreeMap::new();
    let mut alive: BTreeMap<i64, Vec<(u64, usize)>> = BTreeMap::new();
    let mut acknowledged: BTreeMap<i64, Vec<(u64, usize, String)>> = BTreeMap::new();
    let mut sessions: BTreeSet<i64> = BTreeSet::new();
    let mut awaited: BTreeSet<i64> = BTreeSet::new();
    let mut reads = Vec::new();
    for op in history.operations() {
        let index = op.id.index();
        match (&op.input, op.output()) {
            (EphOp::Create { path, session }, output) => {
                sessions.insert(*session);
                match output {
                    Some(EphOutput::Created) => {
                        report.creates_acknowledged += 1;
                        alive
                            .entry(*session)
                            .or_default()
                            .push((op.invoked_at, index));
                        acknowledged.entry(*session).or_default().push((
                            op.completed_at().unwrap_or(u64::MAX),
                            index,
                            path.clone(),
                        ));
                    }
                    None => report.creates_unknown += 1,
                    Some(_) => {}
                }
                creates.insert(
                    path.clone(),
                    CreateInfo {
                        op: index,
                        session: *session,
                        invoked: op.invoked_at,
                        completed: op.completed_at(),
                        output: output.cloned(),
                    },
                );
            }
            (EphOp::Reopen { session } | EphOp::Close { session }, output) => {
                if matches!(op.input, EphOp::Reopen { .. }) {
                    awaited.insert(*session);
                }
                if matches!(output, Some(EphOutput::Expired | EphOutput::Closed)) {
                    let at = op.completed_at().unwrap_or(u64::MAX);
                    let entry = ended.entry(*session).or_insert((at, index));
                    if at < entry.0 {
                        *entry = (at, index);
                    }
                }
            }
            (EphOp::Read, Some(EphOutput::Children(children))) => {
                reads.push((
                    index,
                    op.invoked_at,
                    op.completed_at().unwrap_or(u64::MAX),
                    children,
                ));
            }
            (EphOp::Read, _) => {}
        }
    }
    report.sessions = sessions.len();
    for &(_, by) in ended.values() {
        match history.operations()[by].output() {
            Some(EphOutput::Expired) => report.sessions_expired += 1,
            Some(EphOutput::Closed) => report.sessions_closed += 1,
            _ => {}
        }
    }
    report.sessions_never_expired = awaited
        .iter()
        .filter(|s| !ended.contains_key(s))
        .copied()
        .collect();
    report.reads = reads.len();
    for (read, invoked, completed, children) in reads {
        let shown: BTreeSet<String> = children.iter().map(|c| format!("{PARENT}/{c}")).collect();
        for path in &shown {
            let Some(create) = creates.get(path) else {
                report.violations.push(Violation::Invented {
                    path: path.clone(),
                    read,
                });
                continue;
            };
            if create.invoked > completed {
                report.violations.push(Violation::Invented {
                    path: path.clone(),
                    read,
                });
                continue;
            }
            if let Some(EphOutput::Error(code)) = &create.output
                && DEFINITE_FAILURES.contains(code)
                && create.completed.is_some_and(|c| c < completed)
            {
                report.violations.push(Violation::FailedCreatePresent {
                    path: path.clone(),
                    create: create.op,
                    code: *code,
                    read,
                });
            }
            if let Some(&(at, by)) = ended.get(&create.session)
                && at < invoked
            {
                report.violations.push(Violation::AfterSessionEnded {
                    path: path.clone(),
                    session: create.session,
                    ended_by: by,
                    read,
                });
            }
        }
        // Rule 1's other half, counted: what was rightly absent.
        for (path, create) in &creates {
            if ended
                .get(&create.session)
                .is_some_and(|&(at, _)| at < invoked)
                && !shown.contains(path)
            {
                report.absent_checked += 1;
            }
        }
        // Rule 2.
        for (session, created) in &acknowledged {
            let Some(&(_, later_op)) = alive
                .get(session)
                .and_then(|a| a.iter().find(|(at, _)| *at > completed))
            else {
                continue;
            };
            for (done, op, path) in created {
                if *done < invoked {
                    if shown.contains(path) {
                        report.present_checked += 1;
                    } else {
                        report.violations.push(Violation::MissingWhileAlive {
                            path: path.clone(),
                            session: *session,
                            created_by: *op,
                            alive_until: later_op,
                            read,
                        });
                    }
                }
            }
        }
    }
    report
}

/// The check on histories written by hand: it passes what ZooKeeper
/// allows and catches each broken rule.
mod tests {
    use super::*;

    /// A history from (invoked, completed or None, input, output) rows.
    fn history(rows: &[(u64, Option<u64>, EphOp, EphOutput)]) -> History<EphOp, EphOutput> {
        let mut h = History::new();
        for (invoked, completed, input, output) in rows {
            let completion = completed.map(|at| lincheck::Completion {
                at,
                output: output.clone(),
            });
            h.push(1, *invoked, input.clone(), completion).unwrap();
        }
        h
    }

    fn create(path: &str, session: i64) -> EphOp {
        EphOp::Create {
            path: path.into(),
            session,
        }
    }

    fn children(names: &[&str]) -> EphOutput {
        EphOutput::Children(names.iter().map(|n| (*n).to_owned()).collect())
    }

    #[test]
    fn a_correct_history_passes() {
        let h = history(&[
            (0, Some(1), create("/eph/a", 7), EphOutput::Created),
            (2, Some(3), EphOp::Read, children(&["a"])),
            (4, Some(5), create("/eph/b", 7), EphOutput::Created),
            (6, Some(7), EphOp::Reopen { session: 7 }, EphOutput::Expired),
            (8, Some(9), EphOp::Read, children(&[])),
        ]);
        let report = check(&h);
        assert!(report.is_ok(), "{report}");
        assert_eq!((report.present_checked, report.absent_checked), (1, 2));
    }

    #[test]
    fn an_ephemeral_after_its_session_expired_is_caught() {
        let h = history(&[
            (0, Some(1), create("/eph/a", 7), EphOutput::Created),
            (2, Some(3), EphOp::Reopen { session: 7 }, EphOutput::Expired),
            (4, Some(5), EphOp::Read, children(&["a"])),
        ]);
        let report = check(&h);
        assert!(
            matches!(report.violations[..], [Violation::AfterSessionEnded { .. }]),
            "{report}"
        );
    }

    #[test]
    fn a_missing_ephemeral_of_a_live_session_is_caught() {
        let h = history(&[
            (0, Some(1), create("/eph/a", 7), EphOutput::Created),
            (2, Some(3), EphOp::Read, children(&[])),
            (4, Some(5), create("/eph/b", 7), EphOutput::Created),
        ]);
        let report = check(&h);
        assert!(
            matches!(report.violations[..], [Violation::MissingWhileAlive { .. }]),
            "{report}"
        );
    }

    #[test]
    fn without_proof_of_life_a_missing_ephemeral_is_allowed() {
        // The session may have expired before the read: no later create
        // succeeded, and a re-open is no proof.
        let h = history(&[
            (0, Some(1), create("/eph/a", 7), EphOutput::Created),
            (2, Some(3), EphOp::Read, children(&[])),
            (
                4,
                Some(5),
                EphOp::Reopen { session: 7 },
                EphOutput::Reopened,
            ),
            (6, Some(7), create("/eph/b", 7), EphOutput::Error(-112)),
        ]);
        let report = check(&h);
        assert!(report.violations.is_empty(), "{report}");
    }

    #[test]
    fn invented_failed_and_never_expired_are_caught() {
        let h = history(&[
            (0, Some(1), create("/eph/a", 7), EphOutput::Error(-110)),
            (2, None, EphOp::Reopen { session: 8 }, EphOutput::Expired),
            (3, Some(4), EphOp::Read, children(&["a", "ghost"])),
            (5, Some(6), create("/eph/late", 9), EphOutput::Created),
        ]);
        let report = check(&h);
        assert_eq!(report.violations.len(), 2, "{report}");
        assert!(matches!(
            report.violations[0],
            Violation::FailedCreatePresent { .. }
        ));
        assert!(matches!(report.violations[1], Violation::Invented { .. }));
        assert_eq!(report.sessions_never_expired, vec![8]);
        assert!(!report.is_ok());
    }
}
