//! Jute, ZooKeeper's record encoding: big-endian primitives, length-prefixed
//! strings and buffers, count-prefixed vectors, records as their fields in
//! declaration order (`zookeeper-jute`'s `BinaryInputArchive` /
//! `BinaryOutputArchive`).
//!
//! Decoding never trusts a length: every string, buffer and vector length is
//! checked against the bytes actually left in the frame before anything is
//! allocated, so a hostile 4-byte length cannot make us reserve gigabytes.

use crate::DecodeError;

/// A cursor over one frame's payload.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Fails unless every byte was consumed. Java's archive ignores trailing
    /// bytes, so only tests and the optional-field logic use this.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(DecodeError::TrailingBytes { extra }),
        }
    }

    /// Everything not yet consumed.
    pub fn take_rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }

    fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < len {
            return Err(DecodeError::Truncated {
                what,
                needed: len,
                available: self.remaining(),
            });
        }
        let out = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub fn read_i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array("int")?))
    }

    pub fn read_i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array("long")?))
    }

    /// Java reads a boolean as "byte != 0".
    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.array::<1>("boolean")?[0] != 0)
    }

    /// A length prefix: -1 means null, any other negative value is an error,
    /// and a length larger than what is left of the frame is an error before
    /// any allocation.
    fn read_len(&mut self, what: &'static str) -> Result<Option<usize>, DecodeError> {
        let len = self.read_i32()?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| DecodeError::NegativeLength { what, len })?;
        if len > self.remaining() {
            return Err(DecodeError::Truncated {
                what,
                needed: len,
                available: self.remaining(),
            });
        }
        Ok(Some(len))
    }

    /// A nullable buffer.
    pub fn read_buffer(&mut self) -> Result<Option<Vec<u8>>, DecodeError> {
        match self.read_len("buffer")? {
            None => Ok(None),
            Some(len) => Ok(Some(self.take(len, "buffer")?.to_vec())),
        }
    }

    /// A nullable UTF-8 string. Java decodes invalid UTF-8 leniently into
    /// U+FFFD; we do the same so that path validation (which rejects U+FFFD)
    /// answers exactly where ZooKeeper answers.
    pub fn read_ustring(&mut self) -> Result<Option<String>, DecodeError> {
        match self.read_len("ustring")? {
            None => Ok(None),
            Some(len) => Ok(Some(java_lossy_utf8(self.take(len, "ustring")?))),
        }
    }

    /// A vector count, checked against the smallest possible encoding of an
    /// element so the caller can reserve without trusting the peer.
    pub fn read_vec_len(&mut self, min_element_len: usize) -> Result<Option<usize>, DecodeError> {
        // Java never checks a count: -1 is a null list and any other negative
        // count an empty one (`BinaryIndex.done()` is `nelems <= 0`).
        let Ok(count) = usize::try_from(self.read_i32()?) else {
            return Ok(None);
        };
        let needed = count.saturating_mul(min_element_len.max(1));
        if needed > self.remaining() {
            return Err(DecodeError::Truncated {
                what: "vector",
                needed,
                available: self.remaining(),
            });
        }
        Ok(Some(count))
    }
}

/// Appends jute encodings to a byte vector.
pub fn write_i32(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub fn write_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub fn write_bool(out: &mut Vec<u8>, v: bool) {
    out.push(u8::from(v));
}

/// Lengths are int32 on the wire. Anything we encode came through a frame
/// bounded by `jute.maxbuffer` or from the tree (bounded the same way), so a
/// length beyond `i32::MAX` is a bug, not an input condition.
fn write_len(out: &mut Vec<u8>, len: usize) {
    let len = i32::try_from(len).expect("jute lengths fit in int32");
    write_i32(out, len);
}

pub fn write_buffer(out: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        None => write_i32(out, -1),
        Some(bytes) => {
            write_len(out, bytes.len());
            out.extend_from_slice(bytes);
        }
    }
}

/// Java's `BinaryOutputArchive.writeString` encodes each UTF-16 unit on its
/// own: the same bytes as UTF-8, except that a character beyond U+FFFF
/// becomes its two surrogates, three bytes each (CESU-8), not four bytes.
pub fn write_ustring(out: &mut Vec<u8>, v: Option<&str>) {
    let Some(s) = v else {
        write_i32(out, -1);
        return;
    };
    // In UTF-8 only the lead byte of a four-byte character is >= 0xf0.
    let supplementary = s.bytes().filter(|&b| b >= 0xf0).count();
    if supplementary == 0 {
        write_buffer(out, Some(s.as_bytes()));
        return;
    }
    write_len(out, s.len() + 2 * supplementary);
    for c in s.chars() {
        if c.len_utf8() < 4 {
            out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
            continue;
        }
        for &unit in c.encode_utf16(&mut [0; 2]).iter() {
            out.extend_from_slice(&[
                0xe0 | (unit >> 12) as u8,
                0x80 | ((unit >> 6) & 0x3f) as u8,
                0x80 | (unit & 0x3f) as u8,
            ]);
        }
    }
}

/// `new String(bytes, UTF_8)`: malformed input becomes U+FFFD, one per
/// maximal ill-formed subsequence as in `String::from_utf8_lossy`, except
/// that Java takes an encoded surrogate (`ED A0..BF`, plus its third byte
/// when that is a continuation byte) as one ill-formed unit, not two or three.
fn java_lossy_utf8(mut bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    loop {
        match std::str::from_utf8(bytes) {
            Ok(valid) => {
                out.push_str(valid);
                return out;
            }
            Err(e) => {
                let (valid, invalid) = bytes.split_at(e.valid_up_to());
                out.push_str(&String::from_utf8_lossy(valid));
                out.push(char::REPLACEMENT_CHARACTER);
                let bad = match invalid {
                    [0xed, 0xa0..=0xbf, 0x80..=0xbf, ..] => 3,
                    [0xed, 0xa0..=0xbf, ..] => 2,
                    _ => e.error_len().unwrap_or(invalid.len()),
                };
                bytes = &invalid[bad..];
            }
        }
    }
}

/// A value with a jute encoding.
pub trait Jute: Sized {
    /// The fewest bytes any value of this type encodes to; bounds vector
    /// counts before allocation.
    const MIN_LEN: usize;
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

impl Jute for i32 {
    const MIN_LEN: usize = 4;
    fn encode(&self, out: &mut Vec<u8>) {
        write_i32(out, *self);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_i32()
    }
}

impl Jute for i64 {
    const MIN_LEN: usize = 8;
    fn encode(&self, out: &mut Vec<u8>) {
        write_i64(out, *self);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_i64()
    }
}

impl Jute for bool {
    const MIN_LEN: usize = 1;
    fn encode(&self, out: &mut Vec<u8>) {
        write_bool(out, *self);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_bool()
    }
}

/// A `ustring` whose null form (-1) carries no meaning of its own for the
/// server: null decodes as "", which every ZooKeeper code path treats the
/// same way (it fails path validation or means "no prefix").
impl Jute for String {
    const MIN_LEN: usize = 4;
    fn encode(&self, out: &mut Vec<u8>) {
        write_ustring(out, Some(self));
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(r.read_ustring()?.unwrap_or_default())
    }
}

/// A nullable `buffer` (znode data may be null and is returned as null).
impl Jute for Option<Vec<u8>> {
    const MIN_LEN: usize = 4;
    fn encode(&self, out: &mut Vec<u8>) {
        write_buffer(out, self.as_deref());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_buffer()
    }
}

/// A `vector<T>`; null (-1, or any negative count) decodes as empty, as the
/// server treats both alike.
impl<T: Jute> Jute for Vec<T> {
    const MIN_LEN: usize = 4;
    fn encode(&self, out: &mut Vec<u8>) {
        write_len(out, self.len());
        for item in self {
            item.encode(out);
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let count = r.read_vec_len(T::MIN_LEN)?.unwrap_or(0);
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(T::decode(r)?);
        }
        Ok(items)
    }
}

/// Declares a jute record: a struct whose encoding is its fields in order.
macro_rules! record {
    (
        $(#[$meta:meta])*
        pub struct $name:ident { $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty ),* $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
        pub struct $name { $( $(#[$fmeta])* pub $field: $ty ),* }

        impl $crate::jute::Jute for $name {
            const MIN_LEN: usize = 0 $( + <$ty as $crate::jute::Jute>::MIN_LEN )*;
            fn encode(&self, out: &mut Vec<u8>) {
                $( $crate::jute::Jute::encode(&self.$field, out); )*
                let _ = out;
            }
            fn decode(r: &mut $crate::jute::Reader<'_>) -> Result<Self, $crate::DecodeError> {
                let _ = &r;
                Ok($name { $( $field: <$ty as $crate::jute::Jute>::decode(r)? ),* })
            }
        }
    };
}
pub(crate) use record;

/// Encodes one value into a fresh vector.
pub fn to_vec<T: Jute>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    value.encode(&mut out);
    out
}

/// Decodes one value that must use the whole slice.
pub fn from_slice<T: Jute>(bytes: &[u8]) -> Result<T, DecodeError> {
    let mut r = Reader::new(bytes);
    let value = T::decode(&mut r)?;
    r.finish()?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_vector_count_is_refused_before_allocating() {
        let mut bytes = Vec::new();
        write_i32(&mut bytes, i32::MAX);
        let err = Vec::<String>::decode(&mut Reader::new(&bytes)).unwrap_err();
        assert!(
            matches!(err, DecodeError::Truncated { what: "vector", .. }),
            "{err:?}"
        );
    }

    #[test]
    fn negative_lengths_other_than_null_are_refused() {
        let mut bytes = Vec::new();
        write_i32(&mut bytes, -2);
        let err = Reader::new(&bytes).read_buffer().unwrap_err();
        assert_eq!(
            err,
            DecodeError::NegativeLength {
                what: "buffer",
                len: -2
            }
        );
    }

    #[test]
    fn null_buffer_round_trips_as_null() {
        let bytes = to_vec(&None::<Vec<u8>>);
        assert_eq!(bytes, (-1i32).to_be_bytes());
        assert_eq!(from_slice::<Option<Vec<u8>>>(&bytes).unwrap(), None);
    }

    #[test]
    fn invalid_utf8_decodes_to_replacement_characters() {
        let mut bytes = Vec::new();
        write_buffer(&mut bytes, Some(&[b'/', 0xff]));
        assert_eq!(from_slice::<String>(&bytes).unwrap(), "/\u{fffd}");
    }
}
