//! The single writer thread of the embedded log: group commit.
//!
//! Appends queue on a channel. The writer takes every queued append, checks
//! expected versions and idempotency keys against the index plus the earlier
//! appends of the same batch, writes all accepted frames with one write, calls
//! `fdatasync` once, and only then publishes them to readers and acknowledges.

use std::fs::File;
use std::io::Write;
use std::sync::Arc;

use domain::event::codec::encode_envelope;
use domain::event::EventEnvelope;
use tokio::sync::{mpsc, oneshot, watch};

use super::frame::write_frame;
use super::Shared;
use crate::error::StoreError;
use crate::store::plan::BatchPlanner;
use crate::store::{AppendRequest, Committed};

/// Most appends committed by one fsync.
const MAX_BATCH: usize = 8192;

pub(crate) struct Job {
    pub request: AppendRequest,
    pub reply: oneshot::Sender<Result<Committed, StoreError>>,
}

/// Runs until every sender is dropped.
pub(crate) fn run(mut file: File, shared: Arc<Shared>, mut jobs_rx: mpsc::Receiver<Job>, head_tx: watch::Sender<u64>) {
    let mut poisoned: Option<String> = None;
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    while let Some(first) = jobs_rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match jobs_rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
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
