//! The audit model as a snapshot: its names, its targets (their ids as one
//! string), then every entry as numbers, in log order. The links between a
//! target's and an object's entries are made again as the entries load.

use super::{AuditModel, KINDS};
use crate::analytics::dictionary::Dictionary;
use crate::snapshot::codec::{Reader, Writer};
use crate::snapshot::Snapshot;

/// One entry as saved: position, kind, time, actor, tenant, target.
type Saved = (u64, u8, i64, u32, u32, u32);

impl Snapshot for AuditModel {
    const NAME: &'static str = "audit";
    /// 3: names and targets once, entries as numbers (2 named each entry's strings).
    const FORMAT: u32 = 3;
    /// Nothing: the body is encoded under the lock, a few numbers per
    /// entry, written out as fast as they would be copied.
    type Captured = std::convert::Infallible;

    fn capture(&self, out: &mut Writer) -> Option<Self::Captured> {
        out.put(&self.names.texts().collect::<Vec<_>>());
        out.put(&self.targets.joined());
        out.put(&(self.targets.len() as u64));
        for (object, id) in (0..self.targets.len()).map(|t| self.targets.get(t as u32)) {
            out.put(&(object, id.len() as u64));
        }
        out.put(&(self.entries.len() as u64));
        for e in &self.entries {
            out.put(&(e.position, e.kind, e.occurred_at, e.actor, e.tenant, e.target));
        }
        None
    }

    fn encode(captured: Self::Captured, _out: &mut Writer) {
        match captured {}
    }

    fn decode(_template: AuditModel, position: u64, body: &[u8]) -> Result<AuditModel, String> {
        const WHAT: &str = "the audit model's snapshot";
        let mut input = Reader::new(body, WHAT);
        let names = Dictionary::from_texts(input.take()?).map_err(|e| format!("{WHAT}: {e}"))?;
        let mut model = AuditModel { names, ..AuditModel::default() };
        let names = model.names.len();
        let ids: String = input.take()?;
        let count = input.count()?;
        model.targets.reserve(count.min(1 << 24), ids.len());
        let mut start = 0usize;
        for _ in 0..count {
            let (object, len): (u32, u64) = input.take()?;
            let end = usize::try_from(len).ok().and_then(|len| start.checked_add(len)).filter(|end| *end <= ids.len());
            let id = end.and_then(|end| ids.get(start..end)).ok_or_else(|| format!("{WHAT}: a target's id out of bounds"))?;
            if object as usize >= names {
                return Err(format!("{WHAT}: a target names an unknown object"));
            }
            model.targets.add_new(object, id).map_err(|e| format!("{WHAT}: {e}"))?;
            start += id.len();
        }
        model.newest_of_target = vec![super::NONE; model.targets.len()];
        if start != ids.len() {
            return Err(format!("{WHAT}: target ids left over"));
        }
        let count = input.count()?;
        model.entries.reserve(count.min(1 << 26));
        for _ in 0..count {
            let (at, kind, occurred_at, actor, tenant, target): Saved = input.take()?;
            if kind as usize >= KINDS.len() || actor as usize >= names || tenant as usize >= names || target as usize >= model.targets.len() {
                return Err(format!("{WHAT}: an entry with an unknown code"));
            }
            model.insert(at, kind, occurred_at, actor, tenant, target);
        }
        input.finish()?;
        model.checkpoint = position;
        Ok(model)
    }
}
