//! Writes that name no version take their record's stream in turn.
//!
//! Such a write is decided against the latest state; when several race on
//! one record, every one planned against the same version and all but one
//! lose at the append, round after round (64 racers need 64 rounds). Taking
//! the stream in turn before deciding makes each see its predecessor's
//! result: none conflicts on this node, and a conflict with another node is
//! still decided again. A lock lives only while someone holds or waits for it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

#[derive(Default)]
pub(crate) struct StreamLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// A stream held; let go (and forgotten when nobody waits) on drop.
pub(crate) struct Held<'a> {
    owner: &'a StreamLocks,
    stream: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl StreamLocks {
    pub(crate) async fn hold(&self, stream: String) -> Held<'_> {
        let lock = self.locks.lock().expect("stream locks").entry(stream.clone()).or_default().clone();
        let guard = lock.lock_owned().await;
        Held { owner: self, stream, guard: Some(guard) }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut locks = self.owner.locks.lock().expect("stream locks");
        // Only the map's reference left: nobody holds or waits.
        if locks.get(&self.stream).is_some_and(|lock| Arc::strong_count(lock) == 1) {
            locks.remove(&self.stream);
        }
    }
}
