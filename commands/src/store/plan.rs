//! The checks of an append that both stores share: idempotency key unused,
//! each stream at its expected version; then positions and stream versions.

use std::collections::{HashMap, HashSet};

use domain::event::EventEnvelope;

use super::{AppendRequest, ExpectedVersion};
use crate::error::StoreError;

/// Plans the appends of one batch (one fsync or one transaction). Each accepted
/// append sees the effects of the ones planned before it.
pub(crate) struct BatchPlanner<'a> {
    head: u64,
    versions: HashMap<String, u64>,
    keys: HashSet<String>,
    committed_version: &'a dyn Fn(&str) -> u64,
    committed_key: &'a dyn Fn(&str) -> bool,
}

impl<'a> BatchPlanner<'a> {
    pub fn new(head: u64, committed_version: &'a dyn Fn(&str) -> u64, committed_key: &'a dyn Fn(&str) -> bool) -> Self {
        BatchPlanner { head, versions: HashMap::new(), keys: HashSet::new(), committed_version, committed_key }
    }

    pub fn head(&self) -> u64 {
        self.head
    }

    fn version(&self, stream: &str) -> u64 {
        self.versions.get(stream).copied().unwrap_or_else(|| (self.committed_version)(stream))
    }

    /// Checks one append and, if it passes, assigns its positions and versions.
    pub fn plan(&mut self, request: AppendRequest) -> Result<Vec<EventEnvelope>, StoreError> {
        if let Some(key) = &request.idempotency_key {
            if self.keys.contains(key) || (self.committed_key)(key) {
                return Err(StoreError::KeyUsed { key: key.clone() });
            }
        }
        for stream in &request.streams {
            let actual = self.version(&stream.stream);
            if let ExpectedVersion::Exact(expected) = stream.expected {
                if expected != actual {
                    return Err(StoreError::Conflict { stream: stream.stream.clone(), expected, actual });
                }
            }
        }
        let mut out = Vec::new();
        for stream in request.streams {
            let mut version = self.version(&stream.stream);
            for mut envelope in stream.events {
                self.head += 1;
                version += 1;
                envelope.position = self.head;
                envelope.stream = stream.stream.clone();
                envelope.stream_version = version;
                envelope.idempotency_key = request.idempotency_key.clone();
                out.push(envelope);
            }
            self.versions.insert(stream.stream, version);
        }
        if let Some(key) = request.idempotency_key {
            self.keys.insert(key);
        }
        Ok(out)
    }
}
