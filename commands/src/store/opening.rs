//! [`Opening`]: a store that another task may still be opening, so a start
//! can decode its models' snapshot files while the embedded log's scan runs
//! (only a snapshot's check against the log, and what folds after it, need
//! the store).

use std::sync::Arc;

use tokio::sync::watch;

use super::EventStore;
use crate::error::StoreError;

/// What an open ended as: the store, or `None` when it failed (the opener
/// reports why).
type Outcome = Option<Arc<dyn EventStore>>;

/// A store, once open: every clone gets the same one.
#[derive(Clone)]
pub struct Opening(watch::Receiver<Option<Outcome>>);

/// The side of an [`Opening`] that says how the open ended; dropped without
/// saying, the open counts as failed.
pub struct Opener(watch::Sender<Option<Outcome>>);

impl Opening {
    /// An open still under way, and its opener.
    pub fn pending() -> (Opener, Opening) {
        let (sender, receiver) = watch::channel(None);
        (Opener(sender), Opening(receiver))
    }

    /// The store, once open; an error when its open failed (the opener
    /// reports why: this says only that it did not open, for the loads it
    /// stops).
    pub async fn store(&self) -> Result<Arc<dyn EventStore>, StoreError> {
        let mut receiver = self.0.clone();
        // Cloned out at once: a watch::Ref is not held across an .await.
        let outcome = receiver.wait_for(Option::is_some).await.ok().and_then(|outcome| outcome.clone()).flatten();
        outcome.ok_or_else(|| StoreError::Io("the event log did not open".into()))
    }
}

impl From<Arc<dyn EventStore>> for Opening {
    /// A store already open.
    fn from(store: Arc<dyn EventStore>) -> Opening {
        let (opener, opening) = Opening::pending();
        opener.opened(Some(store));
        opening
    }
}

impl Opener {
    /// Says how the open ended: the store, or `None` when it failed.
    pub fn opened(self, store: Option<Arc<dyn EventStore>>) {
        // No holder left is no one to tell.
        let _ = self.0.send(Some(store));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_holder_gets_the_store_once_open_and_none_when_the_open_failed() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn EventStore> = Arc::new(super::super::open_embedded(dir.path()).unwrap());
        // Open before anyone asks, and the opener gone since.
        let ready = Opening::from(store.clone());
        assert!(Arc::ptr_eq(&ready.store().await.unwrap(), &store));
        assert!(ready.clone().store().await.is_ok(), "asked again, or by a clone");
        // Asked while the open is under way.
        let (opener, opening) = Opening::pending();
        let waiting = tokio::spawn({
            let opening = opening.clone();
            async move { opening.store().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        opener.opened(Some(store.clone()));
        assert!(Arc::ptr_eq(&waiting.await.unwrap().unwrap(), &store));
        assert!(opening.store().await.is_ok());
        // A failed open, said or not.
        let (opener, failed) = Opening::pending();
        opener.opened(None);
        assert!(matches!(failed.store().await, Err(StoreError::Io(e)) if e.contains("did not open")));
        let (opener, dropped) = Opening::pending();
        drop(opener);
        assert!(dropped.store().await.is_err());
    }
}
