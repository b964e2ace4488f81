//! The HTTP server: the router and serving on a caller-owned listener.

use std::future::Future;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::serve::ListenerExt;
use axum::Router;
use domain::ErrorCode;
use tokio::net::TcpListener;

use crate::app::System;
use crate::error::ApiError;
use crate::{graphql, realtime, routes};

/// Largest request body accepted.
pub const MAX_BODY: usize = 8 << 20;

/// Every surface: REST, GraphQL and realtime, over the same service layer.
pub fn router(system: Arc<System>) -> Router {
    routes::router()
        .route("/api/v1/graphql", get(graphql::get).post(graphql::post))
        .route("/api/v1/graphql/schema", get(graphql::schema))
        .route("/api/v1/realtime", get(realtime::socket::upgrade))
        .route("/api/v1/realtime/connect", post(realtime::http::connect))
        .route("/api/v1/realtime/disconnect", post(realtime::http::disconnect))
        .route("/api/v1/realtime/subscribe", post(realtime::http::subscribe))
        .route("/api/v1/realtime/unsubscribe", post(realtime::http::unsubscribe))
        .route("/api/v1/realtime/presence", put(realtime::http::set_presence))
        .route("/api/v1/realtime/presence/{channel}", get(realtime::http::get_presence))
        .fallback(|| async { ApiError::new(ErrorCode::EndpointNotFound, "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(ErrorCode::ValidationError, "method not allowed on this route").with_status(StatusCode::METHOD_NOT_ALLOWED)
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(system)
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(listener: TcpListener, system: Arc<System>, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    // No Nagle delay: realtime frames and small responses go out at once.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    // Connection info gives sign-in limits the client's address.
    axum::serve(listener, router(system).into_make_service_with_connect_info::<std::net::SocketAddr>()).with_graceful_shutdown(shutdown).await
}

/// Headers every response carries: no content sniffing, no referrer leaving
/// the site, and a restrictive policy on HTML pages (GraphiQL loads its
/// assets from a CDN, which the policy names).
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
                "default-src 'self'; script-src 'self' 'unsafe-inline' https://unpkg.com; style-src 'self' 'unsafe-inline' https://unpkg.com; img-src 'self' data: https:; connect-src 'self' ws: wss:; frame-ancestors 'none'",
            ),
        );
    }
    response
}
