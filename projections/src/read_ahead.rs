//! Reading and decoding the log ahead of a fold, on two tasks of their own,
//! so reading, decoding and applying (each about a third of a fold's work)
//! run side by side.
//!
//! The batches go round in a loop: reader, decoder, the fold, and back to the
//! reader, envelopes and all. A fold of a million events thus reuses a
//! handful of buffers instead of allocating and freeing a few megabytes per
//! batch, which the allocator hands back to the kernel and gets again as
//! fresh (zeroed, page-faulted) memory; and the reader decodes each event into
//! an envelope already allocated ([`EventStore::read_all_into`]), instead of
//! allocating its strings and payload to free them once applied.

use std::sync::Arc;

use commands::store::EventStore;
use domain::event::codec::decode_envelope_payload;
use domain::event::{EventEnvelope, EventPayload};
use tokio::sync::mpsc;

use crate::dead_letter::DeadLetter;
use crate::reader::ReadError;

/// Events per read while folding.
const READ_BATCH: u64 = 8_192;

/// Batches in flight on each channel.
const DEPTH: usize = 2;

/// A batch of events with their decoded payloads (`None` where the payload
/// could not be decoded: the fold parks it, see [`Batch::failures`]).
#[derive(Default)]
pub struct Batch {
    envelopes: Vec<EventEnvelope>,
    payloads: Vec<Option<EventPayload>>,
    failures: Vec<DeadLetter>,
}

impl Batch {
    /// The position of the batch's last event.
    pub fn last(&self) -> Option<u64> {
        self.envelopes.last().map(|e| e.position)
    }

    /// Letters for the events that could not be decoded.
    pub fn failures(&mut self) -> Vec<DeadLetter> {
        std::mem::take(&mut self.failures)
    }

    /// The events with the payloads that decoded; the envelopes stay for the
    /// reader to decode the next events into ([`ReadAhead::recycle`]).
    pub fn events(&mut self) -> impl Iterator<Item = (&EventEnvelope, EventPayload)> + '_ {
        self.envelopes.iter().zip(self.payloads.drain(..)).filter_map(|(e, p)| p.map(|p| (e, p)))
    }

    /// The same events, taken out of the batch.
    pub fn take(&mut self) -> impl Iterator<Item = (EventEnvelope, EventPayload)> + '_ {
        self.envelopes.drain(..).zip(self.payloads.drain(..)).filter_map(|(e, p)| p.map(|p| (e, p)))
    }
}

/// The decoded batches of the log from a position up to a target.
pub struct ReadAhead {
    batches: mpsc::Receiver<Result<Batch, ReadError>>,
    recycle: std::sync::mpsc::Sender<Batch>,
}

impl ReadAhead {
    /// Starts reading the events with `after < position <= target`.
    pub fn start(store: Arc<dyn EventStore>, after: u64, target: u64) -> ReadAhead {
        let (recycle, recycled) = std::sync::mpsc::channel::<Batch>();
        let (read_tx, read_rx) = mpsc::channel(DEPTH);
        tokio::spawn(read(store, after, target, recycled, read_tx));
        let (tx, batches) = mpsc::channel(DEPTH);
        tokio::spawn(decode(target, read_rx, tx));
        ReadAhead { batches, recycle }
    }

    /// The next batch, in position order; `None` at the target.
    pub async fn next(&mut self) -> Option<Result<Batch, ReadError>> {
        self.batches.recv().await
    }

    /// Hands an applied batch back for the reader to fill again.
    pub fn recycle(&self, mut batch: Batch) {
        batch.payloads.clear();
        let _ = self.recycle.send(batch);
    }
}

async fn read(store: Arc<dyn EventStore>, mut after: u64, target: u64, recycled: std::sync::mpsc::Receiver<Batch>, tx: mpsc::Sender<Result<Batch, ReadError>>) {
    while after < target {
        let mut batch = recycled.try_recv().unwrap_or_default();
        let max = (target - after).min(READ_BATCH) as usize;
        batch.envelopes = match store.read_all_into(after, max, std::mem::take(&mut batch.envelopes)).await {
            Ok(envelopes) => envelopes,
            Err(e) => {
                let _ = tx.send(Err(ReadError::Store(e.to_string()))).await;
                return;
            }
        };
        let Some(last) = batch.last() else { return };
        after = last;
        if tx.send(Ok(batch)).await.is_err() {
            return;
        }
    }
}

async fn decode(target: u64, mut rx: mpsc::Receiver<Result<Batch, ReadError>>, tx: mpsc::Sender<Result<Batch, ReadError>>) {
    let upcasters = domain::event::registry();
    while let Some(batch) = rx.recv().await {
        let batch = batch.map(|mut batch| {
            let within = batch.envelopes.partition_point(|e| e.position <= target);
            batch.envelopes.truncate(within);
            batch.payloads.reserve(within);
            batch.failures.clear();
            for envelope in &batch.envelopes {
                batch.payloads.push(match decode_envelope_payload(envelope, upcasters) {
                    Ok(payload) => Some(payload),
                    Err(error) => {
                        tracing::error!(position = envelope.position, %error, "cannot decode an event: parked as a dead letter, the fold goes on");
                        batch.failures.push(DeadLetter::undecodable(envelope, error));
                        None
                    }
                });
            }
            batch
        });
        if tx.send(batch).await.is_err() {
            return;
        }
    }
}
