//! Records held once: the write model takes the in-process read model's
//! allocation of each record whose content equals its own.
//!
//! Both models fold the same events into the same records, each from its own
//! decode, so without this every live record is in memory twice. A task
//! offers the write model's records to a [`RecordSource`] (the realtime hub's
//! query model): first every record it holds alone once, then the streams this node's
//! commands write, once the source has applied their positions. A record is
//! swapped only when the contents are equal, so sharing never changes what
//! either model holds; a record the source does not have (yet), or holds
//! differently, stays the write model's own. A later change to a shared
//! record copies it in whichever model changes it first (`Arc::make_mut`, or
//! a new `Arc`), so neither model ever sees the other's writes.
//!
//! The write model's lock and the source's are never held together.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use domain::value::Record;

use super::write_model::WriteModel;

/// Records by `(object, id)`, and the log position they are current as of.
pub trait RecordSource: Send + Sync + 'static {
    /// The last log position the source has applied.
    fn position(&self) -> u64;
    /// The source's records for `keys`, in order (`None`: not held).
    fn records(&self, keys: &[(&str, &str)]) -> Vec<Option<Arc<Record>>>;
    /// [`RecordSource::records`], each with its [`Digest`] where the source
    /// knows it already (a snapshot's rows, hashed from their stored bytes
    /// as they were decoded), so a caller comparing digests need not encode
    /// the record again.
    fn records_digested(&self, keys: &[(&str, &str)]) -> Vec<Digested> {
        self.records(keys).into_iter().map(|record| record.map(|record| (record, None))).collect()
    }
}

/// A record found (`None`: not held), with its [`Digest`] where known.
pub type Digested = Option<(Arc<Record>, Option<Digest>)>;

/// A record's digest: the first 16 bytes of the SHA-256 of its bincode
/// encoding (the stored events' encoding of a record, so stable across
/// builds). The write model's snapshot saves a shared record as this.
pub type Digest = [u8; 16];

/// The [`Digest`] of a record whose bincode encoding is `encoded`.
pub fn digest_of_encoding(encoded: &[u8]) -> Digest {
    use sha2::{Digest as _, Sha256};
    let hash = Sha256::digest(encoded);
    let mut out = [0; 16];
    out.copy_from_slice(&hash[..16]);
    out
}

/// The [`Digest`] of `record`, encoded into `buffer` first.
pub fn digest(record: &Record, buffer: &mut Vec<u8>) -> Digest {
    buffer.clear();
    bincode::encode_into_std_write(record, buffer, bincode::config::standard()).expect("encoding into a Vec cannot fail");
    digest_of_encoding(buffer)
}

/// Records looked up and offered under one hold of each lock.
const CHUNK: usize = 4096;
/// How often the streams written since are offered.
const TICK: Duration = Duration::from_millis(250);

/// Shares records with `source` until the write model is dropped.
pub(crate) fn spawn(model: &Arc<Mutex<WriteModel>>, source: Arc<dyn RecordSource>) -> tokio::task::JoinHandle<()> {
    model.lock().expect("write model lock").pending.get_or_insert_with(Default::default);
    let model = Arc::downgrade(model);
    tokio::spawn(async move {
        let Some(keys) = model.upgrade().map(|m| m.lock().expect("write model lock").unshared_keys()) else { return };
        let mut shared = 0;
        for chunk in keys.chunks(CHUNK) {
            let Some(n) = offer(&model, source.as_ref(), chunk) else { return };
            shared += n;
            tokio::task::yield_now().await;
        }
        tracing::debug!(records = keys.len(), shared, "write model records shared with the read model");
        drop(keys);
        loop {
            tokio::time::sleep(TICK).await;
            let through = source.position();
            let Some(keys) = model.upgrade().map(|m| m.lock().expect("write model lock").take_pending(through)) else { return };
            for chunk in keys.chunks(CHUNK) {
                if offer(&model, source.as_ref(), chunk).is_none() {
                    return;
                }
            }
        }
    })
}

/// Offers the source's records for `keys` to the write model; how many it
/// took (`None`: the write model is gone).
fn offer(model: &Weak<Mutex<WriteModel>>, source: &dyn RecordSource, keys: &[(String, String)]) -> Option<usize> {
    let borrowed: Vec<(&str, &str)> = keys.iter().map(|(object, id)| (object.as_str(), id.as_str())).collect();
    let found = source.records(&borrowed);
    let model = model.upgrade()?;
    let mut model = model.lock().expect("write model lock");
    let taken = keys.iter().zip(found).filter_map(|((object, id), theirs)| theirs.map(|theirs| model.adopt(object, id, theirs))).filter(|t| *t).count();
    Some(taken)
}
