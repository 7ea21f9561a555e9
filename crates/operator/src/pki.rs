//! The cluster's own certificate authority and the servers' certificates
//! for quorum and admin TLS: ECDSA P-256, made with rcgen. Pure apart from
//! the random keys and serial numbers: the time is an input.
//!
//! The CA's certificate and key live in a Secret only the operator reads;
//! to sign, the CA is rebuilt from its key and its name (both fixed for a
//! cluster), so no certificate has to be parsed back. `rotation.rs`: how a
//! CA hands over to its successor.

pub mod rotation;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use time::OffsetDateTime;
use tokio_rustls::rustls::RootCertStore;

/// How long the CA is valid.
pub const CA_DAYS: u32 = 3650;
/// A certificate starts this long before it is made, for clocks a little
/// behind the operator's.
const BACKDATE_SECS: i64 = 3600;
const DAY_SECS: i64 = 86_400;

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("time {0} is out of range")]
    Time(i64),
    #[error("the CA certificate cannot be used: {0}")]
    Ca(String),
}

/// A certificate authority that can sign.
pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    /// Its certificate, PEM.
    pub cert_pem: String,
    /// Its key, PKCS#8 PEM.
    pub key_pem: String,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

/// A server's key and certificate, PEM, in the order the server's PEM key
/// store reads them (key first), and when the certificate expires (Unix
/// seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub key_and_cert_pem: String,
    pub not_after: i64,
}

fn at(unix: i64) -> Result<OffsetDateTime, PkiError> {
    OffsetDateTime::from_unix_timestamp(unix).map_err(|_| PkiError::Time(unix))
}

fn random_serial() -> SerialNumber {
    // Positive (top bit clear) and never zero, as RFC 5280 asks.
    let mut bytes = rand::random::<[u8; 16]>();
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    SerialNumber::from_slice(&bytes)
}

/// The CA's parameters: its name is the cluster's, so that one cluster's
/// CA is told from another's.
fn ca_params(cluster: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "conclave");
    name.push(DnType::CommonName, format!("{cluster} internal CA"));
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

impl Authority {
    /// A new CA for `cluster` (`namespace/name`), valid from `now` for
    /// [`CA_DAYS`]. Returns it and when it expires.
    pub fn create(cluster: &str, now: i64) -> Result<(Authority, i64), PkiError> {
        let key = KeyPair::generate()?;
        let mut params = ca_params(cluster);
        params.serial_number = Some(random_serial());
        params.not_before = at(now - BACKDATE_SECS)?;
        let not_after = now + i64::from(CA_DAYS) * DAY_SECS;
        params.not_after = at(not_after)?;
        let cert_pem = params.self_signed(&key)?.pem();
        let key_pem = key.serialize_pem();
        Ok((
            Authority {
                issuer: Issuer::new(ca_params(cluster), key),
                cert_pem,
                key_pem,
            },
            not_after,
        ))
    }

    /// The CA kept in its Secret.
    pub fn load(cluster: &str, cert_pem: &str, key_pem: &str) -> Result<Authority, PkiError> {
        let key = KeyPair::from_pem(key_pem)?;
        Ok(Authority {
            issuer: Issuer::new(ca_params(cluster), key),
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
        })
    }

    /// A certificate for a server known by `hosts` (DNS names; the first is
    /// also its common name), for both ends of a TLS connection (servers
    /// dial each other), valid from `now` for `days`.
    pub fn issue(&self, hosts: &[String], now: i64, days: u32) -> Result<Issued, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(hosts.to_vec())?;
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, "conclave");
        name.push(
            DnType::CommonName,
            hosts.first().cloned().unwrap_or_default(),
        );
        params.distinguished_name = name;
        params.serial_number = Some(random_serial());
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        params.not_before = at(now - BACKDATE_SECS)?;
        let not_after = now + i64::from(days) * DAY_SECS;
        params.not_after = at(not_after)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            key_and_cert_pem: format!("{}{}", key.serialize_pem(), cert.pem()),
            not_after,
        })
    }
}

/// The CA certificates of a PEM bundle as a rustls root store (the
/// operator's HTTPS client trusts these; tests check certificates against
/// them as the servers do).
pub fn trust_roots(pem: &str) -> Result<RootCertStore, PkiError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|e| PkiError::Ca(e.to_string()))?;
        roots.add(cert).map_err(|e| PkiError::Ca(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(PkiError::Ca("no CA certificate".to_owned()));
    }
    Ok(roots)
}

/// Whether a certificate valid for `days` and expiring at `not_after` is
/// due for renewal at `now`: when a third of its life is left.
pub fn due(not_after: i64, days: u32, now: i64) -> bool {
    not_after - now < i64::from(days) * DAY_SECS / 3
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
    use tokio_rustls::rustls::client::WebPkiServerVerifier;
    use tokio_rustls::rustls::client::danger::ServerCertVerifier as _;
    use tokio_rustls::rustls::server::WebPkiClientVerifier;
    use tokio_rustls::rustls::{RootCertStore, crypto};

    use super::*;

    const NOW: i64 = 1_796_688_000; // 2026-12-08

    fn roots(pem: &str) -> Arc<RootCertStore> {
        Arc::new(trust_roots(pem).unwrap())
    }

    fn leaf(issued: &Issued) -> CertificateDer<'static> {
        CertificateDer::pem_slice_iter(issued.key_and_cert_pem.as_bytes())
            .next()
            .unwrap()
            .unwrap()
    }

    /// The certificates are judged by the same rustls verifiers the
    /// servers use, as server and as client.
    #[test]
    fn a_server_certificate_verifies_against_its_ca_for_its_own_name_only() {
        let _ = crypto::ring::default_provider().install_default();
        let (ca, ca_expires) = Authority::create("apps/zk", NOW).unwrap();
        assert_eq!(ca_expires, NOW + 3650 * DAY_SECS);
        let host = "zk-0.zk-peers.apps.svc.cluster.local".to_owned();
        let issued = ca.issue(std::slice::from_ref(&host), NOW, 90).unwrap();
        assert!(PrivateKeyDer::from_pem_slice(issued.key_and_cert_pem.as_bytes()).is_ok());
        let verifier = WebPkiServerVerifier::builder(roots(&ca.cert_pem))
            .build()
            .unwrap();
        let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(NOW as u64));
        let cert = leaf(&issued);
        verifier
            .verify_server_cert(&cert, &[], &ServerName::try_from(host).unwrap(), &[], time)
            .expect("valid for its own name");
        let other = ServerName::try_from("zk-1.zk-peers.apps.svc.cluster.local").unwrap();
        assert!(
            verifier
                .verify_server_cert(&cert, &[], &other, &[], time)
                .is_err(),
            "one server's certificate does not name another"
        );
        let clients = WebPkiClientVerifier::builder(roots(&ca.cert_pem))
            .build()
            .unwrap();
        clients
            .verify_client_cert(&cert, &[], time)
            .expect("also a client certificate");
        let late = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            (NOW + 91 * DAY_SECS) as u64,
        ));
        assert!(
            clients.verify_client_cert(&cert, &[], late).is_err(),
            "expired"
        );
    }

    #[test]
    fn a_loaded_ca_signs_what_the_created_one_verifies() {
        let _ = crypto::ring::default_provider().install_default();
        let (created, _) = Authority::create("apps/zk", NOW).unwrap();
        let loaded = Authority::load("apps/zk", &created.cert_pem, &created.key_pem).unwrap();
        let host = "zk-2.zk-peers.apps.svc.cluster.local".to_owned();
        let issued = loaded.issue(std::slice::from_ref(&host), NOW, 30).unwrap();
        let verifier = WebPkiServerVerifier::builder(roots(&created.cert_pem))
            .build()
            .unwrap();
        let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(NOW as u64));
        verifier
            .verify_server_cert(
                &leaf(&issued),
                &[],
                &ServerName::try_from(host).unwrap(),
                &[],
                time,
            )
            .expect("signed by the same CA");
        // Another cluster's CA does not vouch for it.
        let (stranger, _) = Authority::create("apps/other", NOW).unwrap();
        let verifier = WebPkiServerVerifier::builder(roots(&stranger.cert_pem))
            .build()
            .unwrap();
        let name = ServerName::try_from("zk-2.zk-peers.apps.svc.cluster.local").unwrap();
        assert!(
            verifier
                .verify_server_cert(&leaf(&issued), &[], &name, &[], time)
                .is_err()
        );
    }

    #[test]
    fn renewal_is_due_with_a_third_of_the_life_left() {
        let not_after = NOW + 90 * DAY_SECS;
        assert!(!due(not_after, 90, NOW));
        assert!(!due(not_after, 90, NOW + 59 * DAY_SECS));
        assert!(due(not_after, 90, NOW + 61 * DAY_SECS));
        assert!(due(not_after, 90, not_after + 1));
    }
}
