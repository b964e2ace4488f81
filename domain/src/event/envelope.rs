//! The envelope: identity, ordering, provenance and the encoded payload.

use bincode::{Decode, Encode};

/// 16 random or time-ordered bytes (a UUID), generated outside the domain.
pub type EventId = [u8; 16];

/// The stream an event belongs to: `"{object}/{id}"` for a record, `"$meta/{object}"`
/// for an object definition. Optimistic concurrency is per stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub String);

impl StreamId {
    pub fn record(object: &str, id: &str) -> StreamId {
        StreamId(format!("{object}/{id}"))
    }

    pub fn metadata(object: &str) -> StreamId {
        StreamId(format!("$meta/{object}"))
    }

    /// Operators' decisions about a projection (skipped dead letters).
    pub fn projection(name: &str) -> StreamId {
        StreamId(format!("$projections/{name}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `(object, id)` of a record stream.
    pub fn record_parts(&self) -> Option<(&str, &str)> {
        if self.0.starts_with('$') {
            return None;
        }
        self.0.split_once('/')
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One event as stored. `position` is 0 until the store assigns it at commit;
/// positions are dense (1, 2, 3, ...) and follow commit order.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct EventEnvelope {
    pub position: u64,
    pub stream: String,
    /// 1 for the first event of a stream.
    pub stream_version: u64,
    pub event_id: EventId,
    pub event_type: String,
    pub schema_version: u16,
    /// Microseconds since the epoch.
    pub occurred_at: i64,
    pub actor: String,
    pub tenant: String,
    pub correlation_id: EventId,
    pub causation_id: Option<EventId>,
    /// Shared by every event of one command; a repeat of the key returns the first result.
    pub idempotency_key: Option<String>,
    /// The payload, encoded by [`super::codec::encode_payload`].
    pub payload: Vec<u8>,
}
