//! Models saved to files with the position they are current as of, so a
//! start loads them and folds only the events after them.
//!
//! A snapshot is a file per model in a directory ([`SnapshotDir`]): a
//! header naming the body's format, the position, and the id of the event
//! the log holds there, a checksum, and the body ([`file`]), written
//! atomically. A loader uses one only when it is whole, of the format it
//! reads, and the log still holds that event at that position
//! ([`log_holds`]): a snapshot of another log, or of a log that was replaced,
//! is never trusted. The bodies are bincode values one after another
//! ([`codec`]); a catalog is kept as the definitions that make it ([`catalog`]).
//! The write model's snapshot is here (`service::CommandService`), the read
//! models' in `projections::snapshot`.

pub mod catalog;
pub mod codec;
pub mod file;
pub mod on_every_core;
pub mod on_own_thread;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::store::EventStore;
use crate::StoreError;

pub use file::{FileError, Header};

/// Where snapshots are kept. Its clones share a lock per file, so two saves
/// of one model (a periodic one and the one at stop) never write its file
/// at once, while saves of different models may run side by side.
#[derive(Debug, Clone)]
pub struct SnapshotDir {
    root: PathBuf,
    saving: Arc<std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

/// Why a model was not saved.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("the log does not hold the event at position {0}")]
    NoEvent(u64),
    #[error("the event store: {0}")]
    Store(#[from] StoreError),
    #[error("writing {path}: {error}")]
    Write { path: String, error: std::io::Error },
}

/// How a save's body failed on its way to the file: writing it, or what
/// the header needs (the event at its position).
enum Saving {
    Io(std::io::Error),
    Failed(SaveError),
}

impl From<std::io::Error> for Saving {
    fn from(error: std::io::Error) -> Self {
        Saving::Io(error)
    }
}

impl From<SaveError> for Saving {
    fn from(error: SaveError) -> Self {
        Saving::Failed(error)
    }
}

impl From<StoreError> for Saving {
    fn from(error: StoreError) -> Self {
        Saving::Failed(error.into())
    }
}

/// Whether the log holds the event `event_id` at `position`.
pub async fn log_holds(store: &Arc<dyn EventStore>, position: u64, event_id: &[u8; 16]) -> Result<bool, StoreError> {
    Ok(event_at(store, position).await?.is_some_and(|id| id == *event_id))
}

/// The id of the event the log holds at `position` (`None` past the head or at 0).
pub async fn event_at(store: &Arc<dyn EventStore>, position: u64) -> Result<Option<[u8; 16]>, StoreError> {
    let Some(after) = position.checked_sub(1) else { return Ok(None) };
    let found = store.read_all_into(after, 1, Vec::new()).await?;
    Ok(found.first().filter(|event| event.position == position).map(|event| event.event_id))
}

impl SnapshotDir {
    pub fn new(root: impl Into<PathBuf>) -> SnapshotDir {
        SnapshotDir { root: root.into(), saving: Default::default() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file a model is saved in.
    pub fn path_of(&self, name: &str) -> PathBuf {
        self.root.join(format!("{name}.snapshot"))
    }

    /// Removes the model's file (a rebuild of the model has begun: a start
    /// must not bring back the state the rebuild replaces). Returns whether
    /// there was one.
    pub fn forget(&self, name: &str) -> std::io::Result<bool> {
        match std::fs::remove_file(self.path_of(name)) {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// The position the model's file was saved at, read from its header alone
    /// (`None`: no file, or not one of `format`).
    pub fn saved_at(&self, name: &str, format: u32) -> Option<u64> {
        file::read_header(&self.path_of(name), format)
    }

    /// Saves the body `encode` writes as the model `name`, at the position
    /// `encode` returns (with anything else it learnt as it encoded): the
    /// position the body holds the model at, which must be an event the log
    /// holds. `encode` runs off the runtime, on a
    /// thread of its own, and may hold the model's lock while it writes (so
    /// the position cannot move under it); the body goes to the file as it
    /// is encoded, a few MiB at a time ([`file::SPILL_AT`]). Returns what
    /// `encode` returned.
    pub async fn save<R: Send + 'static>(
        &self,
        store: &Arc<dyn EventStore>,
        name: &str,
        format: u32,
        encode: impl FnOnce(&mut codec::Writer) -> (u64, R) + Send + 'static,
    ) -> Result<(u64, R), SaveError> {
        let file_lock = self.saving.lock().expect("snapshot locks").entry(name.to_string()).or_default().clone();
        let _saving = file_lock.lock().await;
        let path = self.path_of(name);
        let (store, runtime) = (store.clone(), tokio::runtime::Handle::current());
        on_own_thread::on_own_thread("snapshot-save", move || {
            let written = file::write_with(&path, |file| {
                let mut body = codec::Writer::spilling(file, file::SPILL_AT);
                let (position, learnt) = encode(&mut body);
                body.finish()?;
                // Looked up once the body is whole and the model's lock let
                // go: this thread is not the runtime's, so it may wait here.
                let event_id = runtime.block_on(event_at(&store, position))?.ok_or(SaveError::NoEvent(position))?;
                Ok::<_, Saving>((Header { format, position, event_id }, learnt))
            });
            match written {
                Ok((header, learnt)) => Ok((header.position, learnt)),
                Err(Saving::Failed(error)) => Err(error),
                Err(Saving::Io(error)) => Err(SaveError::Write { path: path.display().to_string(), error }),
            }
        })
        .await
    }

    /// The header and body of the model `name`'s file, read off the runtime
    /// and then `decode`d there, when the file is whole and of `format`;
    /// `None` otherwise. A file that is there but not used is removed with a
    /// warning, so the next save writes it whatever position the model is at.
    pub async fn open<T: Send + 'static>(
        &self,
        name: &str,
        format: u32,
        decode: impl FnOnce(&Header, &[u8]) -> Result<T, String> + Send + 'static,
    ) -> Option<(Header, T)> {
        self.open_stream(name, format, move |header, body| decode(header, &body.rest()?)).await
    }

    /// [`SnapshotDir::open`], the body decoded as it streams from the file
    /// (checked first, in one pass that holds none of it).
    pub async fn open_stream<T: Send + 'static>(
        &self,
        name: &str,
        format: u32,
        decode: impl FnOnce(&Header, &mut codec::Stream) -> Result<T, String> + Send + 'static,
    ) -> Option<(Header, T)> {
        let path = self.path_of(name);
        let read = on_own_thread::on_own_thread("snapshot-load", move || {
            let checked = match file::open(&path, format) {
                Ok(checked) => checked,
                Err(FileError::Io(error)) if error.kind() == std::io::ErrorKind::NotFound => return None,
                Err(error) => {
                    tracing::warn!(file = %path.display(), %error, "a model's snapshot is ignored and removed: the model is folded from the log");
                    let _ = std::fs::remove_file(&path);
                    return None;
                }
            };
            let header = checked.header.clone();
            let mut body = codec::Stream::new(checked.body, checked.length, "a snapshot's body");
            match decode(&header, &mut body).and_then(|model| body.finish().map(|()| model)) {
                Ok(model) => Some((header, model)),
                Err(error) => {
                    tracing::warn!(file = %path.display(), %error, "a model's snapshot does not decode and is removed: the model is folded from the log");
                    let _ = std::fs::remove_file(&path);
                    None
                }
            }
        });
        read.await
    }
}
