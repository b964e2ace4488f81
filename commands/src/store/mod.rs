//! The event store contract and its implementations.
//!
//! **Architecture invariant**: positions are dense (1, 2, 3, ...) and a reader
//! following the log from a position never skips an event that commits later
//! with a smaller position: both stores assign positions in commit order.
//! An acknowledged append is durable (fsynced, or committed in PostgreSQL).

mod arrivals;
mod embedded;
mod opening;
mod plan;
mod postgres;

use async_trait::async_trait;
use domain::event::EventEnvelope;
use tokio::sync::watch;

pub use arrivals::{Arrivals, Arriving};
pub use embedded::{lock_embedded, open_embedded, open_locked, DirLock, EmbeddedStore};
pub use opening::{Opener, Opening};
pub use postgres::{copy_into, open_postgres, pg_error, pool_for_schema, session_config, PostgresSettings, PostgresStore, MIGRATIONS};

use crate::error::StoreError;

/// What the caller expects a stream's version to be before the append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// No check.
    Any,
    /// The stream has exactly this many events (0: it does not exist yet).
    Exact(u64),
}

/// Events for one stream. `position` and `stream_version` of the envelopes are
/// filled in by the store.
#[derive(Debug, Clone)]
pub struct StreamAppend {
    pub stream: String,
    pub expected: ExpectedVersion,
    pub events: Vec<EventEnvelope>,
}

/// One atomic append: every stream or none.
#[derive(Debug, Clone, Default)]
pub struct AppendRequest {
    pub streams: Vec<StreamAppend>,
    /// When set, a second append with the same key fails with [`StoreError::KeyUsed`].
    pub idempotency_key: Option<String>,
    /// Unique values the append takes and gives up.
    pub unique: UniqueChanges,
}

/// A unique value held by a record stream: `key` is a digest of the object,
/// the unique fields and their normalised values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueClaim {
    pub key: String,
    pub stream: String,
    /// What the value is, for the error when another stream holds it.
    pub object: String,
    pub fields: Vec<String>,
}

/// The unique values of the records an append writes: every value a record
/// takes (claimed for that record's stream), and every value it held before
/// and no longer holds (released). The PostgreSQL store keeps
/// them in the append's transaction, so writer processes sharing the store
/// cannot both take one value ([`StoreError::Claimed`]); the embedded store
/// has one writer process, whose write model already decides this.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UniqueChanges {
    pub claims: Vec<UniqueClaim>,
    /// `(key, stream)`: given up only if that stream holds it.
    pub releases: Vec<(String, String)>,
}

impl UniqueChanges {
    pub fn is_empty(&self) -> bool {
        self.claims.is_empty() && self.releases.is_empty()
    }

    pub fn extend(&mut self, other: UniqueChanges) {
        self.claims.extend(other.claims);
        self.releases.extend(other.releases);
    }
}

/// The stored events of a committed append, in position order.
#[derive(Debug, Clone)]
pub struct Committed {
    pub events: Vec<EventEnvelope>,
}

impl Committed {
    /// The position of the last event (the log position to wait for to read this write).
    pub fn last_position(&self) -> u64 {
        self.events.last().map(|e| e.position).unwrap_or(0)
    }
}

/// An append-only, totally ordered event log with per-stream optimistic concurrency.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends atomically after checking every stream's expected version and the
    /// idempotency key. Returns once the events are durable.
    async fn append(&self, request: AppendRequest) -> Result<Committed, StoreError>;
    /// The events of one stream with `stream_version >= from_version`, in order.
    async fn read_stream(&self, stream: &str, from_version: u64) -> Result<Vec<EventEnvelope>, StoreError>;
    /// Up to `max` events of one stream with `stream_version >= from_version`, in order.
    async fn read_stream_range(&self, stream: &str, from_version: u64, max: usize) -> Result<Vec<EventEnvelope>, StoreError> {
        let mut events = self.read_stream(stream, from_version).await?;
        events.truncate(max);
        Ok(events)
    }
    /// Up to `max` events with `position > after`, in position order (catch-up).
    async fn read_all(&self, after: u64, max: usize) -> Result<Vec<EventEnvelope>, StoreError>;
    /// The same events in `out`, which comes back holding exactly them: the
    /// envelopes it held are overwritten, their buffers reused where the
    /// store can (a reader that folds the whole log then allocates per batch
    /// neither the vector nor the envelopes' strings and payloads).
    async fn read_all_into(&self, after: u64, max: usize, mut out: Vec<EventEnvelope>) -> Result<Vec<EventEnvelope>, StoreError> {
        out.clear();
        out.extend(self.read_all(after, max).await?);
        Ok(out)
    }
    /// The events at these positions, each once, in position order (a
    /// position that is 0 or past the head has none).
    async fn read_positions(&self, positions: &[u64]) -> Result<Vec<EventEnvelope>, StoreError>;
    /// The events committed under an idempotency key, if it was used.
    async fn read_idempotent(&self, key: &str) -> Result<Option<Vec<EventEnvelope>>, StoreError>;
    /// The last position this process knows to be committed; changes are
    /// published on the receiver (the append path wakes followers with it).
    fn head(&self) -> watch::Receiver<u64>;
    /// The last position this process knows to be committed, its own
    /// appends included even where followers cannot read them yet (a node
    /// fed by the topic): the read barrier waits for it, so a read sees this
    /// node's acknowledged writes.
    fn acknowledged(&self) -> u64 {
        *self.head().borrow()
    }
    /// Where the process's writers announce appends before planning them,
    /// for a store whose group commit waits for announced appends (the
    /// embedded log); `None`: the store does not wait.
    fn arrivals(&self) -> Option<Arrivals> {
        None
    }
}

/// Checks a request's shape before any IO (both stores).
pub(crate) fn check_request(request: &AppendRequest) -> Result<(), StoreError> {
    if request.streams.is_empty() || request.streams.iter().any(|s| s.events.is_empty()) {
        return Err(StoreError::InvalidAppend("an append needs at least one event per stream".into()));
    }
    let mut names: Vec<&str> = request.streams.iter().map(|s| s.stream.as_str()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err(StoreError::InvalidAppend("a stream appears twice in one append".into()));
    }
    Ok(())
}
