//! Snapshots of the in-process read models (query, audit, analytics), so
//! that a start loads each model as it was saved and folds only the events
//! after it, instead of the whole log.
//!
//! A model that is a [`Snapshot`] is saved off the runtime, on a thread of
//! its own: captured under its read lock (shared rows, not copies, and then
//! encoded once the lock is let go) or, where its data is plain columns,
//! encoded straight into its file under that lock; either way with the
//! position it was at under the lock, through [`commands::snapshot`] (the
//! file, its checks and the write model's snapshot are there). At start
//! ([`crate::rebuild::load_snapshotted`]) the file is used only when it is
//! whole, of the format this server writes, and the log still holds the
//! event it names at that position; otherwise it is ignored with a warning
//! and the model is folded from the log.

use std::sync::{Arc, RwLock};

use commands::snapshot::{SaveError, SnapshotDir};
use commands::store::EventStore;

use crate::rebuild::MemoryModel;

pub use commands::snapshot::{catalog, codec, on_every_core};

#[cfg(test)]
mod tests;

/// An in-process model saved with the position it is current as of.
pub trait Snapshot: MemoryModel {
    /// The file's name in the snapshot directory.
    const NAME: &'static str;
    /// The body's format: moved whenever what the body holds or means
    /// changes, so a file of another format is folded afresh, never misread.
    const FORMAT: u32;
    /// What the body is made from when the lock is let go first (see
    /// [`Snapshot::capture`]).
    type Captured: Send + 'static;
    /// Taken under the model's read lock, on the saving thread, with the
    /// position the body holds the model at: either the body itself,
    /// written into `out` (which hands it to the file as it grows) straight
    /// from the model, for a model whose data is plain columns, where a
    /// capture would be a copy as large as the body (`None`); or what the
    /// body is made from, shared with the model where it can, for
    /// [`Snapshot::encode`] once the lock is let go (`Some`).
    fn capture(&self, out: &mut codec::Writer) -> Option<Self::Captured>;
    /// The body made from what [`Snapshot::capture`] took, into `out`.
    fn encode(captured: Self::Captured, out: &mut codec::Writer);
    /// [`Snapshot::encode`] into memory.
    fn encode_to_vec(captured: Self::Captured) -> Vec<u8> {
        let mut out = codec::Writer::default();
        Self::encode(captured, &mut out);
        out.bytes
    }
    /// The whole body of the model as it is, in memory.
    fn body(&self) -> Vec<u8> {
        let mut out = codec::Writer::default();
        if let Some(captured) = self.capture(&mut out) {
            Self::encode(captured, &mut out);
        }
        out.bytes
    }
    /// The model a body holds, current as of `position`; `template` is an
    /// empty copy of the model being loaded (what it keeps beside its data,
    /// such as the query model's history, goes on in the result).
    fn decode(template: Self, position: u64, body: &[u8]) -> Result<Self, String>;
    /// [`Snapshot::decode`] as the body streams from its file (by default,
    /// the body read whole first; a model whose body is large decodes it
    /// piece by piece, so a start never holds the whole file beside the model).
    fn decode_stream(template: Self, position: u64, body: &mut codec::Stream) -> Result<Self, String> {
        Self::decode(template, position, &body.rest()?)
    }
}

/// A model read from its snapshot, with where the log must agree with it.
pub struct Opened<M> {
    pub model: M,
    pub position: u64,
    pub event_id: [u8; 16],
}

/// Saves the model as it is now. Returns the position saved at, or `None`
/// when the model has applied nothing yet.
pub async fn save<M: Snapshot>(dir: &SnapshotDir, store: &Arc<dyn EventStore>, model: &Arc<RwLock<M>>) -> Result<Option<u64>, SaveError> {
    if model.read().expect("model lock").checkpoint() == 0 {
        return Ok(None);
    }
    let model = model.clone();
    let (position, ()) = dir
        .save(store, M::NAME, M::FORMAT, move |out| {
            let (position, captured) = {
                let model = model.read().expect("model lock");
                (model.checkpoint(), model.capture(out))
            };
            if let Some(captured) = captured {
                M::encode(captured, out);
            }
            (position, ())
        })
        .await?;
    Ok(Some(position))
}

/// The model saved in `dir`, decoded, when there is a whole one of this
/// server's format; `None` (with a warning for anything but no file) otherwise.
pub async fn open<M: Snapshot>(dir: &SnapshotDir, template: M) -> Option<Opened<M>> {
    let (header, model) = dir.open_stream(M::NAME, M::FORMAT, move |header, body| M::decode_stream(template, header.position, body)).await?;
    Some(Opened { model, position: header.position, event_id: header.event_id })
}

/// The position the model's file in `dir` was saved at (`None`: none there).
pub fn saved_at<M: Snapshot>(dir: &SnapshotDir) -> Option<u64> {
    dir.saved_at(M::NAME, M::FORMAT)
}
