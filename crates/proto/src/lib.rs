//! ZooKeeper's client wire protocol, as spoken by Apache ZooKeeper 3.8.
//!
//! This crate owns the bytes: jute primitives ([`jute`]), every request and
//! response record ([`records`]), op and error codes ([`codes`]),
//! length-prefixed framing ([`frame`]), the connect handshake ([`connect`])
//! and the typed request/response enums ([`request`], [`response`]).
//!
//! Architecture invariant: no I/O, no sessions, no async. Decoding checks
//! every length against the bytes actually present before allocating, and
//! never panics on any input.

pub mod codes;
pub mod connect;
mod error;
pub mod frame;
pub mod jute;
pub mod records;
pub mod request;
pub mod response;

pub use codes::{
    AddWatchMode, CreateMode, ErrorCode, EventType, KeeperState, OpCode, WatcherType, perms, xid,
};
pub use connect::{ConnectRequest, ConnectResponse, PASSWORD_LEN};
pub use error::DecodeError;
pub use records::*;
pub use request::{MultiOp, MultiReadOp, Request, RequestError};
pub use response::{MultiResult, Response};

/// `jute.maxbuffer`'s default: the largest request frame a server accepts.
pub const DEFAULT_MAX_BUFFER: usize = 0xfffff;

/// Encodes a complete reply frame: length, `ReplyHeader`, and the body only
/// when `err` is Ok.
pub fn encode_reply(out: &mut Vec<u8>, xid: i32, zxid: i64, err: ErrorCode, body: &Response) {
    frame::encode_frame(out, |o| {
        jute::Jute::encode(
            &ReplyHeader {
                xid,
                zxid,
                err: err.code(),
            },
            o,
        );
        if err == ErrorCode::Ok {
            body.encode(o);
        }
    });
}

/// Encodes a reply frame that carries a body despite an error. ZooKeeper
/// sends a body after an error only when a multiRead is refused midway: the
/// results gathered so far go out with MarshallingError.
pub fn encode_reply_with_body(
    out: &mut Vec<u8>,
    xid: i32,
    zxid: i64,
    err: ErrorCode,
    body: &Response,
) {
    frame::encode_frame(out, |o| {
        jute::Jute::encode(
            &ReplyHeader {
                xid,
                zxid,
                err: err.code(),
            },
            o,
        );
        body.encode(o);
    });
}

/// Encodes a watch notification frame (xid -1). ZooKeeper 3.8 sends zxid -1.
pub fn encode_notification(out: &mut Vec<u8>, event_type: EventType, path: &str) {
    frame::encode_frame(out, |o| {
        jute::Jute::encode(
            &ReplyHeader {
                xid: xid::NOTIFICATION,
                zxid: -1,
                err: 0,
            },
            o,
        );
        jute::Jute::encode(
            &WatcherEvent {
                event_type: event_type.code(),
                state: KeeperState::SyncConnected.code(),
                path: path.to_owned(),
            },
            o,
        );
    });
}
