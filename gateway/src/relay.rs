//! The `relay` command: runs `commands::kafka::relay` until a shutdown
//! signal, and answers about it where asked to listen: `/health` (200 when
//! active, 503 standing by: a readiness probe), `/live` (200 while running: a
//! liveness probe) and `/metrics`.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use commands::kafka::relay::{RelaySettings, RelayStatus};

/// Runs the relay until `shutdown` completes.
pub async fn run(settings: RelaySettings, listen: Option<SocketAddr>, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    let status = Arc::new(RelayStatus::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if let Some(address) = listen {
        crate::status::serve(address, "relay", status.clone(), health, metrics, stop_rx.clone()).await?;
    }
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    commands::kafka::relay::run(settings, status, stop_rx).await?;
    tracing::info!("relay stopped");
    Ok(())
}

async fn health(State(status): State<Arc<RelayStatus>>) -> (StatusCode, &'static str) {
    if status.active.load(Relaxed) {
        (StatusCode::OK, "active\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "standing by\n")
    }
}

async fn metrics(State(status): State<Arc<RelayStatus>>) -> String {
    let (position, head) = (status.position.load(Relaxed), status.head.load(Relaxed));
    format!(
        "# HELP objectstack_relay_active 1 while this relay holds the lock and publishes.\n# TYPE objectstack_relay_active gauge\nobjectstack_relay_active {}\n\
         # HELP objectstack_relay_position Last log position the broker acknowledged.\n# TYPE objectstack_relay_position gauge\nobjectstack_relay_position {position}\n\
         # HELP objectstack_relay_lag Events committed to the log and not yet acknowledged by the broker.\n# TYPE objectstack_relay_lag gauge\nobjectstack_relay_lag {}\n\
         # HELP objectstack_relay_published_total Events published (repeats after a failure included).\n# TYPE objectstack_relay_published_total counter\nobjectstack_relay_published_total {}\n",
        u8::from(status.active.load(Relaxed)),
        head.saturating_sub(position),
        status.published.load(Relaxed)
    )
}
