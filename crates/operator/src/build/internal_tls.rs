//! Quorum and admin TLS of `spec.internalTls`: the stages a cluster moves
//! through, what zoo.cfg says at each, and the Secrets that hold the
//! certificates.
//!
//! Turning TLS on in a running ensemble without losing quorum takes three
//! rolls, as in ZooKeeper (`docs/security.md`): every server first takes
//! TLS beside plain (`portUnification`), then dials TLS (`sslQuorum`), then
//! refuses plain. A server on one stage works with servers on the stage
//! before or after it, never two apart, so the next stage begins only when
//! every pod runs the current one. A new cluster starts on its target
//! stage. The stage is the pod template's (`STAGE_ANNOTATION`), live
//! state the operator reads back, not a memory of its own.
//!
//! Each server's certificate names its own pod (the host of its `server.N`
//! line), so the servers' identity checks keep one member from speaking as
//! another. The Secret holding them is mounted in every pod; each pod links
//! its own entry to the key store path zoo.cfg names. The CA's key is in a
//! second Secret that no pod mounts.

use std::collections::BTreeMap;

use super::Names;
use super::statefulset::fnv1a;
use crate::crd::{CoordinationCluster, InternalTlsStage};

/// Annotation on the pod template: the stage its servers run.
pub const STAGE_ANNOTATION: &str = "conclave.dev/internal-tls";
/// Where the certificates' Secret is mounted.
pub const SECRET_DIR: &str = "/etc/conclave-internal-tls-secret";
/// A memory-backed directory where a pod links its own certificate.
pub const DIR: &str = "/etc/conclave-internal-tls";
/// The key store zoo.cfg names: a link to this pod's entry of the Secret,
/// so that a renewed certificate is seen through it (the server reloads
/// changed stores).
pub const KEY_STORE: &str = "/etc/conclave-internal-tls/server.pem";
/// The CA certificate, in the CA Secret; in the pods' Secret, every CA
/// certificate the servers trust (two while the CA is rotated).
pub const CA_CERT: &str = "ca.crt";
/// The CA's key, in the CA Secret only.
pub const CA_KEY: &str = "ca.key";
/// When the CA expires (RFC 3339), on the CA Secret.
pub const CA_NOT_AFTER: &str = "conclave.dev/not-after";
/// The CA Secret's successor CA while it is being rotated in
/// (`pki/rotation.rs`): certificate, key, expiry, when it was first trusted.
pub const NEXT_CERT: &str = "next.crt";
pub const NEXT_KEY: &str = "next.key";
pub const NEXT_NOT_AFTER: &str = "conclave.dev/next-not-after";
pub const NEXT_PUBLISHED: &str = "conclave.dev/next-published";
/// The CA that signed before, trusted until the annotation's time.
pub const PREVIOUS_CERT: &str = "previous.crt";
pub const PREVIOUS_UNTIL: &str = "conclave.dev/previous-until";
/// On the pods' Secret: a digest of the CA that signed its certificates
/// (a new signer re-issues them all).
pub const SIGNER: &str = "conclave.dev/signer";

/// The Secret with the CA's certificate and key (the operator's alone).
pub fn ca_secret_name(names: &Names) -> String {
    format!("{}-ca", names.cluster)
}

/// The Secret the pods mount: the CA certificate and every server's key
/// and certificate.
pub fn secret_name(names: &Names) -> String {
    format!("{}-internal-tls", names.cluster)
}

/// Server `id`'s entry in the Secret.
pub fn server_entry(id: u64) -> String {
    format!("server-{id}.pem")
}

/// Annotations on the Secret: when server `id`'s certificate expires, and
/// a digest of the names it was made for (a change re-issues it).
pub fn not_after_annotation(id: u64) -> String {
    format!("conclave.dev/not-after.server-{id}")
}
pub fn names_annotation(id: u64) -> String {
    format!("conclave.dev/names.server-{id}")
}

/// The names server `id`'s certificate is valid for: its pod's DNS name as
/// its `server.N` line has it (what the other servers check), the shorter
/// form, and the peer Service's name, which every server's certificate
/// carries so that a scraper reaching pods by address has one name to
/// check (it identifies the cluster, not a member).
pub fn server_hosts(names: &Names, id: u64) -> Vec<String> {
    let pod = format!("{}-{}", names.cluster, id.saturating_sub(1));
    vec![
        names.server_host(id),
        format!("{pod}.{}.{}.svc", names.peers(), names.namespace),
        shared_host(names),
    ]
}

/// The name every server's certificate carries (see [`server_hosts`]).
pub fn shared_host(names: &Names) -> String {
    format!("{}.{}.svc", names.peers(), names.namespace)
}

/// A digest of a certificate's names, for [`names_annotation`].
pub fn hosts_digest(hosts: &[String]) -> String {
    format!("{:016x}", fnv1a(hosts.join(",").as_bytes()))
}

/// The stage the spec asks for.
pub fn target(cc: &CoordinationCluster) -> InternalTlsStage {
    if cc.spec.internal_tls.enabled {
        InternalTlsStage::On
    } else {
        InternalTlsStage::Off
    }
}

/// The stage to run next. `current` is the pod template's (`None`: there
/// is no StatefulSet yet, and the cluster starts on its target); `settled`
/// says every pod runs the current template and the ensemble is healthy
/// with nothing else under way: only then does the cluster move, one
/// stage.
pub fn next(
    current: Option<InternalTlsStage>,
    target: InternalTlsStage,
    settled: bool,
) -> InternalTlsStage {
    use InternalTlsStage::{Accepting, Dialling, Off, On};
    let Some(current) = current else {
        return target;
    };
    if current == target || !settled {
        return current;
    }
    match (current, target > current) {
        (Off, _) => Accepting,
        (Accepting, true) => Dialling,
        (Accepting, false) => Off,
        (Dialling, true) => On,
        (Dialling, false) => Accepting,
        (On, _) => Dialling,
    }
}

/// Whether the admin ports speak HTTPS to whoever talks to them (the
/// operator, the kubelet's probes, a scraper) on this stage. Before
/// `Dialling` some server may not take HTTPS yet; from it on every server
/// does (`Accepting` and `Dialling` take both), and `On` takes HTTPS only.
pub fn admin_https(stage: InternalTlsStage) -> bool {
    matches!(stage, InternalTlsStage::Dialling | InternalTlsStage::On)
}

/// zoo.cfg settings for a stage.
pub fn zoo_cfg(stage: InternalTlsStage) -> BTreeMap<&'static str, String> {
    use InternalTlsStage::{Accepting, Dialling, Off, On};
    if stage == Off {
        return BTreeMap::new();
    }
    let mut settings = BTreeMap::from([
        ("ssl.quorum.keyStore.location", KEY_STORE.to_owned()),
        ("ssl.quorum.keyStore.type", "PEM".to_owned()),
        (
            "ssl.quorum.trustStore.location",
            format!("{SECRET_DIR}/{CA_CERT}"),
        ),
        ("ssl.quorum.trustStore.type", "PEM".to_owned()),
    ]);
    let (ssl_quorum, unified) = match stage {
        Off | Accepting => (false, true),
        Dialling => (true, true),
        On => (true, false),
    };
    settings.insert("sslQuorum", ssl_quorum.to_string());
    settings.insert("portUnification", unified.to_string());
    if unified {
        settings.insert("admin.portUnification", "true".to_owned());
    } else {
        settings.insert("admin.forceHttps", "true".to_owned());
    }
    settings
}

/// The start script's part for a stage (after `ordinal` is set; the
/// script of stage `Off` is what it was before internal TLS, so that an
/// operator upgrade rolls nothing by itself): wait for this server's
/// certificate in the Secret (a Secret written just before the pod was
/// made may reach the kubelet a moment later) and link it.
pub fn start_script(stage: InternalTlsStage) -> String {
    if stage == InternalTlsStage::Off {
        return String::new();
    }
    format!(
        "cert={SECRET_DIR}/server-$((ordinal + 1)).pem; waited=0; \
         while [ ! -s \"$cert\" ]; do \
           if [ $waited -ge 120 ]; then echo \"no internal TLS certificate $cert\" >&2; exit 1; fi; \
           waited=$((waited + 1)); sleep 1; \
         done; \
         ln -sf \"$cert\" {KEY_STORE}; "
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use InternalTlsStage::{Accepting, Dialling, Off, On};

    #[test]
    fn a_new_cluster_starts_on_its_target() {
        assert_eq!(next(None, On, false), On);
        assert_eq!(next(None, Off, false), Off);
    }

    #[test]
    fn a_running_cluster_moves_one_stage_per_settled_roll() {
        let mut stage = Off;
        let mut seen = vec![stage];
        while stage != On {
            assert_eq!(next(Some(stage), On, false), stage, "unsettled: stays");
            stage = next(Some(stage), On, true);
            seen.push(stage);
        }
        assert_eq!(seen, [Off, Accepting, Dialling, On]);
        let mut back = vec![stage];
        while stage != Off {
            stage = next(Some(stage), Off, true);
            back.push(stage);
        }
        assert_eq!(back, [On, Dialling, Accepting, Off]);
        assert_eq!(next(Some(On), On, true), On);
    }

    /// Neighbouring stages must work together: a server dialling TLS
    /// only meets servers that take it, a server refusing plain only meets
    /// servers that dial TLS.
    #[test]
    fn neighbouring_stages_understand_each_other() {
        let takes_tls =
            |s: InternalTlsStage| zoo_cfg(s).contains_key("ssl.quorum.keyStore.location");
        let takes_plain = |s: InternalTlsStage| {
            s == Off || zoo_cfg(s).get("portUnification").map(String::as_str) == Some("true")
        };
        let dials_tls =
            |s: InternalTlsStage| zoo_cfg(s).get("sslQuorum").map(String::as_str) == Some("true");
        for pair in [Off, Accepting, Dialling, On].windows(2) {
            for (a, b) in [(pair[0], pair[1]), (pair[1], pair[0])] {
                if dials_tls(a) {
                    assert!(takes_tls(b), "{a:?} dials TLS to {b:?}");
                } else {
                    assert!(takes_plain(b), "{a:?} dials plain to {b:?}");
                }
            }
        }
        // Two apart do not: which is why a stage waits for the last roll.
        assert!(dials_tls(Dialling) && !takes_tls(Off));
        // The admin port: whoever speaks HTTPS from `Dialling` on is
        // understood by every neighbour, and plain before it too.
        for stage in [Accepting, Dialling, On] {
            let settings = zoo_cfg(stage);
            let https = settings.contains_key("admin.forceHttps")
                || settings.contains_key("admin.portUnification");
            assert!(https, "{stage:?} takes HTTPS");
        }
        assert_eq!(
            zoo_cfg(On).get("portUnification").map(String::as_str),
            Some("false")
        );
        assert!(zoo_cfg(Off).is_empty());
    }

    #[test]
    fn a_certificate_names_its_own_pod_and_the_cluster() {
        let names = Names {
            cluster: "zk".to_owned(),
            namespace: "apps".to_owned(),
        };
        assert_eq!(
            server_hosts(&names, 2),
            [
                "zk-1.zk-peers.apps.svc.cluster.local",
                "zk-1.zk-peers.apps.svc",
                "zk-peers.apps.svc"
            ]
        );
        assert_ne!(
            hosts_digest(&server_hosts(&names, 1)),
            hosts_digest(&server_hosts(&names, 2))
        );
    }
}
