//! [`LatencySketch`]: latencies in fixed logarithmic buckets (DDSketch's idea with its
//! parameters fixed), so that sketches recorded on different gateway threads, flushes and
//! hours add up bucket by bucket, and any percentile of the sum is within
//! [`RELATIVE_ERROR`] of the true one.

use serde::{Deserialize, Serialize};

/// The most a percentile read from a sketch is off, relative to the true value: 1 %.
pub const RELATIVE_ERROR: f64 = 0.01;

/// γ = (1 + α) / (1 − α): bucket `i` holds latencies in (γ^(i−1), γ^i] microseconds.
const GAMMA: f64 = (1.0 + RELATIVE_ERROR) / (1.0 - RELATIVE_ERROR);

/// The last bucket: γ^1400 µs ≈ 1.6 × 10¹² µs, past any request's latency (longer ones land
/// in it).
const MAX_BUCKET: usize = 1400;

/// Counts of latencies per bucket; bucket 0 holds latencies of 1 µs and less.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Stored", into = "Stored")]
pub struct LatencySketch {
    /// Dense from bucket 0 to the highest bucket recorded.
    counts: Vec<u64>,
}

/// As stored: `[[bucket, count], …]` for the buckets that hold anything.
#[derive(Serialize, Deserialize)]
struct Stored(Vec<(u32, u64)>);

impl From<Stored> for LatencySketch {
    fn from(stored: Stored) -> Self {
        let mut sketch = Self::default();
        for (bucket, count) in stored.0 {
            sketch.add_to((bucket as usize).min(MAX_BUCKET), count);
        }
        sketch
    }
}

impl From<LatencySketch> for Stored {
    fn from(sketch: LatencySketch) -> Self {
        Stored(
            sketch
                .counts
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(bucket, n)| (bucket as u32, *n))
                .collect(),
        )
    }
}

fn bucket_of(micros: u64) -> usize {
    if micros <= 1 {
        return 0;
    }
    let bucket = ((micros as f64).ln() / GAMMA.ln()).ceil();
    (bucket as usize).min(MAX_BUCKET)
}

/// The value a bucket stands for: the point whose relative distance to both of its ends is
/// at most [`RELATIVE_ERROR`].
fn value_of(bucket: usize) -> f64 {
    if bucket == 0 {
        return 1.0;
    }
    2.0 * GAMMA.powi(bucket as i32) / (GAMMA + 1.0)
}

impl LatencySketch {
    /// Counts one latency of `micros` microseconds.
    pub fn record(&mut self, micros: u64) {
        self.add_to(bucket_of(micros), 1);
    }

    fn add_to(&mut self, bucket: usize, count: u64) {
        if self.counts.len() <= bucket {
            self.counts.resize(bucket + 1, 0);
        }
        self.counts[bucket] += count;
    }

    /// Adds `other`'s counts to this sketch's.
    pub fn merge(&mut self, other: &LatencySketch) {
        for (bucket, count) in other.counts.iter().enumerate() {
            if *count > 0 {
                self.add_to(bucket, *count);
            }
        }
    }

    /// How many latencies it holds.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The `q`-quantile (0 < q ≤ 1) in microseconds, within [`RELATIVE_ERROR`] of the
    /// latency of that rank; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        // The rank of the q-quantile, 1-based (p50 of 4 values is the 2nd).
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (bucket, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(value_of(bucket));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_percentile_is_within_the_stated_relative_error() {
        let mut sketch = LatencySketch::default();
        let mut values: Vec<u64> = (0..10_000u64).map(|i| 50 + i * i % 97_000).collect();
        for v in &values {
            sketch.record(*v);
        }
        values.sort_unstable();
        for q in [0.5, 0.9, 0.95, 0.99, 1.0] {
            let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
            let truth = values[rank - 1] as f64;
            let estimate = sketch.quantile(q).unwrap();
            let error = (estimate - truth).abs() / truth;
            assert!(
                error <= RELATIVE_ERROR + 1e-9,
                "q={q}: {estimate} vs {truth}"
            );
        }
    }

    #[test]
    fn sketches_merged_answer_as_one_that_saw_every_value() {
        let (mut a, mut b, mut both) = Default::default();
        for v in 1..5_000u64 {
            let sketch: &mut LatencySketch = if v % 3 == 0 { &mut a } else { &mut b };
            sketch.record(v * 7);
            LatencySketch::record(&mut both, v * 7);
        }
        let mut merged: LatencySketch = a;
        merged.merge(&b);
        assert_eq!(merged, both);
    }

    #[test]
    fn a_stored_sketch_reads_back_the_same() {
        let mut sketch = LatencySketch::default();
        for v in [0, 1, 2, 900, 1_000_000, u64::MAX] {
            sketch.record(v);
        }
        let json = serde_json::to_value(&sketch).unwrap();
        assert_eq!(json[0], serde_json::json!([0, 2]));
        let back: LatencySketch = serde_json::from_value(json).unwrap();
        assert_eq!(back, sketch);
        assert_eq!(LatencySketch::default().quantile(0.5), None);
    }
}
