//! Encoding of payloads and envelopes with bincode 2, with a schema version.
//!
//! bincode is not self-describing, so every payload is stored with its event
//! type and schema version, and decoding goes through the upcasters.

use bincode::config::{standard, Configuration, Limit, LittleEndian, Varint};

use super::payload::*;
use super::process::ProcessEvent;
use super::{EventEnvelope, Upcasters};
use crate::error::DomainError;

/// Most memory one decode may claim (bincode counts the decoded size of
/// containers): lengths are read, not trusted, so a damaged one is an error
/// here instead of a reservation the allocator cannot meet (an abort). About
/// 4 GiB: frames hold at most 64 MiB, and decoded values take at most ~32
/// times their bytes (a list of one-byte numbers).
const DECODE_LIMIT: usize = u32::MAX as usize;

/// The encoding of every payload and envelope (the limit only applies to decoding).
pub(crate) const CONFIG: Configuration<LittleEndian, Varint, Limit<DECODE_LIMIT>> = standard().with_limit::<DECODE_LIMIT>();

/// The schema version each payload type is written at today.
pub fn current_version(event_type: &str) -> u16 {
    match event_type {
        "record.created" | "record.updated" | "record.deleted" => 2,
        _ => 1,
    }
}

/// The version byte in front of an encoded envelope (embedded log frames).
pub const ENVELOPE_FORMAT: u8 = 1;

fn encode<T: bincode::Encode>(value: &T) -> Vec<u8> {
    bincode::encode_to_vec(value, CONFIG).expect("encoding into a Vec cannot fail")
}

fn decode<T: bincode::Decode<()>>(bytes: &[u8], event_type: &str) -> Result<T, DomainError> {
    let decoded = bincode::decode_from_slice::<T, _>(bytes, CONFIG);
    whole(decoded, bytes, event_type)
}

/// A value decoded from `bytes` that must have used every byte of them.
pub(super) fn whole<T>(decoded: Result<(T, usize), bincode::error::DecodeError>, bytes: &[u8], what: &str) -> Result<T, DomainError> {
    let (value, read) = decoded.map_err(|e| DomainError::Decode(format!("{what}: {e}")))?;
    if read != bytes.len() {
        return Err(DomainError::Decode(format!("{what}: {} trailing bytes", bytes.len() - read)));
    }
    Ok(value)
}

/// The bincode body of an encoded envelope, after its format byte.
pub(super) fn envelope_body(bytes: &[u8]) -> Result<&[u8], DomainError> {
    match bytes.first() {
        Some(&ENVELOPE_FORMAT) => Ok(&bytes[1..]),
        Some(other) => Err(DomainError::Decode(format!("unknown envelope format {other}"))),
        None => Err(DomainError::Decode("empty envelope".into())),
    }
}

/// Encodes a payload: `(event_type, schema_version, bytes)`.
pub fn encode_payload(payload: &EventPayload) -> (&'static str, u16, Vec<u8>) {
    let bytes = match payload {
        EventPayload::RecordCreated(e) => encode(e),
        EventPayload::RecordUpdated(e) => encode(e),
        EventPayload::RecordDeleted(e) => encode(e),
        EventPayload::ObjectDefined(e) | EventPayload::ObjectAltered(e) => encode(e),
        EventPayload::ObjectRemoved(e) => encode(e),
        EventPayload::EventSkipped(e) => encode(e),
        EventPayload::Process(ProcessEvent::Progress(e)) => encode(e),
        EventPayload::Process(ProcessEvent::Deliveries(e)) => encode(e),
        EventPayload::Process(ProcessEvent::JobStarted(e)) => encode(e),
        EventPayload::Process(ProcessEvent::JobFinished(e)) => encode(e),
        EventPayload::Process(ProcessEvent::TimerSet(e)) => encode(e),
        EventPayload::Process(ProcessEvent::TimerFired(e)) => encode(e),
        EventPayload::Process(ProcessEvent::ApprovalSubmitted(e)) => encode(e),
        EventPayload::Process(ProcessEvent::ApprovalDecided(e)) => encode(e),
        EventPayload::Process(ProcessEvent::ApprovalRecalled(e)) => encode(e),
        EventPayload::Process(ProcessEvent::AutomationDefined(e)) => encode(e),
    };
    (payload.event_type(), current_version(payload.event_type()), bytes)
}

/// Decodes a payload, upcasting older versions first.
pub fn decode_payload(event_type: &str, schema_version: u16, bytes: &[u8], upcasters: &Upcasters) -> Result<EventPayload, DomainError> {
    let current = current_version(event_type);
    if schema_version > current {
        return Err(DomainError::Decode(format!("{event_type} v{schema_version} was written by a newer server")));
    }
    let upgraded;
    let bytes = if schema_version < current {
        upgraded = upcasters.upgrade(event_type, schema_version, current, bytes)?;
        &upgraded[..]
    } else {
        bytes
    };
    Ok(match event_type {
        "record.created" => EventPayload::RecordCreated(crate::fields::with_interned_names(|| decode(bytes, event_type))?),
        "record.updated" => EventPayload::RecordUpdated(decode(bytes, event_type)?),
        "record.deleted" => EventPayload::RecordDeleted(crate::fields::with_interned_names(|| decode(bytes, event_type))?),
        "object.defined" => EventPayload::ObjectDefined(decode(bytes, event_type)?),
        "object.altered" => EventPayload::ObjectAltered(decode(bytes, event_type)?),
        "object.removed" => EventPayload::ObjectRemoved(decode(bytes, event_type)?),
        "projection.event_skipped" => EventPayload::EventSkipped(decode(bytes, event_type)?),
        "process.progress" => EventPayload::Process(ProcessEvent::Progress(decode(bytes, event_type)?)),
        "webhook.deliveries" => EventPayload::Process(ProcessEvent::Deliveries(decode(bytes, event_type)?)),
        "job.started" => EventPayload::Process(ProcessEvent::JobStarted(decode(bytes, event_type)?)),
        "job.finished" => EventPayload::Process(ProcessEvent::JobFinished(decode(bytes, event_type)?)),
        "timer.set" => EventPayload::Process(ProcessEvent::TimerSet(decode(bytes, event_type)?)),
        "timer.fired" => EventPayload::Process(ProcessEvent::TimerFired(decode(bytes, event_type)?)),
        "approval.submitted" => EventPayload::Process(ProcessEvent::ApprovalSubmitted(decode(bytes, event_type)?)),
        "approval.decided" => EventPayload::Process(ProcessEvent::ApprovalDecided(decode(bytes, event_type)?)),
        "approval.recalled" => EventPayload::Process(ProcessEvent::ApprovalRecalled(decode(bytes, event_type)?)),
        "automation.defined" => EventPayload::Process(ProcessEvent::AutomationDefined(decode(bytes, event_type)?)),
        other => return Err(DomainError::Decode(format!("unknown event type '{other}'"))),
    })
}

/// Decodes the payload of a stored envelope.
pub fn decode_envelope_payload(envelope: &EventEnvelope, upcasters: &Upcasters) -> Result<EventPayload, DomainError> {
    decode_payload(&envelope.event_type, envelope.schema_version, &envelope.payload, upcasters)
}

/// Encodes a whole envelope: one format byte, then bincode.
pub fn encode_envelope(envelope: &EventEnvelope) -> Vec<u8> {
    let mut out = Vec::with_capacity(96 + envelope.payload.len());
    out.push(ENVELOPE_FORMAT);
    bincode::encode_into_std_write(envelope, &mut out, CONFIG).expect("encoding into a Vec cannot fail");
    out
}

pub fn decode_envelope(bytes: &[u8]) -> Result<EventEnvelope, DomainError> {
    decode(envelope_body(bytes)?, "envelope")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{Record, Value};

    /// Field names of a payload's record are interned; keys of maps inside
    /// its values, and of maps in an update's changes, are data and stay owned.
    #[test]
    fn only_a_payloads_field_names_are_interned() {
        use crate::name::Name;
        let nested: Record = [("someone@example.com", Value::Int(1))].into_iter().collect();
        let mut record = Record::new();
        record.insert("subject", Value::Text("x".into()));
        record.insert("profile", Value::Map(nested.clone()));
        let created = EventPayload::RecordCreated(RecordCreated { object: "task".into(), id: "t1".into(), record, automated: Vec::new() });
        let (event_type, version, bytes) = encode_payload(&created);
        let Ok(EventPayload::RecordCreated(back)) = decode_payload(event_type, version, &bytes, &Upcasters::default()) else { panic!("decodes") };
        assert!(back.record.keys().all(|k| matches!(k, Name::Interned(_))));
        let Some(Value::Map(map)) = back.record.get("profile") else { panic!("a map") };
        assert!(map.keys().all(|k| matches!(k, Name::Owned(_))));
        let change = crate::event::FieldChange { field: "profile".into(), old: Value::Null, new: Value::Map(nested) };
        let updated =
            EventPayload::RecordUpdated(crate::event::RecordUpdated { object: "task".into(), id: "t1".into(), changes: vec![change], automated: Vec::new() });
        let (event_type, version, bytes) = encode_payload(&updated);
        let Ok(EventPayload::RecordUpdated(back)) = decode_payload(event_type, version, &bytes, &Upcasters::default()) else { panic!("decodes") };
        let Value::Map(map) = &back.changes[0].new else { panic!("a map") };
        assert!(map.keys().all(|k| matches!(k, Name::Owned(_))));
    }

    #[test]
    fn a_damaged_length_is_an_error_not_an_abort() {
        // record.created whose record holds a list claiming 2^50 values.
        let bytes = bincode::encode_to_vec(("task".to_string(), "t1".to_string(), 1u64, "tags".to_string(), 5u32, 1u64 << 50), standard()).unwrap();
        assert!(matches!(decode_payload("record.created", 2, &bytes, &Upcasters::default()), Err(DomainError::Decode(_))));
    }

    fn created() -> EventPayload {
        let mut record = Record::new();
        record.insert("subject", Value::Text("hello".into()));
        record.insert("n", Value::Float(1.5));
        record.insert("tags", Value::List(vec![Value::Text("a".into())]));
        EventPayload::RecordCreated(RecordCreated { object: "task".into(), id: "t1".into(), record, automated: Vec::new() })
    }

    #[test]
    fn payload_round_trip() {
        let payload = created();
        let (event_type, version, bytes) = encode_payload(&payload);
        assert_eq!(decode_payload(event_type, version, &bytes, &Upcasters::default()).unwrap(), payload);
    }

    #[test]
    fn newer_and_unknown_versions_are_refused() {
        let (event_type, _, bytes) = encode_payload(&created());
        let err = decode_payload(event_type, 9, &bytes, &Upcasters::default()).unwrap_err();
        assert!(err.to_string().contains("newer server"));
        assert!(decode_payload("record.exploded", 1, &bytes, &Upcasters::default()).is_err());
        assert!(decode_payload("object.removed", 1, &bytes, &Upcasters::default()).is_err());
    }

    /// A v0 `object.removed` carried the name in upper case; the upcaster lowers it.
    struct LowerName;
    impl crate::event::Upcaster for LowerName {
        fn event_type(&self) -> &str {
            "object.removed"
        }
        fn source_version(&self) -> u16 {
            0
        }
        fn upcast(&self, bytes: &[u8]) -> Result<Vec<u8>, DomainError> {
            let old: ObjectRemoved = decode(bytes, "object.removed")?;
            Ok(encode(&ObjectRemoved { name: old.name.to_lowercase() }))
        }
    }

    #[test]
    fn older_versions_go_through_the_upcaster() {
        let old = encode(&ObjectRemoved { name: "TASK".into() });
        assert!(decode_payload("object.removed", 0, &old, &Upcasters::default()).unwrap_err().to_string().contains("no upcaster"));
        let mut upcasters = Upcasters::default();
        upcasters.register(Box::new(LowerName));
        assert_eq!(decode_payload("object.removed", 0, &old, &upcasters).unwrap(), EventPayload::ObjectRemoved(ObjectRemoved { name: "task".into() }));
    }

    #[test]
    fn record_deleted_v1_is_read_as_v2() {
        let mut previous = Record::new();
        previous.insert("title", Value::Text("gone".into()));
        let v1 = encode(&RecordDeletedV1 { object: "note".into(), id: "n1".into(), previous: previous.clone() });
        let expected = EventPayload::RecordDeleted(RecordDeleted { object: "note".into(), id: "n1".into(), previous, cause: None });
        assert_eq!(decode_payload("record.deleted", 1, &v1, crate::event::registry()).unwrap(), expected);
        assert!(decode_payload("record.deleted", 1, &v1, &Upcasters::default()).is_err(), "without the upcaster v1 is unreadable");
        let (_, version, _) = encode_payload(&expected);
        assert_eq!(version, 2);
    }

    /// v1 `record.created` / `record.updated` as they were written (no
    /// `automated`) are read as v2 with no rule named; v2 is written.
    #[test]
    fn record_created_and_updated_v1_are_read_as_v2() {
        let mut record = Record::new();
        record.insert("title", Value::Text("kept".into()));
        let v1 = encode(&("task".to_string(), "t1".to_string(), record.clone()));
        let expected = EventPayload::RecordCreated(RecordCreated { object: "task".into(), id: "t1".into(), record, automated: Vec::new() });
        assert_eq!(decode_payload("record.created", 1, &v1, crate::event::registry()).unwrap(), expected);
        assert!(decode_payload("record.created", 1, &v1, &Upcasters::default()).is_err(), "without the upcaster v1 is unreadable");
        let change = crate::event::FieldChange { field: "title".into(), old: Value::Null, new: Value::Text("new".into()) };
        let v1 = encode(&("task".to_string(), "t1".to_string(), vec![change.clone()]));
        let expected =
            EventPayload::RecordUpdated(crate::event::RecordUpdated { object: "task".into(), id: "t1".into(), changes: vec![change], automated: Vec::new() });
        assert_eq!(decode_payload("record.updated", 1, &v1, crate::event::registry()).unwrap(), expected);
        let named = crate::event::RuleApplied { rule: "r".into(), fields: vec!["title".into()] };
        let EventPayload::RecordUpdated(mut v2) = expected else { unreachable!() };
        v2.automated.push(named);
        let v2 = EventPayload::RecordUpdated(v2);
        let (event_type, version, bytes) = encode_payload(&v2);
        assert_eq!(version, 2);
        assert_eq!(decode_payload(event_type, version, &bytes, crate::event::registry()).unwrap(), v2);
    }

    #[test]
    fn envelope_round_trip() {
        let (event_type, schema_version, payload) = encode_payload(&created());
        let envelope = EventEnvelope {
            position: 7,
            stream: "task/t1".into(),
            stream_version: 1,
            event_id: [1; 16],
            event_type: event_type.into(),
            schema_version,
            occurred_at: 1_700_000_000_000_000,
            actor: "system".into(),
            tenant: "default".into(),
            correlation_id: [2; 16],
            causation_id: None,
            idempotency_key: Some("k".into()),
            payload,
        };
        let bytes = encode_envelope(&envelope);
        assert_eq!(decode_envelope(&bytes).unwrap(), envelope);
        assert!(decode_envelope(&bytes[..bytes.len() - 1]).is_err());
    }
}
