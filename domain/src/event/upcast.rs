//! The upcaster path: an older payload is upgraded, one version at a time, when read.
//! [`registry`] holds every upcaster of the project; readers decode through it.

use std::sync::OnceLock;

use super::payload::{RecordDeleted, RecordDeletedV1};
use crate::error::DomainError;

/// Upgrades the bytes of one event type from `source_version` to `source_version + 1`.
pub trait Upcaster: Send + Sync {
    fn event_type(&self) -> &str;
    fn source_version(&self) -> u16;
    fn upcast(&self, bytes: &[u8]) -> Result<Vec<u8>, DomainError>;
}

/// A set of upcasters (see [`registry`] for the project's own).
#[derive(Default)]
pub struct Upcasters {
    list: Vec<Box<dyn Upcaster>>,
}

impl Upcasters {
    pub fn register(&mut self, upcaster: Box<dyn Upcaster>) {
        self.list.push(upcaster);
    }

    /// Brings `bytes` from `version` to `target`, or says which step is missing.
    pub fn upgrade(&self, event_type: &str, mut version: u16, target: u16, bytes: &[u8]) -> Result<Vec<u8>, DomainError> {
        let mut current = bytes.to_vec();
        while version < target {
            let step = self
                .list
                .iter()
                .find(|u| u.event_type() == event_type && u.source_version() == version)
                .ok_or_else(|| DomainError::Decode(format!("no upcaster for {event_type} v{version}")))?;
            current = step.upcast(&current)?;
            version += 1;
        }
        Ok(current)
    }
}

/// `record.deleted` v1 -> v2: adds `cause` (none: v1 had no cascade causes).
struct RecordDeletedAddCause;

impl Upcaster for RecordDeletedAddCause {
    fn event_type(&self) -> &str {
        "record.deleted"
    }

    fn source_version(&self) -> u16 {
        1
    }

    fn upcast(&self, bytes: &[u8]) -> Result<Vec<u8>, DomainError> {
        let (old, _): (RecordDeletedV1, usize) =
            bincode::decode_from_slice(bytes, super::codec::CONFIG).map_err(|e| DomainError::Decode(format!("record.deleted v1: {e}")))?;
        let new = RecordDeleted { object: old.object, id: old.id, previous: old.previous, cause: None };
        bincode::encode_to_vec(&new, super::codec::CONFIG).map_err(|e| DomainError::Decode(format!("record.deleted v2: {e}")))
    }
}

/// `record.created` / `record.updated` v1 -> v2: adds `automated`, empty (a
/// v1 write's workflow rules wrote events of their own). The field is last
/// and bincode writes an empty list as one zero byte, so the step appends it.
struct RecordAddAutomated(&'static str);

impl Upcaster for RecordAddAutomated {
    fn event_type(&self) -> &str {
        self.0
    }

    fn source_version(&self) -> u16 {
        1
    }

    fn upcast(&self, bytes: &[u8]) -> Result<Vec<u8>, DomainError> {
        let mut upgraded = Vec::with_capacity(bytes.len() + 1);
        upgraded.extend_from_slice(bytes);
        upgraded.push(0);
        Ok(upgraded)
    }
}

/// Every upcaster of the project. Readers of the log decode through it.
pub fn registry() -> &'static Upcasters {
    static REGISTRY: OnceLock<Upcasters> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut upcasters = Upcasters::default();
        upcasters.register(Box::new(RecordDeletedAddCause));
        upcasters.register(Box::new(RecordAddAutomated("record.created")));
        upcasters.register(Box::new(RecordAddAutomated("record.updated")));
        upcasters
    })
}
