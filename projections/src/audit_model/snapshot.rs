//! The audit model as a snapshot: every entry with its payload's bytes, in
//! log order; the indexes by target and object are rebuilt as they load.

use super::{AuditEntry, AuditModel, StoredPayload};
use crate::snapshot::codec::{Reader, Writer};
use crate::snapshot::Snapshot;

/// What an entry's kind and its payload's type are saved as, and read back to.
const KINDS: [&str; 4] = ["data.create", "data.update", "data.delete", "system.config_changed"];
const PAYLOAD_TYPES: [&str; 7] =
    ["record.created", "record.updated", "record.deleted", "object.defined", "object.altered", "object.removed", "projection.event_skipped"];

/// One entry as saved.
type Saved<'a> = (u64, [u8; 16], u8, i64, &'a str, &'a str, &'a str, &'a str, u64, Option<&'a str>, Option<[u8; 16]>, (u8, u16, &'a [u8]));
type Loaded = (u64, [u8; 16], u8, i64, String, String, String, String, u64, Option<String>, Option<[u8; 16]>, (u8, u16, Vec<u8>));

/// A name's code; one not listed (a kind added without listing it here)
/// saves a code no load reads, so that load folds the log instead.
fn code(names: &[&str], name: &str) -> u8 {
    names.iter().position(|n| *n == name).map_or(u8::MAX, |at| at as u8)
}

fn named(names: &[&'static str], code: u8) -> Result<&'static str, String> {
    names.get(code as usize).copied().ok_or_else(|| format!("the audit model's snapshot: unknown code {code}"))
}

impl Snapshot for AuditModel {
    const NAME: &'static str = "audit";
    const FORMAT: u32 = 1;
    /// The body, encoded under the lock: the entries hold their payloads'
    /// bytes, which would be copied to share them anyway.
    type Captured = Vec<u8>;

    fn capture(&self) -> Vec<u8> {
        let mut out = Writer::default();
        out.put(&(self.entries.len() as u64));
        for e in &self.entries {
            let payload = (code(&PAYLOAD_TYPES, e.payload.event_type), e.payload.schema_version, &*e.payload.bytes);
            let saved: Saved = (
                e.position,
                e.event_id,
                code(&KINDS, e.event_type),
                e.occurred_at,
                &e.actor,
                &e.tenant,
                &e.target_type,
                &e.target_id,
                e.stream_version,
                e.cause.as_deref(),
                e.caused_by,
                payload,
            );
            out.put(&saved);
        }
        out.bytes
    }

    fn encode(captured: Vec<u8>) -> Vec<u8> {
        captured
    }

    fn decode(_template: AuditModel, position: u64, body: &[u8]) -> Result<AuditModel, String> {
        let mut input = Reader::new(body, "the audit model's snapshot");
        let mut model = AuditModel::default();
        let count = input.count()?;
        model.entries.reserve(count.min(1 << 24));
        for _ in 0..count {
            let (at, event_id, kind, occurred_at, actor, tenant, target_type, target_id, stream_version, cause, caused_by, payload): Loaded = input.take()?;
            let target_type = model.names.get(&target_type);
            let entry = AuditEntry {
                position: at,
                event_id,
                event_type: named(&KINDS, kind)?,
                occurred_at,
                actor: model.names.get(&actor),
                tenant: model.names.get(&tenant),
                target_id: model.shared_target(&target_type, &target_id),
                target_type,
                stream_version,
                cause,
                caused_by,
                payload: StoredPayload { event_type: named(&PAYLOAD_TYPES, payload.0)?, schema_version: payload.1, bytes: payload.2.into() },
            };
            model.insert(entry);
        }
        input.finish()?;
        model.checkpoint = position;
        Ok(model)
    }
}
