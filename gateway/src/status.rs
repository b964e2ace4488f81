//! The status routes of the cluster's worker commands (`relay`, `projector`):
//! `/health` (the command's own readiness), `/live` (200 while running) and
//! `/metrics`, on the address an operator names, until the command stops.
//! The command owns the stop signal; this serves until it turns true.

use std::net::SocketAddr;

use axum::handler::Handler;
use axum::routing::get;
use axum::Router;
use tokio::sync::watch;

/// Binds `address` and serves `health` and `metrics` (with `state`) until
/// `stopped` turns true. `what` names the command in the log line.
pub async fn serve<S, H, HT, M, MT>(address: SocketAddr, what: &str, state: S, health: H, metrics: M, mut stopped: watch::Receiver<bool>) -> anyhow::Result<()>
where
    S: Clone + Send + Sync + 'static,
    H: Handler<HT, S>,
    M: Handler<MT, S>,
    HT: 'static,
    MT: 'static,
{
    let listener = tokio::net::TcpListener::bind(address).await.map_err(|e| anyhow::anyhow!("listening on {address}: {e}"))?;
    tracing::info!(address = %listener.local_addr()?, "{what} status served");
    let routes = Router::new().route("/health", get(health)).route("/live", get(|| async { "running\n" })).route("/metrics", get(metrics)).with_state(state);
    tokio::spawn(async move {
        let _ = axum::serve(listener, routes)
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await;
    });
    Ok(())
}
