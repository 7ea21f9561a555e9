//! Talking to the servers' admin HTTP API (`docs/membership.md`): reading
//! `GET /membership` and posting membership changes and leadership
//! transfers. `Ensemble` is the seam the reconciler is tested through;
//! `HttpEnsemble` is the real thing, HTTP/1.1 to a pod's IP, over TLS
//! checked against the cluster's internal CA once its servers speak HTTPS
//! (`build/internal_tls.rs`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::ServerName;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{ClientConfig, crypto};

use crate::pki::PkiError;

/// One server's admin API: where it is, and how its certificate is checked
/// when it speaks HTTPS.
#[derive(Debug, Clone)]
pub struct AdminAddress {
    /// `ip:port`.
    pub addr: String,
    pub tls: Option<AdminTls>,
}

impl AdminAddress {
    pub fn plain(addr: impl Into<String>) -> AdminAddress {
        AdminAddress {
            addr: addr.into(),
            tls: None,
        }
    }
}

impl std::fmt::Display for AdminAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.tls {
            Some(_) => write!(f, "https://{}", self.addr),
            None => write!(f, "http://{}", self.addr),
        }
    }
}

/// HTTPS to a server: the name its certificate must carry (its pod's DNS
/// name; it is reached by address) and the CA it must chain to.
#[derive(Clone)]
pub struct AdminTls {
    pub server_name: ServerName<'static>,
    pub config: Arc<ClientConfig>,
}

impl std::fmt::Debug for AdminTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// A TLS client configuration that trusts only the CA certificates in
/// `ca_pem`.
pub fn tls_client_config(ca_pem: &str) -> Result<Arc<ClientConfig>, PkiError> {
    let roots = crate::pki::trust_roots(ca_pem)?;
    let config = ClientConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| PkiError::Ca(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A server's answer to a change: the HTTP status and the JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeAnswer {
    pub status: u16,
    pub body: String,
}

impl ChangeAnswer {
    /// The `error` field of an error answer (`BadVersion`, `NotLeader`, …).
    pub fn error(&self) -> Option<String> {
        serde_json::from_str::<serde_json::Value>(&self.body)
            .ok()?
            .get("error")?
            .as_str()
            .map(str::to_owned)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("admin API of {addr}: {reason}")]
    Unreachable { addr: AdminAddress, reason: String },
    #[error("admin API of {addr} answered {status}: {body}")]
    Status {
        addr: AdminAddress,
        status: u16,
        body: String,
    },
}

/// The ensemble as the operator reaches it, one server's admin API at a
/// time.
pub trait Ensemble: Send + Sync + 'static {
    /// `GET /membership` (the body).
    fn membership(
        &self,
        addr: &AdminAddress,
    ) -> impl Future<Output = Result<String, AdminError>> + Send;
    /// `POST path` with a JSON body and the admin token.
    fn change(
        &self,
        addr: &AdminAddress,
        path: &str,
        body: serde_json::Value,
        token: &str,
    ) -> impl Future<Output = Result<ChangeAnswer, AdminError>> + Send;
}

/// HTTP/1.1 to the servers. Reads time out quickly (a server that does
/// not answer is reported, not waited for); a change is answered when it
/// is committed, which takes as long as catching a joiner up.
#[derive(Debug, Clone)]
pub struct HttpEnsemble {
    client: Client<HttpConnector, Full<Bytes>>,
    read_timeout: Duration,
    change_timeout: Duration,
}

impl Default for HttpEnsemble {
    fn default() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(3)));
        HttpEnsemble {
            client: Client::builder(TokioExecutor::new()).build(connector),
            read_timeout: Duration::from_secs(5),
            change_timeout: Duration::from_secs(120),
        }
    }
}

impl HttpEnsemble {
    async fn send(
        &self,
        addr: &AdminAddress,
        request: http::Request<Full<Bytes>>,
        timeout: Duration,
    ) -> Result<(u16, String), AdminError> {
        let unreachable = |reason: String| AdminError::Unreachable {
            addr: addr.clone(),
            reason,
        };
        let exchange = async {
            let response = match &addr.tls {
                None => self
                    .client
                    .request(request)
                    .await
                    .map_err(|e| e.to_string())?,
                Some(tls) => send_tls(&addr.addr, tls, request).await?,
            };
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<_, String>((status, String::from_utf8_lossy(&body).into_owned()))
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| unreachable(format!("no answer within {timeout:?}")))?
            .map_err(unreachable)
    }
}

/// One request on its own HTTPS connection (the operator asks a server a
/// few times a minute at most).
async fn send_tls(
    addr: &str,
    tls: &AdminTls,
    request: http::Request<Full<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, String> {
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| format!("no connection within {CONNECT_TIMEOUT:?}"))?
        .map_err(|e| e.to_string())?;
    let stream = TlsConnector::from(tls.config.clone())
        .connect(tls.server_name.clone(), tcp)
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    // Ends when the response is read and the sender dropped.
    tokio::spawn(connection);
    sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A request for `path` on `addr`: absolute for the pooled plain client,
/// origin-form with a Host header on an HTTPS connection of its own.
fn request(addr: &AdminAddress, method: http::Method, path: &str) -> http::request::Builder {
    match addr.tls {
        None => http::Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", addr.addr)),
        Some(_) => http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, addr.addr.as_str()),
    }
}

impl Ensemble for HttpEnsemble {
    async fn membership(&self, addr: &AdminAddress) -> Result<String, AdminError> {
        let request = request(addr, http::Method::GET, "/membership")
            .body(Full::new(Bytes::new()))
            .map_err(|e| AdminError::Unreachable {
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
        let (status, body) = self.send(addr, request, self.read_timeout).await?;
        if status != 200 {
            return Err(AdminError::Status {
                addr: addr.clone(),
                status,
                body,
            });
        }
        Ok(body)
    }

    async fn change(
        &self,
        addr: &AdminAddress,
        path: &str,
        body: serde_json::Value,
        token: &str,
    ) -> Result<ChangeAnswer, AdminError> {
        let request = request(addr, http::Method::POST, path)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| AdminError::Unreachable {
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
        let (status, body) = self.send(addr, request, self.change_timeout).await?;
        Ok(ChangeAnswer { status, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_answer_names_its_error() {
        let answer = ChangeAnswer {
            status: 409,
            body: r#"{"error":"BadVersion","code":-103,"message":"x"}"#.into(),
        };
        assert_eq!(answer.error().as_deref(), Some("BadVersion"));
        let ok = ChangeAnswer {
            status: 200,
            body: r#"{"version":"1"}"#.into(),
        };
        assert_eq!(ok.error(), None);
    }

    /// A server with a certificate from the cluster's CA, answering one
    /// HTTPS request with `{}`; its address.
    async fn https_server(ca: &crate::pki::Authority, host: &str) -> String {
        use rustls_pki_types::pem::PemObject as _;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        use tokio_rustls::rustls::ServerConfig;

        let issued = ca.issue(&[host.to_owned()], now(), 30).unwrap();
        let pem = issued.key_and_cert_pem.as_bytes();
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(pem).unwrap();
        let config =
            ServerConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    continue;
                };
                let mut request = vec![0; 4096];
                let _ = tls.read(&mut request).await;
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
                    )
                    .await;
                let _ = tls.shutdown().await;
            }
        });
        addr
    }

    fn now() -> i64 {
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn https_checks_the_server_against_the_cluster_ca_and_its_pod_name() {
        let (ca, _) = crate::pki::Authority::create("apps/zk", now()).unwrap();
        let host = "zk-0.zk-peers.apps.svc.cluster.local";
        let addr = https_server(&ca, host).await;
        let config = tls_client_config(&ca.cert_pem).unwrap();
        let server = |name: &str| AdminAddress {
            addr: addr.clone(),
            tls: Some(AdminTls {
                server_name: ServerName::try_from(name.to_owned()).unwrap(),
                config: config.clone(),
            }),
        };
        let body = HttpEnsemble::default()
            .membership(&server(host))
            .await
            .expect("the pod's own name, the cluster's CA");
        assert_eq!(body, "{}");
        // Another pod's name: refused before a byte of HTTP is sent.
        let err = HttpEnsemble::default()
            .membership(&server("zk-1.zk-peers.apps.svc.cluster.local"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("TLS"), "{err}");
        // Another cluster's CA: refused too.
        let (other, _) = crate::pki::Authority::create("apps/other", now()).unwrap();
        let stranger = AdminAddress {
            addr: addr.clone(),
            tls: Some(AdminTls {
                server_name: ServerName::try_from(host.to_owned()).unwrap(),
                config: tls_client_config(&other.cert_pem).unwrap(),
            }),
        };
        let err = HttpEnsemble::default()
            .membership(&stranger)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("TLS"), "{err}");
        assert!(tls_client_config("not a certificate").is_err());
    }

    #[tokio::test]
    async fn a_server_that_is_not_there_is_reported_unreachable() {
        // Port 9 on loopback: nothing listens there on a test machine.
        let err = HttpEnsemble::default()
            .membership(&AdminAddress::plain("127.0.0.1:9"))
            .await
            .unwrap_err();
        assert!(matches!(err, AdminError::Unreachable { .. }), "{err}");
    }
}
