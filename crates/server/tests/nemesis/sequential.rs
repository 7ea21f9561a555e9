//! Workload 2, unique sequential creates: clients on every member create
//! `/seq/e<epoch>/s-<10 digits>` (`PERSISTENT_SEQUENTIAL`; a new parent
//! every [`SEQUENTIAL_EPOCH`], so that reads stay small in a long run)
//! and every few seconds read the parent's children right after `sync`; at the end every parent's children are
//! read after `sync` on every member. Checked with
//! `lincheck::models::sequential::check_sequential_creates`: distinct,
//! well-formed names, none lost, none invented, numbered in real-time
//! order.

use std::time::Instant;

use lincheck::SharedRecorder;
use lincheck::models::sequential::{SequentialOp, SequentialOutput};
use lincheck::models::znode::ZkError;
use proto::{CreateMode, OpCode, Response};

use crate::raw_client::{Client, create_request, get_children_request, sync_request};
use crate::rng::Rng;
use crate::workload::{Env, REQUEST_TIMEOUT, SEQUENTIAL_EPOCH, SESSION_MS};

pub type Recorder = SharedRecorder<SequentialOp, SequentialOutput>;

pub const ROOT: &str = "/seq";

/// The parent of the epoch's sequential nodes.
pub fn parent(epoch: u64) -> String {
    format!("{ROOT}/e{epoch}")
}
const PREFIX: &str = "s-";

pub fn client(env: Env, recorder: Recorder, id: u64, mut home: usize, mut rng: Rng) {
    let mut conn: Option<Client> = None;
    let mut next_read = Instant::now() + rng.millis(1000, 4000);
    while !env.stopped() {
        if conn.is_none() {
            conn = env.connect(&mut home, &mut rng, SESSION_MS);
        }
        let Some(client) = conn.as_mut() else { break };
        let parent = parent(env.epoch(SEQUENTIAL_EPOCH));
        let ok = if Instant::now() >= next_read {
            next_read = Instant::now() + rng.millis(2000, 4000);
            read_children(client, &recorder, id, &env, &parent).is_some()
        } else {
            create(client, &recorder, id, &env, &parent)
        };
        if !ok {
            conn = None;
            env.move_on(&mut home, &mut rng);
        }
        // About 15 creates a second per client: enough to race, and the
        // tree (which only grows) stays small enough in a one-hour run
        // that a wiped server's snapshot comes quickly.
        std::thread::sleep(rng.millis(30, 90));
    }
}

/// One sequential create, recorded; whether the connection is usable.
fn create(client: &mut Client, recorder: &Recorder, id: u64, env: &Env, parent: &str) -> bool {
    let handle = recorder.invoke(
        id,
        SequentialOp::CreateSequential {
            parent: parent.into(),
            prefix: PREFIX.into(),
        },
    );
    let request = create_request(
        &format!("{parent}/{PREFIX}"),
        format!("c{id}").as_bytes(),
        CreateMode::PersistentSequential as i32,
    );
    match client.call(&request, REQUEST_TIMEOUT) {
        Ok(reply) if reply.err == 0 => match reply.response(OpCode::Create2) {
            Some(Response::Create2(created)) => {
                env.stats.acknowledged_write();
                recorder
                    .complete(handle, SequentialOutput::Created { path: created.path })
                    .expect("record");
                true
            }
            _ => {
                env.stats.unexpected("sequential (undecodable reply)", 0);
                recorder.fail_unknown(handle).expect("record");
                false
            }
        },
        Ok(reply) => {
            match ZkError::from_code(reply.err) {
                Some(error) => recorder
                    .complete(handle, SequentialOutput::Error(error))
                    .expect("record"),
                None => {
                    env.stats.unexpected("sequential", reply.err);
                    recorder.fail_unknown(handle).expect("record");
                }
            }
            true
        }
        Err(_) => {
            recorder.fail_unknown(handle).expect("record");
            false
        }
    }
}

/// `sync`, then the children of `parent`, recorded as one read invoked
/// before the `sync`; None if the connection broke.
pub fn read_children(
    client: &mut Client,
    recorder: &Recorder,
    id: u64,
    env: &Env,
    parent: &str,
) -> Option<Vec<String>> {
    let handle = recorder.invoke(
        id,
        SequentialOp::GetChildren {
            parent: parent.into(),
        },
    );
    let unknown = || recorder.fail_unknown(handle).expect("record");
    match client.call(&sync_request(), REQUEST_TIMEOUT) {
        Ok(reply) if reply.err == 0 => {}
        Ok(reply) => {
            env.stats.unexpected("sequential (sync)", reply.err);
            unknown();
            return None;
        }
        Err(_) => {
            unknown();
            return None;
        }
    }
    match client.call(&get_children_request(parent), REQUEST_TIMEOUT) {
        Ok(reply) if reply.err == 0 => match reply.response(OpCode::GetChildren2) {
            Some(Response::GetChildren2(r)) => {
                recorder
                    .complete(handle, SequentialOutput::Children(r.children.clone()))
                    .expect("record");
                Some(r.children)
            }
            _ => {
                env.stats.unexpected("sequential (undecodable reply)", 0);
                unknown();
                None
            }
        },
        Ok(reply) => {
            match ZkError::from_code(reply.err) {
                Some(error) => recorder
                    .complete(handle, SequentialOutput::Error(error))
                    .expect("record"),
                None => {
                    env.stats.unexpected("sequential (getChildren)", reply.err);
                    unknown();
                }
            }
            None
        }
        Err(_) => {
            unknown();
            None
        }
    }
}
