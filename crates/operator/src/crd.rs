//! The `CoordinationCluster` resource (group `conclave.dev`, version
//! `v1alpha1`): what a user asks for (`spec`) and what the operator reports
//! (`status`). The CRD in `crds/` is generated from these types
//! (`cargo run -p operator --bin crdgen`), never written by hand.

// `KubeSchema` (for the CEL rules) derives the schema on a private copy of
// each struct, which keeps the `pub`: the lint would fire on that copy.
#![allow(unreachable_pub)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, ResourceRequirements, Toleration, TopologySpreadConstraint,
};
use k8s_openapi::api::networking::v1::NetworkPolicyPeer;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A Conclave ensemble.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "conclave.dev",
    version = "v1alpha1",
    kind = "CoordinationCluster",
    namespaced,
    status = "CoordinationClusterStatus",
    shortname = "ccl",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".spec.replicas"}"#,
    printcolumn = r#"{"name":"Ready","type":"integer","jsonPath":".status.readyReplicas"}"#,
    printcolumn = r#"{"name":"Leader","type":"integer","jsonPath":".status.leader"}"#,
    printcolumn = r#"{"name":"Version","type":"string","jsonPath":".status.currentVersion"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct CoordinationClusterSpec {
    /// Participants (voting members), 1 to 9; an even number is allowed
    /// with a warning, as ZooKeeper does.
    #[schemars(range(min = 1, max = 9))]
    pub replicas: i32,
    /// Observers (non-voting members), 0 to 9.
    #[serde(default)]
    #[schemars(range(min = 0, max = 9))]
    pub observers: i32,
    /// The server image (it holds `conclave-server`).
    pub image: String,
    #[serde(default)]
    pub resources: Option<ResourceRequirements>,
    #[serde(default)]
    pub storage: StorageSpec,
    /// zoo.cfg settings the operator does not own (see `config::OWNED`).
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// The ports every server listens on; fixed at creation (the servers'
    /// addresses in the committed membership carry them).
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf").message("ports cannot change after creation"))]
    pub ports: Ports,
    /// TLS on a second client port (ZooKeeper's `secureClientPort`); the
    /// plaintext client port keeps serving.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
    #[serde(default)]
    pub pod: PodOverrides,
    #[serde(default)]
    pub pod_disruption_budget: PdbSpec,
    #[serde(default)]
    pub metrics: MetricsSpec,
    /// The NetworkPolicy that limits who reaches each server port.
    #[serde(default)]
    pub network_policy: NetworkPolicySpec,
    /// Mutual TLS between the servers and TLS on the admin port, from a CA
    /// the operator keeps (on by default).
    #[serde(default)]
    pub internal_tls: InternalTlsSpec,
    /// Stop every change; status keeps being refreshed.
    #[serde(default)]
    pub paused: bool,
}

/// Each server's volume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// A Kubernetes quantity, e.g. `10Gi`.
    /// Fixed at creation: a StatefulSet's claim template cannot change
    /// (volume expansion is not implemented).
    #[serde(default = "default_size")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("storage.size cannot change after creation"))]
    pub size: String,
    /// The StorageClass (the cluster's default when unset); fixed at
    /// creation (a StatefulSet's claim template cannot change).
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf").message("storageClassName cannot change after creation"))]
    pub storage_class_name: Option<String>,
    /// What happens to a volume when its server leaves or the cluster is
    /// deleted.
    #[serde(default)]
    pub reclaim_policy: ReclaimPolicy,
}

impl Default for StorageSpec {
    fn default() -> Self {
        StorageSpec {
            size: default_size(),
            storage_class_name: None,
            reclaim_policy: ReclaimPolicy::default(),
        }
    }
}

fn default_size() -> String {
    "10Gi".to_owned()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ReclaimPolicy {
    /// Volumes are kept (the default: data is never deleted by accident).
    #[default]
    Retain,
    Delete,
}

/// The ports every server listens on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ports {
    #[serde(default = "client_port")]
    pub client: u16,
    #[serde(default = "quorum_port")]
    pub quorum: u16,
    #[serde(default = "election_port")]
    pub election: u16,
    #[serde(default = "admin_port")]
    pub admin: u16,
}

impl Default for Ports {
    fn default() -> Self {
        Ports {
            client: client_port(),
            quorum: quorum_port(),
            election: election_port(),
            admin: admin_port(),
        }
    }
}

fn client_port() -> u16 {
    2181
}
fn quorum_port() -> u16 {
    2888
}
fn election_port() -> u16 {
    3888
}
fn admin_port() -> u16 {
    8080
}

/// The secure client port and the Secret its certificate comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsSpec {
    /// A Secret in the cluster's namespace with `tls.crt` (the servers'
    /// certificate chain, valid for the client Service's and the pods' DNS
    /// names) and `tls.key` (its unencrypted private key), as cert-manager
    /// and `kubectl create secret tls` write them, and `ca.crt` (the CA
    /// that signs clients' certificates) unless `clientAuth` is `None`.
    /// A change to the Secret rolls the pods, one at a time.
    #[schemars(length(min = 1))]
    pub secret_name: String,
    /// The secure client port.
    #[serde(default = "secure_client_port")]
    #[schemars(range(min = 1))]
    pub port: u16,
    /// Whether clients must present a certificate signed by `ca.crt`
    /// (ZooKeeper's `ssl.clientAuth`).
    #[serde(default)]
    pub client_auth: TlsClientAuth,
}

fn secure_client_port() -> u16 {
    2281
}

/// ZooKeeper's `ssl.clientAuth`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TlsClientAuth {
    /// A client without a valid certificate is refused (ZooKeeper's default).
    #[default]
    Need,
    /// A client without a certificate is served; one with a bad certificate
    /// is refused.
    Want,
    /// Clients are not asked for a certificate.
    None,
}

impl TlsClientAuth {
    /// The zoo.cfg value.
    pub fn zoo_cfg_value(self) -> &'static str {
        match self {
            TlsClientAuth::Need => "need",
            TlsClientAuth::Want => "want",
            TlsClientAuth::None => "none",
        }
    }
}

/// What the pod template may carry besides what the operator sets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodOverrides {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Replaces the default: servers preferably on different nodes.
    #[serde(default)]
    pub affinity: Option<Affinity>,
    #[serde(default)]
    pub tolerations: Vec<Toleration>,
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default)]
    pub priority_class_name: Option<String>,
    /// Replaces the default: servers spread over zones where the nodes carry
    /// `topology.kubernetes.io/zone` (`ScheduleAnyway`, so a cluster without
    /// zones still schedules them). An empty list turns spreading off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology_spread_constraints: Option<Vec<TopologySpreadConstraint>>,
}

/// The PodDisruptionBudget: voluntary evictions one server at a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PdbSpec {
    #[serde(default = "enabled")]
    pub enabled: bool,
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub max_unavailable: i32,
}

impl Default for PdbSpec {
    fn default() -> Self {
        PdbSpec {
            enabled: true,
            max_unavailable: 1,
        }
    }
}

fn enabled() -> bool {
    true
}
fn one() -> i32 {
    1
}

/// A NetworkPolicy `<name>` over the cluster's pods (on by default): the
/// quorum and election ports take only the cluster's own pods, the admin
/// port only the operator's pods and `adminFrom`, the client ports only
/// `clientFrom` (the cluster's namespace when unset). It takes effect
/// where the network plugin enforces NetworkPolicies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicySpec {
    /// Create the NetworkPolicy. Turned off, one the operator created is
    /// deleted.
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Who may reach the client ports (plain and TLS): NetworkPolicy
    /// peers. Unset: every pod of the cluster's namespace. `[{}]`-style
    /// openness is spelt `[{"namespaceSelector": {}}]` (every namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_from: Option<Vec<NetworkPolicyPeer>>,
    /// Who else may reach the admin port besides the operator (a
    /// Prometheus scraping `/metrics`, say).
    #[serde(default)]
    pub admin_from: Vec<NetworkPolicyPeer>,
}

impl Default for NetworkPolicySpec {
    fn default() -> Self {
        NetworkPolicySpec {
            enabled: true,
            client_from: None,
            admin_from: Vec::new(),
        }
    }
}

/// Quorum TLS (ZooKeeper's `sslQuorum`, with each server's certificate
/// naming its own pod, so one server cannot speak as another) and admin
/// TLS (`admin.forceHttps`), with certificates from a CA the operator makes
/// for the cluster (Secret `<name>-ca`) and renews before they expire. A
/// running cluster is moved on or off by three rolls (`docs/security.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InternalTlsSpec {
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// How long a server's certificate is valid; it is renewed when a
    /// third of that is left (the servers reload it without a restart).
    #[serde(default = "certificate_days")]
    #[schemars(range(min = 3, max = 3650))]
    pub certificate_days: u32,
}

impl Default for InternalTlsSpec {
    fn default() -> Self {
        InternalTlsSpec {
            enabled: true,
            certificate_days: certificate_days(),
        }
    }
}

fn certificate_days() -> u32 {
    90
}

/// Where a cluster is on the way to quorum and admin TLS, or back: each
/// stage can run beside the one before and the one after it, so each step
/// is one roll, and every pod is on the stage before the next begins.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum InternalTlsStage {
    /// Plain peers and admin HTTP.
    #[default]
    Off,
    /// Peers and admin take TLS and plain; peers still dial plain.
    Accepting,
    /// Peers dial TLS, still taking plain; admin takes both.
    Dialling,
    /// TLS only, with member identity; admin HTTPS only.
    On,
}

/// How the servers' metrics are collected. Every server serves
/// Prometheus text at `/metrics` on its admin port, whatever is set here.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricsSpec {
    #[serde(default)]
    pub service_monitor: ServiceMonitorSpec,
}

/// A Prometheus Operator ServiceMonitor `<name>` that scrapes every
/// server's admin port through the peer Service. It needs the Prometheus
/// Operator's CRDs: without them the operator says so in status
/// (`MetricsReady`) and an Event, and goes on with the rest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceMonitorSpec {
    /// Create the ServiceMonitor (off by default). Turned off, a
    /// ServiceMonitor the operator created is deleted.
    #[serde(default)]
    pub enabled: bool,
    /// How often Prometheus scrapes, a Prometheus duration such as `30s`
    /// or `1m`; unset: the Prometheus's own scrape interval.
    #[serde(default)]
    #[schemars(pattern(r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"))]
    pub interval: Option<String>,
    /// Labels added to the ServiceMonitor, for a Prometheus whose
    /// `serviceMonitorSelector` picks ServiceMonitors by label (e.g.
    /// `release: prometheus`). The operator's own labels win a clash.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// What the operator observed and is doing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CoordinationClusterStatus {
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub observed_generation: Option<i64>,
    /// Members of the committed membership (for the scale subresource).
    #[serde(default)]
    pub replicas: i32,
    #[serde(default)]
    pub ready_replicas: i32,
    /// The pods' label selector (for the scale subresource).
    #[serde(default)]
    pub selector: Option<String>,
    #[serde(default)]
    pub members: Vec<MemberStatus>,
    #[serde(default)]
    pub leader: Option<u64>,
    /// The committed membership's version (hex, as in /zookeeper/config).
    #[serde(default)]
    pub config_version: Option<String>,
    #[serde(default)]
    pub current_version: Option<String>,
    #[serde(default)]
    pub target_version: Option<String>,
    /// The membership or roll step in flight, so that a restarted operator
    /// resumes it.
    #[serde(default)]
    pub operation: Option<Operation>,
    /// `host:port` of the client Service.
    #[serde(default)]
    pub connection_string: Option<String>,
    /// `host:port` of the client Service's TLS port, when `spec.tls` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure_connection_string: Option<String>,
    /// The internal TLS stage the servers' template is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_tls: Option<InternalTlsStage>,
    /// The last recovery from a lost quorum (the annotation
    /// `conclave.dev/recover-from`): zoo.cfg keeps naming it, so that a
    /// server that comes back later with its old data sets it aside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<RecoveryStatus>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// A recovery from a lost quorum: the survivor, and the token that makes
/// every server act on it once (`conclave.recoverAlone=<server>:<token>`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryStatus {
    pub server: u64,
    pub token: String,
}

/// The annotation by which a person asks for a recovery from a lost
/// quorum, naming the survivor's server id. The operator never recovers
/// by itself; it removes the annotation once the survivor leads.
pub const RECOVER_FROM_ANNOTATION: &str = "conclave.dev/recover-from";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberStatus {
    pub id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    pub role: String,
    #[serde(default)]
    pub last_zxid: Option<String>,
    #[serde(default)]
    pub synced: bool,
    #[serde(default)]
    pub version: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// `AddMember`, `RemoveMember`, `TransferLeadership`, `Roll`.
    pub kind: String,
    pub server: u64,
    pub step: String,
    #[serde(default)]
    pub expected_config_version: Option<String>,
    pub started: String,
}
