//! Summary types that follow ZooKeeper's metric classes, because `mntr`
//! prints their values and operators compare them across servers:
//! [`Summary`] is `AvgMinMaxCounter` (avg rounded to four decimals, min/max 0
//! while empty) and [`PercentileSummary`] is `AvgMinMaxPercentileCounter`
//! (the same plus p50/p95/p99/p999 over a uniform reservoir of 4096 samples).

use rand::Rng as _;

/// `AvgMinMaxCounter`: count, sum, min and max of the values recorded since
/// the last reset.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub total: u64,
    min: Option<u64>,
    max: Option<u64>,
}

impl Summary {
    pub fn record(&mut self, value: u64) {
        self.count += 1;
        self.total = self.total.saturating_add(value);
        self.min = Some(self.min.map_or(value, |m| m.min(value)));
        self.max = Some(self.max.map_or(value, |m| m.max(value)));
    }

    /// 0 while empty, as ZooKeeper reports it.
    pub fn min(&self) -> u64 {
        self.min.unwrap_or(0)
    }

    /// 0 while empty, as ZooKeeper reports it.
    pub fn max(&self) -> u64 {
        self.max.unwrap_or(0)
    }

    /// The mean rounded half-up to four decimals (`AvgMinMaxCounter.getAvg`),
    /// 0.0 while empty.
    pub fn avg(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let avg = self.total as f64 / self.count as f64;
        (avg * 10_000.0).round() / 10_000.0
    }

    pub fn reset(&mut self) {
        *self = Summary::default();
    }
}

/// Samples kept for percentiles (`ResettableUniformReservoir.DEFAULT_SIZE`).
const RESERVOIR_SIZE: usize = 4096;

/// `AvgMinMaxPercentileCounter`: a [`Summary`] plus percentiles computed
/// over a uniform random sample of at most 4096 values.
#[derive(Debug, Clone, Default)]
pub struct PercentileSummary {
    pub summary: Summary,
    reservoir: Vec<u64>,
    /// Values offered to the reservoir since the last reset.
    offered: u64,
}

impl PercentileSummary {
    pub fn record(&mut self, value: u64) {
        self.summary.record(value);
        self.offered += 1;
        if self.reservoir.len() < RESERVOIR_SIZE {
            self.reservoir.push(value);
        } else {
            // Keep each of the `offered` values with equal probability.
            let slot = rand::rng().random_range(0..self.offered);
            if let Some(v) = usize::try_from(slot)
                .ok()
                .and_then(|i| self.reservoir.get_mut(i))
            {
                *v = value;
            }
        }
    }

    /// p50, p95, p99 and p999, each rounded to a whole number as ZooKeeper
    /// prints them; all 0 while empty.
    pub fn percentiles(&self) -> [u64; 4] {
        let mut sorted = self.reservoir.clone();
        sorted.sort_unstable();
        [0.5, 0.95, 0.99, 0.999].map(|q| quantile(&sorted, q).round() as u64)
    }

    pub fn reset(&mut self) {
        *self = PercentileSummary::default();
    }
}

/// The quantile of sorted samples, interpolated between neighbours the way
/// Dropwizard's `UniformSnapshot.getValue` does.
fn quantile(sorted: &[u64], q: f64) -> f64 {
    let (Some(first), Some(last)) = (sorted.first(), sorted.last()) else {
        return 0.0;
    };
    let pos = q * (sorted.len() + 1) as f64;
    let index = pos as usize;
    if index < 1 {
        return *first as f64;
    }
    if index >= sorted.len() {
        return *last as f64;
    }
    let lower = sorted[index - 1] as f64;
    let upper = sorted[index] as f64;
    lower + (pos - pos.floor()) * (upper - lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_is_zero_while_empty_and_rounds_avg_to_four_places() {
        let mut s = Summary::default();
        assert_eq!(
            (s.min(), s.max(), s.avg(), s.count, s.total),
            (0, 0, 0.0, 0, 0)
        );
        for v in [0, 1, 10] {
            s.record(v);
        }
        assert_eq!((s.min(), s.max(), s.count, s.total), (0, 10, 3, 11));
        assert_eq!(s.avg(), 3.6667);
        s.reset();
        assert_eq!(s, Summary::default());
    }

    #[test]
    fn percentiles_interpolate_like_dropwizard() {
        let mut p = PercentileSummary::default();
        assert_eq!(p.percentiles(), [0, 0, 0, 0]);
        for v in 1..=100 {
            p.record(v);
        }
        // pos = q * 101: 50.5 -> 50.5, 95.95 -> 95.95, 99.99 -> 99.99, 100.899 -> last.
        assert_eq!(p.percentiles(), [51, 96, 100, 100]);
        p.record(7);
        assert_eq!(p.summary.count, 101);
    }

    #[test]
    fn reservoir_stays_bounded() {
        let mut p = PercentileSummary::default();
        for v in 0..10_000 {
            p.record(v % 7);
        }
        assert_eq!(p.reservoir.len(), RESERVOIR_SIZE);
        assert_eq!(p.summary.count, 10_000);
        assert!(p.percentiles().iter().all(|v| *v <= 6));
    }
}
