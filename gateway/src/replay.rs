//! `objectstack replay`: the event history of a record, an object or the whole
//! log between two positions or times, as JSON lines on standard output.

use std::io::Write;
use std::sync::Arc;

use commands::store::EventStore;
use domain::event::codec::decode_envelope_payload;
use domain::event::{EventEnvelope, StreamId, Upcasters};
use domain::Timestamp;
use serde_json::json;

/// A bound of the replayed range: a log position or a time.
#[derive(Debug, Clone, Copy)]
pub enum Bound {
    Position(u64),
    Time(Timestamp),
}

impl Bound {
    pub fn parse(text: &str) -> anyhow::Result<Bound> {
        if let Ok(position) = text.trim().parse::<u64>() {
            return Ok(Bound::Position(position));
        }
        Timestamp::parse(text.trim()).map(Bound::Time).ok_or_else(|| anyhow::anyhow!("'{text}' is neither a log position nor an ISO-8601 time"))
    }

    fn at_or_after(&self, e: &EventEnvelope) -> bool {
        match self {
            Bound::Position(p) => e.position >= *p,
            Bound::Time(t) => e.occurred_at >= t.micros(),
        }
    }

    fn at_or_before(&self, e: &EventEnvelope) -> bool {
        match self {
            Bound::Position(p) => e.position <= *p,
            Bound::Time(t) => e.occurred_at <= t.micros(),
        }
    }
}

/// What to replay.
pub struct Selection {
    pub object: Option<String>,
    pub record: Option<String>,
    pub from: Option<Bound>,
    pub to: Option<Bound>,
}

/// Takes secrets out of replayed payloads: the values of `password` fields
/// (hashes, but secrets all the same) and session token hashes. Definitions
/// are folded as they pass, so every record event is read with the metadata of its time.
#[derive(Default)]
struct Redactor {
    catalog: domain::metadata::Catalog,
}

const REDACTED: &str = "[redacted]";

impl Redactor {
    fn secret_fields(&self, object: &str) -> Vec<String> {
        let mut out: Vec<String> = match self.catalog.get(object) {
            Some(definition) => definition.fields.iter().filter(|f| f.field_type == domain::metadata::FieldType::Password).map(|f| f.name.clone()).collect(),
            None => Vec::new(),
        };
        if domain::security::INTERNAL_OBJECTS.contains(&object) {
            out.extend(domain::security::SECRET_FIELDS.iter().map(|f| f.to_string()));
        }
        out
    }

    /// Folds a definition (its password fields are secret from then on); other events pass.
    fn observe(&mut self, payload: &domain::event::EventPayload) {
        use domain::event::EventPayload::{ObjectAltered, ObjectDefined, ObjectRemoved};
        if matches!(payload, ObjectDefined(_) | ObjectAltered(_) | ObjectRemoved(_)) {
            let _ = domain::metadata::evolve_catalog(&mut self.catalog, payload);
        }
    }

    /// Folds a definition event read only for its definition.
    fn observe_envelope(&mut self, envelope: &EventEnvelope, upcasters: &Upcasters) -> anyhow::Result<()> {
        self.observe(&decode_envelope_payload(envelope, upcasters)?);
        Ok(())
    }

    /// Replaces the secret values of a record event's JSON.
    fn redact(&self, payload: &domain::event::EventPayload, json: &mut serde_json::Value) {
        let secrets = self.secret_fields(payload.object());
        for key in ["record", "previous"] {
            if let Some(serde_json::Value::Object(record)) = json.get_mut(key) {
                for field in &secrets {
                    if let Some(value) = record.get_mut(field) {
                        *value = json!(REDACTED);
                    }
                }
            }
        }
        if let Some(serde_json::Value::Array(changes)) = json.get_mut("changes") {
            for change in changes {
                if secrets.iter().any(|s| change["field"].as_str() == Some(s.as_str())) {
                    change["oldValue"] = json!(REDACTED);
                    change["newValue"] = json!(REDACTED);
                }
            }
        }
    }
}

fn line(envelope: &EventEnvelope, upcasters: &Upcasters, redactor: &mut Redactor) -> anyhow::Result<serde_json::Value> {
    let decoded = decode_envelope_payload(envelope, upcasters)?;
    redactor.observe(&decoded);
    let mut payload = decoded.to_json();
    redactor.redact(&decoded, &mut payload);
    let hex = domain::hex::encode;
    Ok(json!({
        "position": envelope.position,
        "stream": envelope.stream,
        "version": envelope.stream_version,
        "type": envelope.event_type,
        "schemaVersion": envelope.schema_version,
        "occurredAt": Timestamp::from_micros(envelope.occurred_at).to_rfc3339(),
        "actor": envelope.actor,
        "tenant": envelope.tenant,
        "eventId": hex(&envelope.event_id),
        "correlationId": hex(&envelope.correlation_id),
        "idempotencyKey": envelope.idempotency_key,
        "payload": payload,
    }))
}

/// Writes the selected events, oldest first, one JSON object per line. Returns how many.
pub async fn replay(store: Arc<dyn EventStore>, selection: &Selection, out: &mut dyn Write) -> anyhow::Result<u64> {
    let upcasters = domain::event::registry();
    let in_range = |e: &EventEnvelope| selection.from.is_none_or(|b| b.at_or_after(e)) && selection.to.is_none_or(|b| b.at_or_before(e));
    let mut written = 0;
    let mut redactor = Redactor::default();
    if let (Some(object), Some(record)) = (&selection.object, &selection.record) {
        // The object's definition first, for its password fields.
        for envelope in store.read_stream(StreamId::metadata(object).as_str(), 1).await? {
            redactor.observe_envelope(&envelope, upcasters)?;
        }
        for envelope in store.read_stream(StreamId::record(object, record).as_str(), 1).await? {
            if in_range(&envelope) {
                writeln!(out, "{}", line(&envelope, upcasters, &mut redactor)?)?;
                written += 1;
            }
        }
        return Ok(written);
    }
    if selection.record.is_some() {
        anyhow::bail!("--record needs --object");
    }
    // From the start, so that definitions are folded before the events that use them.
    let mut after = 0;
    loop {
        let batch = store.read_all(after, 10_000).await?;
        let Some(last) = batch.last() else { break };
        after = last.position;
        for envelope in &batch {
            if let Some(Bound::Position(p)) = selection.to {
                if envelope.position > p {
                    return Ok(written);
                }
            }
            if !in_range(envelope) {
                if envelope.stream.starts_with("$meta/") {
                    redactor.observe_envelope(envelope, upcasters)?;
                }
                continue;
            }
            if let Some(object) = &selection.object {
                let ours = envelope.stream.strip_prefix("$meta/").map_or_else(|| envelope.stream.split('/').next() == Some(object.as_str()), |o| o == object);
                if !ours {
                    if envelope.stream.starts_with("$meta/") {
                        redactor.observe_envelope(envelope, upcasters)?;
                    }
                    continue;
                }
            }
            writeln!(out, "{}", line(envelope, upcasters, &mut redactor)?)?;
            written += 1;
        }
    }
    Ok(written)
}
