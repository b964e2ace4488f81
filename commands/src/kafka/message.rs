//! An event as a Kafka message: keyed by its stream (so a record's events
//! share a partition and keep their order), the whole envelope as the value,
//! and the facts a consumer routes or filters on as headers (position, event
//! id, type, tenant, actor), readable without decoding the value.

use domain::event::{codec, EventEnvelope};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};

/// Header names (a stable surface for other consumers of the topic).
pub const POSITION: &str = "objectstack-position";
pub const EVENT_ID: &str = "objectstack-event-id";
pub const EVENT_TYPE: &str = "objectstack-type";
pub const TENANT: &str = "objectstack-tenant";
pub const ACTOR: &str = "objectstack-actor";

/// The partition of a stream's events: CRC-32 of the stream name modulo the
/// partition count, which is also librdkafka's default for keyed messages
/// (`consistent_random`). The relay sets it explicitly, and a projector node
/// uses it to know which of the log's events its partition should hold.
pub fn partition_of(stream: &str, partitions: i32) -> i32 {
    (crc32fast::hash(stream.as_bytes()) % partitions.max(1) as u32) as i32
}

/// The value of an event's message.
pub fn value(event: &EventEnvelope) -> Vec<u8> {
    codec::encode_envelope(event)
}

/// The headers of an event's message.
pub fn headers(event: &EventEnvelope) -> OwnedHeaders {
    let position = event.position.to_string();
    let id = uuid::Uuid::from_bytes(event.event_id).to_string();
    OwnedHeaders::new_with_capacity(5)
        .insert(Header { key: POSITION, value: Some(position.as_bytes()) })
        .insert(Header { key: EVENT_ID, value: Some(id.as_bytes()) })
        .insert(Header { key: EVENT_TYPE, value: Some(event.event_type.as_bytes()) })
        .insert(Header { key: TENANT, value: Some(event.tenant.as_bytes()) })
        .insert(Header { key: ACTOR, value: Some(event.actor.as_bytes()) })
}

/// Why a message is not an event of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("the message has no value")]
    Empty,
    #[error("the value is not an event envelope: {0}")]
    Undecodable(String),
    #[error("the position header says {header}, the envelope {envelope}")]
    PositionMismatch { header: u64, envelope: u64 },
}

/// The event a message carries, checked against its position header.
pub fn decode(message: &impl Message) -> Result<EventEnvelope, MessageError> {
    let bytes = message.payload().ok_or(MessageError::Empty)?;
    let event = codec::decode_envelope(bytes).map_err(|e| MessageError::Undecodable(e.to_string()))?;
    let header = message
        .headers()
        .and_then(|h| h.iter().find(|h| h.key == POSITION).and_then(|h| h.value).and_then(|v| std::str::from_utf8(v).ok()).and_then(|v| v.parse::<u64>().ok()));
    match header {
        Some(header) if header != event.position => Err(MessageError::PositionMismatch { header, envelope: event.position }),
        _ => Ok(event),
    }
}
