//! The projection runner: catch up from the checkpoint, then follow the head.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use commands::store::EventStore;
use commands::StoreError;
use domain::event::codec::decode_envelope_payload;
use domain::event::{EventEnvelope, EventPayload, Upcasters};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Events applied per batch (and per write-lock hold).
const BATCH: usize = 2_000;

/// A read model fed by the log. `apply` must be idempotent: the runner never
/// hands it an event at or below its checkpoint, and the checkpoint moves in
/// the same critical section as the data.
pub trait Projection: Send + Sync + 'static {
    fn name(&self) -> &str;
    /// The position of the last event applied.
    fn checkpoint(&self) -> u64;
    fn apply(&mut self, envelope: &EventEnvelope, payload: &EventPayload);
}

/// A running projection: its shared state and the checkpoint readers wait on.
pub struct ProjectionHandle<P> {
    pub state: Arc<RwLock<P>>,
    checkpoint_rx: watch::Receiver<u64>,
    task: JoinHandle<()>,
}

impl<P> ProjectionHandle<P> {
    pub fn checkpoint(&self) -> u64 {
        *self.checkpoint_rx.borrow()
    }

    /// Waits until the projection has applied `position`, at most `timeout`.
    /// Returns whether it got there.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> bool {
        let mut rx = self.checkpoint_rx.clone();
        let reached = tokio::time::timeout(timeout, rx.wait_for(|c| *c >= position)).await;
        matches!(reached, Ok(Ok(_)))
    }

    /// Stops following the log.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl<P> Drop for ProjectionHandle<P> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a projection: it catches up from its checkpoint, then follows.
pub fn spawn<P: Projection>(store: Arc<dyn EventStore>, projection: P) -> ProjectionHandle<P> {
    let start = projection.checkpoint();
    let state = Arc::new(RwLock::new(projection));
    let (checkpoint_tx, checkpoint_rx) = watch::channel(start);
    let task = tokio::spawn(follow(store, state.clone(), checkpoint_tx));
    ProjectionHandle {
        state,
        checkpoint_rx,
        task,
    }
}

async fn follow<P: Projection>(
    store: Arc<dyn EventStore>,
    state: Arc<RwLock<P>>,
    checkpoint_tx: watch::Sender<u64>,
) {
    let upcasters = Upcasters::default();
    let mut head = store.head();
    let mut checkpoint = state.read().expect("projection lock").checkpoint();
    loop {
        match store.read_all(checkpoint, BATCH).await {
            Ok(batch) if batch.is_empty() => {
                // Caught up: sleep until the append path moves the head.
                if head.wait_for(|h| *h > checkpoint).await.is_err() {
                    return;
                }
            }
            Ok(batch) => {
                let decoded: Vec<(EventEnvelope, Option<EventPayload>)> = batch
                    .into_iter()
                    .map(|e| {
                        let payload = decode_envelope_payload(&e, &upcasters);
                        if let Err(error) = &payload {
                            tracing::error!(position = e.position, %error, "cannot decode event; skipping it in projections");
                        }
                        (e, payload.ok())
                    })
                    .collect();
                let mut guard = state.write().expect("projection lock");
                for (envelope, payload) in &decoded {
                    if envelope.position <= guard.checkpoint() {
                        continue;
                    }
                    if let Some(payload) = payload {
                        guard.apply(envelope, payload);
                    }
                }
                checkpoint = guard.checkpoint().max(
                    decoded
                        .last()
                        .map(|(e, _)| e.position)
                        .unwrap_or(checkpoint),
                );
                drop(guard);
                checkpoint_tx.send_replace(checkpoint);
            }
            Err(error) => {
                log_read_error(&error);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

fn log_read_error(error: &StoreError) {
    tracing::warn!(%error, "projection cannot read the log; retrying");
}
