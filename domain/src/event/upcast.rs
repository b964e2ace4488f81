//! The upcaster path: an older payload is upgraded, one version at a time, when read.

use crate::error::DomainError;

/// Upgrades the bytes of one event type from `source_version` to `source_version + 1`.
pub trait Upcaster: Send + Sync {
    fn event_type(&self) -> &str;
    fn source_version(&self) -> u16;
    fn upcast(&self, bytes: &[u8]) -> Result<Vec<u8>, DomainError>;
}

/// The registered upcasters. Empty today: every payload is at version 1.
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
