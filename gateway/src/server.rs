//! The HTTP server: the router and serving on a caller-owned listener.

use std::future::Future;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::Router;
use domain::ErrorCode;
use tokio::net::TcpListener;

use crate::app::System;
use crate::error::ApiError;
pub use crate::listen::HttpOptions;
use crate::{console, graphql, realtime, routes};

pub use crate::wire::MAX_BODY;

/// Every surface: REST, GraphQL and realtime, over the same service layer.
pub fn router(system: Arc<System>) -> Router {
    routes::router()
        .route("/api/v1/graphql", get(graphql::get).post(graphql::post))
        .route("/api/v1/graphql/schema", get(graphql::schema))
        .route("/api/v1/graphql/assets/{file}", get(graphql::page::asset))
        .route("/api/v1/realtime", get(realtime::socket::upgrade))
        .route("/api/v1/realtime/connect", post(realtime::http::connect))
        .route("/api/v1/realtime/disconnect", post(realtime::http::disconnect))
        .route("/api/v1/realtime/subscribe", post(realtime::http::subscribe))
        .route("/api/v1/realtime/unsubscribe", post(realtime::http::unsubscribe))
        .route("/api/v1/realtime/presence", put(realtime::http::set_presence))
        .route("/api/v1/realtime/presence/{channel}", get(realtime::http::get_presence))
        .route("/_", get(console::redirect))
        .route("/_/", get(console::index))
        .route("/_/{*file}", get(console::file))
        .fallback(|| async { ApiError::new(ErrorCode::EndpointNotFound, "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(ErrorCode::ValidationError, "method not allowed on this route").with_status(StatusCode::METHOD_NOT_ALLOWED)
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::map_response(envelope_plain_errors))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(system)
}

/// Serves until `shutdown` resolves, then finishes in-flight requests, with
/// the default [`HttpOptions`].
pub async fn serve(listener: TcpListener, system: Arc<System>, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    serve_with(listener, system, HttpOptions::default(), shutdown).await
}

/// [`serve`] with the given limits on connections and requests.
pub async fn serve_with(
    listener: TcpListener,
    system: Arc<System>,
    limits: HttpOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let metrics = system.http_metrics.clone();
    crate::listen::serve(listener, router(system), metrics, limits, shutdown).await
}

/// Errors the HTTP layer makes itself (axum's rejections: a path that is not
/// UTF-8, a malformed query string) come as plain text: they get the
/// protocol's envelope like every other error, with their status kept.
async fn envelope_plain_errors(response: axum::response::Response) -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    let status = response.status();
    let plain = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !plain {
        return response;
    }
    let text = axum::body::to_bytes(response.into_body(), 64 << 10).await.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let code = match status {
        StatusCode::NOT_FOUND => ErrorCode::EndpointNotFound,
        StatusCode::REQUEST_TIMEOUT => ErrorCode::Timeout,
        StatusCode::TOO_MANY_REQUESTS => ErrorCode::RateLimitExceeded,
        s if s.is_server_error() => ErrorCode::InternalError,
        _ => ErrorCode::ValidationError,
    };
    ApiError::new(code, format!("invalid request: {text}")).with_status(status).into_response()
}

/// Headers every response carries: no content sniffing, no referrer leaving
/// the site, and a restrictive policy on HTML pages: only this server's
/// scripts (GraphiQL's assets are embedded; no inline script).
async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    use axum::http::{header, HeaderValue};
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    let html = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/html"));
    if html {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
            ),
        );
    }
    response
}
