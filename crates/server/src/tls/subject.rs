//! A certificate's subject as ZooKeeper's `x509` scheme names it: Java's
//! `X500Principal.getName()` (RFC 2253): the relative distinguished names
//! last first, joined by `,`; the attributes of a multi-valued one joined
//! by `+`; `CN`, `C`, `L`, `ST`, `O`, `OU`, `STREET`, `DC` and `UID` by
//! name and any other attribute by its dotted OID with its value as `#`
//! and the hex of its DER encoding; string values with `,=+<>#;"\`
//! escaped, and leading and trailing spaces.
//!
//! Only the subject is read, by walking the certificate's DER: the
//! certificate was verified by rustls before this runs.

/// DER tags used here.
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const VERSION: u8 = 0xa0;
const UTF8_STRING: u8 = 0x0c;
const PRINTABLE_STRING: u8 = 0x13;
const TELETEX_STRING: u8 = 0x14;
const IA5_STRING: u8 = 0x16;
const GENERAL_STRING: u8 = 0x1b;
const BMP_STRING: u8 = 0x1e;

/// The subject of the DER certificate `der`, or `None` if it cannot be read.
pub fn subject_rfc2253(der: &[u8]) -> Option<String> {
    let (tag, certificate, _) = tlv(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, mut tbs, _) = tlv(certificate)?;
    if tag != SEQUENCE {
        return None;
    }
    // version (optional), serial, signature algorithm, issuer, validity.
    let mut skipped = 0;
    while skipped < 4 {
        let (tag, _, rest) = tlv(tbs)?;
        tbs = rest;
        if tag != VERSION {
            skipped += 1;
        }
    }
    let (tag, mut name, _) = tlv(tbs)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut rdns = Vec::new();
    while !name.is_empty() {
        let (tag, mut set, rest) = tlv(name)?;
        name = rest;
        if tag != SET {
            return None;
        }
        let mut avas = Vec::new();
        while !set.is_empty() {
            let (tag, ava, rest) = tlv(set)?;
            set = rest;
            if tag != SEQUENCE {
                return None;
            }
            avas.push(attribute(ava)?);
        }
        rdns.push(avas.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

/// One `type=value`.
fn attribute(ava: &[u8]) -> Option<String> {
    let (tag, oid, value) = tlv(ava)?;
    if tag != OID {
        return None;
    }
    let (value_tag, content, _) = tlv(value)?;
    let encoded = &value[..value.len() - tlv(value)?.2.len()];
    let keyword = keyword(oid);
    let text = match keyword {
        Some(_) => string_value(value_tag, content),
        None => None,
    };
    let name = keyword.map_or_else(|| dotted(oid), str::to_owned);
    Some(match text {
        Some(text) => format!("{name}={}", escape(&text)),
        None => format!("{name}=#{}", crate::hex::lower(encoded)),
    })
}

/// The RFC 2253 keywords Java uses.
fn keyword(oid: &[u8]) -> Option<&'static str> {
    Some(match oid {
        [0x55, 0x04, 0x03] => "CN",
        [0x55, 0x04, 0x06] => "C",
        [0x55, 0x04, 0x07] => "L",
        [0x55, 0x04, 0x08] => "ST",
        [0x55, 0x04, 0x0a] => "O",
        [0x55, 0x04, 0x0b] => "OU",
        [0x55, 0x04, 0x09] => "STREET",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01] => "UID",
        _ => return None,
    })
}

/// Java reads the content of every string type it names (`isDerString`)
/// as UTF-8, whatever the type says; other types are written in hex.
fn string_value(tag: u8, content: &[u8]) -> Option<String> {
    match tag {
        UTF8_STRING | PRINTABLE_STRING | TELETEX_STRING | IA5_STRING | GENERAL_STRING
        | BMP_STRING => Some(String::from_utf8_lossy(content).into_owned()),
        _ => None,
    }
}

/// RFC 2253 escaping as Java's `AVA.toRFC2253String`: `,=+<>#;"\` and
/// NUL escaped, then leading and trailing spaces (and carriage returns).
fn escape(value: &str) -> String {
    const ESCAPED: &str = ",=+<>#;\"\\";
    let mut first = String::with_capacity(value.len());
    for c in value.chars() {
        if ESCAPED.contains(c) {
            first.push('\\');
            first.push(c);
        } else if c == '\0' {
            first.push_str("\\00");
        } else {
            first.push(c);
        }
    }
    let chars: Vec<char> = first.chars().collect();
    let blank = |c: &&char| **c == ' ' || **c == '\r';
    let lead = chars.iter().take_while(blank).count();
    let trail = chars.iter().rev().take_while(blank).count();
    let mut out = String::with_capacity(first.len() + 2);
    for (i, c) in chars.iter().enumerate() {
        if i < lead || i + trail >= chars.len() {
            out.push('\\');
        }
        out.push(*c);
    }
    out
}

fn dotted(oid: &[u8]) -> String {
    let mut parts: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for (i, byte) in oid.iter().enumerate() {
        value = (value << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            if parts.is_empty() && i < oid.len() {
                let first = (value / 40).min(2);
                parts.push(first);
                parts.push(value - first * 40);
            } else {
                parts.push(value);
            }
            value = 0;
        }
    }
    parts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// One DER tag-length-value: the tag, the content, what follows.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;

    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");

    fn subject_of(file: &str) -> Option<String> {
        let der = CertificateDer::from_pem_file(format!("{FIXTURES}/{file}")).unwrap();
        subject_rfc2253(&der)
    }

    #[test]
    fn the_fixtures_subjects_as_java_names_them() {
        assert_eq!(subject_of("client.crt").as_deref(), Some("CN=test client"));
        assert_eq!(subject_of("server.crt").as_deref(), Some("CN=localhost"));
        // An X.509 v1 certificate has no version field.
        assert_eq!(subject_of("server-v1.pem").as_deref(), Some("CN=localhost"));
    }

    #[test]
    fn escapes_and_unnamed_attributes() {
        assert_eq!(escape("a,b"), "a\\,b");
        assert_eq!(escape(" lead and trail "), "\\ lead and trail\\ ");
        assert_eq!(escape("x=y+z#"), "x\\=y\\+z\\#");
        // emailAddress (1.2.840.113549.1.9.1) has no RFC 2253 keyword.
        let oid = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01];
        assert_eq!(dotted(&oid), "1.2.840.113549.1.9.1");
        let ava = [&[OID, 9][..], &oid, &[IA5_STRING, 3, b'a', b'@', b'b']].concat();
        assert_eq!(
            attribute(&ava).as_deref(),
            Some("1.2.840.113549.1.9.1=#1603614062")
        );
    }

    proptest::proptest! {
        /// Any bytes, and any one-byte change to a real certificate, are
        /// read or refused without a panic.
        #[test]
        fn any_bytes_are_read_or_refused(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
                                         at in 0usize..2048, to in proptest::num::u8::ANY) {
            let _ = subject_rfc2253(&bytes);
            let der = CertificateDer::from_pem_file(format!("{FIXTURES}/client.crt")).unwrap();
            let mut changed = der.to_vec();
            let at = at % changed.len();
            changed[at] = to;
            let _ = subject_rfc2253(&changed);
        }
    }

    #[test]
    fn garbage_is_no_subject() {
        for bytes in [
            &[][..],
            &[0x30],
            &[0x30, 0x85, 1, 2, 3, 4, 5],
            &[0x30, 0x02, 0x30, 0x00],
        ] {
            assert_eq!(subject_rfc2253(bytes), None);
        }
    }
}
