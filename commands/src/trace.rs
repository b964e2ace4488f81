//! Tracing across the asynchronous hop from an append to the projections
//! that apply it. Spans of the request path (request, command, append,
//! project) are made at DEBUG under [`TARGET`], and only for a request the
//! head sampler took (`gateway::trace_links`): such a request runs inside
//! [`traced`], and [`child`] makes a span only there, so a request left out
//! makes none. A projection applies events long after the request that
//! wrote them has answered, in a task of its own: to put its span in the
//! writer's trace, the append tells the installed [`TraceLinks`] which
//! events it is about to commit (inside its own span), and
//! [`project_span`] makes a projection's span only for a batch holding one
//! of them, adopted into that trace. Events are named by their ids, known
//! before the append (a projection may read an event before its append
//! returns). Without an exporter nothing is installed and every call here
//! returns at once.

use std::sync::OnceLock;

/// The target of the request path's spans.
pub const TARGET: &str = "objectstack::trace";

/// `make()` inside a sampled request ([`traced`]), otherwise `Span::none()`:
/// a request left out by sampling makes no span below it.
pub fn child(make: impl FnOnce() -> tracing::Span) -> tracing::Span {
    if in_trace() {
        make()
    } else {
        tracing::Span::none()
    }
}

tokio::task_local! {
    static TRACED: ();
}

/// Runs a sampled request: inside it (the same task), [`child`] makes spans.
pub async fn traced<F: std::future::Future>(work: F) -> F::Output {
    TRACED.scope((), work).await
}

/// Whether this task serves a sampled request.
fn in_trace() -> bool {
    TRACED.try_with(|_| ()).is_ok()
}

/// What connects an append's span to the spans that apply its events later.
pub trait TraceLinks: Send + Sync + 'static {
    /// Called inside the append's span with the ids of the events it appends.
    fn appending(&self, events: &mut dyn Iterator<Item = [u8; 16]>);
    /// Whether any of these events was appended inside a traced request.
    fn traced(&self, events: &[[u8; 16]]) -> bool;
    /// Called with a projection's span for these events before it is entered.
    fn adopt(&self, span: &tracing::Span, events: &mut dyn Iterator<Item = [u8; 16]>);
}

static LINKS: OnceLock<Box<dyn TraceLinks>> = OnceLock::new();

/// Whether links are installed (traces are exported).
pub fn installed() -> bool {
    LINKS.get().is_some()
}

/// Installs the links (once per process; false when some were already).
pub fn install(links: Box<dyn TraceLinks>) -> bool {
    LINKS.set(links).is_ok()
}

/// See [`TraceLinks::appending`]; call it inside an append span that exists.
pub fn appending(events: impl Iterator<Item = [u8; 16]>) {
    if let Some(links) = LINKS.get() {
        links.appending(&mut events.into_iter());
    }
}

/// A projection's span for these events, made by `make` only when one of
/// them was appended by a traced request, and adopted into its trace
/// ([`TraceLinks::adopt`]); otherwise `Span::none()`.
pub fn project_span(events: &[[u8; 16]], make: impl FnOnce() -> tracing::Span) -> tracing::Span {
    let Some(links) = LINKS.get() else { return tracing::Span::none() };
    if !links.traced(events) {
        return tracing::Span::none();
    }
    let span = make();
    if !span.is_disabled() {
        links.adopt(&span, &mut events.iter().copied());
    }
    span
}
