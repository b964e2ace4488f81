//! Serving connections on a caller-owned listener, with limits: a cap on
//! open connections (accepting waits for one to close), a time limit on
//! reading a request's headers (which also closes a keep-alive connection
//! idle that long: hyper starts the same timer while it waits for the next
//! request), and a time limit on a whole request, body included (a slow body
//! or a handler that runs too long answers 408 in the envelope). A WebSocket
//! leaves these limits once upgraded: it has its own pings and buffers.
//! Outermost: CORS for the configured origins (off by default) and an
//! access log line per request (target `access`).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::Router;
use domain::ErrorCode;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::error::ApiError;
use crate::metrics::HttpMetrics;
use crate::request_info::{RequestInfo, REQUEST_ID};

/// Limits on connections and requests (`serve` flags and environment).
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Open connections at most (WebSockets included).
    pub max_connections: usize,
    /// Time to send a request's headers, and the longest a keep-alive connection stays idle.
    pub header_timeout: Duration,
    /// Time for a whole request: its body read and the answer made.
    pub request_timeout: Duration,
    /// Origins browser apps may call from (CORS): none by default, `*` for any.
    pub cors_origins: Vec<String>,
}

impl Default for HttpOptions {
    fn default() -> HttpOptions {
        HttpOptions { max_connections: 10_000, header_timeout: Duration::from_secs(30), request_timeout: Duration::from_secs(60), cors_origins: Vec::new() }
    }
}

/// Serves `router` until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    metrics: Arc<HttpMetrics>,
    limits: HttpOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let request_timeout = limits.request_timeout;
    let router = router.layer(axum::middleware::from_fn(move |request, next: axum::middleware::Next| async move {
        match tokio::time::timeout(request_timeout, next.run(request)).await {
            Ok(response) => response,
            Err(_) => axum::response::IntoResponse::into_response(
                ApiError::new(ErrorCode::Timeout, format!("the request took longer than {} s (body and answer)", request_timeout.as_secs()))
                    .with_status(StatusCode::REQUEST_TIMEOUT),
            ),
        }
    }));
    let router = router.layer(axum::middleware::from_fn(move |request, next| access_log(metrics.clone(), request, next)));
    let router = match cors(&limits.cors_origins) {
        Some(layer) => router.layer(layer),
        None => router,
    };
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    builder.http2().timer(TokioTimer::new());
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (tcp, address) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // No Nagle delay: realtime frames and small responses go out at once.
        let _ = tcp.set_nodelay(true);
        // Connection info gives sign-in limits the client's address.
        let service = tower::ServiceExt::map_request(router.clone(), move |mut request: Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo::<SocketAddr>(address));
            request
        });
        let (builder, watcher, header_timeout) = (builder.clone(), graceful.watcher(), limits.header_timeout);
        tokio::spawn(async move {
            // The protocol is told by the first bytes, before hyper's header timer
            // starts: a connection that sends nothing is closed here.
            let mut first = [0u8; 1];
            if !matches!(tokio::time::timeout(header_timeout, tcp.peek(&mut first)).await, Ok(Ok(1..))) {
                drop(permit);
                return;
            }
            let connection = builder
                .serve_connection_with_upgrades(TokioIo::new(crate::edge_errors::Enveloped::new(tcp)), hyper_util::service::TowerToHyperService::new(service));
            let _ = watcher.watch(connection.into_owned()).await;
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Gives every request an id (kept from the client's `X-Request-Id` when
/// sane, echoed on the answer), counts it in the metrics by its matched
/// route, and writes one line per request at target `access` (`RUST_LOG=info`
/// shows them): request id, method, route, path without its query (which may
/// carry filters), status, error code, actor, time.
async fn access_log(metrics: Arc<HttpMetrics>, mut request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let method = request.method().clone();
    let route = request.extensions().get::<axum::extract::MatchedPath>().map(|p| p.as_str().to_string());
    let path = tracing::enabled!(target: "access", tracing::Level::INFO).then(|| request.uri().path().to_string());
    let info = RequestInfo::of(request.headers());
    request.extensions_mut().insert(info.clone());
    let route = route.as_deref().unwrap_or(crate::metrics::UNMATCHED);
    let span = crate::trace_links::request_span(&method, route, &info.id, request.headers());
    let started = std::time::Instant::now();
    let mut response = if span.is_none() { next.run(request).await } else { crate::trace_links::traced(next.run(request).instrument(span.clone())).await };
    let took = started.elapsed();
    crate::trace_links::answered(&span, response.status().as_u16());
    let code = response.extensions().get::<ErrorCode>().copied();
    metrics.record(method.as_str(), route, response.status().as_u16(), code, took);
    if let Ok(value) = axum::http::HeaderValue::from_str(&info.id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    if let Some(path) = path {
        tracing::info!(
            target: "access",
            request_id = %info.id,
            %method,
            route,
            path,
            status = response.status().as_u16(),
            code = code.map_or("-", ErrorCode::as_str),
            actor = info.actor(),
            micros = took.as_micros() as u64,
        );
    }
    response
}

/// The CORS layer for the configured origins (`None`: CORS off).
fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{header, HeaderName, HeaderValue, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o.trim()).ok()))
    };
    let custom = |name: &'static str| HeaderName::from_static(name);
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE, Method::OPTIONS])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::IF_MATCH,
                header::IF_NONE_MATCH,
                custom("idempotency-key"),
                custom("x-min-position"),
                custom(REQUEST_ID),
            ])
            .expose_headers([header::ETAG, header::LOCATION, custom("x-log-position"), custom(REQUEST_ID)])
            .max_age(Duration::from_secs(600)),
    )
}
