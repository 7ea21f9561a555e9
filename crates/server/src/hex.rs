//! Lowercase hexadecimal, for digests and DER values written as text.

/// `bytes` as lowercase hex, two digits each.
pub(crate) fn lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
