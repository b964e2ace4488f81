//! Shared by this crate's unit tests: a seeded generator (a seed replays a
//! randomised test) and an envelope around a payload at a position.

use domain::event::EventEnvelope;

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
