//! Mapping between `events` rows and envelopes.

use domain::event::{EventEnvelope, EventId};
use tokio_postgres::Row;

use crate::error::StoreError;

pub(crate) const SELECT_EVENTS: &str = "SELECT position, stream, stream_version, event_id, event_type, schema_version, occurred_at, actor, tenant, correlation_id, causation_id, idempotency_key, payload FROM events";

fn id(bytes: &[u8], column: &str) -> Result<EventId, StoreError> {
    bytes.try_into().map_err(|_| StoreError::Corrupt(format!("{column} has {} bytes, expected 16", bytes.len())))
}

pub(crate) fn envelope_from_row(row: &Row) -> Result<EventEnvelope, StoreError> {
    Ok(EventEnvelope {
        position: row.get::<_, i64>(0) as u64,
        stream: row.get(1),
        stream_version: row.get::<_, i64>(2) as u64,
        event_id: id(row.get(3), "event_id")?,
        event_type: row.get(4),
        schema_version: row.get::<_, i16>(5) as u16,
        occurred_at: row.get(6),
        actor: row.get(7),
        tenant: row.get(8),
        correlation_id: id(row.get(9), "correlation_id")?,
        causation_id: row.get::<_, Option<&[u8]>>(10).map(|b| id(b, "causation_id")).transpose()?,
        idempotency_key: row.get(11),
        payload: row.get(12),
    })
}
