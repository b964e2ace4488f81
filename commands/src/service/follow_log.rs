//! The write model follows the log: every committed event reaches it, also
//! those another process appended to the same PostgreSQL store, and those
//! of this node's commands before their own task applies them (the write
//! model skips what it already holds). `applied` says how far it got, so a
//! reader of the log (a process reacting to an event) waits for the write
//! model to hold that event before deciding a command on it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::event::Upcasters;
use tokio::sync::watch;

use super::apply_and_release;
use super::write_model::WriteModel;
use crate::store::EventStore;

const BATCH: usize = 1024;

pub(super) async fn follow(store: Arc<dyn EventStore>, model: Arc<Mutex<WriteModel>>, upcasters: &'static Upcasters, applied: watch::Sender<u64>) {
    let mut head = store.head();
    let mut position = *applied.borrow();
    loop {
        if *head.borrow_and_update() <= position {
            if head.changed().await.is_err() {
                return;
            }
            continue;
        }
        let batch = match store.read_all(position, BATCH).await {
            Ok(batch) => batch,
            Err(error) => {
                tracing::warn!(%error, "the write model could not read the log; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let Some(last) = batch.last().map(|e| e.position) else { continue };
        // Events the write model holds already (this node's own, most of the
        // time) are passed by without decoding them.
        let fresh: Vec<_> = {
            let model = model.lock().expect("write model lock");
            batch.into_iter().filter(|e| !model.holds(&e.stream, e.stream_version)).collect()
        };
        if !fresh.is_empty() {
            if let Err(error) = apply_and_release(&model, upcasters, &fresh, Vec::new()) {
                tracing::error!(%error, "the write model could not apply an event another writer committed");
            }
        }
        position = last;
        applied.send_replace(position);
    }
}
