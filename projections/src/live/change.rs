//! One committed record change, as subscribers see it.

use std::sync::{Arc, OnceLock};

use domain::value::{record_to_json, Record};
use domain::Timestamp;
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Created,
    Updated,
    Deleted,
}

impl ChangeKind {
    /// The spec's action name.
    pub fn action(self) -> &'static str {
        match self {
            ChangeKind::Created => "created",
            ChangeKind::Updated => "updated",
            ChangeKind::Deleted => "deleted",
        }
    }
}

/// A record change at one log position, with the record before and after
/// (formula fields computed), shared by every subscriber it goes to.
#[derive(Debug)]
pub struct Change {
    pub position: u64,
    pub event_id: [u8; 16],
    pub object: String,
    pub id: String,
    pub kind: ChangeKind,
    /// The record after the change (`None` for a delete).
    pub record: Option<Arc<Record>>,
    /// The record before the change (`None` for a create).
    pub previous: Option<Arc<Record>>,
    /// The fields an update changed (every field for a create or delete).
    pub changed: Vec<String>,
    pub actor: String,
    pub occurred_at: i64,
    /// The JSON payload, serialised once for every subscriber.
    payload: OnceLock<String>,
    /// Wire frames (per event kind) built once for every subscriber.
    frames: [OnceLock<String>; 4],
}

impl Change {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        position: u64,
        event_id: [u8; 16],
        object: String,
        id: String,
        kind: ChangeKind,
        record: Option<Arc<Record>>,
        previous: Option<Arc<Record>>,
        changed: Vec<String>,
        actor: String,
        occurred_at: i64,
    ) -> Change {
        Change { position, event_id, object, id, kind, record, previous, changed, actor, occurred_at, payload: OnceLock::new(), frames: Default::default() }
    }

    /// `{id, record, previous, changes: [{field, oldValue, newValue}]}`, serialised once.
    pub fn payload_json(&self) -> &str {
        self.payload.get_or_init(|| {
            let value_of = |r: &Option<Arc<Record>>, f: &str| r.as_ref().and_then(|r| r.get(f)).map(|v| v.to_json()).unwrap_or(serde_json::Value::Null);
            let changes: Vec<serde_json::Value> =
                self.changed.iter().map(|f| json!({"field": f, "oldValue": value_of(&self.previous, f), "newValue": value_of(&self.record, f)})).collect();
            json!({
                "id": self.id,
                "record": self.record.as_deref().map(record_to_json),
                "previous": self.previous.as_deref().map(record_to_json),
                "changes": changes,
            })
            .to_string()
        })
    }

    /// A rendering of this change shared by every subscriber: built by the
    /// first caller for `slot` (0..4, one per event kind), reused after.
    pub fn cached(&self, slot: usize, build: impl FnOnce() -> String) -> &str {
        self.frames[slot.min(3)].get_or_init(build)
    }

    /// This change as one viewer may see it: `None` when it sees the record
    /// neither before nor after; the change itself when nothing is hidden from
    /// it; otherwise a copy with hidden fields masked, a record that left the
    /// viewer's sight as a removal without content, and one that came into
    /// sight as a creation.
    pub fn for_viewer(self: &Arc<Change>, seen_before: bool, seen_after: bool, mask: &domain::security::Mask) -> Option<Arc<Change>> {
        if !seen_before && !seen_after {
            return None;
        }
        let masked = |r: &Option<Arc<Record>>| -> Option<Arc<Record>> {
            r.as_ref().map(|r| {
                if mask.touches(r) {
                    let mut copy = (**r).clone();
                    mask.apply(&mut copy);
                    Arc::new(copy)
                } else {
                    r.clone()
                }
            })
        };
        let (kind, record, previous) = match (seen_before, seen_after) {
            (true, false) if self.kind != ChangeKind::Deleted => (ChangeKind::Deleted, None, None),
            (false, true) if self.kind == ChangeKind::Updated => (ChangeKind::Created, masked(&self.record), None),
            _ if mask.is_empty() || (!self.record.as_ref().is_some_and(|r| mask.touches(r)) && !self.previous.as_ref().is_some_and(|r| mask.touches(r))) => {
                return Some(self.clone())
            }
            _ => (self.kind, masked(&self.record), masked(&self.previous)),
        };
        let changed = match kind {
            ChangeKind::Deleted if record.is_none() && previous.is_none() => Vec::new(),
            _ => self.changed.iter().filter(|f| !mask.hidden.contains(*f)).cloned().collect(),
        };
        Some(Arc::new(Change::new(
            self.position,
            self.event_id,
            self.object.clone(),
            self.id.clone(),
            kind,
            record,
            previous,
            changed,
            self.actor.clone(),
            self.occurred_at,
        )))
    }

    /// The event id as a UUID string.
    pub fn event_uuid(&self) -> String {
        let h: String = domain::hex::encode(&self.event_id);
        format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
    }

    pub fn timestamp(&self) -> String {
        Timestamp::from_micros(self.occurred_at).to_rfc3339()
    }
}
