//! The StatefulSet: one pod per server, server id = ordinal + 1.
//!
//! - `podManagementPolicy: Parallel`: a cold start needs a quorum before
//!   any pod is Ready; ordered start would deadlock. Ordering of changes is
//!   the operator's job.
//! - `updateStrategy: OnDelete`: the operator deletes outdated pods one at
//!   a time, the leader last.
//! - Readiness is `/readyz` (serving in a quorum); liveness is `/healthz`
//!   (the process answers), never quorum: a server without a quorum must
//!   not be restarted for it.
//! - The pod writes `myid` from its ordinal before the server starts.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec, StatefulSetUpdateStrategy};
use k8s_openapi::api::core::v1::{
    Affinity, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, HTTPGetAction,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PodAffinityTerm, PodAntiAffinity,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, SecretVolumeSource, SecurityContext,
    TopologySpreadConstraint, Volume, VolumeMount, VolumeResourceRequirements,
    WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::config::{
    CONFIG_DIR, DATA_DIR, TLS_DIR, TLS_KEY_STORE, TLS_SECRET_DIR, TOKEN_FILE, config_file,
};
use super::{BuildError, Names, internal_tls, labels, owned_meta};
use crate::crd::{CoordinationCluster, InternalTlsStage};

/// The data volume claim template's name.
pub const DATA_VOLUME: &str = "data";

/// The Secret holding the admin API token, mounted at `TOKEN_FILE`.
pub fn token_secret_name(names: &Names) -> String {
    format!("{}-admin-token", names.cluster)
}

/// Writes myid from the pod's ordinal (the hostname's last dash-separated
/// part), with TLS joins the Secret's key and certificate chain into the
/// PEM key store zoo.cfg names (readable by the server's user only), with
/// internal TLS links this server's own certificate, then runs the server.
fn start_command(tls: bool, stage: InternalTlsStage) -> Vec<String> {
    let key_store = if tls {
        format!(
            "(umask 077; cat {TLS_SECRET_DIR}/tls.key {TLS_SECRET_DIR}/tls.crt > {TLS_KEY_STORE}); "
        )
    } else {
        String::new()
    };
    vec![
        "/bin/sh".to_owned(),
        "-c".to_owned(),
        format!(
            "set -e; ordinal=\"${{HOSTNAME##*-}}\"; echo $((ordinal + 1)) > {DATA_DIR}/myid; \
             {key_store}{internal}exec conclave-server --config {CONFIG_DIR}/{config_file}",
            config_file = config_file(stage),
            internal = internal_tls::start_script(stage),
        ),
    ]
}

/// A probe of the admin port, over HTTPS when the server speaks it (the
/// kubelet does not check the certificate). `(period, failures)`.
fn http_probe(path: &str, port: u16, https: bool, (period, failures): (i32, i32)) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::Int(i32::from(port)),
            scheme: https.then(|| "HTTPS".to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        ..Probe::default()
    }
}

/// Servers preferably on different nodes, unless the spec says otherwise.
fn default_affinity(names: &Names) -> Affinity {
    Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: PodAffinityTerm {
                        label_selector: Some(LabelSelector {
                            match_labels: Some(labels(names)),
                            ..LabelSelector::default()
                        }),
                        topology_key: "kubernetes.io/hostname".to_owned(),
                        ..PodAffinityTerm::default()
                    },
                },
            ]),
            ..PodAntiAffinity::default()
        }),
        ..Affinity::default()
    }
}

/// Servers spread over zones where there are zones. `ScheduleAnyway` makes it
/// a preference: a cluster whose nodes carry no zone label (or too few zones
/// for the servers) still schedules every server.
fn default_topology_spread(names: &Names) -> Vec<TopologySpreadConstraint> {
    vec![TopologySpreadConstraint {
        max_skew: 1,
        topology_key: "topology.kubernetes.io/zone".to_owned(),
        when_unsatisfiable: "ScheduleAnyway".to_owned(),
        label_selector: Some(LabelSelector {
            match_labels: Some(labels(names)),
            ..LabelSelector::default()
        }),
        ..TopologySpreadConstraint::default()
    }]
}

/// Annotation on the pod template: a digest of the settings a server reads
/// at start (so that changing them rolls the pods). The server lines and
/// `conclave.join` are left out: a membership change must not roll anyone.
pub const CONFIG_DIGEST: &str = "conclave.dev/config-digest";
/// Annotation on the `CoordinationCluster` (any new value) that rolls every
/// pod in the usual order, like `kubectl rollout restart`.
pub const RESTARTED_AT: &str = "conclave.dev/restartedAt";

/// Annotation on the pod template: a digest of the TLS Secret's content,
/// so that a renewed certificate rolls the pods (the server reads it at
/// start).
pub const TLS_SECRET_DIGEST: &str = "conclave.dev/tls-secret-digest";

fn pod_annotations(
    cc: &CoordinationCluster,
    tls_secret: Option<&str>,
    stage: InternalTlsStage,
) -> BTreeMap<String, String> {
    let mut annotations = cc.spec.pod.annotations.clone();
    // Read back as the stage the servers run (absent: `Off`, as on pods
    // made before internal TLS existed).
    if stage != InternalTlsStage::Off {
        annotations.insert(
            internal_tls::STAGE_ANNOTATION.to_owned(),
            serde_json::to_value(stage)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
        );
    }
    let mut settings = serde_json::json!({"config": cc.spec.config, "ports": cc.spec.ports});
    // Only with TLS, so that pods made before `tls` existed keep their
    // digest.
    if let Some(tls) = &cc.spec.tls {
        settings["tls"] = serde_json::json!(tls);
    }
    annotations.insert(
        CONFIG_DIGEST.to_owned(),
        format!("{:016x}", fnv1a(settings.to_string().as_bytes())),
    );
    if let Some(digest) = tls_secret.filter(|_| cc.spec.tls.is_some()) {
        annotations.insert(TLS_SECRET_DIGEST.to_owned(), digest.to_owned());
    }
    if let Some(at) = cc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(RESTARTED_AT))
    {
        annotations.insert(RESTARTED_AT.to_owned(), at.clone());
    }
    annotations
}

/// FNV-1a: a stable digest (the std hasher may change between releases,
/// which would roll every pod after an operator upgrade).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Makes the data volume the server's (uid 1000): volumes such as host
/// paths ignore `fsGroup`, and a root-owned directory would stop the
/// server from writing `myid` and its store. The only step that runs as
/// root.
fn prepare_data_container(image: &str) -> Container {
    Container {
        name: "prepare-data".to_owned(),
        image: Some(image.to_owned()),
        command: Some(vec![
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            format!("chown 1000:1000 {DATA_DIR} && chmod 0750 {DATA_DIR}"),
        ]),
        volume_mounts: Some(vec![VolumeMount {
            name: DATA_VOLUME.to_owned(),
            mount_path: DATA_DIR.to_owned(),
            ..VolumeMount::default()
        }]),
        security_context: Some(SecurityContext {
            run_as_user: Some(0),
            run_as_group: Some(0),
            run_as_non_root: Some(false),
            ..SecurityContext::default()
        }),
        ..Container::default()
    }
}

/// A Secret (read-only, `<name>-secret`) and the memory-backed directory
/// (`<name>`) a key store is written or linked to.
fn secret_volumes(name: &str, secret_name: &str) -> [Volume; 2] {
    [
        Volume {
            name: format!("{name}-secret"),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret_name.to_owned()),
                // Readable by the server's group only (fsGroup).
                default_mode: Some(0o440),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        },
        Volume {
            name: name.to_owned(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: Some("Memory".to_owned()),
                ..EmptyDirVolumeSource::default()
            }),
            ..Volume::default()
        },
    ]
}

fn secret_volume_mounts(name: &str, secret_dir: &str, dir: &str) -> [VolumeMount; 2] {
    [
        VolumeMount {
            name: format!("{name}-secret"),
            mount_path: secret_dir.to_owned(),
            read_only: Some(true),
            ..VolumeMount::default()
        },
        VolumeMount {
            name: name.to_owned(),
            mount_path: dir.to_owned(),
            ..VolumeMount::default()
        },
    ]
}

/// The StatefulSet with `replicas` pods (the committed membership's size,
/// as the controller decides it). `tls_secret` is a digest of the TLS
/// Secret's content (see [`TLS_SECRET_DIGEST`]); `stage` is the internal
/// TLS stage the servers run (`internal_tls.rs`).
pub fn statefulset(
    cc: &CoordinationCluster,
    replicas: i32,
    tls_secret: Option<&str>,
    stage: InternalTlsStage,
) -> Result<StatefulSet, BuildError> {
    let names = Names::of(cc)?;
    let spec = &cc.spec;
    let ports = &spec.ports;
    let tls = spec.tls.as_ref();
    // `Some(())` when the servers mount the internal certificates.
    let internal = (stage != InternalTlsStage::Off).then_some(());
    let https = internal_tls::admin_https(stage);
    let mut pod_labels = spec.pod.labels.clone();
    pod_labels.extend(labels(&names));
    let container = Container {
        name: "conclave".to_owned(),
        image: Some(spec.image.clone()),
        command: Some(start_command(tls.is_some(), stage)),
        ports: Some(
            [
                ("client", ports.client),
                ("quorum", ports.quorum),
                ("election", ports.election),
                ("admin", ports.admin),
            ]
            .into_iter()
            .chain(tls.map(|t| ("secure-client", t.port)))
            .map(|(name, port)| ContainerPort {
                name: Some(name.to_owned()),
                container_port: i32::from(port),
                ..ContainerPort::default()
            })
            .collect(),
        ),
        readiness_probe: Some(http_probe("/readyz", ports.admin, https, (2, 2))),
        liveness_probe: Some(http_probe("/healthz", ports.admin, https, (10, 6))),
        resources: spec.resources.clone(),
        volume_mounts: Some(
            vec![
                VolumeMount {
                    name: DATA_VOLUME.to_owned(),
                    mount_path: DATA_DIR.to_owned(),
                    ..VolumeMount::default()
                },
                VolumeMount {
                    name: "config".to_owned(),
                    mount_path: CONFIG_DIR.to_owned(),
                    read_only: Some(true),
                    ..VolumeMount::default()
                },
                VolumeMount {
                    name: "admin-token".to_owned(),
                    mount_path: TOKEN_FILE
                        .rsplit_once('/')
                        .map_or(TOKEN_FILE, |(dir, _)| dir)
                        .to_owned(),
                    read_only: Some(true),
                    ..VolumeMount::default()
                },
            ]
            .into_iter()
            .chain(
                tls.into_iter()
                    .flat_map(|_| secret_volume_mounts("tls", TLS_SECRET_DIR, TLS_DIR)),
            )
            .chain(internal.into_iter().flat_map(|()| {
                secret_volume_mounts("internal-tls", internal_tls::SECRET_DIR, internal_tls::DIR)
            }))
            .collect(),
        ),
        ..Container::default()
    };
    let pod =
        PodSpec {
            init_containers: Some(vec![prepare_data_container(&spec.image)]),
            containers: vec![container],
            volumes: Some(
                vec![
                    Volume {
                        name: "config".to_owned(),
                        config_map: Some(ConfigMapVolumeSource {
                            name: names.config(),
                            ..ConfigMapVolumeSource::default()
                        }),
                        ..Volume::default()
                    },
                    Volume {
                        name: "admin-token".to_owned(),
                        secret: Some(SecretVolumeSource {
                            secret_name: Some(token_secret_name(&names)),
                            ..SecretVolumeSource::default()
                        }),
                        ..Volume::default()
                    },
                ]
                .into_iter()
                .chain(
                    tls.into_iter()
                        .flat_map(|t| secret_volumes("tls", &t.secret_name)),
                )
                .chain(internal.into_iter().flat_map(|()| {
                    secret_volumes("internal-tls", &internal_tls::secret_name(&names))
                }))
                .collect(),
            ),
            affinity: Some(
                spec.pod
                    .affinity
                    .clone()
                    .unwrap_or_else(|| default_affinity(&names)),
            ),
            tolerations: Some(spec.pod.tolerations.clone()).filter(|t| !t.is_empty()),
            node_selector: Some(spec.pod.node_selector.clone()).filter(|n| !n.is_empty()),
            priority_class_name: spec.pod.priority_class_name.clone(),
            topology_spread_constraints: Some(
                spec.pod
                    .topology_spread_constraints
                    .clone()
                    .unwrap_or_else(|| default_topology_spread(&names)),
            )
            .filter(|t| !t.is_empty()),
            termination_grace_period_seconds: Some(30),
            // The image runs as user 1000 (see the Dockerfile); the data volume
            // is made writable for its group.
            security_context: Some(PodSecurityContext {
                run_as_user: Some(1000),
                run_as_group: Some(1000),
                run_as_non_root: Some(true),
                fs_group: Some(1000),
                ..PodSecurityContext::default()
            }),
            ..PodSpec::default()
        };
    let claim = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(DATA_VOLUME.to_owned()),
            labels: Some(labels(&names)),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
            storage_class_name: spec.storage.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    Quantity(spec.storage.size.clone()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    };
    Ok(StatefulSet {
        metadata: owned_meta(cc, names.cluster.clone())?,
        spec: Some(StatefulSetSpec {
            replicas: Some(replicas),
            service_name: Some(names.peers()),
            pod_management_policy: Some("Parallel".to_owned()),
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("OnDelete".to_owned()),
                ..StatefulSetUpdateStrategy::default()
            }),
            selector: LabelSelector {
                match_labels: Some(labels(&names)),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(pod_annotations(cc, tls_secret, stage)),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            volume_claim_templates: Some(vec![claim]),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::fixtures::cluster;

    /// A probe's HTTP request (every probe the servers get is one).
    fn http_get(probe: &Option<Probe>) -> &HTTPGetAction {
        probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .expect("an HTTP probe")
    }

    fn spec_of(sts: &StatefulSet) -> &StatefulSetSpec {
        sts.spec.as_ref().expect("a spec")
    }

    #[test]
    fn parallel_on_delete_with_a_volume_per_server() {
        let sts = statefulset(&cluster(), 3, None, InternalTlsStage::Off).unwrap();
        let spec = spec_of(&sts);
        assert_eq!(spec.replicas, Some(3));
        assert_eq!(spec.service_name.as_deref(), Some("zk-peers"));
        assert_eq!(spec.pod_management_policy.as_deref(), Some("Parallel"));
        assert_eq!(
            spec.update_strategy
                .as_ref()
                .and_then(|u| u.type_.as_deref()),
            Some("OnDelete")
        );
        let claim = &spec.volume_claim_templates.as_ref().unwrap()[0];
        let size = &claim
            .spec
            .as_ref()
            .unwrap()
            .resources
            .as_ref()
            .unwrap()
            .requests
            .as_ref()
            .unwrap()["storage"];
        assert_eq!(size.0, "10Gi");
    }

    #[test]
    fn readiness_is_quorum_and_liveness_is_the_process() {
        let sts = statefulset(&cluster(), 3, None, InternalTlsStage::Off).unwrap();
        let pod = spec_of(&sts).template.spec.as_ref().unwrap();
        let c = &pod.containers[0];
        assert_eq!(
            http_get(&c.readiness_probe).path.as_deref(),
            Some("/readyz")
        );
        assert_eq!(
            http_get(&c.liveness_probe).path.as_deref(),
            Some("/healthz")
        );
        let command = c.command.as_ref().unwrap().join(" ");
        assert!(
            command.contains("echo $((ordinal + 1)) > /data/myid"),
            "{command}"
        );
        assert!(command.contains("exec conclave-server --config /etc/conclave/zoo.cfg"));
        assert!(!command.contains("internal"), "{command}");
    }

    #[test]
    fn internal_tls_mounts_the_certificates_links_its_own_and_probes_over_https() {
        let stage_of = |stage| {
            let sts = statefulset(&cluster(), 3, None, stage).unwrap();
            let template = spec_of(&sts).template.clone();
            (
                template.metadata.unwrap().annotations.unwrap(),
                template.spec.unwrap(),
            )
        };
        let (annotations, pod) = stage_of(InternalTlsStage::On);
        assert_eq!(annotations[internal_tls::STAGE_ANNOTATION], "On");
        let c = &pod.containers[0];
        let script = c.command.as_ref().unwrap()[2].clone();
        let link = script
            .find("ln -sf \"$cert\" /etc/conclave-internal-tls/server.pem")
            .expect(&script);
        assert!(
            script.contains("cert=/etc/conclave-internal-tls-secret/server-$((ordinal + 1)).pem")
        );
        assert!(
            link < script
                .find("exec conclave-server --config /etc/conclave/zoo-tls.cfg")
                .expect(&script),
            "{script}"
        );
        let secret = pod
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .find(|v| v.name == "internal-tls-secret")
            .unwrap();
        assert_eq!(
            secret.secret.as_ref().unwrap().secret_name.as_deref(),
            Some("zk-internal-tls")
        );
        let mounts: Vec<_> = c
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| m.mount_path.as_str())
            .collect();
        assert!(mounts.contains(&internal_tls::SECRET_DIR) && mounts.contains(&internal_tls::DIR));
        assert_eq!(
            http_get(&c.readiness_probe).scheme.as_deref(),
            Some("HTTPS")
        );
        assert_eq!(http_get(&c.liveness_probe).scheme.as_deref(), Some("HTTPS"));
        // Accepting: certificates mounted, admin still probed over HTTP
        // (the pods beside it may speak nothing else yet).
        let (annotations, pod) = stage_of(InternalTlsStage::Accepting);
        assert_eq!(annotations[internal_tls::STAGE_ANNOTATION], "Accepting");
        let c = &pod.containers[0];
        assert_eq!(http_get(&c.readiness_probe).scheme, None);
        assert!(
            c.command.as_ref().unwrap()[2].contains("--config /etc/conclave/zoo-tls-accepting.cfg")
        );
        // Off: no annotation (templates made before internal TLS keep
        // their revision).
        let (annotations, _) = stage_of(InternalTlsStage::Off);
        assert!(!annotations.contains_key(internal_tls::STAGE_ANNOTATION));
    }

    #[test]
    fn servers_spread_over_nodes_unless_told_otherwise() {
        let sts = statefulset(&cluster(), 3, None, InternalTlsStage::Off).unwrap();
        let pod = spec_of(&sts).template.spec.as_ref().unwrap();
        let anti = pod
            .affinity
            .as_ref()
            .unwrap()
            .pod_anti_affinity
            .as_ref()
            .unwrap();
        let term = &anti
            .preferred_during_scheduling_ignored_during_execution
            .as_ref()
            .unwrap()[0];
        assert_eq!(
            term.pod_affinity_term.topology_key,
            "kubernetes.io/hostname"
        );

        let spread = pod.topology_spread_constraints.as_ref().unwrap();
        assert_eq!(spread.len(), 1);
        assert_eq!(spread[0].topology_key, "topology.kubernetes.io/zone");
        assert_eq!(spread[0].when_unsatisfiable, "ScheduleAnyway");
        assert_eq!(
            spread[0].label_selector.as_ref().unwrap().match_labels,
            Some(labels(&Names::of(&cluster()).unwrap()))
        );

        let mut cc = cluster();
        cc.spec.pod.affinity = Some(Affinity::default());
        cc.spec.pod.topology_spread_constraints = Some(Vec::new());
        cc.spec.pod.labels.insert("team".into(), "core".into());
        let sts = statefulset(&cc, 3, None, InternalTlsStage::Off).unwrap();
        let template = &spec_of(&sts).template;
        assert_eq!(
            template.spec.as_ref().unwrap().affinity,
            Some(Affinity::default())
        );
        assert_eq!(
            template.spec.as_ref().unwrap().topology_spread_constraints,
            None
        );
        let labels = template.metadata.as_ref().unwrap().labels.as_ref().unwrap();
        assert_eq!(labels["team"], "core");
        assert_eq!(labels["app.kubernetes.io/instance"], "zk");
    }

    fn template_annotations(sts: &StatefulSet) -> BTreeMap<String, String> {
        let metadata = spec_of(sts).template.metadata.as_ref().unwrap();
        metadata.annotations.clone().unwrap()
    }

    #[test]
    fn settings_roll_the_pods_and_membership_does_not() {
        let digest = |cc: &CoordinationCluster| {
            template_annotations(&statefulset(cc, 3, None, InternalTlsStage::Off).unwrap())
                [CONFIG_DIGEST]
                .clone()
        };
        let cc = cluster();
        let base = digest(&cc);
        assert_eq!(base, digest(&cc), "stable");
        assert_eq!(
            spec_of(&statefulset(&cc, 5, None, InternalTlsStage::Off).unwrap()).template,
            spec_of(&statefulset(&cc, 3, None, InternalTlsStage::Off).unwrap()).template,
            "the size is not in the template"
        );
        let mut changed = cluster();
        changed.spec.config.insert("tickTime".into(), "1000".into());
        assert_ne!(base, digest(&changed));
        let mut restarted = cluster();
        restarted.metadata.annotations = Some(BTreeMap::from([(
            RESTARTED_AT.to_owned(),
            "now".to_owned(),
        )]));
        let sts = statefulset(&restarted, 3, None, InternalTlsStage::Off).unwrap();
        assert_eq!(template_annotations(&sts)[RESTARTED_AT], "now");
    }

    #[test]
    fn only_the_volume_preparation_runs_as_root() {
        let sts = statefulset(&cluster(), 3, None, InternalTlsStage::Off).unwrap();
        let pod = spec_of(&sts).template.spec.as_ref().unwrap();
        let init = &pod.init_containers.as_ref().unwrap()[0];
        assert_eq!(init.security_context.as_ref().unwrap().run_as_user, Some(0));
        assert!(init.command.as_ref().unwrap()[2].contains("chown 1000:1000 /data"));
        assert_eq!(pod.containers[0].security_context, None);
        assert_eq!(
            pod.security_context.as_ref().unwrap().run_as_user,
            Some(1000)
        );
    }

    #[test]
    fn tls_mounts_the_secret_and_builds_the_key_store_before_the_server_starts() {
        let plain = statefulset(&cluster(), 3, Some("abc"), InternalTlsStage::Off).unwrap();
        let plain_pod = spec_of(&plain).template.spec.clone().unwrap();
        assert!(!plain_pod.containers[0].command.as_ref().unwrap()[2].contains("tls"));
        assert!(
            !template_annotations(&plain).contains_key(TLS_SECRET_DIGEST),
            "no TLS, no Secret digest"
        );

        let mut cc = cluster();
        cc.spec.tls =
            Some(serde_json::from_value(serde_json::json!({"secretName": "zk-tls"})).unwrap());
        let sts = statefulset(&cc, 3, Some("abc"), InternalTlsStage::Off).unwrap();
        let template = &spec_of(&sts).template;
        let annotations = template_annotations(&sts);
        assert_eq!(annotations[TLS_SECRET_DIGEST], "abc");
        let pod = template.spec.as_ref().unwrap();
        let container = &pod.containers[0];
        let script = &container.command.as_ref().unwrap()[2];
        let key_store = script.find("cat /etc/conclave-tls-secret/tls.key /etc/conclave-tls-secret/tls.crt > /etc/conclave-tls/server.pem").expect(script);
        assert!(
            key_store < script.find("exec conclave-server").unwrap(),
            "{script}"
        );
        let volumes = pod.volumes.as_ref().unwrap();
        let secret = volumes.iter().find(|v| v.name == "tls-secret").unwrap();
        assert_eq!(
            secret.secret.as_ref().unwrap().secret_name.as_deref(),
            Some("zk-tls")
        );
        let scratch = volumes.iter().find(|v| v.name == "tls").unwrap();
        assert_eq!(
            scratch.empty_dir.as_ref().unwrap().medium.as_deref(),
            Some("Memory")
        );
        let mounts: Vec<&str> = container
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| m.mount_path.as_str())
            .collect();
        assert!(
            mounts.contains(&TLS_SECRET_DIR) && mounts.contains(&TLS_DIR),
            "{mounts:?}"
        );
        let ports: Vec<i32> = container
            .ports
            .as_ref()
            .unwrap()
            .iter()
            .map(|p| p.container_port)
            .collect();
        assert!(ports.contains(&2281), "{ports:?}");
        // Turning TLS on changes the settings digest: the pods roll.
        assert_ne!(
            annotations[CONFIG_DIGEST],
            template_annotations(&plain)[CONFIG_DIGEST]
        );
    }
}
