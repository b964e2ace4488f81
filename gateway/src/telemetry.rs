//! Logs and traces of the binary, set up once before anything runs.
//!
//! Logs: `RUST_LOG` filters (default `info`, tantivy's own lines from
//! `warn`); human lines, coloured only on a terminal, or JSON lines with
//! `OBJECTSTACK_LOG_FORMAT=json`.
//!
//! Traces: off unless an OTLP endpoint is configured with the standard
//! OpenTelemetry variables (`OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; `OTEL_EXPORTER_OTLP_PROTOCOL`
//! `http/protobuf` (default) or `http/json`; `OTEL_SERVICE_NAME`,
//! `OTEL_TRACES_SAMPLER`, `OTEL_SDK_DISABLED` as the specification says).
//! Then the request path's spans (target [`commands::trace::TARGET`]:
//! request, command, append, project) of the sampled requests go to a batch
//! exporter on a thread of its own (sampling is decided before a span is
//! made, so a request left out costs nothing), and [`crate::trace_links`] puts each projection's span in the
//! trace of the write it applies. A request carrying a W3C `traceparent`
//! continues the caller's trace.

use opentelemetry::trace::TracerProvider as _;
use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// The trace exporter, flushed by [`Telemetry::shutdown`].
pub struct Telemetry {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

/// Whether the environment asks for traces.
pub fn traces_configured() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"));
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// The protocol to export with when the operator names none: the
/// specification's default, `http/protobuf`. (opentelemetry-otlp would pick
/// JSON whenever its `http-json` feature is built in, and encoding spans as
/// JSON costs about 26k instructions per span, more than a whole get.)
/// `None` leaves the choice to the variables that are set.
fn default_protocol(is_set: impl Fn(&str) -> bool) -> Option<opentelemetry_otlp::Protocol> {
    let named = is_set("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") || is_set("OTEL_EXPORTER_OTLP_PROTOCOL");
    (!named).then_some(opentelemetry_otlp::Protocol::HttpBinary)
}

/// Installs the logs and, when configured, the trace exporter. Call it
/// outside any async runtime (the exporter's HTTP client has its own).
pub fn init() -> Result<Telemetry, String> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,tantivy=warn".into());
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = if std::env::var("OBJECTSTACK_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        logs.json().with_filter(filter).boxed()
    } else {
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).with_filter(filter).boxed()
    };
    if !traces_configured() {
        tracing_subscriber::registry().with(logs).init();
        return Ok(Telemetry { provider: None });
    }
    let mut exporter = opentelemetry_otlp::SpanExporter::builder().with_http();
    if let Some(protocol) = default_protocol(|name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty())) {
        exporter = opentelemetry_otlp::WithExportConfig::with_protocol(exporter, protocol);
    }
    let exporter = exporter.build().map_err(|e| format!("cannot start the OTLP trace exporter: {e}"))?;
    let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "objectstack".into());
    // Sampling is decided before a request's span is made (`trace_links::HeadSampler`).
    let env = |name: &str| std::env::var(name).ok();
    crate::trace_links::HeadSampler::from_env(env("OTEL_TRACES_SAMPLER").as_deref(), env("OTEL_TRACES_SAMPLER_ARG").as_deref()).install();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_sampler(opentelemetry_sdk::trace::Sampler::AlwaysOn)
        .with_batch_exporter(exporter)
        .with_resource(opentelemetry_sdk::Resource::builder().with_service_name(service).build())
        .build();
    let tracer = provider.tracer("objectstack");
    let spans = Targets::new().with_target(commands::trace::TARGET, LevelFilter::DEBUG);
    // Only the spans' own fields: no source locations, thread names, targets,
    // levels or busy/idle timings (each an attribute on every span, or work
    // on every poll of an instrumented future).
    let traces = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_level(false)
        .with_tracked_inactivity(false)
        .with_context_activation(false)
        .with_filter(spans);
    tracing_subscriber::registry().with(logs).with(traces).init();
    commands::trace::install(Box::new(crate::trace_links::Links::default()));
    Ok(Telemetry { provider: Some(provider) })
}

impl Telemetry {
    /// Sends the spans still buffered (outside any async runtime).
    pub fn shutdown(self) {
        if let Some(provider) = self.provider {
            if let Err(e) = provider.shutdown() {
                eprintln!("warning: the trace exporter did not flush: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::default_protocol;
    use opentelemetry_otlp::Protocol;

    #[test]
    fn spans_go_as_protobuf_unless_the_operator_names_a_protocol() {
        assert_eq!(default_protocol(|_| false), Some(Protocol::HttpBinary));
        assert_eq!(default_protocol(|name| name == "OTEL_EXPORTER_OTLP_PROTOCOL"), None);
        assert_eq!(default_protocol(|name| name == "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"), None);
    }
}
