//! `/metrics`: counters and one latency histogram in the Prometheus text
//! format, kept in atomics (no lock on the ingest path).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the publish-latency buckets, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0, 5.0];

/// Every counter the service reports.
#[derive(Debug, Default)]
pub struct Metrics {
    pub batches: AtomicU64,
    pub events: AtomicU64,
    pub duplicates: AtomicU64,
    pub rejected: AtomicU64,
    pub jetstream_errors: AtomicU64,
    pub batches_unavailable: AtomicU64,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
    pub texts_sent: AtomicU64,
    pub texts_refused_quota: AtomicU64,
    pub messages_sent: AtomicU64,
    pub suppressed_cap: AtomicU64,
    pub suppressed_consent: AtomicU64,
    pub suppressed_redelivery: AtomicU64,
    pub suppressed_stale: AtomicU64,
    pub provider_errors: AtomicU64,
    pub sync_served: AtomicU64,
}

impl Metrics {
    pub fn jetstream_error(&self) {
        self.jetstream_errors.fetch_add(1, Relaxed);
    }

    /// A batch's publish: events stored, duplicates, and how long from
    /// the first publish to the last acknowledgement.
    pub fn published(&self, stored: u64, duplicates: u64, took: Duration) {
        self.events.fetch_add(stored, Relaxed);
        self.duplicates.fetch_add(duplicates, Relaxed);
        let secs = took.as_secs_f64();
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.latency_buckets[i].fetch_add(1, Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Relaxed);
        self.latency_sum_us
            .fetch_add(took.as_micros().min(u64::MAX as u128) as u64, Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        let counters: [(&str, &str, &AtomicU64); 16] = [
            (
                "storegate_hq_batches_total",
                "Event batches accepted (200).",
                &self.batches,
            ),
            (
                "storegate_hq_events_total",
                "Events stored in JetStream.",
                &self.events,
            ),
            (
                "storegate_hq_duplicates_total",
                "Events JetStream already had (de-duplicated).",
                &self.duplicates,
            ),
            (
                "storegate_hq_rejected_total",
                "Requests refused (4xx).",
                &self.rejected,
            ),
            (
                "storegate_hq_jetstream_errors_total",
                "Publishes or KV operations that failed.",
                &self.jetstream_errors,
            ),
            (
                "storegate_hq_batches_unavailable_total",
                "Batches answered 503 (not all acknowledged).",
                &self.batches_unavailable,
            ),
            (
                "storegate_hq_texts_sent_total",
                "OTP texts handed to the provider.",
                &self.texts_sent,
            ),
            (
                "storegate_hq_texts_refused_quota_total",
                "OTP texts refused by a quota.",
                &self.texts_refused_quota,
            ),
            (
                "storegate_hq_messages_sent_total",
                "Targeted messages handed to the provider.",
                &self.messages_sent,
            ),
            (
                "storegate_hq_messages_suppressed_cap_total",
                "Targeted messages not sent: frequency cap.",
                &self.suppressed_cap,
            ),
            (
                "storegate_hq_messages_suppressed_consent_total",
                "Arrivals not messaged: no marketing consent.",
                &self.suppressed_consent,
            ),
            (
                "storegate_hq_messages_suppressed_redelivery_total",
                "Arrivals already handled (redelivered).",
                &self.suppressed_redelivery,
            ),
            (
                "storegate_hq_messages_suppressed_stale_total",
                "Arrivals not messaged: older than 15 minutes.",
                &self.suppressed_stale,
            ),
            (
                "storegate_hq_provider_errors_total",
                "Provider sends that failed.",
                &self.provider_errors,
            ),
            (
                "storegate_hq_sync_served_total",
                "Sync documents served (200).",
                &self.sync_served,
            ),
            (
                "storegate_hq_publish_latency_seconds_count",
                "",
                &self.latency_count,
            ),
        ];
        for (name, help, v) in &counters[..counters.len() - 1] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Relaxed)
            );
        }
        let name = "storegate_hq_publish_latency_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} From a batch's first publish to its last acknowledgement.\n# TYPE {name} histogram"
        );
        for (i, le) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{le}\"}} {}",
                self.latency_buckets[i].load(Relaxed)
            );
        }
        let count = counters[counters.len() - 1].2.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.latency_sum_us.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histogram() {
        let m = Metrics::default();
        m.published(10, 2, Duration::from_millis(3));
        let text = m.render();
        assert!(text.contains("storegate_hq_events_total 10\n"), "{text}");
        assert!(text.contains("storegate_hq_duplicates_total 2\n"));
        assert!(text.contains("storegate_hq_publish_latency_seconds_bucket{le=\"0.002\"} 0\n"));
        assert!(text.contains("storegate_hq_publish_latency_seconds_bucket{le=\"0.005\"} 1\n"));
        assert!(text.contains("storegate_hq_publish_latency_seconds_count 1\n"));
        assert!(text.contains("storegate_hq_messages_suppressed_stale_total 0\n"));
    }
}
