//! The spans of the request path in one trace: a request's span continues a
//! W3C `traceparent` it carries, and a projection's span (made later, in the
//! projection's task) is made a child of the append of its batch's first
//! event, with links to the appends of the others (up to [`MAX_LINKS`]). The
//! appends of the last [`KEEP`] events are remembered by event id (known
//! before the append, so a projection quicker than the append's return finds
//! it); older ones are forgotten and their projection spans stay roots.
//! Only installed when traces are exported ([`crate::telemetry`]).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use axum::http::{HeaderMap, Method};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt};
use opentelemetry::Context;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Events whose append's span context is remembered.
pub const KEEP: usize = 65_536;
/// Links a projection span carries to the other appends of its batch.
pub const MAX_LINKS: usize = 32;

#[derive(Default)]
struct Remembered {
    by_event: HashMap<[u8; 16], SpanContext>,
    order: VecDeque<[u8; 16]>,
}

/// The span context of each recent event's append.
#[derive(Default)]
pub struct Links {
    events: Mutex<Remembered>,
}

impl commands::trace::TraceLinks for Links {
    fn appending(&self, events: &mut dyn Iterator<Item = [u8; 16]>) {
        let context = tracing::Span::current().context();
        let span = context.span().span_context().clone();
        if !span.is_valid() {
            return;
        }
        let mut remembered = self.events.lock().unwrap_or_else(|p| p.into_inner());
        for event in events {
            if remembered.by_event.insert(event, span.clone()).is_none() {
                remembered.order.push_back(event);
            }
        }
        while remembered.order.len() > KEEP {
            if let Some(old) = remembered.order.pop_front() {
                remembered.by_event.remove(&old);
            }
        }
    }

    fn traced(&self, events: &[[u8; 16]]) -> bool {
        let remembered = self.events.lock().unwrap_or_else(|p| p.into_inner());
        !remembered.by_event.is_empty() && events.iter().any(|e| remembered.by_event.contains_key(e))
    }

    fn adopt(&self, span: &tracing::Span, events: &mut dyn Iterator<Item = [u8; 16]>) {
        let mut found: Vec<SpanContext> = Vec::new();
        {
            let remembered = self.events.lock().unwrap_or_else(|p| p.into_inner());
            for event in events {
                let Some(context) = remembered.by_event.get(&event) else { continue };
                if !found.iter().any(|f| f.span_id() == context.span_id()) {
                    found.push(context.clone());
                    if found.len() > MAX_LINKS {
                        break;
                    }
                }
            }
        }
        let mut found = found.into_iter();
        if let Some(parent) = found.next() {
            let _ = span.set_parent(Context::new().with_remote_span_context(parent));
        }
        for other in found {
            span.add_link(other);
        }
    }
}

/// Head sampling, decided here before any span exists, so that a request
/// left out costs nothing: its span and every span under it are never made
/// (each is made only inside a sampled parent). The SDK samples what is made
/// with `AlwaysOn`. Read from `OTEL_TRACES_SAMPLER` and `_ARG` at start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeadSampler {
    /// Share of requests without a `traceparent` that are traced.
    pub ratio: f64,
    /// Whether a caller's `traceparent` decides for its request (its sampled flag).
    pub parent_based: bool,
}

static SAMPLER: std::sync::OnceLock<HeadSampler> = std::sync::OnceLock::new();

impl HeadSampler {
    /// The sampler the specification's variables name (default `parentbased_always_on`).
    pub fn from_env(sampler: Option<&str>, arg: Option<&str>) -> HeadSampler {
        let ratio = arg.and_then(|a| a.trim().parse::<f64>().ok()).filter(|r| (0.0..=1.0).contains(r)).unwrap_or(1.0);
        match sampler.map(str::trim).unwrap_or("parentbased_always_on") {
            "always_on" => HeadSampler { ratio: 1.0, parent_based: false },
            "always_off" => HeadSampler { ratio: 0.0, parent_based: false },
            "traceidratio" => HeadSampler { ratio, parent_based: false },
            "parentbased_always_off" => HeadSampler { ratio: 0.0, parent_based: true },
            "parentbased_traceidratio" => HeadSampler { ratio, parent_based: true },
            _ => HeadSampler { ratio: 1.0, parent_based: true },
        }
    }

    /// Installs the sampler for [`request_span`] (once).
    pub fn install(self) {
        let _ = SAMPLER.set(self);
    }

    fn samples(&self, parent: Option<bool>) -> bool {
        match parent {
            Some(flag) if self.parent_based => flag,
            _ => self.ratio >= 1.0 || (self.ratio > 0.0 && ((crate::request_info::fast_random() >> 11) as f64 / (1u64 << 53) as f64) < self.ratio),
        }
    }
}

/// The sampled flag of a W3C `traceparent` (`00-trace-span-flags`), if it is one.
fn parent_flag(headers: &HeaderMap) -> Option<bool> {
    let value = headers.get("traceparent")?.to_str().ok()?;
    let flags = value.trim().rsplit('-').next()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some(flags & 1 == 1)
}

/// The span of one HTTP request: `Span::none()` (free) unless traces are
/// exported and the request is sampled; it continues the caller's
/// `traceparent` when it sent one.
pub fn request_span(method: &Method, route: &str, request_id: &str, headers: &HeaderMap) -> tracing::Span {
    let Some(sampler) = SAMPLER.get() else { return tracing::Span::none() };
    let parent = parent_flag(headers);
    if !sampler.samples(parent) {
        return tracing::Span::none();
    }
    let span = tracing::debug_span!(
        target: commands::trace::TARGET,
        "request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = %method,
        http.route = route,
        http.response.status_code = tracing::field::Empty,
        request_id,
    );
    if !span.is_disabled() && parent.is_some() {
        let parent = opentelemetry_sdk::propagation::TraceContextPropagator::new().extract(&Headers(headers));
        let _ = span.set_parent(parent);
    }
    span
}

/// Serves a sampled request: the spans below it are made
/// (`commands::trace::child`).
pub async fn traced<F: std::future::Future>(work: F) -> F::Output {
    commands::trace::traced(work).await
}

/// Records the answer's status on a request span.
pub fn answered(span: &tracing::Span, status: u16) {
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "error");
    }
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specification_samplers_are_read_and_a_parent_flag_decides_when_parent_based() {
        let default = HeadSampler::from_env(None, None);
        assert_eq!(default, HeadSampler { ratio: 1.0, parent_based: true });
        assert!(!default.samples(Some(false)) && default.samples(Some(true)) && default.samples(None));
        let ratio = HeadSampler::from_env(Some("traceidratio"), Some("0.25"));
        assert_eq!(ratio, HeadSampler { ratio: 0.25, parent_based: false });
        let taken = (0..20_000).filter(|_| ratio.samples(Some(false))).count();
        assert!((4_000..6_000).contains(&taken), "about a quarter, whatever the parent says: {taken}");
        assert!(!HeadSampler::from_env(Some("always_off"), None).samples(Some(true)));
        assert_eq!(HeadSampler::from_env(Some("parentbased_traceidratio"), Some("2")).ratio, 1.0, "an out-of-range ratio is the default");
    }

    #[test]
    fn the_sampled_flag_of_a_traceparent() {
        let mut headers = HeaderMap::new();
        assert_eq!(parent_flag(&headers), None);
        headers.insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap());
        assert_eq!(parent_flag(&headers), Some(true));
        headers.insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00".parse().unwrap());
        assert_eq!(parent_flag(&headers), Some(false));
        headers.insert("traceparent", "garbage".parse().unwrap());
        assert_eq!(parent_flag(&headers), None);
    }
}
