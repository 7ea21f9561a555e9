//! The `mntr` four-letter word (it must be whitelisted:
//! `4lw.commands.whitelist=mntr,...`), and the group-commit figures derived
//! from two readings of it.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// `mntr`'s output as key → value.
pub(crate) type Mntr = BTreeMap<String, String>;

/// The raw `mntr` text.
pub(crate) async fn fetch_text(addr: &str) -> anyhow::Result<String> {
    let fetch = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(b"mntr").await?;
        let mut out = String::new();
        stream.read_to_string(&mut out).await?;
        anyhow::Ok(out)
    };
    let text = tokio::time::timeout(Duration::from_secs(10), fetch)
        .await
        .context("mntr: timed out")??;
    if !text.contains("zk_version") {
        anyhow::bail!("mntr answered {text:?}: is mntr in 4lw.commands.whitelist?");
    }
    Ok(text)
}

/// `mntr`, parsed.
pub(crate) async fn fetch(addr: &str) -> anyhow::Result<Mntr> {
    let text = fetch_text(addr).await?;
    Ok(text
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect())
}

/// Log syncs between two `mntr` readings: how many, how many log entries
/// they made durable, and how long they took. Both Apache ZooKeeper
/// (SyncRequestProcessor, FileTxnLog) and Conclave report these metrics.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct GroupCommit {
    /// Δ `zk_cnt_sync_processor_batch_size`: syncs (flushes of the log).
    pub(crate) syncs: u64,
    /// Δ `zk_sum_sync_processor_batch_size`: log entries those syncs covered.
    pub(crate) entries: u64,
    pub(crate) entries_per_sync: f64,
    pub(crate) syncs_per_s: f64,
    /// Δ `zk_sum_fsynctime` / Δ `zk_cnt_fsynctime`. Both servers record
    /// each sync in whole milliseconds (truncated), so this is coarse.
    pub(crate) avg_fsync_ms: f64,
    /// `zk_max_fsynctime` at the end (since server start, not the window).
    pub(crate) max_fsync_ms_since_start: u64,
}

impl GroupCommit {
    pub(crate) fn between(before: &Mntr, after: &Mntr, window_s: f64) -> anyhow::Result<Self> {
        let delta = |key: &str| -> anyhow::Result<u64> {
            let read = |m: &Mntr| -> anyhow::Result<u64> {
                m.get(key)
                    .with_context(|| format!("mntr has no {key}"))?
                    .parse()
                    .with_context(|| format!("mntr {key} is not an integer"))
            };
            Ok(read(after)?.saturating_sub(read(before)?))
        };
        let syncs = delta("zk_cnt_sync_processor_batch_size")?;
        let entries = delta("zk_sum_sync_processor_batch_size")?;
        let fsyncs = delta("zk_cnt_fsynctime")?;
        let fsync_ms = delta("zk_sum_fsynctime")?;
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        Ok(GroupCommit {
            syncs,
            entries,
            entries_per_sync: ratio(entries, syncs),
            syncs_per_s: if window_s > 0.0 {
                syncs as f64 / window_s
            } else {
                0.0
            },
            avg_fsync_ms: ratio(fsync_ms, fsyncs),
            max_fsync_ms_since_start: after
                .get("zk_max_fsynctime")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mntr(pairs: &[(&str, &str)]) -> Mntr {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn group_commit_is_the_difference_of_two_readings() {
        let before = mntr(&[
            ("zk_cnt_sync_processor_batch_size", "10"),
            ("zk_sum_sync_processor_batch_size", "10"),
            ("zk_cnt_fsynctime", "10"),
            ("zk_sum_fsynctime", "0"),
        ]);
        let after = mntr(&[
            ("zk_cnt_sync_processor_batch_size", "110"),
            ("zk_sum_sync_processor_batch_size", "810"),
            ("zk_cnt_fsynctime", "110"),
            ("zk_sum_fsynctime", "50"),
            ("zk_max_fsynctime", "7"),
        ]);
        let g = GroupCommit::between(&before, &after, 2.0).unwrap();
        assert_eq!((g.syncs, g.entries), (100, 800));
        assert_eq!(g.entries_per_sync, 8.0);
        assert_eq!(g.syncs_per_s, 50.0);
        assert_eq!(g.avg_fsync_ms, 0.5);
        assert_eq!(g.max_fsync_ms_since_start, 7);
    }
}
