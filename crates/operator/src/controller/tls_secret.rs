//! `spec.tls.secretName`, each reconcile: the Secret must exist and hold
//! what the servers read at start (`tls.crt`, `tls.key`, and `ca.crt`
//! unless clients are not asked for certificates). Otherwise the spec is
//! treated as invalid (nothing is rolled into a crash loop, and status and
//! an Event say which key is missing). Its content's digest goes into the
//! pod template, so a renewed certificate rolls the pods one at a time.

use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use super::Error;
use crate::build::statefulset::fnv1a;
use crate::crd::{CoordinationCluster, TlsClientAuth};

/// What the TLS Secret check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TlsSecret {
    /// `spec.tls` is not set.
    NotAsked,
    /// Usable; the digest of its content.
    Ready(String),
    /// Not usable, and why (for status and an Event).
    Invalid(String),
}

pub(super) async fn check(
    client: &kube::Client,
    namespace: &str,
    cc: &CoordinationCluster,
) -> Result<TlsSecret, Error> {
    let Some(tls) = &cc.spec.tls else {
        return Ok(TlsSecret::NotAsked);
    };
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(&tls.secret_name)
        .await?;
    Ok(judge(secret.as_ref(), &tls.secret_name, tls.client_auth))
}

/// The pure part of [`check`].
pub(super) fn judge(secret: Option<&Secret>, name: &str, auth: TlsClientAuth) -> TlsSecret {
    let Some(secret) = secret else {
        return TlsSecret::Invalid(format!(
            "spec.tls.secretName: Secret {name} does not exist (yet)"
        ));
    };
    let data = secret.data.clone().unwrap_or_default();
    let mut needed = vec!["tls.crt", "tls.key"];
    if auth != TlsClientAuth::None {
        needed.push("ca.crt");
    }
    let missing: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|key| data.get(*key).is_none_or(|v| v.0.is_empty()))
        .collect();
    if !missing.is_empty() {
        let why = if auth == TlsClientAuth::None {
            String::new()
        } else {
            " (ca.crt: the CA that signs clients' certificates; or set spec.tls.clientAuth: None)"
                .to_owned()
        };
        return TlsSecret::Invalid(format!(
            "spec.tls.secretName: Secret {name} has no {}{why}",
            missing.join(", ")
        ));
    }
    let mut content = Vec::new();
    for key in needed {
        content.extend_from_slice(key.as_bytes());
        content.push(0);
        if let Some(value) = data.get(key) {
            content.extend_from_slice(&value.0);
        }
        content.push(0);
    }
    TlsSecret::Ready(format!("{:016x}", fnv1a(&content)))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;

    use super::*;

    fn secret(keys: &[(&str, &str)]) -> Secret {
        Secret {
            data: Some(
                keys.iter()
                    .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Secret::default()
        }
    }

    #[test]
    fn a_missing_secret_or_key_is_named() {
        let TlsSecret::Invalid(why) = judge(None, "zk-tls", TlsClientAuth::Need) else {
            panic!("a missing Secret passed");
        };
        assert!(why.contains("Secret zk-tls does not exist"), "{why}");
        let partial = secret(&[("tls.crt", "c"), ("tls.key", "k")]);
        let TlsSecret::Invalid(why) = judge(Some(&partial), "zk-tls", TlsClientAuth::Need) else {
            panic!("a Secret without ca.crt passed");
        };
        assert!(why.contains("has no ca.crt"), "{why}");
        // Without client auth, no CA is needed.
        assert!(matches!(
            judge(Some(&partial), "zk-tls", TlsClientAuth::None),
            TlsSecret::Ready(_)
        ));
        let empty_key = secret(&[("tls.crt", "c"), ("tls.key", ""), ("ca.crt", "a")]);
        assert!(matches!(
            judge(Some(&empty_key), "zk-tls", TlsClientAuth::Want),
            TlsSecret::Invalid(_)
        ));
    }

    #[test]
    fn the_digest_follows_the_content() {
        let digest = |s: &Secret| match judge(Some(s), "zk-tls", TlsClientAuth::Need) {
            TlsSecret::Ready(d) => d,
            other => panic!("{other:?}"),
        };
        let a = secret(&[("tls.crt", "c1"), ("tls.key", "k"), ("ca.crt", "a")]);
        let renewed = secret(&[("tls.crt", "c2"), ("tls.key", "k"), ("ca.crt", "a")]);
        let extra = secret(&[
            ("tls.crt", "c1"),
            ("tls.key", "k"),
            ("ca.crt", "a"),
            ("x", "y"),
        ]);
        assert_ne!(digest(&a), digest(&renewed));
        // Keys the servers do not read do not roll them.
        assert_eq!(digest(&a), digest(&extra));
    }
}
