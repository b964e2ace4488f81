//! Shared by the benchmarks: an envelope around a payload, as the command
//! side would write it (the store assigns positions on append; benchmarks that
//! feed models directly give one).

use domain::event::codec::encode_payload;
use domain::event::{EventEnvelope, EventPayload};

pub fn envelope(position: u64, payload: &EventPayload) -> EventEnvelope {
    let (event_type, schema_version, bytes) = encode_payload(payload);
    EventEnvelope {
        position,
        stream: String::new(),
        stream_version: 0,
        event_id: *uuid::Uuid::now_v7().as_bytes(),
        event_type: event_type.into(),
        schema_version,
        occurred_at: 1_790_000_000_000_000,
        actor: "bench".into(),
        tenant: "default".into(),
        correlation_id: [0; 16],
        causation_id: None,
        idempotency_key: None,
        payload: bytes,
    }
}
