//! What the bulk sink counts, as served on `GET /_bench/stats` and read by the driver.

use serde::{Deserialize, Serialize};

/// The sink's counters since it started.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SinkStats {
    /// `_bulk` requests answered 200.
    pub bulk_requests: u64,
    /// Requests answered 400 (malformed body, bad gzip, unknown action).
    pub bad_requests: u64,
    /// Bulk items acknowledged (documents for index/create/update, plus deletes).
    pub docs: u64,
    /// Request body bytes as received (compressed when gzip).
    pub wire_bytes: u64,
    /// Request body bytes after decompression.
    pub body_bytes: u64,
    /// Bytes of the document lines alone (no action lines, no newlines).
    pub doc_bytes: u64,
    /// Requests that came gzip-compressed.
    pub gzip_requests: u64,
    /// Documents parsed as JSON to check them (every `validate_every`-th one).
    pub validated: u64,
    /// Of those, how many were not valid JSON objects.
    pub invalid: u64,
    /// Unix nanoseconds when the first bulk request was answered (0: none yet).
    pub first_bulk_unix_ns: u64,
    /// Unix nanoseconds when the latest bulk request was answered (0: none yet).
    pub last_bulk_unix_ns: u64,
    /// Write-to-visible latency of documents carrying the latency field.
    pub latency: LatencyStats,
}

/// Latency figures over the documents that carried the latency field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyStats {
    /// Documents measured.
    pub count: u64,
    /// Median, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, milliseconds.
    pub p99_ms: f64,
    /// Largest, milliseconds.
    pub max_ms: f64,
}

impl LatencyStats {
    /// Percentiles over latencies in microseconds (sorted in place).
    pub fn from_micros(samples: &mut [u64]) -> Self {
        if samples.is_empty() {
            return LatencyStats::default();
        }
        samples.sort_unstable();
        let at = |q: f64| {
            let rank = ((samples.len() as f64) * q).ceil() as usize;
            samples[rank.clamp(1, samples.len()) - 1] as f64 / 1000.0
        };
        LatencyStats {
            count: samples.len() as u64,
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut samples: Vec<u64> = (1..=100).rev().map(|ms| ms * 1000).collect();
        let stats = LatencyStats::from_micros(&mut samples);
        assert_eq!(stats.count, 100);
        assert_eq!(stats.p50_ms, 50.0);
        assert_eq!(stats.p99_ms, 99.0);
        assert_eq!(stats.max_ms, 100.0);
        assert_eq!(LatencyStats::from_micros(&mut []), LatencyStats::default());
    }
}
