//! `conclave-server`: a ZooKeeper-compatible coordination server.
//!
//! Reading order, following one request from socket to reply:
//! [`server`] (listeners and the accept loop) → [`connection`] (one client:
//! framing, handshake, four-letter words) → [`processor`] (the single task
//! that owns the tree: sessions, reads, writes, watches) → back out through
//! the connection's writer. [`config`] reads zoo.cfg; [`four_letter`],
//! [`admin_http`] and [`report`] answer operators.

pub mod admin_http;
pub mod config;
pub mod connection;
pub mod durability;
pub mod ensemble_config;
pub mod four_letter;
mod hex;
pub mod inspect;
pub mod membership;
pub mod peers;
pub mod processor;
pub mod recover_alone;
pub mod report;
pub mod sasl;
pub mod server;
pub mod service_message;
pub mod sessions;
pub mod stats;
pub mod tls;

pub use config::Config;
