//! The connect handshake: the first frame of a client connection, which has
//! no request header.
//!
//! The trailing `readOnly` byte is optional: clients older than 3.4 do not
//! send it, and the server answers each client in the form it used
//! (`ZooKeeperServer.processConnectRequest`, the `isOldClient` flag).

use crate::jute::{Jute, Reader, write_bool};
use crate::{DecodeError, jute};

/// Length of a session password.
pub const PASSWORD_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub password: Vec<u8>,
    /// `None` when the client omitted the byte.
    pub read_only: Option<bool>,
}

impl ConnectRequest {
    pub fn decode(frame: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(frame);
        let protocol_version = r.read_i32()?;
        let last_zxid_seen = r.read_i64()?;
        let timeout_ms = r.read_i32()?;
        let session_id = r.read_i64()?;
        let password = r.read_buffer()?.unwrap_or_default();
        let read_only = if r.is_empty() {
            None
        } else {
            Some(r.read_bool()?)
        };
        Ok(ConnectRequest {
            protocol_version,
            last_zxid_seen,
            timeout_ms,
            session_id,
            password,
            read_only,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        self.protocol_version.encode(out);
        self.last_zxid_seen.encode(out);
        self.timeout_ms.encode(out);
        self.session_id.encode(out);
        jute::write_buffer(out, Some(&self.password));
        if let Some(read_only) = self.read_only {
            write_bool(out, read_only);
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    /// Negotiated timeout; 0 tells the client its session is expired.
    pub timeout_ms: i32,
    pub session_id: i64,
    pub password: Vec<u8>,
    /// Written only when the client sent the byte.
    pub read_only: Option<bool>,
}

impl ConnectResponse {
    /// The answer to an invalid re-open: zero timeout, zero id, zero password.
    pub fn expired(read_only: Option<bool>) -> Self {
        ConnectResponse {
            protocol_version: 0,
            timeout_ms: 0,
            session_id: 0,
            password: vec![0; PASSWORD_LEN],
            read_only,
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        self.protocol_version.encode(out);
        self.timeout_ms.encode(out);
        self.session_id.encode(out);
        jute::write_buffer(out, Some(&self.password));
        if let Some(read_only) = self.read_only {
            write_bool(out, read_only);
        }
    }

    pub fn decode(frame: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(frame);
        let protocol_version = r.read_i32()?;
        let timeout_ms = r.read_i32()?;
        let session_id = r.read_i64()?;
        let password = r.read_buffer()?.unwrap_or_default();
        let read_only = if r.is_empty() {
            None
        } else {
            Some(r.read_bool()?)
        };
        Ok(ConnectResponse {
            protocol_version,
            timeout_ms,
            session_id,
            password,
            read_only,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(read_only: Option<bool>) -> ConnectRequest {
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 7,
            timeout_ms: 30_000,
            session_id: 0,
            password: vec![0; PASSWORD_LEN],
            read_only,
        }
    }

    #[test]
    fn old_clients_omit_the_read_only_byte() {
        let mut bytes = Vec::new();
        request(None).encode(&mut bytes);
        assert_eq!(bytes.len(), 44);
        assert_eq!(ConnectRequest::decode(&bytes).unwrap(), request(None));
    }

    #[test]
    fn new_clients_send_the_read_only_byte() {
        let mut bytes = Vec::new();
        request(Some(true)).encode(&mut bytes);
        assert_eq!(bytes.len(), 45);
        assert_eq!(ConnectRequest::decode(&bytes).unwrap(), request(Some(true)));
    }

    #[test]
    fn response_echoes_the_form_of_the_request() {
        let mut old = Vec::new();
        ConnectResponse::expired(None).encode(&mut old);
        let mut new = Vec::new();
        ConnectResponse::expired(Some(false)).encode(&mut new);
        assert_eq!(old.len() + 1, new.len());
    }
}
