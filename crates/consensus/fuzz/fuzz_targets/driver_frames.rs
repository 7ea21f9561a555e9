//! Drives a member's ensemble driver (`consensus::driver`) with arbitrary
//! peer frames after a valid Hello: the input is split into frames, each
//! decoded by the real peer decoder and handed to the driver as it would
//! come off a connection from server 2 (a Raft message or a notice), with a
//! tick now and then. Nothing may panic — raft-rs panics on many messages
//! a confused peer could send, and the driver must refuse them first.

#![no_main]

use consensus::wire::{Frame, decode_frame};
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/mod.rs"]
#[allow(dead_code, unreachable_pub)]
mod support;

fuzz_target!(|data: &[u8]| {
    let (mut driver, mut sm, _net) = support::member(3, 2);
    // Frames: a length byte, then that many bytes.
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        let (frame, tail) = tail.split_at(len);
        rest = tail;
        match decode_frame(frame) {
            Ok(Frame::Raft(m)) => {
                let _ = driver.receive(2, *m, &mut sm);
            }
            Ok(Frame::Service(payload)) => {
                let _ = driver.notice(2, &payload, &mut sm);
            }
            _ => {
                let _ = driver.tick(0, &mut sm);
            }
        }
    }
});
