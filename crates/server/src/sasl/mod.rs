//! Client SASL, as ZooKeeper's server does it: the DIGEST-MD5 mechanism
//! (what Kafka, kazoo and the Java client use without Kerberos) against the
//! users of a JAAS file's `Server` section (`DigestLoginModule`'s
//! `user_<name>="<password>"` options). A client that completes the
//! exchange is authenticated as `sasl:<name>`.
//!
//! Kerberos (GSSAPI) is not supported: a JAAS `Server` section with another
//! login module stops the server at start (`jaas.rs`).

mod digest_md5;
mod jaas;

pub use digest_md5::{DigestMd5, Step};
pub use jaas::{JaasError, SaslUsers};
