//! The certificates of `spec.internalTls`, each reconcile while the
//! cluster's servers run (or are about to run) any TLS stage: the CA
//! Secret (made once; only the operator reads it) and the Secret every pod
//! mounts, with a certificate per server that is issued before its pod
//! exists and renewed when a third of its life is left, and again when a
//! new CA takes over (`pki/rotation.rs`). The servers reload changed
//! certificates and trusted CAs without a restart, so neither rolls
//! anything.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::{Api, Client};

use super::Error;
use super::apply::apply;
use crate::build::internal_tls::{
    CA_CERT, CA_KEY, CA_NOT_AFTER, NEXT_CERT, NEXT_KEY, NEXT_NOT_AFTER, NEXT_PUBLISHED,
    PREVIOUS_CERT, PREVIOUS_UNTIL, SIGNER, ca_secret_name, hosts_digest, names_annotation,
    not_after_annotation, secret_name, server_entry, server_hosts,
};
use crate::build::statefulset::fnv1a;
use crate::build::{Names, owned_meta};
use crate::crd::CoordinationCluster;
use crate::pki::rotation::{CaChain, Retired, Successor};
use crate::pki::{self, Authority};

/// Makes sure the CA (stepped through its rotation, `pki/rotation.rs`)
/// and a current certificate for each server in `ids` exist; returns the
/// CA certificates (PEM) the admin ports are checked against.
pub(super) async fn ensure(
    client: &Client,
    cc: &CoordinationCluster,
    names: &Names,
    ids: &[u64],
    now: i64,
) -> Result<String, Error> {
    let ns = &names.namespace;
    let api = Api::<Secret>::namespaced(client.clone(), ns);
    let cluster = format!("{}/{}", names.namespace, names.cluster);
    let ca_name = ca_secret_name(names);
    let existing_ca = api.get_opt(&ca_name).await?;
    let (mut chain, made) = match existing_ca.as_ref().and_then(|s| load(&cluster, s)) {
        Some(chain) => (chain, false),
        None => {
            if existing_ca.is_some() {
                tracing::warn!(%cluster, secret = %ca_name, "the internal CA Secret was unreadable: made a new CA; every server's certificate is issued again");
            } else {
                tracing::info!(%cluster, secret = %ca_name, "made the cluster's internal CA");
            }
            (CaChain::create(&cluster, now)?, true)
        }
    };
    if chain.advance(&cluster, now)? || made {
        tracing::info!(%cluster, next = chain.next.is_some(), previous = chain.previous.is_some(), "internal CA Secret written");
        apply(client, ns, &ca_name, &ca_secret(cc, &ca_name, &chain)?).await?;
    }
    let name = secret_name(names);
    let existing = api.get_opt(&name).await?;
    if let Some(secret) = server_certificates(cc, names, &chain, existing.as_ref(), ids, now)? {
        apply(client, ns, &name, &secret).await?;
    }
    Ok(chain.trust_bundle())
}

fn text(secret: &Secret, key: &str) -> Option<String> {
    let bytes = secret.data.as_ref()?.get(key)?;
    String::from_utf8(bytes.0.clone()).ok()
}

fn time_annotation(secret: &Secret, key: &str) -> Option<i64> {
    let value = secret.metadata.annotations.as_ref()?.get(key)?;
    value.parse::<Timestamp>().ok().map(|t| t.as_second())
}

/// The CA chain kept in its Secret; `None` when the signing CA is missing
/// or unusable. A successor or predecessor that cannot be read is dropped
/// (and said): the rotation starts again from the signing CA.
fn load(cluster: &str, secret: &Secret) -> Option<CaChain> {
    let authority = |cert: &str, key: &str| {
        let cert = text(secret, cert)?;
        let key = text(secret, key)?;
        match Authority::load(cluster, &cert, &key) {
            Ok(ca) => Some(ca),
            Err(error) => {
                tracing::warn!(%cluster, %error, "the internal CA Secret holds an unusable key");
                None
            }
        }
    };
    let current = authority(CA_CERT, CA_KEY)?;
    // Without its date the CA counts as new: it is never rotated early.
    let current_not_after = time_annotation(secret, CA_NOT_AFTER).unwrap_or(i64::MAX);
    let next = authority(NEXT_CERT, NEXT_KEY).and_then(|ca| {
        Some(Successor {
            ca,
            not_after: time_annotation(secret, NEXT_NOT_AFTER)?,
            published: time_annotation(secret, NEXT_PUBLISHED)?,
        })
    });
    let previous = text(secret, PREVIOUS_CERT).and_then(|cert_pem| {
        Some(Retired {
            cert_pem,
            until: time_annotation(secret, PREVIOUS_UNTIL)?,
        })
    });
    Some(CaChain {
        current,
        current_not_after,
        next,
        previous,
    })
}

fn rfc3339(unix: i64) -> String {
    Timestamp::from_second(unix).map_or_else(|_| unix.to_string(), |t| t.to_string())
}

fn ca_secret(cc: &CoordinationCluster, name: &str, chain: &CaChain) -> Result<Secret, Error> {
    let mut metadata = owned_meta(cc, name.to_owned())?;
    let pem = |text: &str| ByteString(text.as_bytes().to_vec());
    let mut data = BTreeMap::from([
        (CA_CERT.to_owned(), pem(&chain.current.cert_pem)),
        (CA_KEY.to_owned(), pem(&chain.current.key_pem)),
    ]);
    let mut annotations =
        BTreeMap::from([(CA_NOT_AFTER.to_owned(), rfc3339(chain.current_not_after))]);
    if let Some(next) = &chain.next {
        data.insert(NEXT_CERT.to_owned(), pem(&next.ca.cert_pem));
        data.insert(NEXT_KEY.to_owned(), pem(&next.ca.key_pem));
        annotations.insert(NEXT_NOT_AFTER.to_owned(), rfc3339(next.not_after));
        annotations.insert(NEXT_PUBLISHED.to_owned(), rfc3339(next.published));
    }
    if let Some(previous) = &chain.previous {
        data.insert(PREVIOUS_CERT.to_owned(), pem(&previous.cert_pem));
        annotations.insert(PREVIOUS_UNTIL.to_owned(), rfc3339(previous.until));
    }
    metadata.annotations = Some(annotations);
    Ok(Secret {
        metadata,
        data: Some(data),
        ..Secret::default()
    })
}

/// The pods' Secret as it should be, or `None` when `existing` already is:
/// the chain's trust bundle, and for every server of `ids` a certificate
/// from the signing CA for its current names that is not due for renewal.
/// Certificates of other servers (that left, or are not made yet) are kept
/// while they are the same CA's.
fn server_certificates(
    cc: &CoordinationCluster,
    names: &Names,
    chain: &CaChain,
    existing: Option<&Secret>,
    ids: &[u64],
    now: i64,
) -> Result<Option<Secret>, Error> {
    let days = cc.spec.internal_tls.certificate_days;
    let signer = format!("{:016x}", fnv1a(chain.current.cert_pem.as_bytes()));
    let bundle = chain.trust_bundle();
    let same_signer = existing
        .and_then(|s| s.metadata.annotations.as_ref())
        .and_then(|a| a.get(SIGNER))
        == Some(&signer);
    let mut data: BTreeMap<String, ByteString> = BTreeMap::new();
    let mut annotations: BTreeMap<String, String> = BTreeMap::new();
    if let Some(existing) = existing.filter(|_| same_signer) {
        data = existing.data.clone().unwrap_or_default();
        annotations = existing.metadata.annotations.clone().unwrap_or_default();
    }
    let mut changed =
        !same_signer || existing.and_then(|s| text(s, CA_CERT)).as_deref() != Some(bundle.as_str());
    for &id in ids {
        let hosts = server_hosts(names, id);
        let digest = hosts_digest(&hosts);
        let current = data.contains_key(&server_entry(id))
            && annotations.get(&names_annotation(id)) == Some(&digest)
            && annotations
                .get(&not_after_annotation(id))
                .and_then(|t| t.parse::<Timestamp>().ok())
                .is_some_and(|t| !pki::due(t.as_second(), days, now));
        if current {
            continue;
        }
        let issued = chain.current.issue(&hosts, now, days)?;
        data.insert(
            server_entry(id),
            ByteString(issued.key_and_cert_pem.into_bytes()),
        );
        annotations.insert(not_after_annotation(id), rfc3339(issued.not_after));
        annotations.insert(names_annotation(id), digest);
        tracing::info!(cluster = %names.cluster, server = id, "issued an internal TLS certificate");
        changed = true;
    }
    if !changed {
        return Ok(None);
    }
    data.insert(CA_CERT.to_owned(), ByteString(bundle.into_bytes()));
    annotations.insert(SIGNER.to_owned(), signer);
    let mut metadata = owned_meta(cc, secret_name(names))?;
    metadata.annotations = Some(annotations);
    Ok(Some(Secret {
        metadata,
        data: Some(data),
        ..Secret::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::fixtures::cluster;

    const NOW: i64 = 1_796_688_000;
    const DAY: i64 = 86_400;

    fn names() -> Names {
        Names::of(&cluster()).unwrap()
    }

    fn annotation(secret: &Secret, key: &str) -> Option<String> {
        secret.metadata.annotations.as_ref()?.get(key).cloned()
    }

    fn entry(secret: &Secret, id: u64) -> Vec<u8> {
        secret.data.as_ref().unwrap()[&server_entry(id)].0.clone()
    }

    #[test]
    fn certificates_are_issued_once_then_kept_until_due() {
        let cc = cluster();
        let ca = CaChain::create("apps/zk", NOW).unwrap();
        let first = server_certificates(&cc, &names(), &ca, None, &[1, 2, 3], NOW)
            .unwrap()
            .expect("issued");
        assert_eq!(text(&first, CA_CERT).unwrap(), ca.current.cert_pem);
        for id in 1..=3 {
            assert!(!entry(&first, id).is_empty());
        }
        // Nothing is due: nothing is written.
        assert!(
            server_certificates(&cc, &names(), &ca, Some(&first), &[1, 2, 3], NOW + DAY)
                .unwrap()
                .is_none()
        );
        // A fourth server gets one; the others keep theirs.
        let grown = server_certificates(&cc, &names(), &ca, Some(&first), &[1, 2, 3, 4], NOW)
            .unwrap()
            .expect("server 4 issued");
        assert_eq!(entry(&grown, 1), entry(&first, 1));
        assert!(!entry(&grown, 4).is_empty());
        // Two thirds into their life, all are renewed.
        let later = NOW + 61 * DAY;
        let renewed = server_certificates(&cc, &names(), &ca, Some(&grown), &[1, 2, 3, 4], later)
            .unwrap()
            .expect("renewed");
        for id in 1..=4 {
            assert_ne!(entry(&renewed, id), entry(&grown, id), "server {id}");
        }
        let not_after = annotation(&renewed, &not_after_annotation(1))
            .unwrap()
            .parse::<Timestamp>()
            .unwrap();
        assert_eq!(not_after.as_second(), later + 90 * DAY);
    }

    #[test]
    fn a_new_ca_issues_every_certificate_again() {
        let cc = cluster();
        let old = CaChain::create("apps/zk", NOW).unwrap();
        let first = server_certificates(&cc, &names(), &old, None, &[1, 2], NOW)
            .unwrap()
            .unwrap();
        let new = CaChain::create("apps/zk", NOW).unwrap();
        let again = server_certificates(&cc, &names(), &new, Some(&first), &[1], NOW)
            .unwrap()
            .expect("re-issued");
        assert_eq!(text(&again, CA_CERT).unwrap(), new.current.cert_pem);
        assert_ne!(entry(&again, 1), entry(&first, 1));
        assert!(
            !again.data.as_ref().unwrap().contains_key(&server_entry(2)),
            "the old CA's certificate of a server not asked for is dropped"
        );
    }

    #[test]
    fn a_ca_secret_round_trips_through_a_rotation() {
        let cc = cluster();
        let mut chain = CaChain::create("apps/zk", NOW).unwrap();
        let secret = ca_secret(&cc, "zk-ca", &chain).unwrap();
        let loaded = load("apps/zk", &secret).expect("loads");
        assert_eq!(loaded.current.cert_pem, chain.current.cert_pem);
        assert_eq!(loaded.current_not_after, chain.current_not_after);
        assert!(loaded.next.is_none() && loaded.previous.is_none());
        // Mid-rotation: the successor and its dates come back too.
        let late = chain.current_not_after - 365 * DAY;
        assert!(chain.advance("apps/zk", late).unwrap());
        let secret = ca_secret(&cc, "zk-ca", &chain).unwrap();
        let loaded = load("apps/zk", &secret).expect("loads");
        let next = loaded.next.as_ref().expect("the successor");
        assert_eq!(next.published, late);
        assert_eq!(next.ca.cert_pem, chain.next.as_ref().unwrap().ca.cert_pem);
        assert_eq!(loaded.trust_bundle(), chain.trust_bundle());
        // The pods' Secret trusts both, and is re-issued once the
        // successor signs.
        let before = server_certificates(&cc, &names(), &chain, None, &[1], late)
            .unwrap()
            .unwrap();
        assert_eq!(text(&before, CA_CERT).unwrap(), chain.trust_bundle());
        let switched = late + crate::pki::rotation::SETTLE_SECS;
        let mut chain = loaded;
        assert!(chain.advance("apps/zk", switched).unwrap());
        assert!(chain.previous.is_some());
        let after = server_certificates(&cc, &names(), &chain, Some(&before), &[1], switched)
            .unwrap()
            .expect("a new signer re-issues");
        assert_ne!(entry(&after, 1), entry(&before, 1));
        let secret = ca_secret(&cc, "zk-ca", &chain).unwrap();
        assert_eq!(load("apps/zk", &secret).unwrap().previous, chain.previous);

        let mut broken = secret.clone();
        broken
            .data
            .as_mut()
            .unwrap()
            .insert(CA_KEY.to_owned(), ByteString(b"garbage".to_vec()));
        assert!(load("apps/zk", &broken).is_none());
    }
}
