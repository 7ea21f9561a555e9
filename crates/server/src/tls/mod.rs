//! TLS for the secure client port (`secureClientPort`): ZooKeeper's
//! `ssl.*` key and trust stores, read into a rustls server configuration.
//! Only the client port speaks TLS; quorum traffic between servers does
//! not (`sslQuorum` is not supported).

mod jks;
mod settings;

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::sign::{CertifiedKey, SingleCertAndKey};
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};

pub use jks::JksError;
pub use settings::{ClientAuth, SslSettings, StoreSettings, StoreType};

use crate::config::ConfigError;

/// Why the secure client port could not be set up; every variant names
/// the key or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("secureClientPort is set but ssl.keyStore.location is not")]
    NoKeyStore,
    #[error("{key} is a {kind} store, which Conclave cannot read: use PEM or JKS")]
    Unsupported { key: String, kind: &'static str },
    #[error("{path}: {reason}")]
    Store { path: String, reason: String },
    #[error(
        "ssl.clientAuth={0} needs ssl.trustStore.location (the certificates that sign \
         clients' certificates); or set ssl.clientAuth=none"
    )]
    NoTrustStore(&'static str),
    #[error("the TLS configuration was refused: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("{path}: the certificate and key cannot be used: {source}")]
    Identity {
        path: String,
        #[source]
        source: rustls::Error,
    },
    #[error("the client certificate verifier was refused: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// A private key and the certificate chain it belongs to, and the key
/// store they came from (for errors).
#[derive(Debug)]
struct Identity {
    key: PrivateKeyDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    path: String,
}

/// Builds the acceptor for the secure client port from the `ssl.*` keys.
pub fn acceptor(settings: &SslSettings) -> Result<TlsAcceptor, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let identity = load_identity(&settings.key_store)?;
    let builder = match settings.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        auth => {
            let roots = load_roots(&settings.trust_store, auth)?;
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let verifier = if auth == ClientAuth::Want {
                verifier.allow_unauthenticated().build()?
            } else {
                verifier.build()?
            };
            builder.with_client_cert_verifier(verifier)
        }
    };
    let certified = certified_key(identity, &provider)?;
    let config = builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The server's certificate chain with its signing key. The chain is sent
/// as it is: a key that does not match the certificate is refused, but a
/// certificate webpki cannot read (X.509 v1, which Java and ZooKeeper
/// accept, and kazoo's test harness makes) is served with a warning
/// rather than refused; clients judge it.
fn certified_key(
    identity: Identity,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let path = identity.path;
    let refused = |source| TlsError::Identity {
        path: path.clone(),
        source,
    };
    let signing_key = provider
        .key_provider
        .load_private_key(identity.key)
        .map_err(refused)?;
    let certified = CertifiedKey::new(identity.chain, signing_key);
    match certified.keys_match() {
        Ok(()) => {}
        Err(e @ rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(refused(e));
        }
        Err(e) => tracing::warn!(
            %path,
            error = %e,
            "cannot check the key store's certificate against its key (not X.509 v3?); serving it as it is"
        ),
    }
    Ok(certified)
}

fn load_identity(store: &StoreSettings) -> Result<Identity, TlsError> {
    const KEY: &str = "ssl.keyStore";
    let path = store.location.as_deref().ok_or(TlsError::NoKeyStore)?;
    let bytes = read(path)?;
    match store.resolved_type(KEY)? {
        StoreType::Pem => {
            let bad = |reason: String| TlsError::Store {
                path: path.display().to_string(),
                reason,
            };
            let chain = pem_certificates(&bytes, path)?;
            if chain.is_empty() {
                return Err(bad("no CERTIFICATE block".to_owned()));
            }
            let key = PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
                bad(format!(
                    "no unencrypted private key ({e}); encrypted PEM keys are not supported"
                ))
            })?;
            Ok(Identity {
                key,
                chain,
                path: path.display().to_string(),
            })
        }
        StoreType::Jks => {
            let password = store.resolved_password()?;
            let parsed = jks::parse(&bytes, password.as_deref()).map_err(|e| jks_error(path, e))?;
            let several = parsed.private_keys.len() > 1;
            let entry = parsed
                .private_keys
                .into_iter()
                .next()
                .ok_or_else(|| TlsError::Store {
                    path: path.display().to_string(),
                    reason: "no private key entry".to_owned(),
                })?;
            // ZooKeeper's key manager offers the first key that fits; a
            // store made for one server holds one.
            if several {
                tracing::warn!(path = %path.display(), alias = %entry.alias, "the key store holds several keys; using the first");
            }
            Ok(Identity {
                key: PrivateKeyDer::Pkcs8(entry.key),
                chain: entry.chain,
                path: path.display().to_string(),
            })
        }
        StoreType::Pkcs12 => unsupported(KEY, "PKCS12"),
        StoreType::Bcfks => unsupported(KEY, "BCFKS"),
    }
}

fn load_roots(store: &StoreSettings, auth: ClientAuth) -> Result<RootCertStore, TlsError> {
    const KEY: &str = "ssl.trustStore";
    let Some(path) = store.location.as_deref() else {
        let name = if auth == ClientAuth::Want {
            "want"
        } else {
            "need"
        };
        return Err(TlsError::NoTrustStore(name));
    };
    let bytes = read(path)?;
    let certificates = match store.resolved_type(KEY)? {
        StoreType::Pem => pem_certificates(&bytes, path)?,
        StoreType::Jks => {
            let password = store.resolved_password()?;
            jks::parse(&bytes, password.as_deref())
                .map_err(|e| jks_error(path, e))?
                .trusted
        }
        StoreType::Pkcs12 => return unsupported(KEY, "PKCS12"),
        StoreType::Bcfks => return unsupported(KEY, "BCFKS"),
    };
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(certificates);
    if ignored > 0 {
        tracing::warn!(path = %path.display(), ignored, "trust store certificates that could not be parsed");
    }
    if added == 0 {
        return Err(TlsError::Store {
            path: path.display().to_string(),
            reason: "no usable trusted certificate".to_owned(),
        });
    }
    Ok(roots)
}

fn pem_certificates(bytes: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Store {
            path: path.display().to_string(),
            reason: format!("bad PEM: {e}"),
        })
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Store {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

fn jks_error(path: &Path, error: JksError) -> TlsError {
    TlsError::Store {
        path: path.display().to_string(),
        reason: error.to_string(),
    }
}

fn unsupported<T>(key: &str, kind: &'static str) -> Result<T, TlsError> {
    Err(TlsError::Unsupported {
        key: format!("{key}.location"),
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");

    fn settings(key_store: &str) -> SslSettings {
        let mut s = SslSettings::default();
        for (k, v) in [
            ("ssl.keyStore.location", format!("{FIXTURES}/{key_store}")),
            ("ssl.trustStore.location", format!("{FIXTURES}/ca.pem")),
        ] {
            assert!(s.set(k, &v).unwrap());
        }
        s
    }

    #[test]
    fn a_v1_server_certificate_is_served_as_it_is() {
        // Java takes X.509 v1 certificates (kazoo's harness makes them);
        // webpki cannot read them, which must not stop the server.
        assert!(acceptor(&settings("server-v1.pem")).is_ok());
        assert!(acceptor(&settings("server.pem")).is_ok());
    }

    #[test]
    fn a_key_that_is_not_the_certificates_is_refused() {
        let Err(err) = acceptor(&settings("mismatched.pem")) else {
            panic!("a key store whose key is not the certificate's was taken");
        };
        assert!(err.to_string().contains("mismatched.pem"), "{err}");
        assert!(matches!(err, TlsError::Identity { .. }), "{err:?}");
    }

    #[test]
    fn client_authentication_needs_a_trust_store() {
        let mut s = settings("server.pem");
        s.trust_store = StoreSettings::default();
        assert!(matches!(acceptor(&s), Err(TlsError::NoTrustStore("need"))));
        s.client_auth = ClientAuth::None;
        assert!(acceptor(&s).is_ok());
    }
}
