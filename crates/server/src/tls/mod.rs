//! TLS: ZooKeeper's key and trust stores read into rustls
//! configurations, for the secure client port (`secureClientPort`, the
//! `ssl.*` keys) and for connections between servers (`sslQuorum`, the
//! `ssl.quorum.*` keys; `quorum.rs`).

mod jks;
mod quorum;
mod reload;
mod settings;
mod subject;

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::sign::{CertifiedKey, SingleCertAndKey};
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};

pub use jks::JksError;
pub use quorum::{PeerCertificate, QuorumTls};
pub use reload::{Reload, Reloadable};
pub use settings::{ClientAuth, SslScope, SslSettings, StoreSettings, StoreType, TlsVersion};
pub use subject::subject_rfc2253;

use crate::config::ConfigError;

/// A connection that is plain or TLS, as a port that takes both hands on.
pub trait AnyStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> AnyStream for T {}
pub type BoxedStream = Box<dyn AnyStream>;

/// Whether what `stream` received first opens a TLS handshake (a record of
/// type 22), for a port that takes plain and TLS connections alike
/// (`portUnification`): ZooKeeper's and HTTP's first bytes never start so.
/// Waits for the first byte; nothing is consumed.
pub async fn starts_tls(stream: &tokio::net::TcpStream) -> std::io::Result<bool> {
    const HANDSHAKE_RECORD: u8 = 0x16;
    let mut first = [0u8; 1];
    let peeked = stream.peek(&mut first).await?;
    Ok(peeked == 1 && first[0] == HANDSHAKE_RECORD)
}

/// Why the secure client port could not be set up; every variant names
/// the key or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0} is not set")]
    NoKeyStore(String),
    #[error("{key} is a {kind} store, which Conclave cannot read: use PEM or JKS")]
    Unsupported { key: String, kind: &'static str },
    #[error("{path}: {reason}")]
    Store { path: String, reason: String },
    #[error(
        "{0} needs a trust store location (the certificates that sign the other side's \
         certificates)"
    )]
    NoTrustStore(String),
    #[error("{key}: none of the named cipher suites is implemented by rustls: {names}")]
    NoCipherSuite { key: String, names: String },
    #[error("the TLS configuration was refused: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("{path}: the certificate and key cannot be used: {source}")]
    Identity {
        path: String,
        #[source]
        source: rustls::Error,
    },
    #[error("the certificate verifier was refused: {0}")]
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
    let provider = provider(settings)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions(settings))?;
    let identity = load_identity(settings)?;
    let builder = match settings.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        auth => {
            let roots = load_roots(settings, auth)?;
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

/// [`acceptor`], built again when its store files change.
pub fn reloading_acceptor(settings: &SslSettings) -> Result<Reloadable<TlsAcceptor>, TlsError> {
    let owned = settings.clone();
    Reloadable::new(
        "the secure client port",
        reload::store_files(settings),
        move || acceptor(&owned),
    )
}

/// rustls's ring provider with only the cipher suites `*.ciphersuites`
/// names (all of them when it is not set). Java's names are IANA's; rustls
/// calls its TLS 1.3 suites `TLS13_*`. Names rustls does not implement
/// (CBC suites, say) are left out with a warning, as long as one named
/// suite remains: the list only ever narrows what is offered.
fn provider(settings: &SslSettings) -> Result<Arc<rustls::crypto::CryptoProvider>, TlsError> {
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(names) = &settings.cipher_suites {
        let implemented = |name: &str| {
            provider.cipher_suites.iter().copied().find(|suite| {
                let rustls_name = format!("{:?}", suite.suite());
                rustls_name == name || rustls_name.replacen("TLS13_", "TLS_", 1) == name
            })
        };
        let mut chosen = Vec::new();
        for name in names {
            match implemented(name) {
                Some(suite) => chosen.push(suite),
                None => tracing::warn!(
                    key = %settings.key("ciphersuites"),
                    suite = %name,
                    "a cipher suite rustls does not implement is left out"
                ),
            }
        }
        if chosen.is_empty() {
            return Err(TlsError::NoCipherSuite {
                key: settings.key("ciphersuites"),
                names: names.join(","),
            });
        }
        provider.cipher_suites = chosen;
    }
    Ok(Arc::new(provider))
}

/// The protocol versions `*.enabledProtocols` allows.
fn versions(settings: &SslSettings) -> &'static [&'static rustls::SupportedProtocolVersion] {
    const BOTH: &[&rustls::SupportedProtocolVersion] =
        &[&rustls::version::TLS13, &rustls::version::TLS12];
    const TLS12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
    const TLS13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
    match settings.versions.as_deref() {
        Some([TlsVersion::Tls12]) => TLS12,
        Some([TlsVersion::Tls13]) => TLS13,
        _ => BOTH,
    }
}

fn load_identity(settings: &SslSettings) -> Result<Identity, TlsError> {
    let key = settings.key("keyStore");
    let store = &settings.key_store;
    let path = store
        .location
        .as_deref()
        .ok_or_else(|| TlsError::NoKeyStore(format!("{key}.location")))?;
    let bytes = read(path)?;
    match store.resolved_type(&key)? {
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
        StoreType::Pkcs12 => unsupported(&key, "PKCS12"),
        StoreType::Bcfks => unsupported(&key, "BCFKS"),
    }
}

fn load_roots(settings: &SslSettings, auth: ClientAuth) -> Result<RootCertStore, TlsError> {
    let key = settings.key("trustStore");
    let store = &settings.trust_store;
    let Some(path) = store.location.as_deref() else {
        let what = match (settings.scope, auth) {
            (SslScope::Quorum, _) => "sslQuorum=true (or admin.needClientAuth=true)".to_owned(),
            (SslScope::Client, ClientAuth::Want) => "ssl.clientAuth=want".to_owned(),
            (SslScope::Client, _) => "ssl.clientAuth=need (the default; or set none)".to_owned(),
        };
        return Err(TlsError::NoTrustStore(what));
    };
    let bytes = read(path)?;
    let certificates = match store.resolved_type(&key)? {
        StoreType::Pem => pem_certificates(&bytes, path)?,
        StoreType::Jks => {
            let password = store.resolved_password()?;
            jks::parse(&bytes, password.as_deref())
                .map_err(|e| jks_error(path, e))?
                .trusted
        }
        StoreType::Pkcs12 => return unsupported(&key, "PKCS12"),
        StoreType::Bcfks => return unsupported(&key, "BCFKS"),
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
        assert!(matches!(acceptor(&s), Err(TlsError::NoTrustStore(_))));
        s.client_auth = ClientAuth::None;
        assert!(acceptor(&s).is_ok());
    }
}
