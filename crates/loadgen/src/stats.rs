//! Latency samples, percentiles and the client's own CPU time.

use serde::Serialize;

/// Throughput and latency of one kind of request over a measured window.
/// Latencies are in microseconds; percentiles are nearest-rank over every
/// sample (no sampling, no histogram buckets).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct OpStats {
    pub(crate) ops: u64,
    pub(crate) ops_per_s: f64,
    pub(crate) mean_us: f64,
    pub(crate) p50_us: f64,
    pub(crate) p90_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) p999_us: f64,
    pub(crate) max_us: f64,
}

impl OpStats {
    /// Summarises latencies in nanoseconds measured over `window_s` seconds.
    pub(crate) fn from_nanos(mut samples: Vec<u64>, window_s: f64) -> OpStats {
        samples.sort_unstable();
        let n = samples.len();
        let us = |ns: u64| ns as f64 / 1000.0;
        let rank = |p: f64| -> f64 {
            if n == 0 {
                return 0.0;
            }
            // Nearest rank: the smallest value with at least p of the samples at or below it.
            let i = ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
            samples.get(i).copied().map_or(0.0, us)
        };
        let total: u128 = samples.iter().map(|&s| u128::from(s)).sum();
        OpStats {
            ops: n as u64,
            ops_per_s: if window_s > 0.0 {
                n as f64 / window_s
            } else {
                0.0
            },
            mean_us: if n == 0 {
                0.0
            } else {
                total as f64 / n as f64 / 1000.0
            },
            p50_us: rank(0.50),
            p90_us: rank(0.90),
            p99_us: rank(0.99),
            p999_us: rank(0.999),
            max_us: samples.last().copied().map_or(0.0, us),
        }
    }
}

/// CPU seconds (user + system) this process has used, from /proc/self/stat
/// (fields 14 and 15, in USER_HZ = 100 ticks per second on Linux).
pub(crate) fn own_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may contain spaces; it ends at the last ')'.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3, so fields 14 and 15 are at 11 and 12.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<u64> = (1..=1000).map(|i| i * 1000).collect();
        let s = OpStats::from_nanos(samples, 2.0);
        assert_eq!(s.ops, 1000);
        assert_eq!(s.ops_per_s, 500.0);
        assert_eq!(s.p50_us, 500.0);
        assert_eq!(s.p90_us, 900.0);
        assert_eq!(s.p99_us, 990.0);
        assert_eq!(s.p999_us, 999.0);
        assert_eq!(s.max_us, 1000.0);
        assert_eq!(s.mean_us, 500.5);
    }

    #[test]
    fn empty_samples_are_zero() {
        let s = OpStats::from_nanos(Vec::new(), 1.0);
        assert_eq!((s.ops, s.p50_us, s.max_us), (0, 0.0, 0.0));
    }

    #[test]
    fn own_cpu_time_is_readable() {
        assert!(own_cpu_seconds().is_some());
    }
}
