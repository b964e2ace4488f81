//! Following the log from a position: the next batch of committed events,
//! waiting on the store's head when there are none. The same for both stores
//! (on PostgreSQL the head also moves on other processes' commits).

use std::sync::Arc;

use domain::event::EventEnvelope;
use tokio::sync::watch;

use super::pace::pause;
use super::status::ProcessStatus;
use crate::store::EventStore;
use crate::StoreError;

pub(crate) struct Follower {
    store: Arc<dyn EventStore>,
    head: watch::Receiver<u64>,
    /// Every event at or below it has been handed out.
    pub position: u64,
}

impl Follower {
    pub fn new(store: Arc<dyn EventStore>, position: u64) -> Follower {
        let head = store.head();
        Follower { store, head, position }
    }

    /// The log's head now.
    pub fn head(&self) -> u64 {
        *self.head.borrow()
    }

    /// The next batch ([`Follower::next`]), a store error retried a second
    /// later (and reported); `None` when the process is asked to stop first.
    pub async fn next_or_stop(&mut self, max: usize, status: &ProcessStatus, stop: &mut watch::Receiver<bool>) -> Option<Vec<EventEnvelope>> {
        loop {
            let batch = tokio::select! {
                batch = self.next(max) => batch,
                _ = stop.changed() => return None,
            };
            match batch {
                Ok(batch) => return Some(batch),
                Err(error) => {
                    status.failed(format!("reading the log: {error}"));
                    if pause(stop, 1000).await {
                        return None;
                    }
                }
            }
        }
    }

    /// Up to `max` events after `position`, waiting for one to commit; moves `position`.
    pub async fn next(&mut self, max: usize) -> Result<Vec<EventEnvelope>, StoreError> {
        loop {
            if *self.head.borrow_and_update() > self.position {
                let events = self.store.read_all(self.position, max).await?;
                if let Some(last) = events.last() {
                    self.position = last.position;
                    return Ok(events);
                }
            }
            if self.head.changed().await.is_err() {
                return Err(StoreError::Unavailable("the event store closed".into()));
            }
        }
    }
}
