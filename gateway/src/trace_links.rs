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

/// The span of one HTTP request (disabled, and free, unless traces are
/// exported), continuing the caller's `traceparent` when it sent one.
pub fn request_span(method: &Method, route: &str, request_id: &str, headers: &HeaderMap) -> tracing::Span {
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
    if !span.is_disabled() && headers.contains_key("traceparent") {
        let parent = opentelemetry_sdk::propagation::TraceContextPropagator::new().extract(&Headers(headers));
        let _ = span.set_parent(parent);
    }
    span
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
