//! Prometheus counters, hand-formatted at `GET /metrics`.
//!
//! - `katcore_clinic_syncs_total{result}`: sync requests by outcome;
//! - `katcore_clinic_sync_bytes_received_total` / `_sent_total`: sync body bytes;
//! - `katcore_clinic_http_errors_total{status}`: every `4xx`/`5xx` answer;
//! - `katcore_clinic_sync_duration_seconds`: a latency histogram of syncs;
//! - `katcore_clinic_sync_writes_refused_total{rule}`: syncs refused because
//!   their changes broke a write rule (docs/record-format.md), by rule;
//! - `katcore_clinic_device_clock_offset_seconds`: a histogram of how far
//!   each syncing device's clock was from the clinic's, either way
//!   (`clock.rs`); `katcore_clinic_device_clocks_ahead_total` counts the
//!   syncs from a device more than the tolerance (10 minutes) ahead;
//! - `katcore_clinic_record_cache_records` / `_bytes`: care records loaded in
//!   memory and their estimated size (bounded by `Limits::record_cache_bytes`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use axum::http::StatusCode;

/// Upper bounds of the sync latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Upper bounds of the clock offset buckets, in seconds: a second, ten, a
/// minute, the tolerance, an hour, a day, thirty days.
const OFFSET_BUCKETS: [f64; 7] = [1.0, 10.0, 60.0, 600.0, 3600.0, 86_400.0, 2_592_000.0];

/// The outcomes a sync is counted under.
const SYNC_RESULTS: [&str; 12] = [
    "ok",
    "history_missing",
    "malformed",
    "write_refused",
    "too_large",
    "unauthorized",
    "forbidden",
    "revoked",
    "rate_limited",
    "busy",
    "timeout",
    "error",
];

/// The server's counters; all updates are lock-free except the error map.
#[derive(Debug, Default)]
pub struct Metrics {
    syncs: [AtomicU64; SYNC_RESULTS.len()],
    bytes_received: AtomicU64,
    bytes_sent: AtomicU64,
    errors: Mutex<BTreeMap<u16, u64>>,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    refused: Mutex<BTreeMap<&'static str, u64>>,
    offset_buckets: [AtomicU64; OFFSET_BUCKETS.len()],
    offset_count: AtomicU64,
    offset_sum_ms: AtomicU64,
    clocks_ahead: AtomicU64,
}

impl Metrics {
    /// Counts one measured device clock offset (`clock.rs`), in milliseconds.
    pub fn observe_clock_offset(&self, offset_ms: i64) {
        let seconds = offset_ms.unsigned_abs() as f64 / 1000.0;
        for (bound, count) in OFFSET_BUCKETS.iter().zip(&self.offset_buckets) {
            if seconds <= *bound {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.offset_count.fetch_add(1, Ordering::Relaxed);
        self.offset_sum_ms.fetch_add(offset_ms.unsigned_abs(), Ordering::Relaxed);
        if offset_ms > crate::clock::FUTURE_TOLERANCE.num_milliseconds() {
            self.clocks_ahead.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one sync answered with `status`, its body sizes and duration.
    pub fn observe_sync(&self, status: StatusCode, received: usize, sent: usize, elapsed: Duration) {
        let result = match status.as_u16() {
            200 => "ok",
            409 => "history_missing",
            400 | 415 => "malformed",
            422 => "write_refused",
            413 => "too_large",
            401 => "unauthorized",
            403 => "forbidden",
            410 => "revoked",
            429 => "rate_limited",
            503 => "busy",
            408 => "timeout",
            _ => "error",
        };
        if let Some(index) = SYNC_RESULTS.iter().position(|r| *r == result) {
            self.syncs[index].fetch_add(1, Ordering::Relaxed);
        }
        self.bytes_received.fetch_add(received as u64, Ordering::Relaxed);
        self.bytes_sent.fetch_add(sent as u64, Ordering::Relaxed);
        let seconds = elapsed.as_secs_f64();
        for (bound, count) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            if seconds <= *bound {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Counts one sync refused for breaking the write rule `rule`.
    pub fn observe_refused_write(&self, rule: &'static str) {
        let mut refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
        *refused.entry(rule).or_default() += 1;
    }

    /// Counts one error response.
    pub fn observe_error(&self, status: StatusCode) {
        let mut errors = self.errors.lock().unwrap_or_else(PoisonError::into_inner);
        *errors.entry(status.as_u16()).or_default() += 1;
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        // Writing to a String cannot fail.
        let _ = writeln!(out, "# HELP katcore_clinic_syncs_total Sync requests by result.");
        let _ = writeln!(out, "# TYPE katcore_clinic_syncs_total counter");
        for (result, count) in SYNC_RESULTS.iter().zip(&self.syncs) {
            let _ = writeln!(out, "katcore_clinic_syncs_total{{result=\"{result}\"}} {}", load(count));
        }
        for (name, help, counter) in [
            ("katcore_clinic_sync_bytes_received_total", "Bytes of sync request bodies.", &self.bytes_received),
            ("katcore_clinic_sync_bytes_sent_total", "Bytes of sync response bodies.", &self.bytes_sent),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", load(counter));
        }
        let _ = writeln!(out, "# HELP katcore_clinic_http_errors_total Error responses by status.");
        let _ = writeln!(out, "# TYPE katcore_clinic_http_errors_total counter");
        for (status, count) in self.errors.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            let _ = writeln!(out, "katcore_clinic_http_errors_total{{status=\"{status}\"}} {count}");
        }
        let name = "katcore_clinic_sync_writes_refused_total";
        let _ = writeln!(out, "# HELP {name} Syncs refused for a write their device may not make, by rule.");
        let _ = writeln!(out, "# TYPE {name} counter");
        for (rule, count) in self.refused.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            let _ = writeln!(out, "{name}{{rule=\"{rule}\"}} {count}");
        }
        histogram(
            &mut out,
            "katcore_clinic_device_clock_offset_seconds",
            "How far a syncing device's clock was from the clinic's, either way.",
            &OFFSET_BUCKETS,
            &self.offset_buckets,
            load(&self.offset_sum_ms) as f64 / 1e3,
            load(&self.offset_count),
        );
        let name = "katcore_clinic_device_clocks_ahead_total";
        let _ = writeln!(out, "# HELP {name} Syncs from a device whose clock was more than the tolerance ahead.");
        let _ = writeln!(out, "# TYPE {name} counter\n{name} {}", load(&self.clocks_ahead));
        histogram(
            &mut out,
            "katcore_clinic_sync_duration_seconds",
            "Time to answer a sync request.",
            &LATENCY_BUCKETS,
            &self.latency_buckets,
            load(&self.latency_sum_micros) as f64 / 1e6,
            load(&self.latency_count),
        );
        out
    }
}

/// Writes histogram `name`: cumulative `counts` under each of `bounds`,
/// then `+Inf`, the sum and the count.
fn histogram(out: &mut String, name: &str, help: &str, bounds: &[f64], counts: &[AtomicU64], sum: f64, total: u64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} histogram");
    for (bound, count) in bounds.iter().zip(counts) {
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", count.load(Ordering::Relaxed));
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {total}");
    let _ = writeln!(out, "{name}_sum {sum}");
    let _ = writeln!(out, "{name}_count {total}");
}

pub(crate) mod endpoint;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_shows_every_series() {
        let metrics = Metrics::default();
        metrics.observe_sync(StatusCode::OK, 100, 200, Duration::from_millis(20));
        metrics.observe_sync(StatusCode::CONFLICT, 10, 0, Duration::from_millis(2));
        metrics.observe_error(StatusCode::CONFLICT);
        let text = metrics.render();
        assert!(text.contains("katcore_clinic_syncs_total{result=\"ok\"} 1\n"));
        assert!(text.contains("katcore_clinic_syncs_total{result=\"history_missing\"} 1\n"));
        assert!(text.contains("katcore_clinic_sync_bytes_received_total 110\n"));
        assert!(text.contains("katcore_clinic_sync_bytes_sent_total 200\n"));
        assert!(text.contains("katcore_clinic_http_errors_total{status=\"409\"} 1\n"));
        assert!(text.contains("katcore_clinic_sync_duration_seconds_bucket{le=\"0.005\"} 1\n"));
        assert!(text.contains("katcore_clinic_sync_duration_seconds_bucket{le=\"0.025\"} 2\n"));
        assert!(text.contains("katcore_clinic_sync_duration_seconds_count 2\n"));
    }

    #[test]
    fn clock_offsets_are_counted_either_way_and_ahead_ones_apart() {
        let metrics = Metrics::default();
        metrics.observe_clock_offset(-400);
        metrics.observe_clock_offset(45_000);
        metrics.observe_clock_offset(3 * 3_600_000);
        let text = metrics.render();
        assert!(text.contains("katcore_clinic_device_clock_offset_seconds_bucket{le=\"1\"} 1\n"), "{text}");
        assert!(text.contains("katcore_clinic_device_clock_offset_seconds_bucket{le=\"60\"} 2\n"));
        assert!(text.contains("katcore_clinic_device_clock_offset_seconds_bucket{le=\"86400\"} 3\n"));
        assert!(text.contains("katcore_clinic_device_clock_offset_seconds_sum 10845.4\n"));
        assert!(
            text.contains("katcore_clinic_device_clocks_ahead_total 1\n"),
            "only the 3-hour one is past the tolerance"
        );
    }
}
