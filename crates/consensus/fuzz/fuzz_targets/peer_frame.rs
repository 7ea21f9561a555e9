//! Feeds arbitrary bytes to the peer frame decoder (`consensus::wire`):
//! nothing may panic, and whatever decodes must re-encode to bytes that
//! decode and re-encode to themselves (one normalising pass: an all-default
//! snapshot is encoded as none).

#![no_main]

use consensus::wire::{decode_frame, encode_frame};
use libfuzzer_sys::fuzz_target;

fn payload(frame: &consensus::wire::Frame) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(frame, &mut out);
    out.split_off(4)
}

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = decode_frame(data) else {
        return;
    };
    let once = payload(&frame);
    let again = match decode_frame(&once) {
        Ok(again) => again,
        Err(e) => panic!("re-encoded {frame:?} does not decode: {e:?}"),
    };
    assert_eq!(payload(&again), once, "encoding is not stable for {frame:?}");
});
