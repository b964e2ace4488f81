//! The projection runner: catch up from the checkpoint, then follow the head.
//!
//! A batch the model refuses is applied again one event at a time, and the
//! event it cannot take is parked ([`crate::dead_letter`]): the projection
//! goes on and reports itself degraded. An error of the model's store (a
//! connection lost) is retried after a pause and shown as the projection's
//! last error until a batch goes through.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use commands::store::EventStore;
use domain::event::codec::decode_envelope_payload;
use domain::event::{EventEnvelope, EventPayload};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::dead_letter::{DeadLetter, ParkedEvents};
pub use crate::shared_decode::SharedDecode;

/// Events read and applied per batch (one transaction for stored read models).
const BATCH: usize = 2_000;

/// Why a projection could not apply a batch.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The model's store failed (connection, timeout): retried after a pause.
    #[error("read model store: {0}")]
    Store(String),
    /// The model refuses the data (a value it cannot hold, a statement it
    /// cannot run): trying again would fail again, so the event is parked.
    #[error("the read model refused it: {0}")]
    Rejected(String),
    /// Another runner moved the checkpoint first; reload it and go on from there.
    #[error("the checkpoint moved under us (now {0})")]
    Moved(u64),
}

/// A read model fed by the log.
///
/// `apply` gets the decoded events of a batch in position order and the last
/// position of the batch (events that could not be decoded are parked
/// before). It must move its checkpoint to `up_to` together with the data,
/// and skip events at or below its checkpoint.
#[async_trait]
pub trait Projection: Send + 'static {
    fn name(&self) -> &str;
    /// The position of the last event applied (the stored one after a restart).
    async fn checkpoint(&mut self) -> Result<u64, ProjectionError>;
    async fn apply(&mut self, batch: &[(EventEnvelope, EventPayload)], up_to: u64) -> Result<(), ProjectionError>;
    /// Records a dead letter and moves the checkpoint to its position, together.
    async fn park(&mut self, letter: &DeadLetter) -> Result<(), ProjectionError> {
        match self.apply(&[], letter.position).await {
            Ok(()) | Err(ProjectionError::Moved(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }
    /// The letters the model keeps (stored models; `None`: it keeps none).
    async fn parked(&mut self) -> Result<Option<Vec<DeadLetter>>, ProjectionError> {
        Ok(None)
    }
    /// Applies a parked event again, with the later events of its stream the
    /// model already has (so the stream ends where it was), and forgets the
    /// letter; `events` are in position order, the parked one first.
    async fn reapply(&mut self, events: &[(EventEnvelope, EventPayload)]) -> Result<(), ProjectionError> {
        let _ = events;
        Err(ProjectionError::Rejected("this model is folded again from the log at every start: restart the server to retry".into()))
    }
}

/// What an operator asks of a running projection.
enum Control {
    /// Apply the parked event at this position again.
    Retry(u64, oneshot::Sender<Result<(), String>>),
}

/// A running projection: readers wait on its checkpoint.
#[derive(Clone)]
pub struct ProjectionHandle {
    name: String,
    checkpoint_rx: watch::Receiver<u64>,
    parked: ParkedEvents,
    /// The last store error while it keeps failing; `None` once a batch goes through.
    stalled: Arc<Mutex<Option<String>>>,
    control: mpsc::UnboundedSender<Control>,
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

    /// The events this projection parked, in position order.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.parked.list()
    }

    /// The store error it keeps retrying, if it is stuck on one.
    pub fn stalled(&self) -> Option<String> {
        self.stalled.lock().expect("stalled lock").clone()
    }

    /// Applies the parked event at `position` again (see [`Projection::reapply`]).
    pub async fn retry(&self, position: u64) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.control.send(Control::Retry(position, tx)).map_err(|_| "the projection has stopped".to_string())?;
        rx.await.map_err(|_| "the projection has stopped".to_string())?
    }

    pub fn stop(&self) {
        self.task.0.abort();
    }
}

/// Starts a projection: it catches up from its checkpoint, then follows the
/// store's head (woken by the append path; no polling). `parked` are letters
/// of a fold that came before (an in-process model's load at start).
pub async fn spawn<P: Projection>(store: Arc<dyn EventStore>, projection: P) -> Result<ProjectionHandle, ProjectionError> {
    spawn_with(store, projection, Vec::new()).await
}

/// [`spawn`], knowing the letters parked by the load before it.
pub async fn spawn_with<P: Projection>(store: Arc<dyn EventStore>, projection: P, loaded: Vec<DeadLetter>) -> Result<ProjectionHandle, ProjectionError> {
    spawn_shared(store, projection, loaded, SharedDecode::default()).await
}

/// [`spawn_with`], reading and decoding the log once with every other
/// projection spawned with the same `shared` ([`SharedDecode`]).
pub async fn spawn_shared<P: Projection>(
    store: Arc<dyn EventStore>,
    mut projection: P,
    loaded: Vec<DeadLetter>,
    shared: SharedDecode,
) -> Result<ProjectionHandle, ProjectionError> {
    let start = projection.checkpoint().await?;
    let parked = ParkedEvents::default();
    for letter in projection.parked().await?.unwrap_or_default().into_iter().chain(loaded) {
        parked.park(letter);
    }
    let name = projection.name().to_string();
    let (checkpoint_tx, checkpoint_rx) = watch::channel(start);
    let (control, control_rx) = mpsc::unbounded_channel();
    let stalled = Arc::new(Mutex::new(None));
    let follower = Follower { store, shared, checkpoint_tx, parked: parked.clone(), stalled: stalled.clone(), control: control_rx };
    let task = Arc::new(Task(tokio::spawn(follower.run(projection, start))));
    Ok(ProjectionHandle { name, checkpoint_rx, parked, stalled, control, task })
}

/// A batch read from the log: the events that decoded, and letters for those that did not.
pub struct Decoded {
    pub events: Vec<(EventEnvelope, EventPayload)>,
    pub undecodable: Vec<DeadLetter>,
}

/// Decodes a batch read from the log.
pub fn decode(batch: Vec<EventEnvelope>) -> Decoded {
    let upcasters = domain::event::registry();
    let mut out = Decoded { events: Vec::with_capacity(batch.len()), undecodable: Vec::new() };
    for envelope in batch {
        match decode_envelope_payload(&envelope, upcasters) {
            Ok(payload) => out.events.push((envelope, payload)),
            Err(error) => out.undecodable.push(DeadLetter::undecodable(&envelope, error)),
        }
    }
    out
}

/// Applies a batch up to `up_to`, parking what the model cannot take: the
/// batch whole when it can, else one event at a time. Returns the letters
/// parked. A store error is returned as is (what was applied stays applied).
pub async fn apply_or_park<P: Projection + ?Sized>(
    projection: &mut P,
    events: &[(EventEnvelope, EventPayload)],
    undecodable: &[DeadLetter],
    up_to: u64,
) -> Result<Vec<DeadLetter>, ProjectionError> {
    if undecodable.is_empty() {
        match projection.apply(events, up_to).await {
            Ok(()) | Err(ProjectionError::Moved(_)) => return Ok(Vec::new()),
            Err(ProjectionError::Rejected(_)) => {}
            Err(error) => return Err(error),
        }
    }
    let mut parked = Vec::new();
    let mut pending = undecodable.iter().peekable();
    for event in events {
        while let Some(letter) = pending.next_if(|l| l.position < event.0.position) {
            park(projection, letter.clone(), &mut parked).await?;
        }
        match projection.apply(std::slice::from_ref(event), event.0.position).await {
            Ok(()) | Err(ProjectionError::Moved(_)) => {}
            Err(ProjectionError::Rejected(reason)) => park(projection, DeadLetter::of(&event.0, reason), &mut parked).await?,
            Err(error) => return Err(error),
        }
    }
    for letter in pending {
        park(projection, letter.clone(), &mut parked).await?;
    }
    match projection.apply(&[], up_to).await {
        Ok(()) | Err(ProjectionError::Moved(_)) => Ok(parked),
        Err(error) => Err(error),
    }
}

async fn park<P: Projection + ?Sized>(projection: &mut P, letter: DeadLetter, parked: &mut Vec<DeadLetter>) -> Result<(), ProjectionError> {
    tracing::error!(
        projection = projection.name(),
        position = letter.position,
        stream = %letter.stream,
        event_type = %letter.event_type,
        error = %letter.error,
        "cannot apply an event: parked as a dead letter, the projection goes on"
    );
    projection.park(&letter).await?;
    parked.push(letter);
    Ok(())
}

/// The task that follows the log for one projection.
struct Follower {
    store: Arc<dyn EventStore>,
    /// Where batches are read and decoded, once for the followers sharing it.
    shared: SharedDecode,
    checkpoint_tx: watch::Sender<u64>,
    parked: ParkedEvents,
    stalled: Arc<Mutex<Option<String>>>,
    control: mpsc::UnboundedReceiver<Control>,
}

impl Follower {
    async fn run<P: Projection>(mut self, mut projection: P, mut checkpoint: u64) {
        let mut head = self.store.head();
        loop {
            while let Ok(control) = self.control.try_recv() {
                self.handle(&mut projection, control, checkpoint).await;
            }
            let batch = match self.shared.next(&self.store, checkpoint, BATCH).await {
                Ok(batch) => batch,
                Err(error) => {
                    self.stall(projection.name(), format!("cannot read the log: {error}"));
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            let Some(batch) = batch else {
                // Caught up: sleep until the append path moves the head, or an operator asks.
                tokio::select! {
                    moved = async { head.wait_for(|h| *h > checkpoint).await.is_ok() } => if !moved { return },
                    control = self.control.recv() => match control {
                        Some(control) => self.handle(&mut projection, control, checkpoint).await,
                        None => return,
                    },
                }
                continue;
            };
            let (up_to, decoded) = (batch.up_to, &batch.decoded);
            let ids: Vec<[u8; 16]> = if commands::trace::installed() { decoded.events.iter().map(|(e, _)| e.event_id).collect() } else { Vec::new() };
            let span = commands::trace::project_span(&ids, || {
                tracing::debug_span!(
                    target: commands::trace::TARGET,
                    "project",
                    otel.name = %format_args!("project {}", projection.name()),
                    projection = projection.name(),
                    from = checkpoint + 1,
                    to = up_to,
                    events = decoded.events.len(),
                )
            });
            let applied = apply_or_park(&mut projection, &decoded.events, &decoded.undecodable, up_to).instrument(span).await;
            match applied {
                Ok(parked) => {
                    for letter in parked {
                        self.parked.park(letter);
                    }
                    self.forget_skipped(projection.name(), &decoded.events);
                    *self.stalled.lock().expect("stalled lock") = None;
                    checkpoint = up_to;
                    self.checkpoint_tx.send_replace(checkpoint);
                }
                Err(ProjectionError::Moved(now)) => {
                    // A rebuilt copy was swapped in: its letters are the ones now.
                    if let Ok(Some(letters)) = projection.parked().await {
                        self.parked.replace(letters);
                    }
                    checkpoint = now;
                    self.checkpoint_tx.send_replace(checkpoint);
                }
                Err(error) => {
                    self.stall(projection.name(), error.to_string());
                    // Part of the batch may be applied: go on from the stored checkpoint.
                    if let Ok(now) = projection.checkpoint().await {
                        checkpoint = now.max(checkpoint);
                        self.checkpoint_tx.send_replace(checkpoint);
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }

    fn stall(&self, name: &str, error: String) {
        tracing::warn!(projection = name, %error, "cannot apply events; retrying");
        *self.stalled.lock().expect("stalled lock") = Some(error);
    }

    /// Letters an operator skipped (`projection.event_skipped` for this projection) are forgotten.
    fn forget_skipped(&self, name: &str, events: &[(EventEnvelope, EventPayload)]) {
        for (_, payload) in events {
            if let EventPayload::EventSkipped(skip) = payload {
                if skip.projection == name {
                    self.parked.clear(skip.position);
                }
            }
        }
    }

    async fn handle<P: Projection>(&mut self, projection: &mut P, control: Control, checkpoint: u64) {
        match control {
            Control::Retry(position, reply) => {
                let outcome = self.retry(projection, position, checkpoint).await;
                match &outcome {
                    Ok(()) => tracing::info!(projection = projection.name(), position, "parked event applied on retry"),
                    Err(error) => tracing::warn!(projection = projection.name(), position, %error, "parked event still cannot be applied"),
                }
                let _ = reply.send(outcome);
            }
        }
    }

    /// Reads the parked event and its stream's later events up to the
    /// checkpoint, and applies them again.
    async fn retry<P: Projection>(&mut self, projection: &mut P, position: u64, checkpoint: u64) -> Result<(), String> {
        let Some(letter) = self.parked.get(position) else {
            return Err(format!("no parked event at position {position}"));
        };
        let stream = self.store.read_stream(&letter.stream, 0).await.map_err(|e| format!("cannot read the log: {e}"))?;
        let wanted: Vec<EventEnvelope> = stream.into_iter().filter(|e| e.position >= position && e.position <= checkpoint).collect();
        let decoded = decode(wanted);
        if let Some(still) = decoded.undecodable.iter().find(|l| l.position == position) {
            return Err(still.error.clone());
        }
        match projection.reapply(&decoded.events).await {
            Ok(()) => {
                // The stream's later letters were applied with it.
                for (envelope, _) in &decoded.events {
                    self.parked.clear(envelope.position);
                }
                Ok(())
            }
            Err(error) => {
                let mut letter = letter;
                letter.error = error.to_string();
                self.parked.park(letter);
                Err(error.to_string())
            }
        }
    }
}
