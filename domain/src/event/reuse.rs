//! Decoding envelopes into ones already allocated: a fold reads millions of
//! envelopes, one batch after another, and each decoded envelope would own
//! five or six fresh allocations (stream, type, actor, tenant, payload, ...)
//! freed a moment later on another thread. Decoding into the envelopes of a
//! batch already applied reuses their buffers instead.
//!
//! The encoding is the envelope's own: [`EnvelopeView`] has the same fields in
//! the same order, borrowed from the bytes (bincode encodes `&str` as `String`
//! and `&[u8]` as `Vec<u8>`).

use bincode::BorrowDecode;

use super::codec::{envelope_body, whole, CONFIG};
use super::envelope::{EventEnvelope, EventId};
use crate::error::DomainError;

/// An envelope borrowed from its encoded bytes.
#[derive(BorrowDecode)]
pub struct EnvelopeView<'a> {
    pub position: u64,
    pub stream: &'a str,
    pub stream_version: u64,
    pub event_id: EventId,
    pub event_type: &'a str,
    pub schema_version: u16,
    pub occurred_at: i64,
    pub actor: &'a str,
    pub tenant: &'a str,
    pub correlation_id: EventId,
    pub causation_id: Option<EventId>,
    pub idempotency_key: Option<&'a str>,
    pub payload: &'a [u8],
}

/// Decodes an encoded envelope (as [`super::codec::decode_envelope`] does,
/// refusing what it refuses) as a view of its bytes: nothing is copied, for
/// a reader that only looks (the embedded log's scan at open).
pub fn view_envelope(bytes: &[u8]) -> Result<EnvelopeView<'_>, DomainError> {
    let body = envelope_body(bytes)?;
    whole(bincode::borrow_decode_from_slice(body, CONFIG), body, "envelope")
}

fn assign(target: &mut String, source: &str) {
    target.clear();
    target.push_str(source);
}

/// Decodes an encoded envelope (as [`super::codec::decode_envelope`] does) into
/// `target`, reusing its buffers.
pub fn decode_envelope_into(bytes: &[u8], target: &mut EventEnvelope) -> Result<(), DomainError> {
    let view = view_envelope(bytes)?;
    target.position = view.position;
    assign(&mut target.stream, view.stream);
    target.stream_version = view.stream_version;
    target.event_id = view.event_id;
    assign(&mut target.event_type, view.event_type);
    target.schema_version = view.schema_version;
    target.occurred_at = view.occurred_at;
    assign(&mut target.actor, view.actor);
    assign(&mut target.tenant, view.tenant);
    target.correlation_id = view.correlation_id;
    target.causation_id = view.causation_id;
    match (&mut target.idempotency_key, view.idempotency_key) {
        (Some(key), Some(source)) => assign(key, source),
        (key, source) => *key = source.map(String::from),
    }
    target.payload.clear();
    target.payload.extend_from_slice(view.payload);
    Ok(())
}

/// Copies `source` into `target`, reusing the target's buffers.
pub fn copy_envelope_into(source: &EventEnvelope, target: &mut EventEnvelope) {
    target.position = source.position;
    target.stream.clone_from(&source.stream);
    target.stream_version = source.stream_version;
    target.event_id = source.event_id;
    target.event_type.clone_from(&source.event_type);
    target.schema_version = source.schema_version;
    target.occurred_at = source.occurred_at;
    target.actor.clone_from(&source.actor);
    target.tenant.clone_from(&source.tenant);
    target.correlation_id = source.correlation_id;
    target.causation_id = source.causation_id;
    target.idempotency_key.clone_from(&source.idempotency_key);
    target.payload.clone_from(&source.payload);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::codec::{decode_envelope, encode_envelope};

    fn envelope(n: u8, key: Option<&str>, payload: usize) -> EventEnvelope {
        EventEnvelope {
            position: u64::from(n) * 1000,
            stream: format!("task/{}", "x".repeat(usize::from(n))),
            stream_version: u64::from(n) + 1,
            event_id: [n; 16],
            event_type: if n.is_multiple_of(2) { "record.created".into() } else { "record.updated".into() },
            schema_version: u16::from(n % 3),
            occurred_at: -i64::from(n),
            actor: format!("actor{n}"),
            tenant: "default".into(),
            correlation_id: [n ^ 0xff; 16],
            causation_id: (n % 2 == 1).then_some([7; 16]),
            idempotency_key: key.map(String::from),
            payload: vec![n; payload],
        }
    }

    /// Decoding into an envelope left from another event, whatever it held,
    /// gives what a fresh decode gives.
    #[test]
    fn decoding_into_a_used_envelope_equals_a_fresh_decode() {
        let all = [
            envelope(0, None, 0),
            envelope(1, Some("k-1"), 300),
            envelope(2, Some("a much longer key"), 5),
            envelope(3, None, 70_000),
            envelope(4, Some(""), 1),
        ];
        for source in &all {
            let bytes = encode_envelope(source);
            for stale in &all {
                let mut target = stale.clone();
                decode_envelope_into(&bytes, &mut target).expect("decodes");
                assert_eq!(&target, source);
                assert_eq!(decode_envelope(&bytes).expect("decodes"), target);
                let mut copied = stale.clone();
                copy_envelope_into(source, &mut copied);
                assert_eq!(&copied, source);
            }
        }
    }

    #[test]
    fn bad_bytes_are_errors() {
        let mut target = envelope(1, None, 3);
        let mut bytes = encode_envelope(&envelope(2, Some("k"), 10));
        bytes.push(0);
        assert!(matches!(decode_envelope_into(&bytes, &mut target), Err(DomainError::Decode(e)) if e.contains("trailing")));
        assert!(matches!(view_envelope(&bytes), Err(DomainError::Decode(e)) if e.contains("trailing")));
        bytes.truncate(bytes.len() - 4);
        assert!(decode_envelope_into(&bytes, &mut target).is_err());
        assert!(decode_envelope_into(&[9, 1, 2], &mut target).is_err());
        assert!(decode_envelope_into(&[], &mut target).is_err());
    }
}
