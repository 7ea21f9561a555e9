//! A small in-memory Kubernetes API behind kube's `tower-test` mock
//! service: objects by path, server-side apply as "store the body",
//! list by collection path, deletes, and a log of every request, so that a
//! test states what the cluster holds, runs one reconcile, and checks what
//! the operator asked for. Answers 404 for objects it does not hold, and
//! for any path listed in `missing_apis` (an API the server lacks); 403 for
//! any path listed in `refused_apis`. API discovery of a group version
//! (`GET /apis/<group>/<version>`) answers what `serve_api` put there, and
//! 404 otherwise, as for a group no CRD or aggregated API provides.

use std::collections::BTreeMap;
use std::pin::pin;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;

/// One request the operator made.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub body: serde_json::Value,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    /// Objects by their path (`/api/v1/namespaces/apps/pods/zk-0`).
    pub objects: BTreeMap<String, serde_json::Value>,
    pub calls: Vec<Call>,
    /// Path prefixes answered 404 (an API the server does not serve).
    pub missing_apis: Vec<String>,
    /// Path prefixes answered 403 (RBAC refuses them).
    pub refused_apis: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct FakeApi(pub Arc<Mutex<State>>);

impl FakeApi {
    pub(crate) fn put(&self, path: &str, object: serde_json::Value) {
        self.state().objects.insert(path.to_owned(), object);
    }

    /// Serves `group_version` (`monitoring.coreos.com/v1`) with one
    /// namespaced resource: discovery lists it, as once its CRD is installed.
    pub(crate) fn serve_api(&self, group_version: &str, kind: &str, plural: &str) {
        self.put(
            &format!("/apis/{group_version}"),
            serde_json::json!({
                "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
                "resources": [{
                    "name": plural, "singularName": kind.to_lowercase(), "namespaced": true,
                    "kind": kind,
                    "verbs": ["delete", "deletecollection", "get", "list", "patch", "create",
                              "update", "watch"]
                }]
            }),
        );
    }

    pub(crate) fn get(&self, path: &str) -> Option<serde_json::Value> {
        self.state().objects.get(path).cloned()
    }

    pub(crate) fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    /// Calls with this method whose path contains `fragment`.
    pub(crate) fn calls_to(&self, method: Method, fragment: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method && c.path.contains(fragment))
            .collect()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A client served by this fake, and the task serving it.
    pub(crate) fn client(&self) -> (Client, tokio::task::JoinHandle<()>) {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let api = self.clone();
        let task = tokio::spawn(async move {
            let mut handle = pin!(handle);
            while let Some((request, send)) = handle.next_request().await {
                let response = api.answer(request).await;
                send.send_response(response);
            }
        });
        (Client::new(service, "default"), task)
    }

    async fn answer(&self, request: Request<Body>) -> Response<Body> {
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let query = request.uri().query().unwrap_or_default().to_owned();
        let merge_patch = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|t| t.as_bytes() == b"application/merge-patch+json");
        let bytes = request
            .into_body()
            .collect_bytes()
            .await
            .unwrap_or_default();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let mut state = self.state();
        state.calls.push(Call {
            method: method.clone(),
            path: path.clone(),
            query,
            body: body.clone(),
        });
        if state.missing_apis.iter().any(|p| path.starts_with(p)) {
            return not_found(&path);
        }
        if state.refused_apis.iter().any(|p| path.starts_with(p)) {
            return status_response(StatusCode::FORBIDDEN, "Forbidden", &path);
        }
        match method {
            Method::GET => {
                if let Some(object) = state.objects.get(&path) {
                    return ok(object);
                }
                // A collection: the objects directly under the path.
                let prefix = format!("{path}/");
                let items: Vec<&serde_json::Value> = state
                    .objects
                    .iter()
                    .filter(|(p, _)| {
                        p.strip_prefix(&prefix)
                            .is_some_and(|rest| !rest.contains('/'))
                    })
                    .map(|(_, o)| o)
                    .collect();
                if items.is_empty() && !is_collection(&path) {
                    return not_found(&path);
                }
                ok(&serde_json::json!({"metadata": {"resourceVersion": "1"}, "items": items}))
            }
            Method::PATCH => {
                let (object_path, status) = match path.strip_suffix("/status") {
                    Some(p) => (p.to_owned(), true),
                    None => (path.clone(), false),
                };
                let mut object = state.objects.get(&object_path).cloned().unwrap_or_else(
                    || serde_json::json!({"metadata": {"name": object_path.rsplit('/').next()}}),
                );
                if let Some(ops) = body.as_array() {
                    // JSON patch (the finalizer helper): the ops it uses.
                    apply_json_patch(&mut object, ops);
                } else if merge_patch {
                    apply_merge_patch(&mut object, &body);
                } else if status {
                    object["status"] = body["status"].clone();
                } else {
                    // As the API server: a patch of the object leaves its
                    // status alone (that is the status subresource's).
                    let metadata = object["metadata"].clone();
                    let old_status = object.get("status").cloned();
                    object = body.clone();
                    if let Some(old_status) = old_status {
                        object["status"] = old_status;
                    }
                    if let (Some(meta), Some(old)) =
                        (object["metadata"].as_object_mut(), metadata.as_object())
                    {
                        for (k, v) in old {
                            meta.entry(k.clone()).or_insert(v.clone());
                        }
                    }
                }
                state.objects.insert(object_path, object.clone());
                ok(&object)
            }
            Method::POST => {
                let name = body["metadata"]["name"]
                    .as_str()
                    .unwrap_or("generated")
                    .to_owned();
                let object_path = format!("{path}/{name}");
                if state.objects.contains_key(&object_path) {
                    return status_response(StatusCode::CONFLICT, "AlreadyExists", &object_path);
                }
                state.objects.insert(object_path, body.clone());
                ok(&body)
            }
            Method::DELETE => match state.objects.remove(&path) {
                Some(object) => ok(&object),
                None => not_found(&path),
            },
            _ => status_response(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", &path),
        }
    }
}

fn is_collection(path: &str) -> bool {
    // /api/v1/namespaces/<ns>/<kind> or /apis/<g>/<v>/namespaces/<ns>/<kind>
    // or a cluster-wide list.
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let after_version = if parts.first() == Some(&"api") { 2 } else { 3 };
    match parts.len().checked_sub(after_version) {
        Some(1) => true,
        Some(3) => parts.get(after_version) == Some(&"namespaces"),
        _ => false,
    }
}

/// RFC 7386: objects merge, `null` removes, anything else replaces.
fn apply_merge_patch(object: &mut serde_json::Value, patch: &serde_json::Value) {
    match (object.as_object_mut(), patch.as_object()) {
        (Some(target), Some(changes)) => {
            for (key, value) in changes {
                if value.is_null() {
                    target.remove(key);
                } else {
                    apply_merge_patch(
                        target.entry(key.clone()).or_insert(serde_json::Value::Null),
                        value,
                    );
                }
            }
        }
        (_, Some(_)) => {
            *object = serde_json::json!({});
            apply_merge_patch(object, patch);
        }
        _ => *object = patch.clone(),
    }
}

fn apply_json_patch(object: &mut serde_json::Value, ops: &[serde_json::Value]) {
    for op in ops {
        let path = op["path"].as_str().unwrap_or_default();
        match (op["op"].as_str(), path) {
            (Some("add"), "/metadata/finalizers") => {
                object["metadata"]["finalizers"] = op["value"].clone();
            }
            (Some("add"), "/metadata/finalizers/-") => {
                if let Some(list) = object["metadata"]["finalizers"].as_array_mut() {
                    list.push(op["value"].clone());
                } else {
                    object["metadata"]["finalizers"] = serde_json::json!([op["value"]]);
                }
            }
            (Some("remove"), p) if p.starts_with("/metadata/finalizers/") => {
                let index: usize = p
                    .rsplit('/')
                    .next()
                    .and_then(|i| i.parse().ok())
                    .unwrap_or(0);
                if let Some(list) = object["metadata"]["finalizers"].as_array_mut()
                    && index < list.len()
                {
                    list.remove(index);
                }
            }
            _ => {}
        }
    }
}

fn ok(value: &serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(value).unwrap_or_default()))
        .expect("a well-formed response")
}

fn not_found(path: &str) -> Response<Body> {
    status_response(StatusCode::NOT_FOUND, "NotFound", path)
}

fn status_response(code: StatusCode, reason: &str, path: &str) -> Response<Body> {
    let status = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("{path}: {reason}"), "reason": reason, "code": code.as_u16()
    });
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&status).unwrap_or_default()))
        .expect("a well-formed response")
}
