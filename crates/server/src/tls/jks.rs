//! Java KeyStore files (`keytool -storetype JKS`), the format ZooKeeper's
//! own documentation and kazoo's test harness use for the secure client
//! port. Read as `sun.security.provider.JavaKeyStore` writes them: a
//! header, entries (a private key with its certificate chain, or a
//! trusted certificate), and a SHA-1 integrity digest keyed with the
//! password. Private keys are protected with Sun's own scheme
//! (`KeyProtector`): a SHA-1 key stream XORed over the PKCS#8 key.

use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use sha1::{Digest as _, Sha1};

const MAGIC_JKS: u32 = 0xfeed_feed;
const MAGIC_JCEKS: u32 = 0xcece_cece;
const TAG_PRIVATE_KEY: u32 = 1;
const TAG_TRUSTED_CERT: u32 = 2;
const DIGEST_LEN: usize = 20;
/// What `JavaKeyStore` mixes into the integrity digest after the password.
const INTEGRITY_WHITENER: &[u8] = b"Mighty Aphrodite";
/// DER of OID 1.3.6.1.4.1.42.2.17.1.1, Sun's key protection algorithm.
const KEY_PROTECTOR_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x2a, 0x02, 0x11, 0x01, 0x01];

/// Why a JKS file could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JksError {
    #[error("not a JKS key store")]
    NotJks,
    #[error("a JCEKS key store: convert it to JKS or PEM (keytool -importkeystore)")]
    Jceks,
    #[error("unsupported JKS version {0}")]
    Version(u32),
    #[error("the key store ends early")]
    Truncated,
    #[error("unknown entry type {0}")]
    EntryTag(u32),
    #[error("entry {alias:?}: certificate type {kind:?} is not X.509")]
    CertificateType { alias: String, kind: String },
    #[error("the key store's integrity check failed: wrong password, or a damaged file")]
    Integrity,
    #[error("entry {0:?}: the private key is not protected the way JKS protects keys")]
    KeyProtection(String),
    #[error("entry {0:?}: cannot recover the private key: wrong password, or a damaged key")]
    KeyRecovery(String),
}

/// A private key with its certificate chain (the server's own first).
#[derive(Debug)]
pub(super) struct PrivateKeyEntry {
    pub(super) alias: String,
    pub(super) key: PrivatePkcs8KeyDer<'static>,
    pub(super) chain: Vec<CertificateDer<'static>>,
}

/// The entries of a key store.
#[derive(Debug, Default)]
pub(super) struct KeyStore {
    pub(super) private_keys: Vec<PrivateKeyEntry>,
    pub(super) trusted: Vec<CertificateDer<'static>>,
}

/// Reads a JKS file. With a password, the store's integrity digest is
/// checked (as Java does); private keys are recovered with the same
/// password (as ZooKeeper does: it has no separate key password).
pub(super) fn parse(bytes: &[u8], password: Option<&str>) -> Result<KeyStore, JksError> {
    let mut input = Reader { bytes, at: 0 };
    match input.u32()? {
        MAGIC_JKS => {}
        MAGIC_JCEKS => return Err(JksError::Jceks),
        _ => return Err(JksError::NotJks),
    }
    let version = input.u32()?;
    if version != 1 && version != 2 {
        return Err(JksError::Version(version));
    }
    let count = input.u32()?;
    // Keys are recovered after the integrity check, as Java does (it
    // checks at load, recovers keys when asked): a wrong password is then
    // reported as such, not as a damaged key.
    let mut protected_keys = Vec::new();
    let mut trusted = Vec::new();
    for _ in 0..count {
        match input.u32()? {
            TAG_PRIVATE_KEY => {
                let alias = input.utf()?;
                let _created_ms = input.u64()?;
                let protected = input.blob()?;
                let chain_len = input.u32()?;
                let mut chain = Vec::new();
                for _ in 0..chain_len {
                    chain.push(input.certificate(version, &alias)?);
                }
                protected_keys.push((alias, protected, chain));
            }
            TAG_TRUSTED_CERT => {
                let alias = input.utf()?;
                let _created_ms = input.u64()?;
                trusted.push(input.certificate(version, &alias)?);
            }
            tag => return Err(JksError::EntryTag(tag)),
        }
    }
    let signed = &bytes[..input.at];
    let digest = input.take(DIGEST_LEN)?;
    let password_bytes = utf16_be(password.unwrap_or(""));
    if password.is_some() {
        let expected = Sha1::new()
            .chain_update(&password_bytes)
            .chain_update(INTEGRITY_WHITENER)
            .chain_update(signed)
            .finalize();
        if expected.as_slice() != digest {
            return Err(JksError::Integrity);
        }
    }
    let mut store = KeyStore {
        private_keys: Vec::new(),
        trusted,
    };
    for (alias, protected, chain) in protected_keys {
        let key = recover_key(protected, &password_bytes, &alias)?;
        store
            .private_keys
            .push(PrivateKeyEntry { alias, key, chain });
    }
    Ok(store)
}

/// Java's `char[]` password as the bytes its digests use.
fn utf16_be(password: &str) -> Vec<u8> {
    password.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// Undoes `sun.security.provider.KeyProtector.protect`: the
/// EncryptedPrivateKeyInfo holds salt ‖ key XOR stream ‖ check digest,
/// where the stream is SHA-1 chained over (password, previous block)
/// starting from the salt, and the check is SHA-1(password ‖ key).
fn recover_key(
    encrypted_info: &[u8],
    password: &[u8],
    alias: &str,
) -> Result<PrivatePkcs8KeyDer<'static>, JksError> {
    let protection = || JksError::KeyProtection(alias.to_owned());
    let (info, _) = der::element(encrypted_info, der::SEQUENCE).ok_or_else(protection)?;
    let (algorithm, rest) = der::element(info, der::SEQUENCE).ok_or_else(protection)?;
    let (oid, _) = der::element(algorithm, der::OID).ok_or_else(protection)?;
    if oid != KEY_PROTECTOR_OID {
        return Err(protection());
    }
    let (protected, _) = der::element(rest, der::OCTET_STRING).ok_or_else(protection)?;
    if protected.len() < 2 * DIGEST_LEN {
        return Err(protection());
    }
    let (salt, rest) = protected.split_at(DIGEST_LEN);
    let (encrypted, check) = rest.split_at(rest.len() - DIGEST_LEN);

    let mut block = salt.to_vec();
    let mut plain = Vec::with_capacity(encrypted.len());
    while plain.len() < encrypted.len() {
        block = Sha1::new()
            .chain_update(password)
            .chain_update(&block)
            .finalize()
            .to_vec();
        let start = plain.len();
        plain.extend(
            encrypted[start..]
                .iter()
                .zip(&block)
                .map(|(byte, key)| byte ^ key),
        );
    }
    let digest = Sha1::new()
        .chain_update(password)
        .chain_update(&plain)
        .finalize();
    if digest.as_slice() != check {
        return Err(JksError::KeyRecovery(alias.to_owned()));
    }
    Ok(PrivatePkcs8KeyDer::from(plain))
}

/// A cursor over the big-endian fields Java's `DataOutputStream` writes.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], JksError> {
        let end = self.at.checked_add(n).ok_or(JksError::Truncated)?;
        let slice = self.bytes.get(self.at..end).ok_or(JksError::Truncated)?;
        self.at = end;
        Ok(slice)
    }

    fn u16(&mut self) -> Result<u16, JksError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, JksError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, JksError> {
        Ok((u64::from(self.u32()?) << 32) | u64::from(self.u32()?))
    }

    /// `writeUTF`: a 16-bit length, then modified UTF-8 (read leniently:
    /// aliases are only names).
    fn utf(&mut self) -> Result<String, JksError> {
        let len = self.u16()?;
        Ok(String::from_utf8_lossy(self.take(usize::from(len))?).into_owned())
    }

    /// A 32-bit length, then that many bytes.
    fn blob(&mut self) -> Result<&'a [u8], JksError> {
        let len = self.u32()?;
        self.take(usize::try_from(len).map_err(|_| JksError::Truncated)?)
    }

    /// A certificate: its type (version 2 only) and its DER.
    fn certificate(
        &mut self,
        version: u32,
        alias: &str,
    ) -> Result<CertificateDer<'static>, JksError> {
        if version == 2 {
            let kind = self.utf()?;
            if kind != "X.509" {
                return Err(JksError::CertificateType {
                    alias: alias.to_owned(),
                    kind,
                });
            }
        }
        Ok(CertificateDer::from(self.blob()?.to_vec()))
    }
}

/// The few DER elements a protected key is wrapped in.
mod der {
    pub(super) const SEQUENCE: u8 = 0x30;
    pub(super) const OID: u8 = 0x06;
    pub(super) const OCTET_STRING: u8 = 0x04;

    /// The content of the element at the start of `input` if its tag is
    /// `tag`, and what follows it.
    pub(super) fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
        let (&found, rest) = input.split_first()?;
        if found != tag {
            return None;
        }
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let octets = usize::from(first & 0x7f);
            if octets == 0 || octets > 4 {
                return None;
            }
            let mut len = 0usize;
            for _ in 0..octets {
                let (&b, r) = rest.split_first()?;
                len = (len << 8) | usize::from(b);
                rest = r;
            }
            len
        };
        if rest.len() < len {
            return None;
        }
        Some(rest.split_at(len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject as _;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{FIXTURES}/{name}")).expect(name)
    }

    fn pem_certificate(name: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(&fixture(name)).expect(name)
    }

    #[test]
    fn reads_keytools_key_store() {
        let store = parse(&fixture("server.jks"), Some("changeit")).unwrap();
        assert_eq!(store.private_keys.len(), 1);
        let entry = &store.private_keys[0];
        assert_eq!(entry.chain[0], pem_certificate("server.crt"));
        let key = PrivatePkcs8KeyDer::from_pem_slice(&fixture("server.key")).unwrap();
        assert_eq!(entry.key.secret_pkcs8_der(), key.secret_pkcs8_der());
    }

    #[test]
    fn reads_keytools_trust_store() {
        let store = parse(&fixture("truststore.jks"), Some("changeit")).unwrap();
        assert!(store.private_keys.is_empty());
        assert_eq!(store.trusted, vec![pem_certificate("ca.pem")]);
    }

    #[test]
    fn a_wrong_password_is_refused() {
        assert_eq!(
            parse(&fixture("server.jks"), Some("wrong")).unwrap_err(),
            JksError::Integrity
        );
        // Without a password there is no integrity check, but the key
        // still cannot be recovered.
        assert!(matches!(
            parse(&fixture("server.jks"), None).unwrap_err(),
            JksError::KeyRecovery(_)
        ));
    }

    #[test]
    fn damage_is_detected_not_misread() {
        let good = fixture("server.jks");
        for cut in [0, 3, 11, good.len() / 2, good.len() - 1] {
            assert!(
                parse(&good[..cut], Some("changeit")).is_err(),
                "cut at {cut}"
            );
        }
        for at in (12..good.len()).step_by(97) {
            let mut bad = good.clone();
            bad[at] ^= 0x40;
            assert!(parse(&bad, Some("changeit")).is_err(), "flipped byte {at}");
        }
        assert_eq!(
            parse(b"\xce\xce\xce\xce", None).unwrap_err(),
            JksError::Jceks
        );
        assert_eq!(parse(b"-----BEGIN", None).unwrap_err(), JksError::NotJks);
    }
}
