//! Length-prefixed framing: every message in both directions is an int32
//! payload length followed by the payload.
//!
//! [`decode_frame`] looks at a receive buffer and says whether a whole frame
//! is there; nothing is consumed until it is, so partial reads simply wait
//! for more bytes.

/// Why a frame length was refused. ZooKeeper closes the connection on both
/// (`NIOServerCnxn.readLength`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("negative frame length {0}")]
    NegativeLength(i32),
    #[error("frame of {len} bytes exceeds the limit of {max} bytes (jute.maxbuffer)")]
    TooLarge { len: usize, max: usize },
}

/// Size of the length prefix.
pub const LENGTH_PREFIX: usize = 4;

/// Reads the frame length at the start of `buf`, if four bytes are there.
pub fn peek_length(buf: &[u8]) -> Option<i32> {
    let prefix: [u8; LENGTH_PREFIX] = buf.get(..LENGTH_PREFIX)?.try_into().ok()?;
    Some(i32::from_be_bytes(prefix))
}

/// Returns `Ok(Some(total))` when `buf` starts with a complete frame of
/// `total` bytes (prefix included), `Ok(None)` when more bytes are needed,
/// and an error when the announced length is unacceptable. The limit is
/// checked as soon as the prefix arrives, before any payload is buffered.
pub fn decode_frame(buf: &[u8], max_len: usize) -> Result<Option<usize>, FrameError> {
    let Some(len) = peek_length(buf) else {
        return Ok(None);
    };
    let len = usize::try_from(len).map_err(|_| FrameError::NegativeLength(len))?;
    if len > max_len {
        return Err(FrameError::TooLarge { len, max: max_len });
    }
    let total = LENGTH_PREFIX + len;
    Ok((buf.len() >= total).then_some(total))
}

/// Appends one frame: reserves the prefix, lets `body` write the payload,
/// then back-patches the length.
pub fn encode_frame(out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; LENGTH_PREFIX]);
    body(out);
    let len = i32::try_from(out.len() - start - LENGTH_PREFIX).expect("frame fits in int32");
    out[start..start + LENGTH_PREFIX].copy_from_slice(&len.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_frames_wait_for_more_bytes() {
        let mut buf = Vec::new();
        encode_frame(&mut buf, |o| o.extend_from_slice(b"hello"));
        for cut in 0..buf.len() {
            assert_eq!(decode_frame(&buf[..cut], 100), Ok(None), "cut at {cut}");
        }
        assert_eq!(decode_frame(&buf, 100), Ok(Some(9)));
    }

    #[test]
    fn oversized_and_negative_lengths_are_refused_from_the_prefix_alone() {
        assert_eq!(
            decode_frame(&1000i32.to_be_bytes(), 999),
            Err(FrameError::TooLarge {
                len: 1000,
                max: 999
            })
        );
        assert_eq!(
            decode_frame(&(-5i32).to_be_bytes(), 999),
            Err(FrameError::NegativeLength(-5))
        );
    }
}
