//! Shared by this crate's unit tests: a seeded generator (a seed replays a
//! randomised test), an envelope around a payload at a position, and one
//! event appended to a store.

use std::sync::Arc;

use commands::store::{AppendRequest, EventStore, ExpectedVersion, StreamAppend};
use domain::event::codec::encode_payload;
use domain::event::{EventEnvelope, EventPayload};

pub(crate) use crate::test_rng::Rng;

/// An envelope at a position, as a model sees it (the payload travels beside it).
pub(crate) fn envelope(position: u64) -> EventEnvelope {
    EventEnvelope {
        position,
        stream: String::new(),
        stream_version: 1,
        event_id: [0; 16],
        event_type: String::new(),
        schema_version: 1,
        occurred_at: 0,
        actor: "t".into(),
        tenant: "default".into(),
        correlation_id: [0; 16],
        causation_id: None,
        idempotency_key: None,
        payload: Vec::new(),
    }
}

/// Appends one event carrying `payload` to `stream`, with an id of its own,
/// as a command would.
pub(crate) async fn append(store: &Arc<dyn EventStore>, stream: &str, payload: &EventPayload, occurred_at: i64) {
    let (event_type, schema_version, bytes) = encode_payload(payload);
    let mut envelope = envelope(0);
    envelope.event_id = *uuid::Uuid::new_v4().as_bytes();
    (envelope.stream, envelope.event_type, envelope.schema_version, envelope.payload, envelope.occurred_at) =
        (stream.into(), event_type.into(), schema_version, bytes, occurred_at);
    let streams = vec![StreamAppend { stream: stream.into(), expected: ExpectedVersion::Any, events: vec![envelope] }];
    store.append(AppendRequest { streams, idempotency_key: None, unique: Default::default() }).await.unwrap();
}
