//! The audit model as a snapshot: every entry, in log order; the indexes by
//! target and object are rebuilt as they load.

use super::{AuditEntry, AuditModel};
use crate::snapshot::codec::{Reader, Writer};
use crate::snapshot::Snapshot;

/// What an entry's kind is saved as, and read back to.
const KINDS: [&str; 4] = ["data.create", "data.update", "data.delete", "system.config_changed"];

/// One entry as saved: position, kind, time, actor, tenant, target type and id.
type Saved<'a> = (u64, u8, i64, &'a str, &'a str, &'a str, &'a str);
type Loaded = (u64, u8, i64, String, String, String, String);

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
    const FORMAT: u32 = 2;
    /// The body, encoded under the lock: entries are a few numbers and
    /// shared names, written out as fast as they would be copied.
    type Captured = Vec<u8>;

    fn capture(&self) -> Vec<u8> {
        let mut out = Writer::default();
        out.put(&(self.entries.len() as u64));
        for e in &self.entries {
            let saved: Saved = (e.position, code(&KINDS, e.event_type), e.occurred_at, &e.actor, &e.tenant, &e.target_type, &e.target_id);
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
            let (at, kind, occurred_at, actor, tenant, target_type, target_id): Loaded = input.take()?;
            let target_type = model.names.get(&target_type);
            let entry = AuditEntry {
                position: at,
                event_type: named(&KINDS, kind)?,
                occurred_at,
                actor: model.names.get(&actor),
                tenant: model.names.get(&tenant),
                target_id: model.shared_target(&target_type, &target_id),
                target_type,
            };
            model.insert(entry);
        }
        input.finish()?;
        model.checkpoint = position;
        Ok(model)
    }
}
