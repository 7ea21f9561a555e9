//! The admin HTTP server (ZooKeeper's AdminServer on `admin.serverPort`):
//! `GET /commands` lists the commands, `GET /commands/<name>` answers a
//! command (by its primary name or an alias) as a JSON object in the
//! AdminServer's shape, `/metrics` exposes Prometheus text, and `/healthz`
//! / `/readyz` answer liveness and readiness probes, and `/ensemble` says
//! how this server takes part in its ensemble, and `/membership` and
//! `/leader/transfer` read and change the membership (the last six are
//! Conclave's own; ZooKeeper has no such paths on this port).
//!
//! This module owns the routes and their handlers; `commands` runs a
//! command, `fields` builds each command's fields, `system_properties`
//! answers `system_properties`, `json` prints responses the way Jackson
//! does, and `prometheus` writes the `/metrics` text.

mod commands;
mod ensemble;
mod fields;
mod json;
mod membership;
mod prometheus;
mod system_properties;
mod tls_listener;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use crate::report;
use crate::server::Shared;

pub use commands::{COMMANDS, CommandDef, lookup, run_command};
pub use fields::snapshot_fields;
pub use json::Json;
pub use prometheus::prometheus_text;
pub use system_properties::system_properties;
pub use tls_listener::AdminTls;

pub async fn serve(listener: TcpListener, tls: Option<AdminTls>, shared: Arc<Shared>) {
    let served = match tls {
        None => axum::serve(listener, router(shared)).await,
        Some(tls) => match tls_listener::TlsListener::start(listener, tls) {
            Ok(listener) => axum::serve(listener, router(shared)).await,
            Err(e) => Err(e),
        },
    };
    if let Err(e) = served {
        tracing::error!(error = %e, "admin server stopped");
    }
}

/// The routes, separate from the listener so tests can call them directly.
pub fn router(shared: Arc<Shared>) -> Router {
    let base = shared
        .config
        .admin_command_url
        .trim_end_matches('/')
        .to_owned();
    let mut router = Router::new();
    if !base.is_empty() {
        router = router.route(&base, get(list).fallback(method_not_allowed));
    }
    router
        .route(&format!("{base}/"), get(list).fallback(method_not_allowed))
        .route(
            &format!("{base}/{{*name}}"),
            get(command).fallback(method_not_allowed),
        )
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/ensemble", get(ensemble_handler))
        .route("/membership", get(membership::get_membership))
        .route(
            "/membership/{action}",
            axum::routing::post(membership::change_membership),
        )
        .route(
            "/leader/transfer",
            axum::routing::post(membership::transfer_leadership),
        )
        .with_state(shared)
}

/// Any method but GET (and HEAD) on the command servlet: 405 with an HTML
/// error page, as ZooKeeper's Jetty answers (`HttpServlet` without `doPost`).
async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let message = format!("HTTP method {method} is not supported by this URL");
    let uri = uri
        .path()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let html = format!(
        "<html>\n<head>\n<meta http-equiv=\"Content-Type\" content=\"text/html;charset=ISO-8859-1\"/>\n\
         <title>Error 405 {message}</title>\n</head>\n<body><h2>HTTP ERROR 405 {message}</h2>\n\
         <table>\n<tr><th>URI:</th><td>{uri}</td></tr>\n<tr><th>STATUS:</th><td>405</td></tr>\n\
         <tr><th>MESSAGE:</th><td>{message}</td></tr>\n</table>\n\n</body>\n</html>\n"
    );
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [
            (header::CONTENT_TYPE, "text/html;charset=iso-8859-1"),
            (header::CACHE_CONTROL, "must-revalidate,no-cache,no-store"),
        ],
        html,
    )
        .into_response()
}

/// `GET /commands`: a link per primary name, each followed by `<br/>`
/// (`JettyAdminServer.commandLinks`); ZooKeeper sets no content type.
async fn list(State(shared): State<Arc<Shared>>) -> Response {
    let base = shared.config.admin_command_url.trim_end_matches('/');
    let mut html = String::new();
    for c in COMMANDS {
        let _ = writeln!(
            html,
            "<a href=\"{base}/{name}\">{name}</a>\n<br/>",
            name = c.name
        );
    }
    Response::new(html.into())
}

async fn command(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let body = run_command(&name, &params, &shared).await;
    ([(header::CONTENT_TYPE, "application/json")], body.render()).into_response()
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let Some(s) = report::snapshot(&shared).await else {
        return (StatusCode::SERVICE_UNAVAILABLE, report::NOT_SERVING).into_response();
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        prometheus_text(&s),
    )
        .into_response()
}

/// This server's part in its ensemble (`ensemble`).
async fn ensemble_handler(State(shared): State<Arc<Shared>>) -> Response {
    let Some(s) = report::snapshot(&shared).await else {
        return (StatusCode::SERVICE_UNAVAILABLE, report::NOT_SERVING).into_response();
    };
    let (status, body) = ensemble::ensemble_response(&s);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Liveness: the process answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: requests are being served. A standalone server is its own
/// quorum; a member of an ensemble is ready while it has a leader.
async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    if report::is_serving(&shared).await {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not serving\n").into_response()
    }
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use tower::ServiceExt as _;

    use super::*;
    use crate::config::Config;

    pub(super) fn shared() -> Arc<Shared> {
        Shared::with_processor(Arc::new(Config::default()))
    }

    pub(super) async fn get(
        shared: &Arc<Shared>,
        uri: &str,
    ) -> (StatusCode, Option<String>, String) {
        let response = router(shared.clone())
            .oneshot(Request::builder().uri(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let ctype = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, ctype, String::from_utf8(body.to_vec()).unwrap())
    }

    pub(super) async fn get_json(
        shared: &Arc<Shared>,
        uri: &str,
    ) -> serde_json::Map<String, serde_json::Value> {
        let (status, ctype, body) = get(shared, uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert_eq!(ctype.as_deref(), Some("application/json"), "{uri}");
        match serde_json::from_str(&body).unwrap() {
            serde_json::Value::Object(m) => m,
            other => panic!("{uri}: not an object: {other}"),
        }
    }

    #[tokio::test]
    async fn listing_links_every_command() {
        let shared = shared();
        for uri in ["/commands", "/commands/"] {
            let (status, ctype, body) = get(&shared, uri).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(ctype, None);
            let lines: Vec<&str> = body.lines().collect();
            assert_eq!(lines.len(), COMMANDS.len() * 2);
            assert_eq!(
                lines[0],
                "<a href=\"/commands/configuration\">configuration</a>"
            );
            assert_eq!(lines[1], "<br/>");
            assert_eq!(
                lines[lines.len() - 2],
                "<a href=\"/commands/zabstate\">zabstate</a>"
            );
        }
        let mut names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
        names.sort_unstable();
        assert_eq!(names, COMMANDS.iter().map(|c| c.name).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn other_methods_get_jettys_405() {
        let shared = shared();
        for uri in ["/commands/ruok", "/commands"] {
            let response = router(shared.clone())
                .oneshot(
                    Request::builder()
                        .method("POST")
                        .uri(uri)
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
            let ctype = response
                .headers()
                .get(header::CONTENT_TYPE)
                .unwrap()
                .to_str()
                .unwrap();
            assert_eq!(ctype, "text/html;charset=iso-8859-1");
            let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
            let body = String::from_utf8(body.to_vec()).unwrap();
            assert!(body.contains("HTTP ERROR 405 HTTP method POST is not supported by this URL"));
        }
    }

    #[tokio::test]
    async fn probes() {
        let shared = shared();
        assert_eq!(get(&shared, "/healthz").await.0, StatusCode::OK);
        let (status, _, body) = get(&shared, "/readyz").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ready\n"));
    }

    #[tokio::test]
    async fn a_stopped_processor_is_not_serving() {
        let (commands, rx) = tokio::sync::mpsc::channel(1);
        drop(rx);
        let mut shared = Arc::into_inner(self::shared()).unwrap();
        shared.commands = commands;
        let shared = Arc::new(shared);
        assert_eq!(
            get(&shared, "/readyz").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(get(&shared, "/healthz").await.0, StatusCode::OK);
        let m = get_json(&shared, "/commands/srvr").await;
        assert_eq!(m["command"], "srvr", "named as asked");
        assert_eq!(m["error"], report::NOT_SERVING);
        let env = get_json(&shared, "/commands/environment").await;
        assert!(env["error"].is_null(), "environment needs no server");
        assert_eq!(
            get(&shared, "/metrics").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
