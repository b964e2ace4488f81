//! One read and one decode of each batch for every projection that follows
//! the same store in this process (the query model and realtime hub, audit,
//! search, analytics): the first follower to ask for the batch after a
//! position reads and decodes it, and the others at that position get the
//! same decoded batch, shared, instead of each copying the events out of the
//! store and decoding them again.
//!
//! Followers move in step (the same head wakes them), so they ask for the
//! same positions: a follower that finds a batch starting where it stands
//! takes it, even when the store has more now (its next ask takes the rest).
//! The log never changes below its head, so a kept batch stays right; the
//! last [`KEPT`] are kept. Asking is serialised (one read at a time for the
//! group): the others would be waiting for the same events anyway.

use std::collections::VecDeque;
use std::sync::Arc;

use commands::store::EventStore;
use commands::StoreError;

use crate::runner::{decode, Decoded};

/// Batches kept for followers that are behind the first.
pub const KEPT: usize = 8;

/// A batch read from the log and decoded once.
pub struct SharedBatch {
    /// The position the batch was read after.
    pub after: u64,
    /// Its last position.
    pub up_to: u64,
    pub decoded: Decoded,
}

/// Decoded batches shared by the followers of one store.
#[derive(Default, Clone)]
pub struct SharedDecode {
    kept: Arc<tokio::sync::Mutex<VecDeque<Arc<SharedBatch>>>>,
}

impl SharedDecode {
    /// The next batch after `after` (at most `max` events when read here), or
    /// `None` when the log holds nothing after it.
    pub async fn next(&self, store: &Arc<dyn EventStore>, after: u64, max: usize) -> Result<Option<Arc<SharedBatch>>, StoreError> {
        let mut kept = self.kept.lock().await;
        if let Some(batch) = kept.iter().find(|b| b.after == after) {
            return Ok(Some(batch.clone()));
        }
        let events = store.read_all(after, max).await?;
        let Some(up_to) = events.last().map(|e| e.position) else { return Ok(None) };
        let batch = Arc::new(SharedBatch { after, up_to, decoded: decode(events) });
        kept.push_back(batch.clone());
        while kept.len() > KEPT {
            kept.pop_front();
        }
        Ok(Some(batch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::event::{EventPayload, RecordCreated};

    async fn append(store: &Arc<dyn EventStore>, n: u64) {
        let payload =
            EventPayload::RecordCreated(RecordCreated { object: "note".into(), id: format!("n{n}"), record: Default::default(), automated: Vec::new() });
        crate::test_support::append(store, &format!("note/n{n}"), &payload, 0).await;
    }

    #[tokio::test]
    async fn followers_at_one_position_share_one_decoded_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn EventStore> = Arc::new(commands::store::open_embedded(dir.path()).unwrap());
        let shared = SharedDecode::default();
        assert!(shared.next(&store, 0, 100).await.unwrap().is_none(), "nothing to read");
        for n in 0..3 {
            append(&store, n).await;
        }
        let first = shared.next(&store, 0, 100).await.unwrap().unwrap();
        assert_eq!((first.after, first.up_to, first.decoded.events.len()), (0, 3, 3));
        // The log moved on: a follower at the same position still takes the kept batch, then the rest.
        append(&store, 3).await;
        let second = shared.next(&store, 0, 100).await.unwrap().unwrap();
        assert!(Arc::ptr_eq(&first, &second), "decoded once for both");
        let rest = shared.next(&store, 3, 100).await.unwrap().unwrap();
        assert_eq!((rest.after, rest.up_to, rest.decoded.events.len()), (3, 4, 1));
        // A follower elsewhere reads for itself.
        let behind = shared.next(&store, 1, 100).await.unwrap().unwrap();
        assert_eq!((behind.after, behind.up_to), (1, 4));
        // Only the last few are kept.
        for after in 0..KEPT as u64 + 2 {
            let _ = shared.next(&store, after % 4, 1).await;
        }
        assert!(shared.kept.lock().await.len() <= KEPT);
    }
}
