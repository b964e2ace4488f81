//! The projection runner: catch up from the checkpoint, then follow the head.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use commands::store::EventStore;
use domain::event::codec::decode_envelope_payload;
use domain::event::{EventEnvelope, EventPayload};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Events read and applied per batch (one transaction for stored read models).
const BATCH: usize = 2_000;

/// Why a projection could not apply a batch. The runner retries after a pause.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("read model store: {0}")]
    Store(String),
    /// Another runner moved the checkpoint first; reload it and go on from there.
    #[error("the checkpoint moved under us (now {0})")]
    Moved(u64),
}

/// A read model fed by the log.
///
/// `apply` gets the decoded events of a batch in position order and the last
/// position of the batch (events that could not be decoded are left out, but
/// the checkpoint still passes them). It must move its checkpoint to
/// `up_to` together with the data, and skip events at or below its checkpoint.
#[async_trait]
pub trait Projection: Send + 'static {
    fn name(&self) -> &str;
    /// The position of the last event applied (the stored one after a restart).
    async fn checkpoint(&mut self) -> Result<u64, ProjectionError>;
    async fn apply(&mut self, batch: &[(EventEnvelope, EventPayload)], up_to: u64) -> Result<(), ProjectionError>;
}

/// A running projection: readers wait on its checkpoint.
#[derive(Clone)]
pub struct ProjectionHandle {
    name: String,
    checkpoint_rx: watch::Receiver<u64>,
    /// The follower task, shared by clones; aborted when the last handle goes.
    task: Arc<Task>,
}

/// A follower task, aborted when dropped.
struct Task(JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl ProjectionHandle {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn checkpoint(&self) -> u64 {
        *self.checkpoint_rx.borrow()
    }

    /// Waits until the projection has applied `position`, at most `timeout`.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> bool {
        let mut rx = self.checkpoint_rx.clone();
        let reached = tokio::time::timeout(timeout, rx.wait_for(|c| *c >= position)).await;
        matches!(reached, Ok(Ok(_)))
    }

    pub fn stop(&self) {
        self.task.0.abort();
    }
}

/// Starts a projection: it catches up from its checkpoint, then follows the
/// store's head (woken by the append path; no polling).
pub async fn spawn<P: Projection>(store: Arc<dyn EventStore>, mut projection: P) -> Result<ProjectionHandle, ProjectionError> {
    let start = projection.checkpoint().await?;
    let name = projection.name().to_string();
    let (checkpoint_tx, checkpoint_rx) = watch::channel(start);
    let task = Arc::new(Task(tokio::spawn(follow(store, projection, start, checkpoint_tx))));
    Ok(ProjectionHandle { name, checkpoint_rx, task })
}

async fn follow<P: Projection>(store: Arc<dyn EventStore>, mut projection: P, mut checkpoint: u64, checkpoint_tx: watch::Sender<u64>) {
    let upcasters = domain::event::registry();
    let mut head = store.head();
    loop {
        let batch = match store.read_all(checkpoint, BATCH).await {
            Ok(batch) => batch,
            Err(error) => {
                tracing::warn!(projection = projection.name(), %error, "cannot read the log; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let Some(up_to) = batch.last().map(|e| e.position) else {
            // Caught up: sleep until the append path moves the head.
            if head.wait_for(|h| *h > checkpoint).await.is_err() {
                return;
            }
            continue;
        };
        let decoded: Vec<(EventEnvelope, EventPayload)> = batch
            .into_iter()
            .filter_map(|e| match decode_envelope_payload(&e, upcasters) {
                Ok(payload) => Some((e, payload)),
                Err(error) => {
                    tracing::error!(position = e.position, %error, "cannot decode an event; projections pass it by");
                    None
                }
            })
            .collect();
        match projection.apply(&decoded, up_to).await {
            Ok(()) => {
                checkpoint = up_to;
                checkpoint_tx.send_replace(checkpoint);
            }
            Err(ProjectionError::Moved(now)) => {
                checkpoint = now;
                checkpoint_tx.send_replace(checkpoint);
            }
            Err(error) => {
                tracing::warn!(projection = projection.name(), %error, "cannot apply events; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}
