//! ACL checks, ACL validation and the built-in authentication schemes, as
//! ZooKeeper does them (`ZooKeeperServer.checkACL`,
//! `PrepRequestProcessor.fixupACL`, `DigestAuthenticationProvider`,
//! `IPAuthenticationProvider`).

use base64::Engine as _;
use proto::{Acl, ErrorCode, Id};
use sha1::{Digest as _, Sha1};

/// The optional schemes a server has providers for (ZooKeeper's
/// `authProvider.N`); `digest` and `ip` are always there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Providers {
    /// `SASLAuthenticationProvider`: `sasl:<user>` ACL entries, matched by
    /// the identity a SASL login gives a connection.
    pub sasl: bool,
    /// `X509AuthenticationProvider`: `x509:<subject DN>` entries, matched
    /// by the identity a TLS client certificate gives a connection.
    pub x509: bool,
}

/// The schemes this server has providers for. `world` and `auth` are
/// handled specially; `super` is an identity, never a valid ACL scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Digest,
    Ip,
    Sasl,
    X509,
}

impl Scheme {
    /// The scheme, if a provider for it is configured.
    pub fn parse(scheme: &str, providers: Providers) -> Option<Scheme> {
        match scheme {
            "digest" => Some(Scheme::Digest),
            "ip" => Some(Scheme::Ip),
            "sasl" if providers.sasl => Some(Scheme::Sasl),
            "x509" if providers.x509 => Some(Scheme::X509),
            _ => None,
        }
    }

    /// Whether an id of this scheme counts as "authenticated" when an `auth`
    /// ACL entry is expanded (`isAuthenticated`): digest, sasl and x509
    /// yes, ip no.
    fn is_authenticated(self) -> bool {
        matches!(self, Scheme::Digest | Scheme::Sasl | Scheme::X509)
    }

    /// `isValid`: is `id` well formed for this scheme?
    fn is_valid(self, id: &str) -> bool {
        match self {
            Scheme::Digest => java_split(id, ':').len() == 2,
            Scheme::Ip => parse_ip_acl(id).is_some(),
            Scheme::Sasl => is_kerberos_name(id),
            Scheme::X509 => is_distinguished_name(id),
        }
    }

    /// `matches`: does the caller's id satisfy the ACL's id?
    fn matches(self, caller_id: &str, acl_id: &str) -> bool {
        match self {
            Scheme::Digest | Scheme::Sasl | Scheme::X509 => caller_id == acl_id,
            Scheme::Ip => ip_matches(caller_id, acl_id),
        }
    }
}

/// `X509AuthenticationProvider.isValid` (Java's `X500Principal` parse),
/// as far as its grammar goes: `type=value` parts, separated by unescaped
/// `,`, `+` or `;`, each type a keyword or a dotted OID.
fn is_distinguished_name(id: &str) -> bool {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = id.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                current.push(c);
                match chars.next() {
                    Some(escaped) => current.push(escaped),
                    None => return false,
                }
            }
            ',' | '+' | ';' => parts.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    parts.push(current);
    parts.iter().all(|part| {
        let Some((kind, _)) = part.split_once('=') else {
            return false;
        };
        let kind = kind.trim();
        !kind.is_empty()
            && kind
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    })
}

/// `SASLAuthenticationProvider.isValid`: ZooKeeper's `KerberosName` takes
/// a name without `@`, or one of the form `service[/host]@REALM` (no
/// further `/` or `@`).
fn is_kerberos_name(id: &str) -> bool {
    let Some((principal, realm)) = id.split_once('@') else {
        return true;
    };
    let parts: Vec<&str> = principal.split('/').collect();
    !realm.contains(['@', '/']) && parts.len() <= 2
}

/// Java's `String.split(regex)` for a single literal character: trailing
/// empty strings are dropped, leading ones kept.
fn java_split(s: &str, sep: char) -> Vec<&str> {
    let mut parts: Vec<&str> = s.split(sep).collect();
    while parts.len() > 1 && parts.last() == Some(&"") {
        parts.pop();
    }
    if parts.len() == 1 && parts[0].is_empty() {
        // "".split(":") is [""] in Java too.
        return parts;
    }
    parts
}

/// `IPAuthenticationProvider` understands IPv4 only: four decimal parts.
fn ipv4_bytes(addr: &str) -> Option<[u8; 4]> {
    let parts: Vec<&str> = addr.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut out = [0u8; 4];
    for (slot, part) in out.iter_mut().zip(parts) {
        let value: i64 = parse_java_int(part)?;
        *slot = u8::try_from(value).ok()?;
    }
    Some(out)
}

/// `Integer.parseInt`: optional sign, decimal digits, fits in an int.
fn parse_java_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: i64 = s.parse().ok()?;
    i32::try_from(value).ok().map(i64::from)
}

/// An `ip` ACL id: `a.b.c.d` or `a.b.c.d/bits`.
fn parse_ip_acl(acl_id: &str) -> Option<([u8; 4], u32)> {
    let (addr, bits) = match acl_id.split_once('/') {
        Some((addr, bits)) => (addr, Some(bits)),
        None => (acl_id, None),
    };
    let bytes = ipv4_bytes(addr)?;
    let bits = match bits {
        None => 32,
        Some(b) => u32::try_from(parse_java_int(b)?)
            .ok()
            .filter(|b| *b <= 32)?,
    };
    Some((bytes, bits))
}

fn mask(bytes: [u8; 4], bits: u32) -> u32 {
    let value = u32::from_be_bytes(bytes);
    if bits == 0 {
        0
    } else {
        value & (u32::MAX << (32 - bits))
    }
}

fn ip_matches(caller: &str, acl_id: &str) -> bool {
    let Some((acl_addr, bits)) = parse_ip_acl(acl_id) else {
        return false;
    };
    let Some(caller_addr) = ipv4_bytes(caller) else {
        return false;
    };
    mask(acl_addr, bits) == mask(caller_addr, bits)
}

/// `DigestAuthenticationProvider.generateDigest`: `user:BASE64(SHA1(user:password))`.
pub fn digest(user_password: &str) -> String {
    let user = user_password
        .split_once(':')
        .map_or(user_password, |(user, _)| user);
    let hash = Sha1::digest(user_password.as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// What an auth packet adds to a connection's identities, or AuthFailed for
/// a scheme without a provider (the connection is then closed).
pub fn authenticate(
    scheme: &str,
    auth: &[u8],
    remote_ip: &str,
    super_digest: Option<&str>,
) -> Result<Vec<Id>, ErrorCode> {
    // SASL and x509 identities come from a SASL login and a TLS
    // certificate, never from an auth packet.
    match Scheme::parse(scheme, Providers::default()) {
        Some(Scheme::Digest) => {
            // Java decodes with the platform charset (UTF-8 here).
            let id = digest(&String::from_utf8_lossy(auth));
            let mut ids = Vec::with_capacity(2);
            if super_digest == Some(id.as_str()) {
                ids.push(Id::new("super", ""));
            }
            ids.push(Id::new("digest", id));
            Ok(ids)
        }
        Some(Scheme::Ip) => Ok(vec![Id::new("ip", remote_ip)]),
        Some(Scheme::Sasl | Scheme::X509) | None => Err(ErrorCode::AuthFailed),
    }
}

/// `checkACL`: may a caller holding `ids` perform an operation needing
/// `perm` on a node with `acl`?
pub fn check(
    acl: &[Acl],
    perm: i32,
    ids: &[Id],
    skip_acl: bool,
    providers: Providers,
) -> Result<(), ErrorCode> {
    if skip_acl || acl.is_empty() || ids.iter().any(|id| id.scheme == "super") {
        return Ok(());
    }
    for entry in acl {
        if entry.perms & perm == 0 {
            continue;
        }
        if entry.id.scheme == "world" && entry.id.id == "anyone" {
            return Ok(());
        }
        if let Some(scheme) = Scheme::parse(&entry.id.scheme, providers) {
            let matched = ids.iter().any(|caller| {
                caller.scheme == entry.id.scheme && scheme.matches(&caller.id, &entry.id.id)
            });
            if matched {
                return Ok(());
            }
        }
    }
    Err(ErrorCode::NoAuth)
}

/// `fixupACL`: validates an ACL list for create/setACL, removes duplicates
/// and expands `auth` entries into the caller's authenticated ids.
pub fn fixup(acl: &[Acl], ids: &[Id], providers: Providers) -> Result<Vec<Acl>, ErrorCode> {
    let mut unique: Vec<&Acl> = Vec::with_capacity(acl.len());
    for entry in acl {
        if !unique.contains(&entry) {
            unique.push(entry);
        }
    }
    if unique.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out = Vec::with_capacity(unique.len());
    for entry in unique {
        if entry.id.scheme == "world" && entry.id.id == "anyone" {
            out.push(entry.clone());
        } else if entry.id.scheme == "auth" {
            let mut any = false;
            for caller in ids {
                if Scheme::parse(&caller.scheme, providers).is_some_and(Scheme::is_authenticated) {
                    any = true;
                    out.push(Acl {
                        perms: entry.perms,
                        id: caller.clone(),
                    });
                }
            }
            if !any {
                return Err(ErrorCode::InvalidAcl);
            }
        } else {
            match Scheme::parse(&entry.id.scheme, providers) {
                Some(scheme) if scheme.is_valid(&entry.id.id) => out.push(entry.clone()),
                _ => return Err(ErrorCode::InvalidAcl),
            }
        }
    }
    Ok(out)
}

/// getACL without ADMIN: digest ids are shown as `user:x`
/// (`id.replaceAll(":.*", ":x")`).
pub fn redact(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|entry| {
            if entry.id.scheme == "digest" {
                let id = match entry.id.id.split_once(':') {
                    Some((user, _)) => format!("{user}:x"),
                    None => entry.id.id.clone(),
                };
                Acl {
                    perms: entry.perms,
                    id: Id::new("digest", id),
                }
            } else {
                entry.clone()
            }
        })
        .collect()
}

/// whoAmI's user name for an id (`getUserName`): digest shows the user part.
pub fn user_name(id: &Id) -> String {
    match id.scheme.as_str() {
        "digest" => java_split(&id.id, ':')
            .first()
            .map_or_else(String::new, |u| (*u).to_owned()),
        _ => id.id.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::perms;

    #[test]
    fn digest_matches_zookeeper() {
        // `DigestAuthenticationProvider.generateDigest("super:test")`, the
        // value kazoo's test harness configures as superDigest.
        assert_eq!(digest("super:test"), "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
        // The user is the text before the first colon only.
        assert!(digest("a:b:c").starts_with("a:"));
    }

    #[test]
    fn ip_acls() {
        assert!(ip_matches("127.0.0.1", "127.0.0.1"));
        assert!(ip_matches("10.1.2.3", "10.0.0.0/8"));
        assert!(!ip_matches("11.1.2.3", "10.0.0.0/8"));
        assert!(ip_matches("11.1.2.3", "10.0.0.0/0"));
        assert!(!ip_matches("::1", "127.0.0.1"));
        assert!(Scheme::Ip.is_valid("1.2.3.4/32"));
        assert!(!Scheme::Ip.is_valid("1.2.3.4/33"));
        assert!(!Scheme::Ip.is_valid("1.2.3"));
        assert!(!Scheme::Ip.is_valid("::1"));
    }

    #[test]
    fn digest_id_validity_follows_java_split() {
        assert!(Scheme::Digest.is_valid("user:hash"));
        assert!(Scheme::Digest.is_valid("user:hash:"));
        assert!(Scheme::Digest.is_valid(":hash"));
        assert!(!Scheme::Digest.is_valid("user"));
        assert!(!Scheme::Digest.is_valid("a::b"));
        assert!(!Scheme::Digest.is_valid("user:"));
    }

    const NONE: Providers = Providers {
        sasl: false,
        x509: false,
    };

    #[test]
    fn check_table() {
        let open = Acl::open_unsafe();
        let digest_acl = vec![Acl::new(perms::READ, "digest", "u:h")];
        let me = [Id::new("ip", "127.0.0.1"), Id::new("digest", "u:h")];
        let anon = [Id::new("ip", "127.0.0.1")];
        let superuser = [Id::new("super", "")];
        assert_eq!(check(&open, perms::ADMIN, &anon, false, NONE), Ok(()));
        assert_eq!(check(&digest_acl, perms::READ, &me, false, NONE), Ok(()));
        assert_eq!(
            check(&digest_acl, perms::WRITE, &me, false, NONE),
            Err(ErrorCode::NoAuth)
        );
        assert_eq!(
            check(&digest_acl, perms::READ, &anon, false, NONE),
            Err(ErrorCode::NoAuth)
        );
        assert_eq!(
            check(&digest_acl, perms::WRITE, &superuser, false, NONE),
            Ok(())
        );
        assert_eq!(check(&digest_acl, perms::WRITE, &anon, true, NONE), Ok(()));
        assert_eq!(check(&[], perms::WRITE, &anon, false, NONE), Ok(()));
    }

    #[test]
    fn fixup_table() {
        let me = [Id::new("ip", "127.0.0.1"), Id::new("digest", "u:h")];
        let anon = [Id::new("ip", "127.0.0.1")];
        assert_eq!(fixup(&[], &me, NONE), Err(ErrorCode::InvalidAcl));
        assert_eq!(
            fixup(
                &[Acl::new(31, "auth", ""), Acl::new(31, "auth", "")],
                &me,
                NONE
            ),
            Ok(vec![Acl::new(31, "digest", "u:h")])
        );
        assert_eq!(
            fixup(&[Acl::new(31, "auth", "")], &anon, NONE),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup(&[Acl::new(31, "world", "someone")], &anon, NONE),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup(&[Acl::new(31, "super", "")], &anon, NONE),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup(&[Acl::new(31, "sasl", "x")], &anon, NONE),
            Err(ErrorCode::InvalidAcl)
        );
        assert!(fixup(&[Acl::new(31, "ip", "10.0.0.0/8")], &anon, NONE).is_ok());
    }

    #[test]
    fn x509_acls_with_the_x509_provider() {
        let x509 = Providers {
            sasl: false,
            x509: true,
        };
        let me = [Id::new("x509", "CN=test client,O=Org")];
        let acl = [Acl::new(perms::ALL, "x509", "CN=test client,O=Org")];
        assert_eq!(fixup(&acl, &me, x509), Ok(acl.to_vec()));
        assert_eq!(check(&acl, perms::READ, &me, false, x509), Ok(()));
        assert_eq!(
            check(
                &acl,
                perms::READ,
                &[Id::new("x509", "CN=other")],
                false,
                x509
            ),
            Err(ErrorCode::NoAuth)
        );
        assert_eq!(fixup(&acl, &me, NONE), Err(ErrorCode::InvalidAcl));
        for (id, valid) in [
            ("CN=a", true),
            ("CN=a\\,b,O=c+OU=d", true),
            ("1.2.840.113549.1.9.1=#1603614062", true),
            ("no equals", false),
            ("CN=a,", false),
            ("=a", false),
        ] {
            assert_eq!(Scheme::X509.is_valid(id), valid, "{id}");
        }
    }

    #[test]
    fn sasl_acls_with_the_sasl_provider() {
        let sasl = Providers {
            sasl: true,
            x509: false,
        };
        let bob = [Id::new("ip", "127.0.0.1"), Id::new("sasl", "bob")];
        let acl = [Acl::new(perms::ALL, "sasl", "bob")];
        assert_eq!(fixup(&acl, &bob, sasl), Ok(acl.to_vec()));
        assert_eq!(
            fixup(&[Acl::new(31, "auth", "")], &bob, sasl),
            Ok(vec![Acl::new(31, "sasl", "bob")])
        );
        assert_eq!(check(&acl, perms::READ, &bob, false, sasl), Ok(()));
        let alice = [Id::new("sasl", "alice")];
        assert_eq!(
            check(&acl, perms::READ, &alice, false, sasl),
            Err(ErrorCode::NoAuth)
        );
        // Without the provider, no sasl entry is valid or ever matches.
        assert_eq!(fixup(&acl, &bob, NONE), Err(ErrorCode::InvalidAcl));
        assert_eq!(
            check(&acl, perms::READ, &bob, false, NONE),
            Err(ErrorCode::NoAuth)
        );
        // ZooKeeper's KerberosName rules.
        for (id, valid) in [
            ("bob", true),
            ("zookeeper/host@REALM", true),
            ("bob@REALM", true),
            ("a/b/c@REALM", false),
            ("a@b@c", false),
        ] {
            assert_eq!(Scheme::Sasl.is_valid(id), valid, "{id}");
        }
        // An auth packet never gives a sasl identity.
        assert_eq!(
            authenticate("sasl", b"bob", "127.0.0.1", None),
            Err(ErrorCode::AuthFailed)
        );
    }

    #[test]
    fn redaction() {
        let acl = vec![
            Acl::new(1, "digest", "user:secret"),
            Acl::new(1, "world", "anyone"),
        ];
        assert_eq!(redact(&acl)[0].id.id, "user:x");
        assert_eq!(redact(&acl)[1].id.id, "anyone");
    }
}
