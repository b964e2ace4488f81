//! The embedded event store: one append-only log file, fsynced before an
//! append is acknowledged, with group commit and torn-tail recovery.
//!
//! Layout of a data directory: `events.log` (frames, see [`frame`]) and `LOCK`
//! (held while open, so two processes never write one log). The index (offsets,
//! streams, idempotency keys) is rebuilt by scanning the file on open.

mod frame;
mod index;
mod streams;
mod writer;

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use domain::event::codec::decode_envelope;
use domain::event::{decode_envelope_into, view_envelope, EventEnvelope};
use tokio::sync::{oneshot, watch};

use self::frame::read_frame;
use self::index::Index;
use self::writer::Job;
use super::{check_request, AppendRequest, Arrivals, Committed, EventStore};
use crate::error::StoreError;

/// Events a scan indexes before it makes room for the rest of the log at
/// their rate ([`Index::reserve_like_so_far`]).
const SAMPLE_EVENTS: u64 = 4096;

pub(crate) struct Shared {
    index: RwLock<Index>,
    /// A read-only handle for positional reads, shared by readers.
    reader: File,
}

pub struct EmbeddedStore {
    /// To the writer thread. Unbounded: every append waits for its answer,
    /// so the queue holds at most one job per append in flight.
    jobs_tx: std::sync::mpsc::Sender<Job>,
    arrivals: Arrivals,
    shared: Arc<Shared>,
    head_rx: watch::Receiver<u64>,
    /// Held for the store's lifetime: the data directory's lock.
    _lock: DirLock,
}

/// Opens (or creates) the log in `dir`, recovering a torn tail: a frame cut
/// short or failing its checksum at the end is truncated away (it was never
/// acknowledged, since acknowledgement follows fsync). Damage followed by valid
/// frames is corruption and fails the open.
pub fn open_embedded(dir: &Path) -> Result<EmbeddedStore, StoreError> {
    open_locked(dir, lock_embedded(dir)?)
}

/// A data directory's lock, held: one process at a time opens its log.
pub struct DirLock(#[allow(dead_code, reason = "held, never read: the lock lasts as long as the file is open")] File);

/// Takes `dir`'s lock (creating the directory): the first step of
/// [`open_embedded`], for a caller that scans the log on another thread
/// ([`open_locked`]) and wants to know at once whether another process
/// holds the directory.
pub fn lock_embedded(dir: &Path) -> Result<DirLock, StoreError> {
    std::fs::create_dir_all(dir)?;
    let lock = OpenOptions::new().create(true).truncate(false).write(true).open(dir.join("LOCK"))?;
    lock.try_lock().map_err(|_| StoreError::Unavailable(format!("{} is in use by another process", dir.display())))?;
    Ok(DirLock(lock))
}

/// [`open_embedded`] with `dir`'s lock taken already.
pub fn open_locked(dir: &Path, lock: DirLock) -> Result<EmbeddedStore, StoreError> {
    let path = dir.join("events.log");
    let mut file = OpenOptions::new().create(true).truncate(false).read(true).append(true).open(&path)?;
    let mut index = Index::default();
    let length = file.metadata()?.len();
    let scan = frame::scan(&mut file, |offset, body| {
        // A view of the frame: the index keeps a few of its parts, so nothing is copied.
        let envelope = view_envelope(body).map_err(|e| format!("frame at {offset}: {e}"))?;
        if envelope.position != index.head() + 1 {
            return Err(format!("frame at {offset} has position {} after {}", envelope.position, index.head()));
        }
        if index.head() == SAMPLE_EVENTS {
            index.reserve_like_so_far(offset, length.saturating_sub(offset));
        }
        index.add_parts(envelope.position, envelope.stream, envelope.idempotency_key, offset);
        Ok(())
    })
    .map_err(StoreError::Corrupt)?;
    if scan.torn_bytes > 0 {
        tracing::warn!(path = %path.display(), bytes = scan.torn_bytes, at = scan.valid_end, "truncating torn tail of the log");
        file.set_len(scan.valid_end)?;
        file.sync_all()?;
    }
    index.end = scan.valid_end;
    let head = index.head();
    let reader = File::open(&path)?;
    let shared = Arc::new(Shared { index: RwLock::new(index), reader });
    let (jobs_tx, jobs_rx) = std::sync::mpsc::channel();
    let (head_tx, head_rx) = watch::channel(head);
    let writer_shared = shared.clone();
    let arrivals = Arrivals::default();
    let writer_arrivals = arrivals.clone();
    std::thread::Builder::new().name("objectstack-log-writer".into()).spawn(move || writer::run(file, writer_shared, jobs_rx, head_tx, writer_arrivals))?;
    Ok(EmbeddedStore { jobs_tx, arrivals, shared, head_rx, _lock: lock })
}

impl Shared {
    /// Reads and decodes the frames in bytes `[start, end)` of the log into
    /// `out` after its first `keep` envelopes; envelopes beyond those are
    /// overwritten (their buffers reused), and `out` ends with the last frame.
    fn read_range(&self, start: u64, end: u64, keep: usize, out: &mut Vec<EventEnvelope>) -> Result<(), StoreError> {
        SCRATCH.with_borrow_mut(|buf| {
            buf.clear();
            buf.resize((end - start) as usize, 0);
            let read = self.read_frames(start, buf, keep, out);
            if buf.capacity() > SCRATCH_KEPT {
                *buf = Vec::new();
            }
            read
        })
    }

    fn read_frames(&self, start: u64, buf: &mut [u8], keep: usize, out: &mut Vec<EventEnvelope>) -> Result<(), StoreError> {
        self.reader.read_exact_at(buf, start)?;
        let mut cursor = 0;
        let mut next = keep;
        while cursor < buf.len() {
            match read_frame(&buf[cursor..]) {
                Ok(Some((body, len))) => {
                    let decoded = match out.get_mut(next) {
                        Some(used) => decode_envelope_into(body, used),
                        None => decode_envelope(body).map(|envelope| out.push(envelope)),
                    };
                    decoded.map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    next += 1;
                    cursor += len;
                }
                Ok(None) => return Err(StoreError::Corrupt(format!("short frame at {}", start + cursor as u64))),
                Err(e) => return Err(StoreError::Corrupt(format!("frame at {}: {e}", start + cursor as u64))),
            }
        }
        out.truncate(next);
        Ok(())
    }

    fn read_positions(&self, positions: &[u64]) -> Result<Vec<EventEnvelope>, StoreError> {
        let ranges: Vec<(u64, u64)> = {
            let index = self.index.read().expect("index lock");
            positions.iter().map(|p| index.range(*p, *p)).collect()
        };
        let mut out = Vec::with_capacity(ranges.len());
        for (start, end) in ranges {
            self.read_range(start, end, out.len(), &mut out)?;
        }
        Ok(out)
    }
}

thread_local! {
    /// The bytes of the last range a reader thread read, kept for the next
    /// read (a fold reads the log in ranges of about a megabyte each).
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A reader thread keeps its scratch buffer up to this size (a fold's batch
/// of 8,192 events of a few hundred bytes fits; a larger buffer is freed).
const SCRATCH_KEPT: usize = 4 << 20;

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, StoreError> + Send + 'static) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| StoreError::Io(format!("reader task failed: {e}")))?
}

#[async_trait]
impl EventStore for EmbeddedStore {
    async fn append(&self, request: AppendRequest) -> Result<Committed, StoreError> {
        check_request(&request)?;
        // A frame over the limit would read back as a torn tail and be cut away
        // on the next open: refuse it before it is acknowledged.
        for stream in &request.streams {
            for event in &stream.events {
                let size = event.payload.len() + stream.stream.len() + event.actor.len() + event.tenant.len() + event.event_type.len() + 256;
                if size > frame::MAX_BODY {
                    return Err(StoreError::InvalidAppend(format!("an event of about {size} bytes is over the {} byte limit", frame::MAX_BODY)));
                }
            }
        }
        let (reply, answer) = oneshot::channel();
        self.jobs_tx.send(Job { request, reply }).map_err(|_| StoreError::Unavailable("the log writer has stopped".into()))?;
        answer.await.map_err(|_| StoreError::Unavailable("the log writer has stopped".into()))?
    }

    async fn read_stream(&self, stream: &str, from_version: u64) -> Result<Vec<EventEnvelope>, StoreError> {
        self.read_stream_range(stream, from_version, usize::MAX).await
    }

    async fn read_stream_range(&self, stream: &str, from_version: u64, max: usize) -> Result<Vec<EventEnvelope>, StoreError> {
        let positions: Vec<u64> = {
            let index = self.shared.index.read().expect("index lock");
            index.streams.positions(stream, from_version, max)
        };
        if positions.is_empty() {
            return Ok(Vec::new());
        }
        let shared = self.shared.clone();
        blocking(move || shared.read_positions(&positions)).await
    }

    async fn read_all(&self, after: u64, max: usize) -> Result<Vec<EventEnvelope>, StoreError> {
        self.read_all_into(after, max, Vec::new()).await
    }

    async fn read_all_into(&self, after: u64, max: usize, mut out: Vec<EventEnvelope>) -> Result<Vec<EventEnvelope>, StoreError> {
        let (start, end, count) = {
            let index = self.shared.index.read().expect("index lock");
            let head = index.head();
            if after >= head || max == 0 {
                out.clear();
                return Ok(out);
            }
            if index.recent_into(after, max, &mut out) {
                return Ok(out);
            }
            let last = head.min(after + max as u64);
            let (start, end) = index.range(after + 1, last);
            (start, end, (last - after) as usize)
        };
        out.reserve(count.saturating_sub(out.len()));
        let shared = self.shared.clone();
        blocking(move || shared.read_range(start, end, 0, &mut out).map(|()| out)).await
    }

    async fn read_positions(&self, positions: &[u64]) -> Result<Vec<EventEnvelope>, StoreError> {
        let head = self.shared.index.read().expect("index lock").head();
        let mut positions: Vec<u64> = positions.iter().copied().filter(|p| (1..=head).contains(p)).collect();
        positions.sort_unstable();
        positions.dedup();
        if positions.is_empty() {
            return Ok(Vec::new());
        }
        let shared = self.shared.clone();
        blocking(move || shared.read_positions(&positions)).await
    }

    async fn read_idempotent(&self, key: &str) -> Result<Option<Vec<EventEnvelope>>, StoreError> {
        let positions = {
            let index = self.shared.index.read().expect("index lock");
            match index.keys.get(key) {
                Some(p) => p.clone(),
                None => return Ok(None),
            }
        };
        let shared = self.shared.clone();
        blocking(move || shared.read_positions(&positions)).await.map(Some)
    }

    fn head(&self) -> watch::Receiver<u64> {
        self.head_rx.clone()
    }

    fn arrivals(&self) -> Option<Arrivals> {
        Some(self.arrivals.clone())
    }
}
