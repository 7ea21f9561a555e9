//! Expiry buckets as ZooKeeper's `ExpiryQueue` keeps them: sessions and
//! connections grouped by the time they expire, which `dump` and the admin
//! API's `dump` print.

use super::SESSIONLESS_CNXN_TIMEOUT_MS;
use crate::processor::{ConnectionInfo, ServerSnapshot};

/// Groups (id, expiry) pairs into expiry buckets, sorted by time
/// (`ExpiryQueue`'s map from expiry time to elements).
pub fn expiry_buckets<T: Clone>(items: &[(T, u64)]) -> Vec<(u64, Vec<T>)> {
    let mut buckets: std::collections::BTreeMap<u64, Vec<T>> = std::collections::BTreeMap::new();
    for (item, at) in items {
        buckets.entry(*at).or_default().push(item.clone());
    }
    buckets.into_iter().collect()
}

/// Session expiry buckets: expiry on the snapshot's monotonic clock ->
/// session ids.
pub fn session_buckets(s: &ServerSnapshot) -> Vec<(u64, Vec<i64>)> {
    expiry_buckets(&s.session_expiries)
}

/// Connection expiry buckets as ZooKeeper's NIO server keeps them: each
/// connection expires one timeout after its last activity, rounded up to the
/// next multiple of the sessionless-connection timeout.
pub fn connection_buckets(s: &ServerSnapshot) -> Vec<(u64, Vec<&ConnectionInfo>)> {
    let interval = SESSIONLESS_CNXN_TIMEOUT_MS as u64;
    let items: Vec<(&ConnectionInfo, u64)> = s
        .connections
        .iter()
        .map(|c| {
            let active_wall = c.stats.established_ms.max(c.stats.last_response_ms);
            let idle = u64::try_from(s.wall_clock_ms.saturating_sub(active_wall)).unwrap_or(0);
            let active = s.uptime_ms.saturating_sub(idle);
            let timeout = u64::try_from(c.timeout_ms).unwrap_or(0);
            (c, ((active + timeout) / interval + 1) * interval)
        })
        .collect();
    expiry_buckets(&items)
}
