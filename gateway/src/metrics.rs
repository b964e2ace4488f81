//! Request metrics for `/metrics`: requests by method, route (the matched
//! template, so record ids never become labels) and status class, a latency
//! histogram per route, and errors by their protocol code. Kept in atomics
//! behind a map that only takes a write lock the first time a route is seen
//! (a request costs two clock reads, a read lock and a few relaxed
//! additions), rendered in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use domain::ErrorCode;

const METHODS: [&str; 6] = ["GET", "POST", "PUT", "PATCH", "DELETE", "OTHER"];
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];
/// The route label of a request no route matched.
pub const UNMATCHED: &str = "unmatched";

/// One method and route: answers by status class and their latencies.
#[derive(Default)]
struct RouteStats {
    by_class: [AtomicU64; 5],
    /// Requests at or below each bound (not cumulative here; summed when rendered).
    latency: [AtomicU64; 13],
    latency_micros: AtomicU64,
}

pub struct HttpMetrics {
    /// Per route, its stats per method (indexes of [`METHODS`]).
    routes: RwLock<BTreeMap<Arc<str>, Arc<[RouteStats; 6]>>>,
    errors: [AtomicU64; ErrorCode::ALL.len()],
}

impl Default for HttpMetrics {
    fn default() -> HttpMetrics {
        HttpMetrics { routes: RwLock::default(), errors: std::array::from_fn(|_| AtomicU64::new(0)) }
    }
}

impl HttpMetrics {
    /// Counts one answered request; `route` is the matched template, `code`
    /// the protocol error the answer carried.
    pub fn record(&self, method: &str, route: &str, status: u16, code: Option<ErrorCode>, took: Duration) {
        let m = METHODS.iter().position(|known| *known == method).unwrap_or(METHODS.len() - 1);
        let methods = self.route(route);
        let stats = &methods[m];
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        stats.by_class[class].fetch_add(1, Ordering::Relaxed);
        let seconds = took.as_secs_f64();
        let bucket = BUCKETS.iter().position(|bound| seconds <= *bound).unwrap_or(BUCKETS.len());
        stats.latency[bucket].fetch_add(1, Ordering::Relaxed);
        stats.latency_micros.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        if let Some(code) = code {
            if let Some(i) = ErrorCode::ALL.iter().position(|c| *c == code) {
                self.errors[i].fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn route(&self, route: &str) -> Arc<[RouteStats; 6]> {
        if let Some(stats) = self.routes.read().unwrap_or_else(|p| p.into_inner()).get(route) {
            return stats.clone();
        }
        self.routes.write().unwrap_or_else(|p| p.into_inner()).entry(Arc::from(route)).or_default().clone()
    }

    /// The Prometheus text of these metrics.
    pub fn render(&self) -> String {
        let routes: Vec<(Arc<str>, Arc<[RouteStats; 6]>)> =
            self.routes.read().unwrap_or_else(|p| p.into_inner()).iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        // (method, route, stats) of every pair that was asked.
        let pairs: Vec<(&str, &str, &RouteStats)> = routes
            .iter()
            .flat_map(|(route, methods)| {
                methods
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.by_class.iter().any(|n| n.load(Ordering::Relaxed) > 0))
                    .map(move |(m, s)| (METHODS[m], &**route, s))
            })
            .collect();
        let mut out = String::from(
            "# HELP objectstack_http_requests_total HTTP requests answered, by method, route and status class.\n# TYPE objectstack_http_requests_total counter\n",
        );
        for (method, route, stats) in &pairs {
            for (c, class) in CLASSES.iter().enumerate() {
                let n = stats.by_class[c].load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(out, "objectstack_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{class}\"}} {n}", escape(route));
                }
            }
        }
        out.push_str("# HELP objectstack_http_request_duration_seconds Time from a request's arrival to its answer, by method and route.\n# TYPE objectstack_http_request_duration_seconds histogram\n");
        for (method, route, stats) in &pairs {
            let labels = format!("method=\"{method}\",route=\"{}\"", escape(route));
            let mut cumulative = 0;
            for (i, bound) in BUCKETS.iter().enumerate() {
                cumulative += stats.latency[i].load(Ordering::Relaxed);
                let _ = writeln!(out, "objectstack_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
            }
            cumulative += stats.latency[BUCKETS.len()].load(Ordering::Relaxed);
            let _ = writeln!(out, "objectstack_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {cumulative}");
            let _ = writeln!(out, "objectstack_http_request_duration_seconds_sum{{{labels}}} {}", stats.latency_micros.load(Ordering::Relaxed) as f64 / 1e6);
            let _ = writeln!(out, "objectstack_http_request_duration_seconds_count{{{labels}}} {cumulative}");
        }
        out.push_str("# HELP objectstack_http_errors_total Error answers, by their protocol code.\n# TYPE objectstack_http_errors_total counter\n");
        for (i, code) in ErrorCode::ALL.iter().enumerate() {
            let n = self.errors[i].load(Ordering::Relaxed);
            if n > 0 {
                let _ = writeln!(out, "objectstack_http_errors_total{{code=\"{}\"}} {n}", code.as_str());
            }
        }
        out
    }
}

/// A label value in the text format: backslash, quote and newline escaped.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_route_and_code() {
        let metrics = HttpMetrics::default();
        metrics.record("GET", "/api/v1/data/{object}", 200, None, Duration::from_millis(2));
        metrics.record("GET", "/api/v1/data/{object}", 200, None, Duration::from_millis(20));
        metrics.record("POST", "/api/v1/data/{object}", 400, Some(ErrorCode::ValidationError), Duration::from_micros(300));
        metrics.record("BREW", UNMATCHED, 404, None, Duration::from_micros(10));
        let text = metrics.render();
        for line in [
            "objectstack_http_requests_total{method=\"GET\",route=\"/api/v1/data/{object}\",status=\"2xx\"} 2",
            "objectstack_http_requests_total{method=\"POST\",route=\"/api/v1/data/{object}\",status=\"4xx\"} 1",
            "objectstack_http_requests_total{method=\"OTHER\",route=\"unmatched\",status=\"4xx\"} 1",
            "objectstack_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/data/{object}\",le=\"0.0025\"} 1",
            "objectstack_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/data/{object}\",le=\"0.025\"} 2",
            "objectstack_http_request_duration_seconds_count{method=\"GET\",route=\"/api/v1/data/{object}\"} 2",
            "objectstack_http_errors_total{code=\"validation_error\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(!text.contains("objectstack_http_errors_total{code=\"record_not_found\"}"), "codes never answered are left out");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
