//! A child's name in its parent's set of children: held inline when it is
//! short — most are (`n42`, `lock-0000000017`, a broker id, a partition
//! number) — so the set's element carries it without a heap block of its
//! own. A `Box<str>` costs 16 bytes in the set plus a 32-byte heap chunk
//! for any name up to 24 bytes; an inline name costs 24 bytes in the set
//! and nothing else (`examples/znode_memory.rs`).

use std::borrow::Borrow;
use std::cmp::Ordering;

/// The longest name held inline.
const INLINE: usize = 22;

/// A child's name. Ordered as its bytes are, which is `str`'s order.
#[derive(Clone)]
pub enum ChildName {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<str>),
}

impl ChildName {
    pub fn new(name: &str) -> ChildName {
        match u8::try_from(name.len()) {
            Ok(len) if name.len() <= INLINE => {
                let mut bytes = [0u8; INLINE];
                bytes[..name.len()].copy_from_slice(name.as_bytes());
                ChildName::Inline { len, bytes }
            }
            _ => ChildName::Heap(name.into()),
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            ChildName::Inline { len, bytes } => &bytes[..usize::from(*len)],
            ChildName::Heap(name) => name.as_bytes(),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            // Made from a `str` (`ChildName::new`): always UTF-8.
            ChildName::Inline { .. } => std::str::from_utf8(self.as_bytes()).unwrap_or_default(),
            ChildName::Heap(name) => name,
        }
    }
}

impl std::ops::Deref for ChildName {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

/// Set lookups go by bytes: no UTF-8 check per comparison.
impl Borrow<[u8]> for ChildName {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq for ChildName {
    fn eq(&self, other: &ChildName) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for ChildName {}

impl PartialOrd for ChildName {
    fn partial_cmp(&self, other: &ChildName) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ChildName {
    fn cmp(&self, other: &ChildName) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl std::fmt::Debug for ChildName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for ChildName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn as_small_as_a_string_header() {
        assert_eq!(std::mem::size_of::<ChildName>(), 24);
    }

    proptest! {
        /// Whatever the lengths (inline, heap, the boundary) and however
        /// many bytes a character takes, a name reads back as itself and
        /// orders as `str` does.
        #[test]
        fn names_read_back_and_order_as_str(a in "\\PC{0,30}", b in "\\PC{0,30}") {
            let (x, y) = (ChildName::new(&a), ChildName::new(&b));
            prop_assert_eq!(x.as_str(), a.as_str());
            prop_assert_eq!(y.as_str(), b.as_str());
            prop_assert_eq!(x.cmp(&y), a.as_str().cmp(b.as_str()));
            prop_assert_eq!(x == y, a == b);
        }
    }

    #[test]
    fn the_boundary_is_inline_and_one_more_is_not() {
        let at = "a".repeat(INLINE);
        assert!(matches!(ChildName::new(&at), ChildName::Inline { .. }));
        let over = "a".repeat(INLINE + 1);
        assert!(matches!(ChildName::new(&over), ChildName::Heap(_)));
        assert_eq!(ChildName::new(&over).as_str(), over);
    }
}
