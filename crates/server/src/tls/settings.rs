//! The `ssl.*` keys of zoo.cfg (the secure client port) and the
//! `ssl.quorum.*` keys (peer TLS), as ZooKeeper's `X509Util` and
//! `QuorumX509Util` read them. A key that would make TLS stricter than
//! Conclave can make it (revocation checks, a custom SSL context, TLS
//! versions rustls does not speak) is refused, never ignored: a security
//! setting that cannot be honoured stops the server.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::ConfigError;

/// A key store's file format. ZooKeeper takes it from `ssl.*Store.type`,
/// or else from the file name's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreType {
    /// Private key and certificates (key store) or certificates (trust
    /// store) in PEM blocks.
    Pem,
    /// A Java KeyStore (`keytool -storetype JKS`).
    Jks,
    /// Recognised so that the error names it: not readable by Conclave.
    Pkcs12,
    /// Recognised so that the error names it: not readable by Conclave.
    Bcfks,
}

impl StoreType {
    fn parse(key: &str, value: &str) -> Result<StoreType, ConfigError> {
        match value.to_ascii_uppercase().as_str() {
            "PEM" => Ok(StoreType::Pem),
            "JKS" => Ok(StoreType::Jks),
            "PKCS12" => Ok(StoreType::Pkcs12),
            "BCFKS" => Ok(StoreType::Bcfks),
            _ => Err(ConfigError::BadValue {
                key: key.to_owned(),
                value: value.to_owned(),
                reason: "expected PEM, JKS, PKCS12 or BCFKS".to_owned(),
            }),
        }
    }

    /// ZooKeeper's `KeyStoreFileType.fromFilename`.
    fn from_file_name(path: &Path) -> Option<StoreType> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "pem" => Some(StoreType::Pem),
            "jks" => Some(StoreType::Jks),
            "p12" | "pfx" => Some(StoreType::Pkcs12),
            "bcfks" => Some(StoreType::Bcfks),
            _ => None,
        }
    }
}

/// One key or trust store: `ssl.keyStore.*` or `ssl.trustStore.*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreSettings {
    pub location: Option<PathBuf>,
    pub password: Option<String>,
    /// `*.passwordPath`: a file whose content is the password.
    pub password_path: Option<PathBuf>,
    pub store_type: Option<StoreType>,
}

impl StoreSettings {
    /// The format: the `type` key, else the file name's extension.
    pub fn resolved_type(&self, prefix: &str) -> Result<StoreType, ConfigError> {
        if let Some(t) = self.store_type {
            return Ok(t);
        }
        let location = self.location.as_deref().unwrap_or(Path::new(""));
        StoreType::from_file_name(location).ok_or_else(|| ConfigError::BadValue {
            key: format!("{prefix}.location"),
            value: location.display().to_string(),
            reason: format!(
                "cannot tell the store's format from the file name; set {prefix}.type \
                 (PEM or JKS)"
            ),
        })
    }

    /// The password: `password`, else the content of `passwordPath`
    /// (trailing newline removed), else none.
    pub fn resolved_password(&self) -> Result<Option<String>, ConfigError> {
        if let Some(p) = &self.password {
            return Ok(Some(p.clone()));
        }
        let Some(path) = &self.password_path else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        Ok(Some(text.trim_end_matches(['\r', '\n']).to_owned()))
    }
}

/// `ssl.clientAuth`: whether clients must present a certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Want,
    /// ZooKeeper's default.
    #[default]
    Need,
}

/// A TLS protocol version (`*.protocol`, `*.enabledProtocols`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

/// Which TLS settings a [`SslSettings`] holds: the keys' prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslScope {
    /// `ssl.*`: the secure client port.
    Client,
    /// `ssl.quorum.*`: connections between servers (`sslQuorum`).
    Quorum,
}

impl SslScope {
    pub fn prefix(self) -> &'static str {
        match self {
            SslScope::Client => "ssl",
            SslScope::Quorum => "ssl.quorum",
        }
    }
}

/// Everything a TLS endpoint is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SslSettings {
    pub scope: SslScope,
    pub key_store: StoreSettings,
    pub trust_store: StoreSettings,
    pub client_auth: ClientAuth,
    /// `*.handshakeDetectionTimeoutMillis`: a client that has not
    /// finished its handshake by then is disconnected.
    pub handshake_timeout: Duration,
    /// `*.enabledProtocols` (or `*.protocol`): the versions allowed; none
    /// set means TLS 1.2 and 1.3.
    pub versions: Option<Vec<TlsVersion>>,
    /// `*.ciphersuites`: the suites allowed, by their IANA (and Java) names.
    pub cipher_suites: Option<Vec<String>>,
    /// `*.hostnameVerification` (default true): for peers, a member's
    /// certificate must name the host of its `server.N` line.
    pub hostname_verification: bool,
}

impl Default for SslSettings {
    fn default() -> Self {
        SslSettings::new(SslScope::Client)
    }
}

impl SslSettings {
    pub fn new(scope: SslScope) -> SslSettings {
        SslSettings {
            scope,
            key_store: StoreSettings::default(),
            trust_store: StoreSettings::default(),
            client_auth: ClientAuth::default(),
            handshake_timeout: Duration::from_secs(5),
            versions: None,
            cipher_suites: None,
            hostname_verification: true,
        }
    }

    /// The zoo.cfg key for `field` in this scope (`ssl.quorum.keyStore`).
    pub fn key(&self, field: &str) -> String {
        format!("{}.{field}", self.scope.prefix())
    }

    /// Takes one key of this scope (without a `zookeeper.` prefix); false
    /// when the key is not one of this scope's, or is one that changes
    /// nothing on a server (the caller then warns about it); an error for
    /// a value, or a key, that cannot be honoured.
    pub fn set(&mut self, key: &str, value: &str) -> Result<bool, ConfigError> {
        let Some(rest) = key
            .strip_prefix(self.scope.prefix())
            .and_then(|r| r.strip_prefix('.'))
        else {
            return Ok(false);
        };
        if self.scope == SslScope::Client && rest.starts_with("quorum.") {
            return Ok(false);
        }
        let bad = |reason: &str| ConfigError::BadValue {
            key: key.to_owned(),
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        let (store, field) = if let Some(field) = rest.strip_prefix("keyStore.") {
            (&mut self.key_store, field)
        } else if let Some(field) = rest.strip_prefix("trustStore.") {
            (&mut self.trust_store, field)
        } else {
            return match rest {
                "clientAuth" if self.scope == SslScope::Quorum => {
                    // Both ends of a peer connection prove who they are.
                    if value.eq_ignore_ascii_case("need") {
                        Ok(true)
                    } else {
                        Err(bad(
                            "servers always present certificates to each other: need",
                        ))
                    }
                }
                "protocol" | "enabledProtocols" => {
                    self.versions = Some(parse_versions(value).map_err(|r| bad(&r))?);
                    Ok(true)
                }
                "ciphersuites" => {
                    let names: Vec<String> = value
                        .split(',')
                        .map(str::trim)
                        .filter(|n| !n.is_empty())
                        .map(str::to_owned)
                        .collect();
                    if names.is_empty() {
                        return Err(bad("no cipher suite named"));
                    }
                    self.cipher_suites = Some(names);
                    Ok(true)
                }
                "hostnameVerification" => {
                    self.hostname_verification = match value.to_ascii_lowercase().as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(bad("expected true or false")),
                    };
                    Ok(true)
                }
                // Revocation checking is not implemented: asked for, it
                // would be a protection the operator believes in and does
                // not have.
                "crl" | "ocsp" => {
                    if value.eq_ignore_ascii_case("false") {
                        Ok(true)
                    } else {
                        Err(bad(
                            "Conclave does not check certificate revocation (CRL, OCSP); \
                             remove the key or set it to false",
                        ))
                    }
                }
                "context.supplier.class" => Err(bad(
                    "a Java SSL context cannot be loaded; configure the key and trust stores",
                )),
                "clientAuth" => {
                    self.client_auth = match value.to_ascii_lowercase().as_str() {
                        "none" => ClientAuth::None,
                        "want" => ClientAuth::Want,
                        "need" => ClientAuth::Need,
                        _ => {
                            return Err(ConfigError::BadValue {
                                key: key.to_owned(),
                                value: value.to_owned(),
                                reason: "expected none, want or need".to_owned(),
                            });
                        }
                    };
                    Ok(true)
                }
                "handshakeDetectionTimeoutMillis" => {
                    let ms: u64 = value.parse().map_err(|e| ConfigError::BadValue {
                        key: key.to_owned(),
                        value: value.to_owned(),
                        reason: format!("{e}"),
                    })?;
                    self.handshake_timeout = Duration::from_millis(ms.max(1));
                    Ok(true)
                }
                _ => Ok(false),
            };
        };
        match field {
            "location" => store.location = Some(PathBuf::from(value)),
            "algorithm" => {
                // The key and trust managers' algorithm (Java's SunX509,
                // PKIX): rustls checks certificates its one (PKIX) way.
                if !["PKIX", "SunX509"].contains(&value) {
                    return Err(bad("only PKIX (or SunX509) certificate checking is done"));
                }
            }
            "password" => store.password = Some(value.to_owned()),
            "passwordPath" => store.password_path = Some(PathBuf::from(value)),
            "type" => store.store_type = Some(StoreType::parse(key, value)?),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// `TLSv1.2,TLSv1.3` (or `TLS`, Java's "any"); versions older than 1.2
/// are refused: rustls does not speak them.
fn parse_versions(value: &str) -> Result<Vec<TlsVersion>, String> {
    let mut versions = Vec::new();
    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match name {
            "TLSv1.3" => versions.push(TlsVersion::Tls13),
            "TLSv1.2" => versions.push(TlsVersion::Tls12),
            "TLS" => versions.extend([TlsVersion::Tls12, TlsVersion::Tls13]),
            other => {
                return Err(format!("{other} is not spoken (TLSv1.2 and TLSv1.3 are)"));
            }
        }
    }
    versions.sort_unstable();
    versions.dedup();
    if versions.is_empty() {
        return Err("no protocol named".to_owned());
    }
    Ok(versions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_keys_zookeeper_reads() {
        let mut s = SslSettings::default();
        for (k, v) in [
            ("ssl.keyStore.location", "/tls/server.pem"),
            ("ssl.keyStore.password", "secret"),
            ("ssl.trustStore.location", "/tls/ca.jks"),
            ("ssl.trustStore.type", "jks"),
            ("ssl.clientAuth", "Want"),
            ("ssl.handshakeDetectionTimeoutMillis", "2500"),
        ] {
            assert!(s.set(k, v).unwrap(), "{k}");
        }
        assert!(s.set("ssl.protocol", "TLSv1.3").unwrap());
        assert_eq!(s.versions, Some(vec![TlsVersion::Tls13]));
        assert!(!s.set("ssl.sslProvider", "OPENSSL").unwrap());
        assert!(!s.set("ssl.quorum.keyStore.location", "/x").unwrap());
        assert_eq!(
            s.key_store.resolved_type("ssl.keyStore").unwrap(),
            StoreType::Pem
        );
        assert_eq!(
            s.trust_store.resolved_type("ssl.trustStore").unwrap(),
            StoreType::Jks
        );
        assert_eq!(s.client_auth, ClientAuth::Want);
        assert_eq!(s.handshake_timeout, Duration::from_millis(2500));
        assert_eq!(
            s.key_store.resolved_password().unwrap().as_deref(),
            Some("secret")
        );
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        let mut s = SslSettings::default();
        assert!(s.set("ssl.clientAuth", "sometimes").is_err());
        assert!(s.set("ssl.keyStore.type", "PKCS11").is_err());
        assert!(s.set("ssl.enabledProtocols", "TLSv1.1,TLSv1.2").is_err());
        assert!(s.set("ssl.crl", "true").is_err());
        assert!(s.set("ssl.ocsp", "true").is_err());
        assert!(s.set("ssl.ocsp", "false").unwrap());
        assert!(
            s.set("ssl.context.supplier.class", "com.example.Ctx")
                .is_err()
        );
        assert!(s.set("ssl.keyStore.algorithm", "NewSunX509").is_err());
        s.set("ssl.keyStore.location", "/tls/server.bin").unwrap();
        let err = s.key_store.resolved_type("ssl.keyStore").unwrap_err();
        assert!(err.to_string().contains("ssl.keyStore.type"), "{err}");
    }

    #[test]
    fn quorum_keys_have_their_own_prefix_and_always_need_certificates() {
        let mut q = SslSettings::new(SslScope::Quorum);
        assert!(!q.set("ssl.keyStore.location", "/tls/a.pem").unwrap());
        assert!(q.set("ssl.quorum.keyStore.location", "/tls/m.pem").unwrap());
        assert_eq!(
            q.key_store.location.as_deref(),
            Some(Path::new("/tls/m.pem"))
        );
        assert!(q.set("ssl.quorum.hostnameVerification", "false").unwrap());
        assert!(!q.hostname_verification);
        assert!(q.set("ssl.quorum.clientAuth", "NEED").unwrap());
        let err = q.set("ssl.quorum.clientAuth", "want").unwrap_err();
        assert!(err.to_string().contains("ssl.quorum.clientAuth"), "{err}");
        assert_eq!(q.key("trustStore"), "ssl.quorum.trustStore");
    }
}
