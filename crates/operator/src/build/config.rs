//! zoo.cfg for every server of the cluster, and the ConfigMap that holds
//! it.
//!
//! The server lines are the committed membership as the operator last read
//! it from the ensemble (a server started with an older list adopts the
//! committed one anyway); `conclave.join` is false only while the ensemble
//! is first formed, so that a server with an empty volume later never
//! counts itself among the servers of a new ensemble: a new one waits to be
//! added, one that lost its data asks the ensemble and takes its state back
//! (`docs/membership.md`).
//! `myid` is written by the pod itself from its ordinal.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use k8s_openapi::api::core::v1::ConfigMap;

use super::{BuildError, Names, internal_tls, owned_meta};
use crate::crd::{CoordinationCluster, InternalTlsStage, RecoveryStatus, TlsClientAuth};

/// Where the ConfigMap is mounted, and the file in it.
pub const CONFIG_DIR: &str = "/etc/conclave";
pub const CONFIG_FILE: &str = "zoo.cfg";

/// The file in the ConfigMap a server on internal TLS stage `stage` reads
/// (its pod's command names it). The ConfigMap holds one per stage, so a
/// server restarted in the middle of a roll reads its own stage's settings,
/// never those of a stage its pod has no certificates mounted for.
pub fn config_file(stage: InternalTlsStage) -> &'static str {
    match stage {
        InternalTlsStage::Off => CONFIG_FILE,
        InternalTlsStage::Accepting => "zoo-tls-accepting.cfg",
        InternalTlsStage::Dialling => "zoo-tls-dialling.cfg",
        InternalTlsStage::On => "zoo-tls.cfg",
    }
}
/// The data volume's mount point (`dataDir`).
pub const DATA_DIR: &str = "/data";
/// Where the admin token Secret is mounted.
pub const TOKEN_FILE: &str = "/etc/conclave-token/token";
/// Where `spec.tls.secretName` is mounted.
pub const TLS_SECRET_DIR: &str = "/etc/conclave-tls-secret";
/// A memory-backed directory where the pod joins `tls.key` and `tls.crt`
/// into the one PEM key store file zoo.cfg names (ZooKeeper's format).
pub const TLS_DIR: &str = "/etc/conclave-tls";
pub const TLS_KEY_STORE: &str = "/etc/conclave-tls/server.pem";

/// Keys the operator sets itself: a user's value would break the cluster
/// the operator manages, so `spec.config` may not hold them.
pub const OWNED: &[&str] = &[
    "dataDir",
    "dataLogDir",
    "clientPort",
    "clientPortAddress",
    "admin.serverPort",
    "admin.enableServer",
    "reconfigEnabled",
    "standaloneEnabled",
    "4lw.commands.whitelist",
    "secureClientPort",
    "secureClientPortAddress",
    "serverCnxnFactory",
    "quorumListenOnAllIPs",
    // spec.internalTls
    "sslQuorum",
    "portUnification",
    "admin.forceHttps",
    "admin.portUnification",
];

/// Keys the server knows that a user may set (zoo.cfg settings that do
/// not decide who the servers are or where they listen).
pub const ALLOWED: &[&str] = &[
    "tickTime",
    "initLimit",
    "syncLimit",
    "maxClientCnxns",
    "minSessionTimeout",
    "maxSessionTimeout",
    "snapCount",
    "autopurge.snapRetainCount",
    "autopurge.purgeInterval",
    "jute.maxbuffer",
    "skipACL",
    "extendedTypesEnabled",
    "DigestAuthenticationProvider.superDigest",
    "readonlymode.enabled",
    "znode.container.checkIntervalMs",
    "znode.container.maxPerMinute",
    "znode.container.maxNeverUsedIntervalMs",
    "globalOutstandingLimit",
    "preAllocSize",
    "forceSync",
    // Conclave's own tuning of snapshot catch-ups and peer frames: large
    // trees may want larger frames or a faster (or gentler) catch-up.
    "conclave.snapshotChunkBytes",
    "conclave.snapshotSendBytesPerSec",
    "conclave.peerMaxFrameBytes",
];

/// One server of the membership, as zoo.cfg names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub id: u64,
    pub observer: bool,
}

/// Checks `spec.config`: only keys the server knows, none the operator
/// owns.
pub fn validate(config: &BTreeMap<String, String>) -> Result<(), BuildError> {
    for (key, value) in config {
        let bad = |reason: &str| BuildError::Config {
            key: key.clone(),
            reason: reason.to_owned(),
        };
        if OWNED.contains(&key.as_str())
            || key.starts_with("server.")
            || (key.starts_with("conclave.") && !ALLOWED.contains(&key.as_str()))
        {
            return Err(bad("set by the operator"));
        }
        if key.starts_with("ssl.") {
            return Err(bad(
                "set by the operator from spec.tls and spec.internalTls",
            ));
        }
        if !ALLOWED.contains(&key.as_str()) {
            return Err(bad("not a setting conclave-server takes from spec.config"));
        }
        if value.contains('\n') {
            return Err(bad("a value is one line"));
        }
    }
    Ok(())
}

/// The zoo.cfg text, for servers on internal TLS stage `stage`.
pub fn zoo_cfg(
    cc: &CoordinationCluster,
    servers: &[Server],
    formed: bool,
    recovery: Option<&RecoveryStatus>,
    stage: InternalTlsStage,
) -> Result<String, BuildError> {
    validate(&cc.spec.config)?;
    let names = Names::of(cc)?;
    let ports = &cc.spec.ports;
    let mut settings: BTreeMap<&str, String> = BTreeMap::from([
        ("tickTime", "2000".to_owned()),
        ("initLimit", "10".to_owned()),
        ("syncLimit", "5".to_owned()),
    ]);
    for (key, value) in &cc.spec.config {
        settings.insert(key, value.clone());
    }
    let mut out =
        String::from("# Written by conclave-operator; edit the CoordinationCluster instead.\n");
    let _ = writeln!(
        out,
        "# Read by the servers on internal TLS stage {stage:?} (spec.internalTls)."
    );
    for (key, value) in &settings {
        let _ = writeln!(out, "{key}={value}");
    }
    let _ = writeln!(out, "dataDir={DATA_DIR}");
    let _ = writeln!(out, "clientPort={}", ports.client);
    let _ = writeln!(out, "admin.enableServer=true");
    let _ = writeln!(out, "admin.serverPort={}", ports.admin);
    let _ = writeln!(out, "reconfigEnabled=true");
    let _ = writeln!(out, "standaloneEnabled=false");
    // A pod's own DNS name resolves only once the headless Service has
    // its address, which may be after the server starts; in a pod every
    // interface is the pod's own.
    let _ = writeln!(out, "quorumListenOnAllIPs=true");
    let _ = writeln!(out, "4lw.commands.whitelist=*");
    let _ = writeln!(
        out,
        "conclave.ensembleName={}.{}",
        names.namespace, names.cluster
    );
    let _ = writeln!(out, "conclave.adminTokenFile={TOKEN_FILE}");
    let _ = writeln!(out, "conclave.join={formed}");
    // Once per token on every server, and kept: see decide/recovery.rs.
    if let Some(recovery) = recovery {
        let _ = writeln!(
            out,
            "conclave.recoverAlone={}:{}",
            recovery.server, recovery.token
        );
    }
    if let Some(tls) = &cc.spec.tls {
        let _ = writeln!(out, "secureClientPort={}", tls.port);
        let _ = writeln!(out, "ssl.keyStore.location={TLS_KEY_STORE}");
        let _ = writeln!(out, "ssl.keyStore.type=PEM");
        let _ = writeln!(out, "ssl.clientAuth={}", tls.client_auth.zoo_cfg_value());
        if tls.client_auth != TlsClientAuth::None {
            let _ = writeln!(out, "ssl.trustStore.location={TLS_SECRET_DIR}/ca.crt");
            let _ = writeln!(out, "ssl.trustStore.type=PEM");
        }
    }
    for (key, value) in internal_tls::zoo_cfg(stage) {
        let _ = writeln!(out, "{key}={value}");
    }
    for server in servers {
        let _ = writeln!(
            out,
            "server.{}={}:{}:{}:{};{}",
            server.id,
            names.server_host(server.id),
            ports.quorum,
            ports.election,
            if server.observer {
                "observer"
            } else {
                "participant"
            },
            ports.client
        );
    }
    Ok(out)
}

/// The ConfigMap holding zoo.cfg.
/// The ConfigMap holding zoo.cfg, one file per internal TLS stage
/// ([`config_file`]).
pub fn config_map(
    cc: &CoordinationCluster,
    servers: &[Server],
    formed: bool,
    recovery: Option<&RecoveryStatus>,
) -> Result<ConfigMap, BuildError> {
    let names = Names::of(cc)?;
    let mut files = BTreeMap::new();
    for stage in [
        InternalTlsStage::Off,
        InternalTlsStage::Accepting,
        InternalTlsStage::Dialling,
        InternalTlsStage::On,
    ] {
        files.insert(
            config_file(stage).to_owned(),
            zoo_cfg(cc, servers, formed, recovery, stage)?,
        );
    }
    Ok(ConfigMap {
        metadata: owned_meta(cc, names.config())?,
        data: Some(files),
        ..ConfigMap::default()
    })
}

/// The servers of a cluster being created: participants 1..=replicas,
/// then the observers.
pub fn initial_servers(cc: &CoordinationCluster) -> Vec<Server> {
    let voters = u64::try_from(cc.spec.replicas.max(0)).unwrap_or(0);
    let observers = u64::try_from(cc.spec.observers.max(0)).unwrap_or(0);
    (1..=voters + observers)
        .map(|id| Server {
            id,
            observer: id > voters,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::fixtures::cluster;

    /// zoo.cfg of the plain stage for the cluster's initial servers.
    fn plain_cfg(cc: &CoordinationCluster, formed: bool) -> String {
        zoo_cfg(
            cc,
            &initial_servers(cc),
            formed,
            None,
            InternalTlsStage::Off,
        )
        .unwrap()
    }

    #[test]
    fn zoo_cfg_names_every_server_by_its_pod_dns_name() {
        let cc = cluster();
        let text = plain_cfg(&cc, false);
        assert!(text.contains(
            "server.1=zk-0.zk-peers.apps.svc.cluster.local:2888:3888:participant;2181\n"
        ));
        assert!(text.contains("server.3=zk-2.zk-peers.apps.svc.cluster.local"));
        assert!(!text.contains("server.4"));
        assert!(text.contains("conclave.join=false\n"));
        assert!(text.contains("reconfigEnabled=true\n"));
        assert!(text.contains("standaloneEnabled=false\n"));
        assert!(text.contains("quorumListenOnAllIPs=true\n"));
        assert!(text.contains("tickTime=2000\n"));
        assert!(text.contains("conclave.ensembleName=apps.zk\n"));
    }

    #[test]
    fn tls_adds_the_secure_port_and_the_stores_the_pod_prepares() {
        let mut cc = cluster();
        let plain = plain_cfg(&cc, true);
        assert!(!plain.contains("secureClientPort"));
        assert!(!plain.contains("ssl."));
        cc.spec.tls =
            Some(serde_json::from_value(serde_json::json!({"secretName": "zk-tls"})).unwrap());
        let text = plain_cfg(&cc, true);
        for line in [
            "secureClientPort=2281",
            "ssl.keyStore.location=/etc/conclave-tls/server.pem",
            "ssl.keyStore.type=PEM",
            "ssl.clientAuth=need",
            "ssl.trustStore.location=/etc/conclave-tls-secret/ca.crt",
            "ssl.trustStore.type=PEM",
        ] {
            assert!(
                text.contains(&format!("{line}\n")),
                "{line} missing from\n{text}"
            );
        }
        cc.spec.tls = Some(
            serde_json::from_value(
                serde_json::json!({"secretName": "zk-tls", "port": 3000, "clientAuth": "None"}),
            )
            .unwrap(),
        );
        let text = plain_cfg(&cc, true);
        assert!(text.contains("secureClientPort=3000\n"));
        assert!(text.contains("ssl.clientAuth=none\n"));
        assert!(
            !text.contains("ssl.trustStore"),
            "no CA is needed without client auth"
        );
    }

    #[test]
    fn ssl_keys_come_from_spec_tls_only() {
        for key in [
            "ssl.keyStore.location",
            "secureClientPort",
            "serverCnxnFactory",
        ] {
            let err = validate(&BTreeMap::from([(key.to_owned(), "x".to_owned())])).unwrap_err();
            assert!(
                err.to_string().contains("set by the operator"),
                "{key}: {err}"
            );
        }
    }

    #[test]
    fn observers_follow_the_participants() {
        let mut cc = cluster();
        cc.spec.observers = 1;
        let servers = initial_servers(&cc);
        assert_eq!(servers.len(), 4);
        assert!(servers[3].observer && !servers[2].observer);
        let text = zoo_cfg(&cc, &servers, true, None, InternalTlsStage::Off).unwrap();
        assert!(text.contains(":observer;2181\n"));
        assert!(text.contains("conclave.join=true\n"));
    }

    #[test]
    fn user_settings_override_defaults_and_owned_keys_are_refused() {
        let mut cc = cluster();
        cc.spec.config.insert("tickTime".into(), "1000".into());
        cc.spec
            .config
            .insert("conclave.snapshotSendBytesPerSec".into(), "0".into());
        let text = plain_cfg(&cc, false);
        assert!(text.contains("tickTime=1000\n") && !text.contains("tickTime=2000"));
        assert!(text.contains("conclave.snapshotSendBytesPerSec=0\n"));
        for key in [
            "dataDir",
            "server.7",
            "conclave.join",
            "conclave.ensembleName",
            "clientPort",
            "noSuchKey",
        ] {
            let mut cc = cluster();
            cc.spec.config.insert(key.into(), "x".into());
            let err = zoo_cfg(&cc, &[], false, None, InternalTlsStage::Off).unwrap_err();
            assert!(matches!(err, BuildError::Config { key: k, .. } if k == key));
        }
        let mut cc = cluster();
        cc.spec
            .config
            .insert("tickTime".into(), "1\nserver.9=x".into());
        assert!(zoo_cfg(&cc, &[], false, None, InternalTlsStage::Off).is_err());
    }

    #[test]
    fn the_config_map_is_owned_by_the_cluster() {
        let cc = cluster();
        let servers = initial_servers(&cc);
        let cm = config_map(&cc, &servers, true, None).unwrap();
        assert_eq!(cm.metadata.name.as_deref(), Some("zk-config"));
        let owner = &cm.metadata.owner_references.unwrap()[0];
        assert_eq!(owner.kind, "CoordinationCluster");
        assert_eq!(owner.controller, Some(true));
        // One file per internal TLS stage, each that stage's settings.
        let files = cm.data.unwrap();
        assert_eq!(files.len(), 4);
        assert!(!files["zoo.cfg"].contains("ssl"), "{}", files["zoo.cfg"]);
        for (stage, needle) in [
            (InternalTlsStage::Accepting, "portUnification=true"),
            (InternalTlsStage::Dialling, "sslQuorum=true"),
            (InternalTlsStage::On, "admin.forceHttps=true"),
        ] {
            let text = &files[config_file(stage)];
            assert_eq!(
                *text,
                zoo_cfg(&cc, &servers, true, None, stage).unwrap(),
                "{stage:?}"
            );
            assert!(text.contains(needle), "{stage:?}: {text}");
            assert!(
                text.contains("ssl.quorum.keyStore.location=/etc/conclave-internal-tls/server.pem"),
                "{text}"
            );
        }
    }
}
