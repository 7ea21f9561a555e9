//! The `system_properties` command: the Java system properties a ZooKeeper
//! process would report, from this process's facts and the zoo.cfg keys
//! ZooKeeper would have turned into `zookeeper.*` properties.

use std::collections::BTreeMap;

use super::fields::initial_configuration;
use crate::config::Config;
use crate::report;

/// zoo.cfg keys ZooKeeper's `QuorumPeerConfig` consumes; every other key
/// becomes the system property `zookeeper.<key>`.
#[rustfmt::skip]
const QUORUM_PEER_CONFIG_KEYS: &[&str] = &[
    "autopurge.purgeInterval", "autopurge.snapRetainCount", "clientPort", "clientPortAddress",
    "clientPortListenBacklog", "connectToLearnerMasterLimit", "dataDir", "dataLogDir",
    "dynamicConfigFile", "electionAlg", "initLimit", "localSessionsEnabled",
    "localSessionsUpgradingEnabled", "maxClientCnxns", "maxSessionTimeout",
    "metricsProvider.className", "minSessionTimeout", "multiAddress.enabled",
    "multiAddress.reachabilityCheckEnabled", "multiAddress.reachabilityCheckTimeoutMs",
    "observerMasterPort", "oraclePath", "peerType", "portUnification", "quorum.cnxn.threads.size",
    "quorumListenOnAllIPs", "reconfigEnabled", "secureClientPort", "secureClientPortAddress",
    "sslQuorum", "sslQuorumReloadCertFiles", "standaloneEnabled", "syncEnabled", "syncLimit",
    "tickTime",
];

/// `system_properties`, sorted by key: the process facts Java would report
/// as properties, and the zoo.cfg keys ZooKeeper would have turned into
/// `zookeeper.*` properties.
pub fn system_properties(config: &Config) -> Vec<(String, String)> {
    let mut props: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in report::environment() {
        if k == "java.io.tmpdir"
            || (k.starts_with("os.") && !k.starts_with("os.memory."))
            || k.starts_with("user.")
        {
            props.insert(k.to_owned(), v);
        }
    }
    props.insert("file.separator".to_owned(), "/".to_owned());
    props.insert("line.separator".to_owned(), "\n".to_owned());
    props.insert("path.separator".to_owned(), ":".to_owned());
    if let Some(text) = initial_configuration(config) {
        for (key, value) in crate::config::parse_properties(&text) {
            let consumed = QUORUM_PEER_CONFIG_KEYS.contains(&key.as_str())
                || ["server.", "group", "weight", "metricsProvider."]
                    .iter()
                    .any(|p| key.starts_with(p));
            if !consumed {
                props.insert(format!("zookeeper.{key}"), value);
            }
        }
    }
    props.into_iter().collect()
}
