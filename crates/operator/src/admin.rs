//! Talking to the servers' admin HTTP API (`docs/membership.md`): reading
//! `GET /membership` and posting membership changes and leadership
//! transfers. `Ensemble` is the seam the reconciler is tested through;
//! `HttpEnsemble` is the real thing, plain HTTP/1.1 to a pod's IP.

use std::future::Future;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

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
    Unreachable { addr: String, reason: String },
    #[error("admin API of {addr} answered {status}: {body}")]
    Status {
        addr: String,
        status: u16,
        body: String,
    },
}

/// The ensemble as the operator reaches it. `addr` is `host:port` of one
/// server's admin API.
pub trait Ensemble: Send + Sync + 'static {
    /// `GET /membership` (the body).
    fn membership(&self, addr: &str) -> impl Future<Output = Result<String, AdminError>> + Send;
    /// `POST path` with a JSON body and the admin token.
    fn change(
        &self,
        addr: &str,
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
        addr: &str,
        request: http::Request<Full<Bytes>>,
        timeout: Duration,
    ) -> Result<(u16, String), AdminError> {
        let unreachable = |reason: String| AdminError::Unreachable {
            addr: addr.to_owned(),
            reason,
        };
        let response = tokio::time::timeout(timeout, self.client.request(request))
            .await
            .map_err(|_| unreachable(format!("no answer within {timeout:?}")))?
            .map_err(|e| unreachable(e.to_string()))?;
        let status = response.status().as_u16();
        let body = tokio::time::timeout(timeout, response.into_body().collect())
            .await
            .map_err(|_| unreachable(format!("no body within {timeout:?}")))?
            .map_err(|e| unreachable(e.to_string()))?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

impl Ensemble for HttpEnsemble {
    async fn membership(&self, addr: &str) -> Result<String, AdminError> {
        let request = http::Request::get(format!("http://{addr}/membership"))
            .body(Full::new(Bytes::new()))
            .map_err(|e| AdminError::Unreachable {
                addr: addr.to_owned(),
                reason: e.to_string(),
            })?;
        let (status, body) = self.send(addr, request, self.read_timeout).await?;
        if status != 200 {
            return Err(AdminError::Status {
                addr: addr.to_owned(),
                status,
                body,
            });
        }
        Ok(body)
    }

    async fn change(
        &self,
        addr: &str,
        path: &str,
        body: serde_json::Value,
        token: &str,
    ) -> Result<ChangeAnswer, AdminError> {
        let request = http::Request::post(format!("http://{addr}{path}"))
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| AdminError::Unreachable {
                addr: addr.to_owned(),
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

    #[tokio::test]
    async fn a_server_that_is_not_there_is_reported_unreachable() {
        // Port 9 on loopback: nothing listens there on a test machine.
        let err = HttpEnsemble::default()
            .membership("127.0.0.1:9")
            .await
            .unwrap_err();
        assert!(matches!(err, AdminError::Unreachable { .. }), "{err}");
    }
}
