//! Reconcile flows against an in-memory API server (`fake_api.rs`, on
//! kube's `tower-test` mock service) and a scripted ensemble: each test
//! lays out a cluster's state, runs one reconcile, and checks the requests
//! the operator made, the Events it published and the status it wrote.

mod fake_api;
#[path = "../../../tests/support/promql.rs"]
mod promql;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::Method;
use kube::runtime::events::Reporter;
use serde_json::{Value, json};

use self::fake_api::FakeApi;
use super::{Context, reconcile};
use crate::admin::{AdminAddress, AdminError, ChangeAnswer, Ensemble};
use crate::crd::CoordinationCluster;
use crate::metrics::Metrics;

/// A change the operator asked for: (address, path, body, token).
type Change = (String, String, Value, String);

/// The ensemble as a script: what `GET /membership` answers per address,
/// and what a change answers; every change is recorded.
#[derive(Debug, Default, Clone)]
struct ScriptedEnsemble {
    membership: Arc<Mutex<BTreeMap<String, String>>>,
    change_status: Arc<Mutex<u16>>,
    changes: Arc<Mutex<Vec<Change>>>,
}

impl ScriptedEnsemble {
    fn answers(&self, addr: &str, body: Value) {
        self.membership
            .lock()
            .unwrap()
            .insert(addr.to_owned(), body.to_string());
    }

    fn changes(&self) -> Vec<Change> {
        self.changes.lock().unwrap().clone()
    }
}

impl Ensemble for ScriptedEnsemble {
    async fn membership(&self, addr: &AdminAddress) -> Result<String, AdminError> {
        self.membership
            .lock()
            .unwrap()
            .get(&addr.addr)
            .cloned()
            .ok_or_else(|| AdminError::Unreachable {
                addr: addr.clone(),
                reason: "connection refused".to_owned(),
            })
    }

    async fn change(
        &self,
        addr: &AdminAddress,
        path: &str,
        body: Value,
        token: &str,
    ) -> Result<ChangeAnswer, AdminError> {
        self.changes.lock().unwrap().push((
            addr.addr.clone(),
            path.to_owned(),
            body,
            token.to_owned(),
        ));
        let status = *self.change_status.lock().unwrap();
        Ok(ChangeAnswer {
            status: if status == 0 { 200 } else { status },
            body: if status == 0 || status == 200 {
                json!({"version": "200000002"}).to_string()
            } else {
                json!({"error": "BadVersion", "code": -103, "message": "stale"}).to_string()
            },
        })
    }
}

const CR: &str = "/apis/conclave.dev/v1alpha1/namespaces/apps/coordinationclusters/zk";
const STS: &str = "/apis/apps/v1/namespaces/apps/statefulsets/zk";
const PODS: &str = "/api/v1/namespaces/apps/pods";
const PVCS: &str = "/api/v1/namespaces/apps/persistentvolumeclaims";
const SECRET: &str = "/api/v1/namespaces/apps/secrets/zk-admin-token";

fn cluster(spec: Value) -> Value {
    let mut full = json!({"replicas": 3, "image": "conclave:2"});
    if let (Some(full), Some(extra)) = (full.as_object_mut(), spec.as_object()) {
        for (k, v) in extra {
            full.insert(k.clone(), v.clone());
        }
    }
    json!({
        "apiVersion": "conclave.dev/v1alpha1", "kind": "CoordinationCluster",
        "metadata": {"name": "zk", "namespace": "apps", "uid": "u-1", "generation": 2,
                     "finalizers": ["conclave.dev/cleanup"]},
        "spec": full,
    })
}

fn statefulset(replicas: u64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
           "metadata": {"name": "zk", "namespace": "apps"},
           // On internal TLS, as a cluster made by this operator is.
           "spec": {"replicas": replicas, "selector": {}, "serviceName": "zk-peers",
                    "template": {"metadata": {"annotations": {"conclave.dev/internal-tls": "On"}}}},
           "status": {"replicas": replicas, "updateRevision": "zk-new"}})
}

fn pod(id: u64, revision: &str, ready: bool) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": format!("zk-{}", id - 1), "namespace": "apps",
                        "labels": {"app.kubernetes.io/instance": "zk",
                                   "controller-revision-hash": revision}},
           "spec": {"containers": [{"name": "conclave", "image": "conclave:2"}]},
           "status": {"phase": "Running", "podIP": format!("10.0.0.{id}"),
                      "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}})
}

fn membership(ids: &[u64], leader: u64) -> Value {
    json!({
        "version": "200000001", "leader": leader, "member_view": "leader",
        "members": ids.iter().map(|&id| json!({
            "id": id, "role": "participant", "leader": id == leader, "healthy": true,
            "lag": 0, "last_applied_zxid": "0x200000009"
        })).collect::<Vec<_>>()
    })
}

struct World {
    api: FakeApi,
    ensemble: ScriptedEnsemble,
    /// Shared by every reconcile of the world, as one operator's are.
    metrics: Metrics,
}

impl World {
    fn new(cr: Value) -> World {
        let api = FakeApi::default();
        api.put(CR, cr);
        api.put(
            SECRET,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "zk-admin-token"},
                   "data": {"token": "c2VjcmV0"}}),
        );
        World {
            api,
            ensemble: ScriptedEnsemble::default(),
            metrics: Metrics::default(),
        }
    }

    /// A running cluster: StatefulSet, pods (all at `revision`) and their
    /// volumes; the leader answers `GET /membership`.
    fn running(cr: Value, ids: &[u64], leader: u64, revision: &str) -> World {
        let world = World::new(cr);
        world.api.put(STS, statefulset(ids.len() as u64));
        for &id in ids {
            world
                .api
                .put(&format!("{PODS}/zk-{}", id - 1), pod(id, revision, true));
            world.api.put(
                &format!("{PVCS}/data-zk-{}", id - 1),
                json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                       "metadata": {"name": format!("data-zk-{}", id - 1)}}),
            );
            world
                .ensemble
                .answers(&format!("10.0.0.{id}:8080"), membership(ids, leader));
        }
        world
    }

    async fn reconcile(&self) -> Result<kube::runtime::controller::Action, super::Error> {
        self.reconcile_cached(self.api.get(CR).expect("the resource"))
            .await
    }

    /// A reconcile handed `cached` (the controller's copy, which may lag
    /// behind what the API server holds).
    async fn reconcile_cached(
        &self,
        cached: Value,
    ) -> Result<kube::runtime::controller::Action, super::Error> {
        let (ctx, task) = self.context();
        let cc: CoordinationCluster = serde_json::from_value(cached).expect("a resource");
        let result = reconcile(Arc::new(cc), ctx).await;
        task.abort();
        result
    }

    /// What every reconcile of this world shares, and the fake API
    /// server's task (abort it when done).
    fn context(&self) -> (Arc<Context<ScriptedEnsemble>>, tokio::task::JoinHandle<()>) {
        let (client, task) = self.api.client();
        let ctx = Arc::new(Context::new(
            client,
            self.ensemble.clone(),
            self.metrics.clone(),
            Reporter {
                controller: "conclave-operator".into(),
                instance: Some("test".into()),
            },
        ));
        (ctx, task)
    }

    fn status(&self) -> Value {
        self.api.get(CR).expect("the resource")["status"].clone()
    }

    fn condition(&self, type_: &str) -> Value {
        self.status()["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == type_)
            .cloned()
            .unwrap_or_default()
    }

    fn events(&self) -> Vec<String> {
        self.api
            .calls_to(
                Method::POST,
                "/apis/events.k8s.io/v1/namespaces/apps/events",
            )
            .into_iter()
            .map(|c| c.body["reason"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    fn statefulset_replicas(&self) -> Value {
        self.api.get(STS).expect("the StatefulSet")["spec"]["replicas"].clone()
    }
}

const NETPOL: &str = "/apis/networking.k8s.io/v1/namespaces/apps/networkpolicies/zk";

/// The NetworkPolicy is on by default (the quorum port takes only the
/// cluster's pods); turned off, the one the operator made is deleted, and
/// one it did not make is left alone.
#[tokio::test]
async fn the_network_policy_is_on_by_default_and_removed_when_turned_off() {
    let world = World::new(cluster(json!({})));
    world.reconcile().await.unwrap();
    let policy = world.api.get(NETPOL).expect("a NetworkPolicy");
    assert_eq!(policy["metadata"]["ownerReferences"][0]["uid"], "u-1");
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress"]));
    let quorum = &policy["spec"]["ingress"][0];
    assert_eq!(quorum["ports"][0]["port"], json!(2888));
    assert_eq!(
        quorum["from"][0]["podSelector"]["matchLabels"],
        policy["spec"]["podSelector"]["matchLabels"]
    );

    let off = World::new(cluster(json!({"networkPolicy": {"enabled": false}})));
    off.api.put(NETPOL, policy.clone());
    off.reconcile().await.unwrap();
    assert!(
        off.api.get(NETPOL).is_none(),
        "the operator's policy is deleted"
    );
    assert!(off.api.calls_to(Method::PATCH, NETPOL).is_empty());

    let theirs = World::new(cluster(json!({"networkPolicy": {"enabled": false}})));
    let mut foreign = policy;
    foreign["metadata"]["ownerReferences"] = json!([]);
    theirs.api.put(NETPOL, foreign);
    theirs.reconcile().await.unwrap();
    assert!(theirs.api.get(NETPOL).is_some(), "someone else's is kept");
}

#[tokio::test]
async fn a_new_resource_gets_its_finalizer_first() {
    let mut cr = cluster(json!({}));
    cr["metadata"]["finalizers"] = json!(null);
    let world = World::new(cr);
    world.reconcile().await.unwrap();
    assert_eq!(
        world.api.get(CR).unwrap()["metadata"]["finalizers"],
        json!(["conclave.dev/cleanup"])
    );
    assert!(
        world.api.get(STS).is_none(),
        "nothing else before the finalizer is in place"
    );
}

#[tokio::test]
async fn a_new_cluster_is_created_forming_and_reports_it() {
    let world = World::new(cluster(json!({})));
    world.api.0.lock().unwrap().objects.remove(SECRET);
    world.reconcile().await.unwrap();
    // Every object is applied with server-side apply under one manager.
    for path in [
        "/api/v1/namespaces/apps/configmaps/zk-config",
        "/api/v1/namespaces/apps/services/zk-peers",
        "/api/v1/namespaces/apps/services/zk-client",
        STS,
        "/apis/policy/v1/namespaces/apps/poddisruptionbudgets/zk",
        NETPOL,
    ] {
        let calls = world.api.calls_to(Method::PATCH, path);
        assert_eq!(calls.len(), 1, "{path}");
        assert!(
            calls[0].query.contains("fieldManager=conclave-operator"),
            "{}",
            calls[0].query
        );
        assert!(calls[0].query.contains("force=true"));
        assert_eq!(
            calls[0].body["metadata"]["ownerReferences"][0]["uid"],
            "u-1"
        );
    }
    let cfg = world
        .api
        .get("/api/v1/namespaces/apps/configmaps/zk-config")
        .unwrap();
    let zoo = cfg["data"]["zoo.cfg"].as_str().unwrap();
    assert!(zoo.contains("conclave.join=false"), "forming: {zoo}");
    assert!(zoo.contains("server.3=zk-2.zk-peers.apps.svc.cluster.local"));
    assert_eq!(world.statefulset_replicas(), json!(3));
    // The admin token Secret was made.
    let secret = world.api.get(SECRET).expect("the token Secret");
    assert!(
        secret["data"]["token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    assert_eq!(world.status()["phase"], "Creating");
    assert_eq!(world.condition("Ready")["reason"], "EnsembleUnreachable");
}

#[tokio::test]
async fn a_formed_cluster_is_ready_and_left_alone() {
    let world = World::running(cluster(json!({})), &[1, 2, 3], 2, "zk-new");
    let action = world.reconcile().await.unwrap();
    assert!(world.ensemble.changes().is_empty());
    assert!(world.api.calls_to(Method::DELETE, "").is_empty());
    let status = world.status();
    assert_eq!(status["phase"], "Running");
    assert_eq!(status["leader"], 2);
    assert_eq!(status["readyReplicas"], 3);
    assert_eq!(status["configVersion"], "200000001");
    assert_eq!(status["observedGeneration"], 2);
    assert_eq!(world.condition("Ready")["status"], "True");
    let cfg = world
        .api
        .get("/api/v1/namespaces/apps/configmaps/zk-config")
        .unwrap();
    assert!(
        cfg["data"]["zoo.cfg"]
            .as_str()
            .unwrap()
            .contains("conclave.join=true")
    );
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(std::time::Duration::from_secs(30))
    );
}

#[tokio::test]
async fn scaling_up_creates_the_next_pod_then_adds_its_server() {
    let world = World::running(cluster(json!({"replicas": 5})), &[1, 2, 3], 1, "zk-new");
    world.reconcile().await.unwrap();
    assert_eq!(world.statefulset_replicas(), json!(4));
    assert!(
        world.ensemble.changes().is_empty(),
        "not added before its pod runs"
    );
    assert_eq!(world.status()["operation"]["kind"], "AddServer");
    assert_eq!(world.status()["operation"]["server"], 4);
    assert_eq!(world.condition("Progressing")["status"], "True");
    assert!(world.events().contains(&"StatefulSetScaled".to_owned()));

    // The pod runs (not Ready: it is not a member yet).
    world
        .api
        .put(&format!("{PODS}/zk-3"), pod(4, "zk-new", false));
    world.reconcile().await.unwrap();
    let changes = world.ensemble.changes();
    assert_eq!(changes.len(), 1);
    let (addr, path, body, token) = &changes[0];
    assert_eq!(
        (addr.as_str(), path.as_str()),
        ("10.0.0.1:8080", "/membership/add")
    );
    assert_eq!(body["expected_version"], "200000001");
    assert_eq!(
        body["server"],
        "server.4=zk-3.zk-peers.apps.svc.cluster.local:2888:3888:participant;2181"
    );
    assert_eq!(token, "secret");
    assert!(world.events().contains(&"MemberAdded".to_owned()));
}

#[tokio::test]
async fn a_refused_change_is_an_event_and_status_says_why() {
    let world = World::running(cluster(json!({"replicas": 5})), &[1, 2, 3], 1, "zk-new");
    world.api.put(STS, statefulset(4));
    world
        .api
        .put(&format!("{PODS}/zk-3"), pod(4, "zk-new", false));
    *world.ensemble.change_status.lock().unwrap() = 409;
    world.reconcile().await.unwrap();
    assert!(world.events().contains(&"ScaleRefused".to_owned()));
    let message = world.condition("Progressing")["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("BadVersion"), "{message}");
}

#[tokio::test]
async fn scaling_down_moves_the_leader_then_removes_then_shrinks() {
    let world = World::running(cluster(json!({"replicas": 2})), &[1, 2, 3], 3, "zk-new");
    world.reconcile().await.unwrap();
    let changes = world.ensemble.changes();
    assert_eq!(changes[0].1, "/leader/transfer");
    assert_eq!(changes[0].0, "10.0.0.3:8080");
    assert_eq!(
        world.statefulset_replicas(),
        json!(3),
        "no pod goes before its server left"
    );

    for id in 1..=3 {
        world
            .ensemble
            .answers(&format!("10.0.0.{id}:8080"), membership(&[1, 2, 3], 1));
    }
    world.reconcile().await.unwrap();
    let changes = world.ensemble.changes();
    assert_eq!(changes[1].1, "/membership/remove");
    assert_eq!(
        changes[1].2,
        json!({"id": 3, "expected_version": "200000001"})
    );
    assert_eq!(world.statefulset_replicas(), json!(3));

    for id in 1..=3 {
        world
            .ensemble
            .answers(&format!("10.0.0.{id}:8080"), membership(&[1, 2], 1));
    }
    world.reconcile().await.unwrap();
    assert_eq!(world.statefulset_replicas(), json!(2));
    assert_eq!(world.status()["operation"]["kind"], "RemoveServer");
    // The volume stays with reclaimPolicy Retain (the default).
    assert!(world.api.calls_to(Method::DELETE, PVCS).is_empty());
}

#[tokio::test]
async fn a_removed_servers_volume_goes_with_reclaim_policy_delete() {
    let world = World::running(
        cluster(json!({"replicas": 2, "storage": {"reclaimPolicy": "Delete"}})),
        &[1, 2],
        1,
        "zk-new",
    );
    world.api.put(
        &format!("{PVCS}/data-zk-2"),
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data-zk-2"}}),
    );
    world.reconcile().await.unwrap();
    let deletes = world.api.calls_to(Method::DELETE, PVCS);
    assert_eq!(deletes.len(), 1);
    assert!(deletes[0].path.ends_with("/data-zk-2"));
    assert!(world.events().contains(&"VolumeDeleted".to_owned()));
}

#[tokio::test]
async fn a_roll_deletes_a_follower_and_hands_leadership_over_before_the_leader() {
    let world = World::running(cluster(json!({})), &[1, 2, 3], 1, "zk-old");
    world.reconcile().await.unwrap();
    let deletes = world.api.calls_to(Method::DELETE, PODS);
    assert_eq!(deletes.len(), 1);
    assert!(!deletes[0].path.ends_with("/zk-0"), "not the leader first");
    assert!(world.events().contains(&"PodRolled".to_owned()));
    assert_eq!(world.status()["phase"], "Upgrading");

    // Both followers updated: the leader's turn, after a handover.
    let world = World::running(cluster(json!({})), &[1, 2, 3], 1, "zk-new");
    world
        .api
        .put(&format!("{PODS}/zk-0"), pod(1, "zk-old", true));
    world.reconcile().await.unwrap();
    assert!(world.api.calls_to(Method::DELETE, PODS).is_empty());
    let changes = world.ensemble.changes();
    assert_eq!(changes[0].1, "/leader/transfer");
    assert!(changes[0].2["to"] == 2 || changes[0].2["to"] == 3);
}

#[tokio::test]
async fn a_roll_stalls_rather_than_moving_past_a_pod_that_is_not_back() {
    let world = World::running(cluster(json!({})), &[1, 2, 3], 1, "zk-old");
    world
        .api
        .put(&format!("{PODS}/zk-2"), pod(3, "zk-new", false));
    world.reconcile().await.unwrap();
    assert!(world.api.calls_to(Method::DELETE, PODS).is_empty());
    assert_eq!(world.condition("Degraded")["reason"], "RollStalled");
    assert!(world.events().contains(&"RollStalled".to_owned()));
}

/// The pod deletion a roll just made wakes the next reconcile before the
/// controller's copy of the resource has the status that recorded it: the
/// operation in flight is read from the API server, not from that copy, or
/// the next status written would erase it (and the roll would forget the
/// pod it waits for).
#[tokio::test]
async fn a_reconcile_on_a_stale_copy_keeps_the_operation_in_flight() {
    let world = World::running(cluster(json!({})), &[1, 2, 3], 1, "zk-old");
    let stale = world.api.get(CR).unwrap();
    world.reconcile().await.unwrap();
    let op = world.status()["operation"].clone();
    assert_eq!(op["kind"], "RollPod");
    let rolled = op["server"].as_u64().unwrap();
    // The StatefulSet re-created the pod on the new template; it cannot
    // run (Pending, not Ready).
    world.api.put(
        &format!("{PODS}/zk-{}", rolled - 1),
        pod(rolled, "zk-new", false),
    );

    world.reconcile_cached(stale).await.unwrap();
    assert_eq!(world.status()["operation"], op, "the roll forgot its pod");
    // It waits for that pod, not a stalled roll of a pod it lost track of.
    assert_eq!(
        world.condition("Progressing")["reason"],
        "RollWaitingForPod"
    );
    assert!(!world.events().contains(&"RollStalled".to_owned()));
    assert_eq!(world.condition("Degraded")["status"], "False");
    assert_eq!(world.api.calls_to(Method::DELETE, PODS).len(), 1);
}

/// `seconds_since_progress` keeps growing through a stalled roll and is 0
/// for a cluster at rest.
#[tokio::test]
async fn a_stalled_roll_makes_no_progress_a_cluster_at_rest_needs_none() {
    let an_hour_ago = std::time::Instant::now() - std::time::Duration::from_secs(3600);
    let gauge = |world: &World| {
        let text = world.metrics.encode();
        let line = text
            .lines()
            .find(|l| l.starts_with("conclave_operator_seconds_since_progress{"))
            .unwrap_or_else(|| panic!("no gauge in {text}"))
            .to_owned();
        line.rsplit(' ').next().unwrap().parse::<f64>().unwrap()
    };

    let stalled = World::running(cluster(json!({})), &[1, 2, 3], 1, "zk-old");
    stalled
        .api
        .put(&format!("{PODS}/zk-2"), pod(3, "zk-new", false));
    stalled
        .metrics
        .progress
        .observe("apps/zk", true, an_hour_ago);
    stalled.reconcile().await.unwrap();
    assert_eq!(stalled.condition("Degraded")["reason"], "RollStalled");
    assert!(gauge(&stalled) >= 3600.0, "{}", gauge(&stalled));

    let at_rest = World::running(cluster(json!({})), &[1, 2, 3], 2, "zk-new");
    at_rest
        .metrics
        .progress
        .observe("apps/zk", true, an_hour_ago);
    at_rest.reconcile().await.unwrap();
    assert_eq!(gauge(&at_rest), 0.0);
}

#[tokio::test]
async fn paused_clusters_are_observed_but_not_changed() {
    let world = World::running(
        cluster(json!({"replicas": 5, "paused": true})),
        &[1, 2, 3],
        1,
        "zk-old",
    );
    world.reconcile().await.unwrap();
    assert_eq!(world.statefulset_replicas(), json!(3));
    assert!(world.ensemble.changes().is_empty());
    assert!(world.api.calls_to(Method::DELETE, "").is_empty());
    assert_eq!(world.status()["phase"], "Paused");
    assert_eq!(world.status()["leader"], 1);
}

#[tokio::test]
async fn an_invalid_spec_applies_nothing_and_says_why() {
    let world = World::running(
        cluster(json!({"config": {"dataDir": "/x"}})),
        &[1, 2, 3],
        1,
        "zk-new",
    );
    world.reconcile().await.unwrap();
    assert!(world.api.calls_to(Method::PATCH, "/configmaps/").is_empty());
    assert!(world.api.calls_to(Method::PATCH, STS).is_empty());
    assert_eq!(world.status()["phase"], "Invalid");
    let ready = world.condition("Ready");
    assert_eq!(ready["reason"], "InvalidSpec");
    assert!(ready["message"].as_str().unwrap().contains("dataDir"));
    assert!(world.events().contains(&"InvalidSpec".to_owned()));
}

#[tokio::test]
async fn kubernetes_without_policy_v1_gets_a_v1beta1_budget() {
    let world = World::running(cluster(json!({})), &[1, 2, 3], 1, "zk-new");
    world
        .api
        .0
        .lock()
        .unwrap()
        .missing_apis
        .push("/apis/policy/v1/".into());
    world.reconcile().await.unwrap();
    let beta = world.api.calls_to(
        Method::PATCH,
        "/apis/policy/v1beta1/namespaces/apps/poddisruptionbudgets/zk",
    );
    assert_eq!(beta.len(), 1);
    assert_eq!(beta[0].body["apiVersion"], "policy/v1beta1");
    assert_eq!(beta[0].body["spec"]["maxUnavailable"], 1);
}

#[tokio::test]
async fn deleting_the_resource_reclaims_volumes_only_when_asked() {
    for (policy, deleted) in [("Retain", 0), ("Delete", 3)] {
        let mut cr = cluster(json!({"storage": {"reclaimPolicy": policy}}));
        cr["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        let world = World::running(cr, &[1, 2, 3], 1, "zk-new");
        world.reconcile().await.unwrap();
        assert_eq!(
            world.api.calls_to(Method::DELETE, PVCS).len(),
            deleted,
            "{policy}"
        );
        assert_eq!(
            world.api.get(CR).unwrap()["metadata"]["finalizers"],
            json!([]),
            "{policy}: the finalizer is released"
        );
    }
}

#[tokio::test]
async fn an_unreachable_ensemble_changes_nothing_and_keeps_the_size() {
    let world = World::running(cluster(json!({"replicas": 5})), &[1, 2, 3], 1, "zk-new");
    *world.ensemble.membership.lock().unwrap() = BTreeMap::new();
    world.reconcile().await.unwrap();
    assert_eq!(world.statefulset_replicas(), json!(3));
    assert!(world.ensemble.changes().is_empty());
    let ready = world.condition("Ready");
    assert_eq!(ready["reason"], "EnsembleUnreachable");
    assert!(
        ready["message"]
            .as_str()
            .unwrap()
            .contains("connection refused")
    );
}

const MONITORING: &str = "monitoring.coreos.com/v1";
const SERVICE_MONITOR: &str = "/apis/monitoring.coreos.com/v1/namespaces/apps/servicemonitors/zk";
const PEERS: &str = "/api/v1/namespaces/apps/services/zk-peers";
const CLIENT: &str = "/api/v1/namespaces/apps/services/zk-client";

fn with_service_monitor(monitor: Value) -> Value {
    cluster(json!({"metrics": {"serviceMonitor": monitor}}))
}

/// Whether a label selector's `matchLabels` picks `object`.
fn selects(match_labels: &Value, object: &Value) -> bool {
    let wanted = match_labels.as_object().expect("matchLabels");
    !wanted.is_empty()
        && wanted
            .iter()
            .all(|(k, v)| object["metadata"]["labels"][k] == *v)
}

/// The Events published with this reason: their types.
fn event_types(world: &World, reason: &str) -> Vec<String> {
    world
        .api
        .calls_to(
            Method::POST,
            "/apis/events.k8s.io/v1/namespaces/apps/events",
        )
        .into_iter()
        .filter(|c| c.body["reason"] == reason)
        .map(|c| c.body["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn an_enabled_service_monitor_is_applied_when_its_crd_is_served() {
    let world = World::running(
        with_service_monitor(
            json!({"enabled": true, "interval": "15s", "labels": {"release": "prometheus"}}),
        ),
        &[1, 2, 3],
        1,
        "zk-new",
    );
    world
        .api
        .serve_api(MONITORING, "ServiceMonitor", "servicemonitors");
    world.reconcile().await.unwrap();

    let calls = world.api.calls_to(Method::PATCH, SERVICE_MONITOR);
    assert_eq!(calls.len(), 1);
    assert!(
        calls[0].query.contains("fieldManager=conclave-operator"),
        "{}",
        calls[0].query
    );
    assert!(calls[0].query.contains("force=true"));
    let monitor = &calls[0].body;
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(monitor["kind"], "ServiceMonitor");
    assert_eq!(monitor["metadata"]["ownerReferences"][0]["uid"], "u-1");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    // It picks the peer Service, which names the admin port, and not the
    // client Service, which has none.
    let selector = &monitor["spec"]["selector"]["matchLabels"];
    let peers = world.api.get(PEERS).expect("the peer Service");
    let client = world.api.get(CLIENT).expect("the client Service");
    assert!(selects(selector, &peers), "{selector} / {peers}");
    assert!(!selects(selector, &client), "{selector} / {client}");
    let endpoint = &monitor["spec"]["endpoints"][0];
    assert_eq!(endpoint["port"], "admin");
    assert_eq!(endpoint["path"], "/metrics");
    assert_eq!(endpoint["interval"], "15s");
    assert!(
        peers["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == endpoint["port"] && p["port"] == 8080)
    );

    let metrics = world.condition("MetricsReady");
    assert_eq!(metrics["status"], "True");
    assert_eq!(metrics["reason"], "ServiceMonitorApplied");
    assert!(event_types(&world, "ServiceMonitorUnavailable").is_empty());
}

#[tokio::test]
async fn an_enabled_service_monitor_without_its_crd_warns_once_and_the_rest_goes_on() {
    let world = World::running(
        with_service_monitor(json!({"enabled": true})),
        &[1, 2, 3],
        1,
        "zk-new",
    );
    world.reconcile().await.unwrap();
    // Discovery was asked, answered 404, and nothing was sent to an API
    // that is not there.
    assert_eq!(
        world
            .api
            .calls_to(Method::GET, "/apis/monitoring.coreos.com/v1")
            .len(),
        1
    );
    assert!(
        world
            .api
            .calls_to(Method::PATCH, "/servicemonitors/")
            .is_empty()
    );
    assert_eq!(world.api.calls_to(Method::PATCH, STS).len(), 1);
    assert_eq!(world.status()["phase"], "Running");
    assert_eq!(
        event_types(&world, "ServiceMonitorUnavailable"),
        vec!["Warning".to_owned()]
    );
    let metrics = world.condition("MetricsReady");
    assert_eq!(metrics["status"], "False");
    assert_eq!(metrics["reason"], "ServiceMonitorCRDMissing");
    let message = metrics["message"].as_str().unwrap();
    assert!(message.contains("Prometheus Operator"), "{message}");
    assert!(
        message.contains("spec.metrics.serviceMonitor.enabled"),
        "{message}"
    );

    // Still missing: no second Event (status already says so).
    world.reconcile().await.unwrap();
    assert_eq!(event_types(&world, "ServiceMonitorUnavailable").len(), 1);
    assert_eq!(world.condition("MetricsReady")["status"], "False");

    // The CRDs installed: the next reconcile applies it.
    world
        .api
        .serve_api(MONITORING, "ServiceMonitor", "servicemonitors");
    world.reconcile().await.unwrap();
    assert!(world.api.get(SERVICE_MONITOR).is_some());
    assert_eq!(world.condition("MetricsReady")["status"], "True");
}

#[tokio::test]
async fn a_discovery_failure_other_than_not_found_fails_the_reconcile() {
    let world = World::running(
        with_service_monitor(json!({"enabled": true})),
        &[1, 2, 3],
        1,
        "zk-new",
    );
    world
        .api
        .0
        .lock()
        .unwrap()
        .refused_apis
        .push("/apis/monitoring.coreos.com/".into());
    let error = world.reconcile().await.unwrap_err();
    assert!(
        matches!(&error, super::Error::Kube(kube::Error::Api(s)) if s.code == 403),
        "{error}"
    );
    // Not taken for missing CRDs.
    assert!(event_types(&world, "ServiceMonitorUnavailable").is_empty());
    assert_eq!(world.condition("MetricsReady"), Value::Null);
}

#[tokio::test]
async fn a_disabled_service_monitor_that_the_cluster_owns_is_deleted() {
    let world = World::running(cluster(json!({})), &[1, 2, 3], 1, "zk-new");
    world
        .api
        .serve_api(MONITORING, "ServiceMonitor", "servicemonitors");
    world.api.put(
        SERVICE_MONITOR,
        json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
               "metadata": {"name": "zk", "namespace": "apps",
                            "ownerReferences": [{"apiVersion": "conclave.dev/v1alpha1",
                                                 "kind": "CoordinationCluster", "name": "zk",
                                                 "uid": "u-1", "controller": true}]},
               "spec": {"endpoints": [{"port": "admin"}]}}),
    );
    world.reconcile().await.unwrap();
    assert_eq!(world.api.calls_to(Method::DELETE, SERVICE_MONITOR).len(), 1);
    assert!(world.api.get(SERVICE_MONITOR).is_none());
    assert!(
        world
            .api
            .calls_to(Method::PATCH, "/servicemonitors/")
            .is_empty()
    );
    assert_eq!(event_types(&world, "ServiceMonitorDeleted").len(), 1);
    let metrics = world.condition("MetricsReady");
    assert_eq!(metrics["status"], "True");
    assert_eq!(metrics["reason"], "ServiceMonitorDisabled");

    // Gone: the next reconcile finds nothing to delete.
    world.reconcile().await.unwrap();
    assert_eq!(world.api.calls_to(Method::DELETE, SERVICE_MONITOR).len(), 1);
}

#[tokio::test]
async fn a_service_monitor_of_the_same_name_that_the_cluster_does_not_own_is_left_alone() {
    let world = World::running(cluster(json!({})), &[1, 2, 3], 1, "zk-new");
    world
        .api
        .serve_api(MONITORING, "ServiceMonitor", "servicemonitors");
    world.api.put(
        SERVICE_MONITOR,
        json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
               "metadata": {"name": "zk", "namespace": "apps"},
               "spec": {"endpoints": [{"port": "web"}]}}),
    );
    world.reconcile().await.unwrap();
    assert!(
        world
            .api
            .calls_to(Method::DELETE, SERVICE_MONITOR)
            .is_empty()
    );
    assert!(world.api.get(SERVICE_MONITOR).is_some());
}

const TLS_SECRET: &str = "/api/v1/namespaces/apps/secrets/zk-tls";

/// A TLS Secret; `crt_base64` is the certificate's (any) content, encoded.
fn tls_secret(crt_base64: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "zk-tls"},
           "type": "kubernetes.io/tls",
           "data": {"tls.crt": crt_base64, "tls.key": "a2V5", "ca.crt": "Y2E="}})
}

fn pod_template_annotation(world: &World, key: &str) -> Value {
    world.api.get(STS).expect("the StatefulSet")["spec"]["template"]["metadata"]["annotations"][key]
        .clone()
}

#[tokio::test]
async fn tls_waits_for_its_secret_and_says_which() {
    let world = World::running(
        cluster(json!({"tls": {"secretName": "zk-tls"}})),
        &[1, 2, 3],
        1,
        "zk-new",
    );
    world.reconcile().await.unwrap();
    // Nothing is rolled into a crash loop.
    assert!(world.api.calls_to(Method::PATCH, STS).is_empty());
    let ready = world.condition("Ready");
    assert_eq!(ready["reason"], "InvalidSpec");
    assert!(
        ready["message"]
            .as_str()
            .unwrap()
            .contains("Secret zk-tls does not exist"),
        "{ready}"
    );
}

#[tokio::test]
async fn tls_serves_a_second_port_and_a_renewed_certificate_rolls_the_pods() {
    let world = World::running(
        cluster(json!({"tls": {"secretName": "zk-tls"}})),
        &[1, 2, 3],
        1,
        "zk-new",
    );
    world.api.put(TLS_SECRET, tls_secret("Zmlyc3Q="));
    world.reconcile().await.unwrap();
    let cfg = world
        .api
        .get("/api/v1/namespaces/apps/configmaps/zk-config")
        .unwrap();
    assert!(
        cfg["data"]["zoo.cfg"]
            .as_str()
            .unwrap()
            .contains("secureClientPort=2281\n")
    );
    let client = world
        .api
        .get("/api/v1/namespaces/apps/services/zk-client")
        .unwrap();
    assert_eq!(client["spec"]["ports"][1]["port"], 2281);
    assert_eq!(
        world.status()["secureConnectionString"],
        "zk-client.apps.svc.cluster.local:2281"
    );
    let first = pod_template_annotation(&world, "conclave.dev/tls-secret-digest");
    assert!(first.is_string(), "{first}");

    world.api.put(TLS_SECRET, tls_secret("cmVuZXdlZA=="));
    world.reconcile().await.unwrap();
    let renewed = pod_template_annotation(&world, "conclave.dev/tls-secret-digest");
    assert_ne!(
        first, renewed,
        "a new certificate must change the pod template"
    );
}

#[tokio::test]
async fn voters_on_one_node_are_warned_about_once() {
    let world = World::running(cluster(json!({})), &[1, 2, 3], 1, "zk-new");
    for id in 1..=3u64 {
        let path = format!("{PODS}/zk-{}", id - 1);
        let mut p = pod(id, "zk-new", true);
        p["spec"]["nodeName"] = json!(if id == 3 { "node-b" } else { "node-a" });
        world.api.put(&path, p);
    }
    world.reconcile().await.unwrap();
    world.reconcile().await.unwrap();
    let warned = world
        .events()
        .iter()
        .filter(|r| *r == "VotersShareNode")
        .count();
    assert_eq!(warned, 1, "{:?}", world.events());
    let placement = world.condition("PlacementWarning");
    assert_eq!(placement["status"], "True");
    assert!(
        placement["message"]
            .as_str()
            .unwrap()
            .contains("servers 1 and 2 run on node node-a"),
        "{placement}"
    );
}

fn zoo_cfg(world: &World) -> String {
    world
        .api
        .get("/api/v1/namespaces/apps/configmaps/zk-config")
        .unwrap()["data"]["zoo.cfg"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A lost quorum, recovered because a person asked, from the server they
/// named: recorded first, then every pod restarted with the recovery in
/// zoo.cfg, then finished (the annotation removed) once the survivor leads.
#[tokio::test]
async fn a_recovery_from_a_lost_quorum_is_asked_restarts_every_pod_and_finishes() {
    let mut cr = cluster(json!({}));
    cr["metadata"]["annotations"] = json!({"conclave.dev/recover-from": "2"});
    let world = World::running(cr, &[1, 2, 3], 1, "zk-new");
    *world.ensemble.membership.lock().unwrap() = BTreeMap::new();

    world.reconcile().await.unwrap();
    let op = world.status()["operation"].clone();
    assert_eq!(op["kind"], "RecoverQuorum");
    assert_eq!(op["server"], 2);
    assert_eq!(op["step"], "Started");
    assert!(world.api.calls_to(Method::DELETE, PODS).is_empty());
    assert!(!zoo_cfg(&world).contains("recoverAlone"));
    assert!(world.events().contains(&"QuorumRecoveryStarted".to_owned()));

    world.reconcile().await.unwrap();
    let token: String = op["started"]
        .as_str()
        .unwrap()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    assert!(
        zoo_cfg(&world).contains(&format!("conclave.recoverAlone=2:{token}")),
        "{}",
        zoo_cfg(&world)
    );
    assert_eq!(world.api.calls_to(Method::DELETE, PODS).len(), 3);
    let status = world.status();
    assert_eq!(status["operation"]["step"], "PodsRestarted");
    assert_eq!(status["recovery"], json!({"server": 2, "token": token}));

    // Still no leader: it waits and says so.
    world.reconcile().await.unwrap();
    assert_eq!(world.status()["operation"]["step"], "PodsRestarted");
    assert_eq!(world.condition("Progressing")["reason"], "RecoveringQuorum");

    // The survivor leads alone: done; the annotation goes, zoo.cfg keeps
    // the recovery.
    for id in 1..=3 {
        world
            .api
            .put(&format!("{PODS}/zk-{}", id - 1), pod(id, "zk-new", id == 2));
    }
    world.ensemble.answers("10.0.0.2:8080", membership(&[2], 2));
    world.reconcile().await.unwrap();
    assert!(world.events().contains(&"QuorumRecovered".to_owned()));
    let cr = world.api.get(CR).unwrap();
    assert_eq!(cr["metadata"]["annotations"], json!({}));
    assert_eq!(cr["spec"]["replicas"], 3, "the merge patch keeps the spec");
    let status = world.status();
    assert_eq!(status["operation"], Value::Null);
    assert_eq!(status["recovery"]["server"], 2);
    assert!(zoo_cfg(&world).contains(&format!("conclave.recoverAlone=2:{token}")));
    assert_eq!(world.statefulset_replicas(), json!(3), "no pod goes");

    // Then the usual plan adds server 1 back, the lowest missing id.
    world.reconcile().await.unwrap();
    let changes = world.ensemble.changes();
    let add = changes.last().expect("a change");
    assert_eq!(add.1, "/membership/add");
    assert!(
        add.2["server"].as_str().unwrap().starts_with("server.1="),
        "{add:?}"
    );
}

/// After server 3 recovered alone, the spec asks for one server: the pods
/// below it are not left running empty. Server 1 joins first (as an
/// observer: no voter changes before it has caught up) and the StatefulSet
/// keeps its three pods until the top servers have left.
#[tokio::test]
async fn after_a_recovery_to_fewer_servers_the_ids_below_the_survivor_join_first() {
    let cr = cluster(json!({"replicas": 1}));
    let world = World::running(cr, &[1, 2, 3], 3, "zk-new");
    *world.ensemble.membership.lock().unwrap() = BTreeMap::new();
    world.ensemble.answers("10.0.0.3:8080", membership(&[3], 3));

    world.reconcile().await.unwrap();
    let changes = world.ensemble.changes();
    let add = changes.last().expect("a change");
    assert_eq!(add.1, "/membership/add");
    let line = add.2["server"].as_str().unwrap();
    assert!(line.starts_with("server.1="), "{add:?}");
    assert!(line.contains(":observer;"), "{add:?}");
    assert_eq!(world.statefulset_replicas(), json!(3));
    assert_eq!(world.status()["operation"]["kind"], "AddObserver");
}

#[tokio::test]
async fn a_recovery_is_refused_while_a_leader_serves() {
    let mut cr = cluster(json!({}));
    cr["metadata"]["annotations"] = json!({"conclave.dev/recover-from": "2"});
    let world = World::running(cr, &[1, 2, 3], 1, "zk-new");
    world.reconcile().await.unwrap();
    assert_eq!(world.status()["operation"], Value::Null);
    assert!(world.api.calls_to(Method::DELETE, PODS).is_empty());
    assert!(world.ensemble.changes().is_empty());
    let progressing = world.condition("Progressing");
    assert_eq!(progressing["reason"], "RecoveryRefused");
    assert!(
        progressing["message"]
            .as_str()
            .unwrap()
            .contains("server 1 leads"),
        "{progressing}"
    );
    assert!(world.events().contains(&"RecoveryRefused".to_owned()));
}

fn statefulset_image(world: &World) -> Value {
    world.api.get(STS).expect("the StatefulSet")["spec"]["template"]["spec"]["containers"][0]
        ["image"]
        .clone()
}

/// An image change that skips a release is not rolled: the StatefulSet
/// keeps the running image, and status and one Event say why; the skip
/// annotation lets it through.
#[tokio::test]
async fn an_image_change_that_skips_a_release_is_refused_unless_told_to_skip_the_check() {
    let world = World::running(
        cluster(json!({"image": "conclave:1.6.0"})),
        &[1, 2, 3],
        2,
        "zk-new",
    );
    for id in 1..=3 {
        let mut p = pod(id, "zk-new", true);
        p["spec"]["containers"][0]["image"] = json!("conclave:1.4.2");
        world.api.put(&format!("{PODS}/zk-{}", id - 1), p);
    }
    world.reconcile().await.unwrap();
    assert_eq!(statefulset_image(&world), "conclave:1.4.2");
    let allowed = world.condition("UpgradeAllowed");
    assert_eq!(allowed["status"], "False");
    assert_eq!(allowed["reason"], "PathRefused");
    assert!(
        allowed["message"]
            .as_str()
            .unwrap()
            .contains("to 1.5.x or 2.0.x first"),
        "{allowed}"
    );
    assert_eq!(world.status()["targetVersion"], "conclave:1.6.0");
    assert_eq!(world.status()["currentVersion"], "conclave:1.4.2");
    assert!(world.events().contains(&"UpgradeRefused".to_owned()));
    world.reconcile().await.unwrap();
    let refused = world
        .events()
        .iter()
        .filter(|r| *r == "UpgradeRefused")
        .count();
    assert_eq!(refused, 1, "one Event, not one per reconcile");

    let mut cr = world.api.get(CR).unwrap();
    cr["metadata"]["annotations"] = json!({"conclave.dev/skip-version-check": "true"});
    world.api.put(CR, cr);
    world.reconcile().await.unwrap();
    assert_eq!(statefulset_image(&world), "conclave:1.6.0");
    assert_eq!(world.condition("UpgradeAllowed")["reason"], "CheckSkipped");
}

const CA_SECRET: &str = "/api/v1/namespaces/apps/secrets/zk-ca";
const INTERNAL_TLS: &str = "/api/v1/namespaces/apps/secrets/zk-internal-tls";

fn template_stage(world: &World) -> Value {
    world.api.get(STS).expect("the StatefulSet")["spec"]["template"]["metadata"]["annotations"]
        ["conclave.dev/internal-tls"]
        .clone()
}

/// A new cluster starts with quorum and admin TLS on: the CA and one
/// certificate per server exist before the StatefulSet names them, and
/// the pods mount the certificates, never the CA's key.
#[tokio::test]
async fn a_new_cluster_starts_with_internal_tls_on() {
    let world = World::new(cluster(json!({})));
    world.reconcile().await.unwrap();
    let ca = world.api.get(CA_SECRET).expect("the CA Secret");
    assert!(ca["data"]["ca.key"].as_str().is_some_and(|k| !k.is_empty()));
    assert_eq!(ca["metadata"]["ownerReferences"][0]["uid"], "u-1");
    let certs = world.api.get(INTERNAL_TLS).expect("the certificates");
    assert_eq!(certs["data"]["ca.crt"], ca["data"]["ca.crt"]);
    assert!(certs["data"].get("ca.key").is_none(), "no key of the CA");
    for id in 1..=3 {
        assert!(
            certs["data"][format!("server-{id}.pem")].is_string(),
            "server {id}"
        );
    }
    assert_eq!(template_stage(&world), "On");
    let sts = world.api.get(STS).unwrap();
    let secrets: Vec<&str> = sts["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["secret"]["secretName"].as_str())
        .collect();
    assert_eq!(secrets, ["zk-admin-token", "zk-internal-tls"]);
    let cfg = world
        .api
        .get("/api/v1/namespaces/apps/configmaps/zk-config")
        .unwrap();
    let zoo = cfg["data"]["zoo-tls.cfg"].as_str().unwrap();
    assert!(
        zoo.contains("sslQuorum=true") && zoo.contains("portUnification=false"),
        "{zoo}"
    );
    assert_eq!(world.status()["internalTls"], "On");
    // Nothing is issued again on the next reconcile.
    world.reconcile().await.unwrap();
    assert_eq!(world.api.calls_to(Method::PATCH, INTERNAL_TLS).len(), 1);
    assert_eq!(world.api.calls_to(Method::PATCH, CA_SECRET).len(), 1);
}

/// A plain cluster made before internal TLS (its template has no stage)
/// moves one stage per finished roll: never while a pod runs an older
/// template, is not Ready, or the StatefulSet controller has not caught
/// up with the last change.
#[tokio::test]
async fn a_running_plain_cluster_moves_to_tls_one_finished_roll_at_a_time() {
    let world = World::running(cluster(json!({})), &[1, 2, 3], 1, "zk-new");
    let mut sts = statefulset(3);
    sts["spec"]["template"] = json!({});
    sts["metadata"]["generation"] = json!(4);
    sts["status"]["observedGeneration"] = json!(3);
    world.api.put(STS, sts.clone());
    world.reconcile().await.unwrap();
    assert_eq!(
        template_stage(&world),
        Value::Null,
        "the StatefulSet controller lags: stay"
    );

    sts["status"]["observedGeneration"] = json!(4);
    world.api.put(STS, sts.clone());
    world
        .api
        .put(&format!("{PODS}/zk-1"), pod(2, "zk-new", false));
    world.reconcile().await.unwrap();
    assert_eq!(
        template_stage(&world),
        Value::Null,
        "a pod is not Ready: stay"
    );
    assert!(
        world.api.get(INTERNAL_TLS).is_some(),
        "certificates made ahead"
    );

    world
        .api
        .put(&format!("{PODS}/zk-1"), pod(2, "zk-new", true));
    world.reconcile().await.unwrap();
    assert_eq!(template_stage(&world), "Accepting");
    assert!(world.events().contains(&"InternalTlsStage".to_owned()));
    assert_eq!(world.status()["internalTls"], "Accepting");
    assert_eq!(world.condition("Progressing")["reason"], "InternalTlsRoll");
    assert_eq!(world.condition("Progressing")["status"], "True");

    // The StatefulSet controller saw the new template; the pods roll.
    let mut sts = world.api.get(STS).unwrap();
    sts["status"]["updateRevision"] = json!("zk-accepting");
    sts["metadata"]["generation"] = json!(5);
    sts["status"]["observedGeneration"] = json!(5);
    world.api.put(STS, sts);
    world.reconcile().await.unwrap();
    assert_eq!(template_stage(&world), "Accepting", "mid-roll: stay");
    assert_eq!(
        world.api.calls_to(Method::DELETE, PODS).len(),
        1,
        "one outdated pod rolled"
    );

    for id in 1..=3 {
        world.api.put(
            &format!("{PODS}/zk-{}", id - 1),
            pod(id, "zk-accepting", true),
        );
    }
    // This reconcile closes the roll's step recorded in status; the next
    // one moves.
    assert!(!world.status()["operation"].is_null());
    world.reconcile().await.unwrap();
    assert_eq!(template_stage(&world), "Accepting");
    world.reconcile().await.unwrap();
    assert_eq!(template_stage(&world), "Dialling");
}

/// Turned off, a cluster on TLS steps back the same way, and its
/// certificates stay until it is plain.
#[tokio::test]
async fn turning_internal_tls_off_steps_back_one_stage() {
    let world = World::running(
        cluster(json!({"internalTls": {"enabled": false}})),
        &[1, 2, 3],
        1,
        "zk-new",
    );
    let mut sts = statefulset(3);
    sts["spec"]["template"] =
        json!({"metadata": {"annotations": {"conclave.dev/internal-tls": "On"}}});
    sts["status"]["observedGeneration"] = json!(1);
    sts["metadata"]["generation"] = json!(1);
    world.api.put(STS, sts);
    world.reconcile().await.unwrap();
    assert_eq!(template_stage(&world), "Dialling");
    assert!(world.api.get(INTERNAL_TLS).is_some());

    // A plain cluster that stays plain makes no certificates.
    let plain = World::running(
        cluster(json!({"internalTls": {"enabled": false}})),
        &[1, 2, 3],
        1,
        "zk-new",
    );
    let mut sts = statefulset(3);
    sts["spec"]["template"] = json!({});
    plain.api.put(STS, sts);
    plain.reconcile().await.unwrap();
    assert!(plain.api.get(CA_SECRET).is_none());
    assert_eq!(template_stage(&plain), Value::Null);
}

/// The chart's alerts and dashboard (`charts/conclave/files/`) ask for the
/// operator's metrics by the names its registry exports after real
/// reconciles (the servers' names are checked against a real leader's
/// `/metrics`, `crates/server/tests/integration/monitoring.rs`).
#[tokio::test]
async fn the_charts_queries_name_metrics_the_operator_exports() {
    // A scale-up takes an action; a reconcile of a cluster whose resource
    // is gone fails: every family the chart reads has a sample.
    let world = World::running(cluster(json!({"replicas": 5})), &[1, 2, 3], 1, "zk-new");
    world.reconcile().await.unwrap();
    world.api.0.lock().unwrap().objects.remove(CR);
    let cached = cluster(json!({}));
    let error = world.reconcile_cached(cached.clone()).await.unwrap_err();
    // The controller hands a failed reconcile to its error policy, which
    // counts it.
    let (ctx, task) = world.context();
    let cc: CoordinationCluster = serde_json::from_value(cached).unwrap();
    super::error_policy(Arc::new(cc), &error, ctx);
    task.abort();
    let seen = promql::exposed(&world.metrics.encode());
    let wanted: std::collections::BTreeSet<String> = promql::chart_queries()
        .iter()
        .flat_map(|q| promql::metric_names(q))
        .filter(|name| name.starts_with(promql::OPERATOR_PREFIX))
        .collect();
    assert!(wanted.len() >= 6, "{wanted:?}");
    let missing: Vec<&String> = wanted.iter().filter(|name| !seen.contains(*name)).collect();
    assert!(
        missing.is_empty(),
        "the chart asks for operator metrics that are not exported: {missing:?}\n{}",
        world.metrics.encode()
    );
}
