//! Request metrics for `/metrics`: requests by method and status class, and
//! a latency histogram, kept in atomics (a request costs two clock reads and
//! a few relaxed additions) and rendered in the Prometheus text format.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const METHODS: [&str; 6] = ["GET", "POST", "PUT", "PATCH", "DELETE", "OTHER"];
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default)]
pub struct HttpMetrics {
    requests: [[AtomicU64; 5]; 6],
    /// Requests at or below each bound (not cumulative here; summed when rendered).
    latency: [AtomicU64; 13],
    latency_micros: AtomicU64,
}

impl HttpMetrics {
    pub fn record(&self, method: &str, status: u16, took: Duration) {
        let m = METHODS.iter().position(|known| *known == method).unwrap_or(METHODS.len() - 1);
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.requests[m][class].fetch_add(1, Ordering::Relaxed);
        let seconds = took.as_secs_f64();
        let bucket = BUCKETS.iter().position(|bound| seconds <= *bound).unwrap_or(BUCKETS.len());
        self.latency[bucket].fetch_add(1, Ordering::Relaxed);
        self.latency_micros.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    /// The Prometheus text of these metrics.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# HELP objectstack_http_requests_total HTTP requests answered, by method and status class.\n# TYPE objectstack_http_requests_total counter\n",
        );
        for (m, method) in METHODS.iter().enumerate() {
            for (c, class) in CLASSES.iter().enumerate() {
                let n = self.requests[m][c].load(Ordering::Relaxed);
                if n > 0 {
                    out.push_str(&format!("objectstack_http_requests_total{{method=\"{method}\",status=\"{class}\"}} {n}\n"));
                }
            }
        }
        out.push_str("# HELP objectstack_http_request_duration_seconds Time from a request's arrival to its answer.\n# TYPE objectstack_http_request_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += self.latency[i].load(Ordering::Relaxed);
            out.push_str(&format!("objectstack_http_request_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}\n"));
        }
        cumulative += self.latency[BUCKETS.len()].load(Ordering::Relaxed);
        out.push_str(&format!("objectstack_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}\n"));
        out.push_str(&format!("objectstack_http_request_duration_seconds_sum {}\n", self.latency_micros.load(Ordering::Relaxed) as f64 / 1e6));
        out.push_str(&format!("objectstack_http_request_duration_seconds_count {cumulative}\n"));
        out
    }
}
