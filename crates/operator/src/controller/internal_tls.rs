//! The certificates of `spec.internalTls`, each reconcile while the
//! cluster's servers run (or are about to run) any TLS stage: the CA
//! Secret (made once; only the operator reads it) and the Secret every pod
//! mounts, with a certificate per server that is issued before its pod
//! exists and renewed when a third of its life is left. The servers reload
//! a changed certificate without a restart, so renewal rolls nothing.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::{Api, Client};

use super::Error;
use super::apply::apply;
use crate::build::internal_tls::{
    CA_CERT, CA_KEY, CA_NOT_AFTER, ca_secret_name, hosts_digest, names_annotation,
    not_after_annotation, secret_name, server_entry, server_hosts,
};
use crate::build::{Names, owned_meta};
use crate::crd::CoordinationCluster;
use crate::pki::{self, Authority};

/// Makes sure the CA and a current certificate for each server in `ids`
/// exist; returns the CA certificate (PEM) the admin ports are checked
/// against.
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
    let ca = match existing_ca.as_ref().and_then(|s| load(&cluster, s)) {
        Some(ca) => ca,
        None => {
            let (ca, not_after) = Authority::create(&cluster, now)?;
            apply(
                client,
                ns,
                &ca_name,
                &ca_secret(cc, &ca_name, &ca, not_after)?,
            )
            .await?;
            if existing_ca.is_some() {
                tracing::warn!(%cluster, secret = %ca_name, "the internal CA Secret was unreadable: made a new CA; every server's certificate is issued again");
            } else {
                tracing::info!(%cluster, secret = %ca_name, "made the cluster's internal CA");
            }
            ca
        }
    };
    let name = secret_name(names);
    let existing = api.get_opt(&name).await?;
    if let Some(secret) = server_certificates(cc, names, &ca, existing.as_ref(), ids, now)? {
        apply(client, ns, &name, &secret).await?;
    }
    Ok(ca.cert_pem)
}

fn text(secret: &Secret, key: &str) -> Option<String> {
    let bytes = secret.data.as_ref()?.get(key)?;
    String::from_utf8(bytes.0.clone()).ok()
}

fn load(cluster: &str, secret: &Secret) -> Option<Authority> {
    let cert = text(secret, CA_CERT)?;
    let key = text(secret, CA_KEY)?;
    match Authority::load(cluster, &cert, &key) {
        Ok(ca) => Some(ca),
        Err(error) => {
            tracing::warn!(%cluster, %error, "the internal CA Secret holds no usable key");
            None
        }
    }
}

fn rfc3339(unix: i64) -> String {
    Timestamp::from_second(unix).map_or_else(|_| unix.to_string(), |t| t.to_string())
}

fn ca_secret(
    cc: &CoordinationCluster,
    name: &str,
    ca: &Authority,
    not_after: i64,
) -> Result<Secret, Error> {
    let mut metadata = owned_meta(cc, name.to_owned())?;
    metadata.annotations = Some(BTreeMap::from([(
        CA_NOT_AFTER.to_owned(),
        rfc3339(not_after),
    )]));
    Ok(Secret {
        metadata,
        data: Some(BTreeMap::from([
            (
                CA_CERT.to_owned(),
                ByteString(ca.cert_pem.clone().into_bytes()),
            ),
            (
                CA_KEY.to_owned(),
                ByteString(ca.key_pem.clone().into_bytes()),
            ),
        ])),
        ..Secret::default()
    })
}

/// The pods' Secret as it should be, or `None` when `existing` already is:
/// every server of `ids` has a certificate from `ca` for its current names
/// that is not due for renewal. Certificates of other servers (that left,
/// or are not made yet) are kept while they are the same CA's.
fn server_certificates(
    cc: &CoordinationCluster,
    names: &Names,
    ca: &Authority,
    existing: Option<&Secret>,
    ids: &[u64],
    now: i64,
) -> Result<Option<Secret>, Error> {
    let days = cc.spec.internal_tls.certificate_days;
    let same_ca = existing.and_then(|s| text(s, CA_CERT)).as_deref() == Some(&ca.cert_pem);
    let mut data: BTreeMap<String, ByteString> = BTreeMap::new();
    let mut annotations: BTreeMap<String, String> = BTreeMap::new();
    if let Some(existing) = existing.filter(|_| same_ca) {
        data = existing.data.clone().unwrap_or_default();
        annotations = existing.metadata.annotations.clone().unwrap_or_default();
    }
    let mut changed = !same_ca;
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
        let issued = ca.issue(&hosts, now, days)?;
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
    data.insert(
        CA_CERT.to_owned(),
        ByteString(ca.cert_pem.clone().into_bytes()),
    );
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
        let (ca, _) = Authority::create("apps/zk", NOW).unwrap();
        let first = server_certificates(&cc, &names(), &ca, None, &[1, 2, 3], NOW)
            .unwrap()
            .expect("issued");
        assert_eq!(text(&first, CA_CERT).unwrap(), ca.cert_pem);
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
        let (old, _) = Authority::create("apps/zk", NOW).unwrap();
        let first = server_certificates(&cc, &names(), &old, None, &[1, 2], NOW)
            .unwrap()
            .unwrap();
        let (new, _) = Authority::create("apps/zk", NOW).unwrap();
        let again = server_certificates(&cc, &names(), &new, Some(&first), &[1], NOW)
            .unwrap()
            .expect("re-issued");
        assert_eq!(text(&again, CA_CERT).unwrap(), new.cert_pem);
        assert_ne!(entry(&again, 1), entry(&first, 1));
        assert!(
            !again.data.as_ref().unwrap().contains_key(&server_entry(2)),
            "the old CA's certificate of a server not asked for is dropped"
        );
    }

    #[test]
    fn a_ca_secret_round_trips() {
        let cc = cluster();
        let (ca, not_after) = Authority::create("apps/zk", NOW).unwrap();
        let secret = ca_secret(&cc, "zk-ca", &ca, not_after).unwrap();
        let loaded = load("apps/zk", &secret).expect("loads");
        assert_eq!(loaded.cert_pem, ca.cert_pem);
        let mut broken = secret.clone();
        broken
            .data
            .as_mut()
            .unwrap()
            .insert(CA_KEY.to_owned(), ByteString(b"garbage".to_vec()));
        assert!(load("apps/zk", &broken).is_none());
    }
}
