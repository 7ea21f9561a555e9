//! Workload 1, registers: a few znodes `/r<epoch>-0`, `/r<epoch>-1`, …
//! (new keys every [`REGISTER_EPOCH`]) written, read,
//! compare-and-set, created and deleted by clients on every member, each
//! operation recorded for `lincheck` and checked against
//! `lincheck::models::znode::ZnodeModel` (no multis).
//!
//! - read: `sync`, then `getData` on the same connection, recorded as one
//!   `GetData` invoked before the `sync` (a read right after `sync` is
//!   linearizable in Conclave: a ReadIndex round);
//! - write: `setData` without version, with data no other write uses, so
//!   a read names the write it saw;
//! - compare-and-set: `setData` with the version this client last read
//!   of that key;
//! - now and then `create` and `delete` (without version).
//!
//! A request whose connection broke or timed out is recorded as unknown,
//! and so is any reply with an error code the model does not know (e.g.
//! `SessionExpired`): the write may or may not have happened.

use std::collections::HashMap;

use lincheck::SharedRecorder;
use lincheck::models::znode::{ZkError, ZnodeOp, ZnodeOutput};
use proto::{DeleteRequest, OpCode, Request, Response, SetDataRequest};

use crate::raw_client::{Client, Reply, create_request, get_data_request, sync_request};
use crate::rng::Rng;
use crate::workload::{Env, REGISTER_EPOCH, REQUEST_TIMEOUT, SESSION_MS};

pub type Recorder = SharedRecorder<ZnodeOp, ZnodeOutput>;

pub fn key(epoch: u64, k: usize) -> String {
    format!("/r{epoch}-{k}")
}

/// One client thread: operations on random keys until the run stops.
pub fn client(env: Env, recorder: Recorder, id: u64, mut home: usize, keys: usize, mut rng: Rng) {
    let mut versions: HashMap<String, i32> = HashMap::new();
    let mut writes = 0u64;
    let mut conn: Option<Client> = None;
    while !env.stopped() {
        if conn.is_none() {
            conn = env.connect(&mut home, &mut rng, SESSION_MS);
        }
        let Some(client) = conn.as_mut() else { break };
        let path = key(env.epoch(REGISTER_EPOCH), rng.index(keys));
        let roll = rng.below(100);
        let op = if roll < 35 {
            ZnodeOp::GetData { path }
        } else if roll < 85 {
            writes += 1;
            let data = format!("c{id}-{writes}").into();
            // Compare-and-set with the version last read, when there is one.
            let version = if roll >= 65 {
                versions.get(&path).copied()
            } else {
                None
            };
            ZnodeOp::SetData {
                path,
                data,
                version,
            }
        } else if roll < 95 {
            writes += 1;
            ZnodeOp::Create {
                path,
                data: format!("c{id}-{writes}").into(),
            }
        } else {
            ZnodeOp::Delete {
                path,
                version: None,
            }
        };
        let ok = perform(client, &recorder, id, &op, &env, &mut versions);
        if !ok {
            conn = None;
            env.move_on(&mut home, &mut rng);
        }
        std::thread::sleep(rng.millis(0, 10));
    }
}

/// Sends `op` (for a read: `sync` first), records it, and says whether the
/// connection is still usable.
pub fn perform(
    client: &mut Client,
    recorder: &Recorder,
    id: u64,
    op: &ZnodeOp,
    env: &Env,
    versions: &mut HashMap<String, i32>,
) -> bool {
    let handle = recorder.invoke(id, op.clone());
    let unknown = || {
        recorder.fail_unknown(handle).expect("record");
    };
    let request = match op {
        ZnodeOp::GetData { path } => {
            match client.call(&sync_request(), REQUEST_TIMEOUT) {
                Ok(reply) if reply.err == 0 => {}
                Ok(reply) => {
                    env.stats.unexpected("registers (sync)", reply.err);
                    unknown();
                    return true;
                }
                Err(_) => {
                    unknown();
                    return false;
                }
            }
            get_data_request(path)
        }
        ZnodeOp::SetData {
            path,
            data,
            version,
        } => Request::SetData(SetDataRequest {
            path: path.clone(),
            data: Some(data.as_bytes().to_vec()),
            version: version.unwrap_or(-1),
        }),
        ZnodeOp::Create { path, data } => create_request(path, data.as_bytes(), 0),
        ZnodeOp::Delete { path, version } => Request::Delete(DeleteRequest {
            path: path.clone(),
            version: version.unwrap_or(-1),
        }),
        other => panic!("the register workload does not send {other:?}"),
    };
    let reply: Reply = match client.call(&request, REQUEST_TIMEOUT) {
        Ok(reply) => reply,
        Err(_) => {
            unknown();
            return false;
        }
    };
    let path = op.paths()[0].to_owned();
    let output = if reply.err != 0 {
        match ZkError::from_code(reply.err) {
            Some(error) => {
                if error == ZkError::NoNode {
                    versions.remove(&path);
                }
                ZnodeOutput::Error(error)
            }
            None => {
                env.stats.unexpected("registers", reply.err);
                unknown();
                return true;
            }
        }
    } else {
        let decoded = match op {
            ZnodeOp::GetData { .. } => reply.response(OpCode::GetData).and_then(|r| match r {
                Response::GetData(r) => Some(ZnodeOutput::Data {
                    data: r.data.unwrap_or_default().into(),
                    version: r.stat.version,
                }),
                _ => None,
            }),
            ZnodeOp::SetData { .. } => reply.response(OpCode::SetData).and_then(|r| match r {
                Response::Stat(r) => Some(ZnodeOutput::Set {
                    version: r.stat.version,
                }),
                _ => None,
            }),
            ZnodeOp::Create { .. } => Some(ZnodeOutput::Created),
            ZnodeOp::Delete { .. } => Some(ZnodeOutput::Deleted),
            _ => None,
        };
        let Some(output) = decoded else {
            env.stats.unexpected("registers (undecodable reply)", 0);
            unknown();
            return false;
        };
        output
    };
    match &output {
        ZnodeOutput::Data { version, .. } | ZnodeOutput::Set { version } => {
            versions.insert(path, *version);
        }
        ZnodeOutput::Created => {
            versions.insert(path, 0);
        }
        ZnodeOutput::Deleted => {
            versions.remove(&path);
        }
        _ => {}
    }
    if matches!(
        output,
        ZnodeOutput::Set { .. } | ZnodeOutput::Created | ZnodeOutput::Deleted
    ) {
        env.stats.acknowledged_write();
    }
    recorder.complete(handle, output).expect("record");
    true
}
