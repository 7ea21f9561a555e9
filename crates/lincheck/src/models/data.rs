//! A znode's data bytes, printed and stored readably.
//!
//! Failure messages and history files are read by people, and test data is
//! almost always text, so `Debug` shows UTF-8 data as a string literal and
//! other bytes as hex, and JSON stores UTF-8 data as a string and other
//! bytes as an array of numbers. The bytes are shared (`Arc`), because the
//! search clones model states all the time and data is never modified.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The data of a znode.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "DataRepr", into = "DataRepr")]
pub struct Data(Arc<[u8]>);

impl Data {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for Data {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes.into())
    }
}

impl From<&[u8]> for Data {
    fn from(bytes: &[u8]) -> Self {
        Self(bytes.into())
    }
}

impl From<&str> for Data {
    fn from(text: &str) -> Self {
        Self(text.as_bytes().into())
    }
}

impl From<String> for Data {
    fn from(text: String) -> Self {
        Self(text.into_bytes().into())
    }
}

impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(&self.0) {
            Ok(text) => write!(f, "{text:?}"),
            Err(_) => {
                write!(f, "0x")?;
                self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
            }
        }
    }
}

/// How [`Data`] looks in JSON.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum DataRepr {
    Text(String),
    Bytes(Vec<u8>),
}

impl From<DataRepr> for Data {
    fn from(repr: DataRepr) -> Self {
        match repr {
            DataRepr::Text(text) => Self::from(text),
            DataRepr::Bytes(bytes) => Self::from(bytes),
        }
    }
}

impl From<Data> for DataRepr {
    fn from(data: Data) -> Self {
        match String::from_utf8(data.0.to_vec()) {
            Ok(text) => DataRepr::Text(text),
            Err(error) => DataRepr::Bytes(error.into_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_bytes_print_and_round_trip() {
        let text = Data::from("v1");
        let bytes = Data::from(&[0xff, 0x00][..]);
        assert_eq!(format!("{text:?} {bytes:?}"), "\"v1\" 0xff00");
        assert_eq!(serde_json::to_string(&text).unwrap(), "\"v1\"");
        assert_eq!(serde_json::to_string(&bytes).unwrap(), "[255,0]");
        for data in [text, bytes, Data::default()] {
            let json = serde_json::to_string(&data).unwrap();
            assert_eq!(serde_json::from_str::<Data>(&json).unwrap(), data);
        }
    }
}
