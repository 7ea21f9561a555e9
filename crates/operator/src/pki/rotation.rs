//! The life of a cluster's CA: its successor is made when a third of its
//! life is left, trusted by every server before it signs anything, then
//! signs, while the old CA stays trusted until no server's certificate is
//! from it any more. Each step waits [`SETTLE_SECS`], longer than a pod
//! takes to see a changed Secret (the kubelet's sync period) and its
//! server to reload it (10 s), so that at every moment each server trusts
//! whatever certificate its peers present. Pure: the time is an input.

use super::{Authority, CA_DAYS, PkiError, due};

/// How long a step waits for every pod to have seen the last one.
pub const SETTLE_SECS: i64 = 15 * 60;

/// A CA made to take over, trusted since `published`.
#[derive(Debug)]
pub struct Successor {
    pub ca: Authority,
    pub not_after: i64,
    pub published: i64,
}

/// A CA that no longer signs, still trusted until `until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retired {
    pub cert_pem: String,
    pub until: i64,
}

/// The CAs of a cluster: the one that signs, and the ones trusted beside
/// it while signing moves from one to the next.
#[derive(Debug)]
pub struct CaChain {
    pub current: Authority,
    pub current_not_after: i64,
    pub next: Option<Successor>,
    pub previous: Option<Retired>,
}

impl CaChain {
    /// A new cluster's CA.
    pub fn create(cluster: &str, now: i64) -> Result<CaChain, PkiError> {
        let (current, current_not_after) = Authority::create(cluster, now)?;
        Ok(CaChain {
            current,
            current_not_after,
            next: None,
            previous: None,
        })
    }

    /// The step due at `now`, if any; whether something changed.
    pub fn advance(&mut self, cluster: &str, now: i64) -> Result<bool, PkiError> {
        let mut changed = false;
        if self.previous.as_ref().is_some_and(|p| now >= p.until) {
            self.previous = None;
            changed = true;
        }
        match self.next.take() {
            Some(next) if now - next.published >= SETTLE_SECS => {
                let old = std::mem::replace(&mut self.current, next.ca);
                self.current_not_after = next.not_after;
                self.previous = Some(Retired {
                    cert_pem: old.cert_pem,
                    until: now + SETTLE_SECS,
                });
                changed = true;
            }
            Some(next) => self.next = Some(next),
            None if self.previous.is_none() && due(self.current_not_after, CA_DAYS, now) => {
                let (ca, not_after) = Authority::create(cluster, now)?;
                self.next = Some(Successor {
                    ca,
                    not_after,
                    published: now,
                });
                changed = true;
            }
            None => {}
        }
        Ok(changed)
    }

    /// The CA certificates the servers (and the operator) trust: the one
    /// that signs, and the one about to or the one that did.
    pub fn trust_bundle(&self) -> String {
        let mut bundle = self.current.cert_pem.clone();
        if let Some(next) = &self.next {
            bundle.push_str(&next.ca.cert_pem);
        }
        if let Some(previous) = &self.previous {
            bundle.push_str(&previous.cert_pem);
        }
        bundle
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
    use tokio_rustls::rustls::client::WebPkiServerVerifier;
    use tokio_rustls::rustls::client::danger::ServerCertVerifier as _;
    use tokio_rustls::rustls::crypto;

    use super::*;

    const DAY: i64 = 86_400;
    const HOST: &str = "zk-0.zk-peers.apps.svc.cluster.local";

    /// Whether a server trusting `bundle` takes `leaf` at `now`.
    fn trusts(bundle: &str, leaf: &str, now: i64) -> bool {
        let roots = crate::pki::trust_roots(bundle).unwrap();
        let verifier = WebPkiServerVerifier::builder(Arc::new(roots))
            .build()
            .unwrap();
        let cert = CertificateDer::pem_slice_iter(leaf.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(now as u64));
        verifier
            .verify_server_cert(&cert, &[], &ServerName::try_from(HOST).unwrap(), &[], time)
            .is_ok()
    }

    /// Through a whole rotation, a server still holding the bundle and
    /// certificate of the step before takes the certificates of the step
    /// after, and the other way round: no moment where two servers refuse
    /// each other.
    #[test]
    fn a_rotation_never_leaves_two_servers_refusing_each_other() {
        let _ = crypto::ring::default_provider().install_default();
        let start = 1_796_688_000;
        let mut chain = CaChain::create("apps/zk", start).unwrap();
        let mut now = start;
        assert!(
            !chain.advance("apps/zk", now + 365 * DAY).unwrap(),
            "young: nothing"
        );

        // Two thirds into the CA's life (server certificates renewed all
        // along), steps happen as reconciles come.
        now += (CA_DAYS as i64) * DAY * 2 / 3 + DAY;
        let mut bundle = chain.trust_bundle();
        let mut leaf = chain
            .current
            .issue(&[HOST.to_owned()], now - DAY, 90)
            .unwrap()
            .key_and_cert_pem;
        let mut steps = Vec::new();
        for _ in 0..20 {
            if chain.advance("apps/zk", now).unwrap() {
                steps.push((chain.next.is_some(), chain.previous.is_some()));
                let new_bundle = chain.trust_bundle();
                // The operator re-issues every server's certificate from
                // the signing CA (its certificates are renewed on a new
                // signer).
                let new_leaf = chain
                    .current
                    .issue(&[HOST.to_owned()], now, 90)
                    .unwrap()
                    .key_and_cert_pem;
                assert!(
                    trusts(&bundle, &new_leaf, now),
                    "an old pod takes a new certificate"
                );
                assert!(
                    trusts(&new_bundle, &leaf, now),
                    "a new pod takes an old certificate"
                );
                assert!(trusts(&new_bundle, &new_leaf, now));
                bundle = new_bundle;
                leaf = new_leaf;
            }
            now += 5 * 60;
        }
        // Published, switched, retired dropped.
        assert_eq!(steps, [(true, false), (false, true), (false, false)]);
        assert!(!chain.current.cert_pem.is_empty());
        assert!(chain.current_not_after > now + (CA_DAYS as i64 - 1) * DAY);
        assert_eq!(CertificateDer::pem_slice_iter(bundle.as_bytes()).count(), 1);
    }
}
