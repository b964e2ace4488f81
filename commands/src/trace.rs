//! Tracing across the asynchronous hop from an append to the projections
//! that apply it. Spans of the request path (request, command, append,
//! project) are made at DEBUG under [`TARGET`], so they cost one cached
//! callsite check unless an exporter asked for them (`gateway::telemetry`).
//! A projection applies events long after the request that wrote them has
//! answered, in a task of its own: to put its span in the writer's trace,
//! the append tells the installed [`TraceLinks`] which events it
//! is about to commit (inside its own span), and a projection asks it to adopt its
//! span for the events it applies. Events are named by their ids, known
//! before the append (a projection may read an event before its append
//! returns). Without an exporter nothing is installed and both calls return
//! at once.

use std::sync::OnceLock;

/// The target of the request path's spans.
pub const TARGET: &str = "objectstack::trace";

/// What connects an append's span to the spans that apply its events later.
pub trait TraceLinks: Send + Sync + 'static {
    /// Called inside the append's span with the ids of the events it appends.
    fn appending(&self, events: &mut dyn Iterator<Item = [u8; 16]>);
    /// Called with a projection's span for these events before it is entered.
    fn adopt(&self, span: &tracing::Span, events: &mut dyn Iterator<Item = [u8; 16]>);
}

static LINKS: OnceLock<Box<dyn TraceLinks>> = OnceLock::new();

/// Installs the links (once per process; false when some were already).
pub fn install(links: Box<dyn TraceLinks>) -> bool {
    LINKS.set(links).is_ok()
}

/// See [`TraceLinks::appending`].
pub fn appending(events: impl Iterator<Item = [u8; 16]>) {
    if let Some(links) = LINKS.get() {
        links.appending(&mut events.into_iter());
    }
}

/// See [`TraceLinks::adopt`].
pub fn adopt(span: &tracing::Span, events: impl Iterator<Item = [u8; 16]>) {
    if let Some(links) = LINKS.get() {
        if !span.is_disabled() {
            links.adopt(span, &mut events.into_iter());
        }
    }
}
