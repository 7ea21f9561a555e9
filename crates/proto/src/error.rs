//! Decoding failures. Every one of them is an input condition, never a
//! panic: the server answers MarshallingError or closes that connection.

/// Why bytes could not be decoded into a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated {what}: needed {needed} bytes, {available} available")]
    Truncated {
        what: &'static str,
        needed: usize,
        available: usize,
    },
    #[error("negative {what} length {len}")]
    NegativeLength { what: &'static str, len: i32 },
    #[error("{extra} unexpected trailing bytes")]
    TrailingBytes { extra: usize },
    #[error("op type {op} is not allowed here")]
    BadMultiOp { op: i32 },
    #[error("op code {op} is an internal transaction type, not a request")]
    NotARequest { op: i32 },
    #[error("null path")]
    NullPath,
    #[error("unknown error code {code}")]
    UnknownErrorCode { code: i32 },
}
