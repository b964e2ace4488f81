//! The single writer thread of the embedded log: group commit.
//!
//! Appends queue on a channel. The writer takes every queued append, and,
//! while appends announced by this process's writers ([`Arrivals`]) are on
//! their way, waits for them up to [`COMMIT_DELAY`] after the first; it checks
//! expected versions and idempotency keys against the index plus the earlier
//! appends of the same batch, writes all accepted frames with one write, calls
//! `fdatasync` once, and only then publishes them to readers and acknowledges.
//! The wait makes batches larger under concurrent writes (fewer syncs, and
//! fewer wake-ups of every follower of the log, per write).

use std::fs::File;
use std::io::Write;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::event::codec::encode_envelope;
use domain::event::EventEnvelope;
use tokio::sync::{oneshot, watch};

use super::frame::write_frame;
use super::Shared;
use crate::error::StoreError;
use crate::store::plan::BatchPlanner;
use crate::store::{AppendRequest, Arrivals, Committed};

/// Most appends committed by one fsync.
const MAX_BATCH: usize = 8192;

/// The longest a batch waits, after its first append, for announced appends.
pub(crate) const COMMIT_DELAY: Duration = Duration::from_micros(200);

pub(crate) struct Job {
    pub request: AppendRequest,
    pub reply: oneshot::Sender<Result<Committed, StoreError>>,
}

/// Runs until every sender is dropped.
pub(crate) fn run(mut file: File, shared: Arc<Shared>, jobs_rx: Receiver<Job>, head_tx: watch::Sender<u64>, arrivals: Arrivals) {
    let mut poisoned: Option<String> = None;
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    while let Ok(first) = jobs_rx.recv() {
        let jobs = gather(&jobs_rx, first, &arrivals, COMMIT_DELAY);
        if let Some(reason) = &poisoned {
            for job in jobs {
                let _ = job.reply.send(Err(StoreError::Unavailable(reason.clone())));
            }
            continue;
        }
        buf.clear();
        let (accepted, start_end) = plan(&shared, jobs, &mut buf);
        if accepted.is_empty() {
            continue;
        }
        let written = file.write_all(&buf).and_then(|_| file.sync_data());
        if let Err(e) = written {
            tracing::error!(error = %e, "log write failed; rolling back the batch");
            if let Err(truncate) = file.set_len(start_end).and_then(|_| file.sync_data()) {
                poisoned = Some(format!("log write failed and could not be rolled back: {truncate}"));
            }
            for (reply, _) in accepted {
                let _ = reply.send(Err(StoreError::Io(e.to_string())));
            }
            continue;
        }
        let head = {
            let mut index = shared.index.write().expect("index lock");
            for (_, events) in &accepted {
                for (envelope, offset) in events {
                    index.add(envelope, *offset);
                    index.remember(envelope.clone());
                }
            }
            index.end = start_end + buf.len() as u64;
            index.head()
        };
        head_tx.send_replace(head);
        for (reply, events) in accepted {
            let _ = reply.send(Ok(Committed { events: events.into_iter().map(|(e, _)| e).collect() }));
        }
    }
}

/// The batch `first` begins: every queued append, and those announced
/// while it waits, until none is announced, the batch is full or `delay`
/// has passed since it began.
fn gather<T>(jobs_rx: &Receiver<T>, first: T, arrivals: &Arrivals, delay: Duration) -> Vec<T> {
    let mut jobs = vec![first];
    let deadline = Instant::now() + delay;
    while jobs.len() < MAX_BATCH {
        if let Ok(job) = jobs_rx.try_recv() {
            jobs.push(job);
            continue;
        }
        if arrivals.pending() == 0 {
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        match jobs_rx.recv_timeout(deadline - now) {
            Ok(job) => jobs.push(job),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
        }
    }
    jobs
}

type Accepted = Vec<(oneshot::Sender<Result<Committed, StoreError>>, Vec<(EventEnvelope, u64)>)>;

/// Checks each job against the index and the jobs before it in this batch;
/// answers rejected jobs at once; encodes accepted ones into `buf`.
/// Returns the accepted jobs with their events and offsets, and the file end before the batch.
fn plan(shared: &Shared, jobs: Vec<Job>, buf: &mut Vec<u8>) -> (Accepted, u64) {
    let index = shared.index.read().expect("index lock");
    let start_end = index.end;
    let version = |stream: &str| index.stream_version(stream);
    let key_used = |key: &str| index.keys.contains_key(key);
    let mut planner = BatchPlanner::new(index.head(), &version, &key_used);
    let mut accepted = Vec::with_capacity(jobs.len());
    for Job { request, reply } in jobs {
        match planner.plan(request) {
            Err(e) => {
                let _ = reply.send(Err(e));
            }
            Ok(envelopes) => {
                let mut events = Vec::with_capacity(envelopes.len());
                for envelope in envelopes {
                    let offset = start_end + buf.len() as u64;
                    write_frame(buf, &encode_envelope(&envelope));
                    events.push((envelope, offset));
                }
                accepted.push((reply, events));
            }
        }
    }
    (accepted, start_end)
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::channel;

    use super::*;

    const LONG: Duration = Duration::from_secs(20);

    #[test]
    fn a_batch_waits_for_an_announced_append() {
        let arrivals = Arrivals::default();
        let (tx, rx) = channel();
        let arriving = arrivals.announce();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            tx.send(2).unwrap();
            drop(arriving);
            tx
        });
        let started = Instant::now();
        assert_eq!(gather(&rx, 1, &arrivals, LONG), vec![1, 2]);
        assert!(started.elapsed() < LONG / 2, "the batch ended once nothing more was announced");
        drop(sender.join().unwrap());
    }

    #[test]
    fn a_lone_append_does_not_wait() {
        let arrivals = Arrivals::default();
        let (tx, rx) = channel();
        tx.send(2).unwrap();
        let started = Instant::now();
        assert_eq!(gather(&rx, 1, &arrivals, LONG), vec![1, 2], "what is queued joins the batch");
        assert!(started.elapsed() < LONG / 2);
    }

    #[test]
    fn an_announcement_never_followed_waits_only_the_delay() {
        let arrivals = Arrivals::default();
        let (_tx, rx) = channel();
        let _arriving = arrivals.announce();
        let started = Instant::now();
        assert_eq!(gather(&rx, 1, &arrivals, Duration::from_millis(30)), vec![1]);
        assert!(started.elapsed() >= Duration::from_millis(30));
    }
}
