//! The `ssl.*` keys of zoo.cfg that the secure client port uses, as
//! ZooKeeper's `X509Util` reads them.

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

/// Everything the secure client port is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SslSettings {
    pub key_store: StoreSettings,
    pub trust_store: StoreSettings,
    pub client_auth: ClientAuth,
    /// `ssl.handshakeDetectionTimeoutMillis`: a client that has not
    /// finished its handshake by then is disconnected.
    pub handshake_timeout: Duration,
}

impl Default for SslSettings {
    fn default() -> Self {
        SslSettings {
            key_store: StoreSettings::default(),
            trust_store: StoreSettings::default(),
            client_auth: ClientAuth::default(),
            handshake_timeout: Duration::from_secs(5),
        }
    }
}

impl SslSettings {
    /// Takes one `ssl.*` key (without a `zookeeper.` prefix); false when
    /// the key is not one Conclave uses (the caller then warns about it).
    pub fn set(&mut self, key: &str, value: &str) -> Result<bool, ConfigError> {
        let (store, field) = if let Some(field) = key.strip_prefix("ssl.keyStore.") {
            (&mut self.key_store, field)
        } else if let Some(field) = key.strip_prefix("ssl.trustStore.") {
            (&mut self.trust_store, field)
        } else {
            return match key {
                "ssl.clientAuth" => {
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
                "ssl.handshakeDetectionTimeoutMillis" => {
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
            "password" => store.password = Some(value.to_owned()),
            "passwordPath" => store.password_path = Some(PathBuf::from(value)),
            "type" => store.store_type = Some(StoreType::parse(key, value)?),
            _ => return Ok(false),
        }
        Ok(true)
    }
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
        assert!(!s.set("ssl.protocol", "TLSv1.3").unwrap());
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
        s.set("ssl.keyStore.location", "/tls/server.bin").unwrap();
        let err = s.key_store.resolved_type("ssl.keyStore").unwrap_err();
        assert!(err.to_string().contains("ssl.keyStore.type"), "{err}");
    }
}
