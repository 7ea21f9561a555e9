//! TLS between servers (`sslQuorum=true`, the `ssl.quorum.*` keys):
//! mutual TLS on every peer connection. Both ends present a certificate
//! signed by the quorum trust store; the side that connects checks that
//! the other's names the host of the `server.N` line it dialled, and the
//! side that accepts checks, once the connection's `Hello` says which
//! server it is, that its certificate names that server's host
//! (`crate::peers`). A member's certificate therefore cannot speak for
//! another member, and a process without a certificate from the trusted
//! CA never gets a byte read past the TLS handshake.
//!
//! `ssl.quorum.hostnameVerification=false` (as ZooKeeper's) drops the
//! name checks: any certificate from the trusted CA may then speak for
//! any member. The server warns about it at start.

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use tokio_rustls::rustls::sign::SingleCertAndKey;
use tokio_rustls::rustls::{
    self, CertificateError, ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme,
};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::reload::{Reload, Reloadable, store_files};
use super::{ClientAuth, SslSettings, TlsError};

/// Both directions' configurations, built from the same stores.
struct Configs {
    connector: TlsConnector,
    acceptor: TlsAcceptor,
}

/// The quorum port's TLS, both ways; read again when the stores change
/// (`super::reload`), so certificates rotate without a restart.
#[derive(Clone)]
pub struct QuorumTls {
    configs: Arc<Reloadable<Configs>>,
    hostname_verification: bool,
    /// `ssl.quorum.handshakeDetectionTimeoutMillis`.
    pub handshake_timeout: Duration,
}

impl std::fmt::Debug for QuorumTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuorumTls")
            .field("hostname_verification", &self.hostname_verification)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

/// The certificate a peer presented on a connection it opened.
#[derive(Debug, Clone)]
pub struct PeerCertificate(CertificateDer<'static>);

impl PeerCertificate {
    /// Whether the certificate names `host` (a DNS name or an IP address,
    /// as a `server.N` line gives it) among its subject alternative names.
    pub fn names(&self, host: &str) -> bool {
        let Ok(name) = ServerName::try_from(host) else {
            return false;
        };
        let Ok(parsed) = ParsedCertificate::try_from(&self.0) else {
            return false;
        };
        rustls::client::verify_server_name(&parsed, &name).is_ok()
    }
}

impl QuorumTls {
    /// Reads the `ssl.quorum.*` stores. Any failure stops the server:
    /// `sslQuorum=true` that cannot be honoured is never plain text.
    pub fn new(settings: &SslSettings) -> Result<QuorumTls, TlsError> {
        let owned = settings.clone();
        let configs = Reloadable::new("the quorum port", store_files(settings), move || {
            Configs::new(&owned)
        })?;
        Ok(QuorumTls {
            configs: Arc::new(configs),
            hostname_verification: settings.hostname_verification,
            handshake_timeout: settings.handshake_timeout,
        })
    }

    /// Looks at the store files every few seconds for as long as the
    /// server runs (`super::reload`).
    pub fn watch_files(&self) {
        self.configs.clone().watch();
    }

    /// Rebuilds from the store files now if they changed.
    pub fn reload(&self) -> Reload {
        self.configs.check()
    }

    /// Whether a member's certificate must name its `server.N` host.
    pub fn checks_names(&self) -> bool {
        self.hostname_verification
    }

    /// The TLS handshake with a peer this server dialled as `host`.
    pub async fn connect(
        &self,
        host: &str,
        stream: TcpStream,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let name = ServerName::try_from(host.to_owned()).map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{host}: {e}"))
        })?;
        let configs = self.configs.current();
        configs.connector.connect(name, stream).await
    }

    /// The TLS handshake with a peer that dialled this server, and the
    /// certificate it presented (the verifier has checked it against the
    /// trust store).
    pub async fn accept(
        &self,
        stream: TcpStream,
    ) -> std::io::Result<(tokio_rustls::server::TlsStream<TcpStream>, PeerCertificate)> {
        let configs = self.configs.current();
        let stream = configs.acceptor.accept(stream).await?;
        let certificate = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .cloned()
            .ok_or_else(|| std::io::Error::other("the peer presented no certificate"))?;
        Ok((stream, PeerCertificate(certificate)))
    }
}

impl Configs {
    fn new(settings: &SslSettings) -> Result<Configs, TlsError> {
        let provider = super::provider(settings)?;
        let versions = super::versions(settings);
        let roots = Arc::new(super::load_roots(settings, ClientAuth::Need)?);
        let identity = super::load_identity(settings)?;
        let certified = Arc::new(super::certified_key(identity, &provider)?);

        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone()).build()?;
        let server_config = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)?
            .with_client_cert_verifier(client_verifier)
            .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified.clone())));

        let server_verifier =
            WebPkiServerVerifier::builder_with_provider(roots, provider.clone()).build()?;
        let server_verifier: Arc<dyn ServerCertVerifier> = if settings.hostname_verification {
            server_verifier
        } else {
            Arc::new(AnyName(server_verifier))
        };
        let client_config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)?
            .dangerous()
            .with_custom_certificate_verifier(server_verifier)
            .with_client_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));

        Ok(Configs {
            connector: TlsConnector::from(Arc::new(client_config)),
            acceptor: TlsAcceptor::from(Arc::new(server_config)),
        })
    }
}

/// A server certificate verifier that takes any name: the chain is
/// checked, the name is not (`ssl.quorum.hostnameVerification=false`).
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain before the name: a name error means the
        // chain is good.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use rustls_pki_types::pem::PemObject as _;

    use super::*;
    use crate::tls::SslScope;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");

    fn settings(key_store: &str) -> SslSettings {
        let mut s = SslSettings::new(SslScope::Quorum);
        for (k, v) in [
            (
                "ssl.quorum.keyStore.location",
                format!("{FIXTURES}/{key_store}"),
            ),
            (
                "ssl.quorum.trustStore.location",
                format!("{FIXTURES}/ca.pem"),
            ),
        ] {
            assert!(s.set(k, &v).unwrap());
        }
        s
    }

    fn certificate(key_store: &str) -> PeerCertificate {
        PeerCertificate(CertificateDer::from_pem_file(format!("{FIXTURES}/{key_store}")).unwrap())
    }

    #[test]
    fn a_member_certificate_names_its_own_host_only() {
        let two = certificate("member-2.pem");
        assert!(two.names("127.0.0.2"));
        assert!(!two.names("127.0.0.1"));
        assert!(!two.names("member-2"));
        assert!(!two.names("not a host name"));
    }

    #[test]
    fn quorum_tls_needs_a_trust_store() {
        let mut s = settings("member-1.pem");
        s.trust_store = crate::tls::StoreSettings::default();
        let err = QuorumTls::new(&s).unwrap_err();
        assert!(err.to_string().contains("sslQuorum=true"), "{err}");
        assert!(QuorumTls::new(&settings("member-1.pem")).is_ok());
    }

    /// Two servers' handshake over loopback: who may connect to whom.
    async fn handshake(
        dialler: &str,
        listener_store: &str,
        dialled_as: &str,
        names_checked: bool,
    ) -> Result<PeerCertificate, String> {
        let mut dial_settings = settings(dialler);
        dial_settings.hostname_verification = names_checked;
        let dial = QuorumTls::new(&dial_settings).map_err(|e| e.to_string())?;
        let listen = QuorumTls::new(&settings(listener_store)).map_err(|e| e.to_string())?;
        handshake_with(&dial, &listen, dialled_as).await
    }

    async fn handshake_with(
        dial: &QuorumTls,
        listen: &QuorumTls,
        dialled_as: &str,
    ) -> Result<PeerCertificate, String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let listen = listen.clone();
        let accepted = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            listen.accept(stream).await.map(|(_, c)| c)
        });
        let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let dialled = dial.connect(dialled_as, stream).await;
        let accepted = accepted.await.unwrap();
        dialled.map_err(|e| format!("dialling: {e}"))?;
        accepted.map_err(|e| format!("accepting: {e}"))
    }

    /// Certificates rotate without a restart: the next connection after a
    /// store file changes presents the new certificate.
    #[tokio::test]
    async fn a_rotated_certificate_is_presented_by_the_next_connection() {
        let dir = std::env::temp_dir().join(format!("conclave-rotate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = dir.join("member.pem");
        std::fs::copy(format!("{FIXTURES}/member-1.pem"), &store).unwrap();
        let mut listen_settings = settings("member-1.pem");
        listen_settings.key_store.location = Some(store.clone());
        let listen = QuorumTls::new(&listen_settings).unwrap();
        let dial = QuorumTls::new(&settings("member-2.pem")).unwrap();
        handshake_with(&dial, &listen, "127.0.0.1").await.unwrap();
        assert!(matches!(listen.reload(), Reload::Unchanged));

        // The member's new certificate (here: the one for 127.0.0.9).
        std::fs::write(
            &store,
            std::fs::read(format!("{FIXTURES}/member-9.pem")).unwrap(),
        )
        .unwrap();
        assert!(matches!(listen.reload(), Reload::Reloaded));
        handshake_with(&dial, &listen, "127.0.0.9").await.unwrap();
        let err = handshake_with(&dial, &listen, "127.0.0.1")
            .await
            .unwrap_err();
        assert!(err.contains("dialling"), "{err}");

        // A store that cannot be read keeps the certificate in use.
        std::fs::write(&store, "not a store").unwrap();
        assert!(matches!(listen.reload(), Reload::Failed(_)));
        handshake_with(&dial, &listen, "127.0.0.9").await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn members_of_one_ca_connect_and_learn_each_others_certificates() {
        let seen = handshake("member-1.pem", "member-2.pem", "127.0.0.2", true)
            .await
            .unwrap();
        assert!(seen.names("127.0.0.1"));
    }

    #[tokio::test]
    async fn a_server_whose_certificate_does_not_name_the_dialled_host_is_refused() {
        let err = handshake("member-1.pem", "member-9.pem", "127.0.0.2", true)
            .await
            .unwrap_err();
        assert!(err.contains("dialling"), "{err}");
        // Unless names are not checked.
        handshake("member-1.pem", "member-9.pem", "127.0.0.2", false)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_certificate_from_another_ca_is_refused_both_ways() {
        let err = handshake("outsider.pem", "member-1.pem", "127.0.0.1", false)
            .await
            .unwrap_err();
        assert!(
            err.contains("dialling") || err.contains("accepting"),
            "{err}"
        );
        let err = handshake("member-2.pem", "outsider.pem", "127.0.0.1", false)
            .await
            .unwrap_err();
        assert!(err.contains("dialling"), "{err}");
    }
}
