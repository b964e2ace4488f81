//! The HTTP server: the router and serving on a caller-owned listener.

use std::future::Future;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::serve::ListenerExt;
use axum::Router;
use tokio::net::TcpListener;

use crate::app::System;
use crate::routes;

/// Largest request body accepted.
pub const MAX_BODY: usize = 8 << 20;

pub fn router(system: Arc<System>) -> Router {
    routes::router().layer(DefaultBodyLimit::max(MAX_BODY)).with_state(system)
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
