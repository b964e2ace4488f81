//! A record stream's state at one of its versions, folded from the stream's
//! own events (what the write model held there, when it has moved on or
//! does not hold it).

use std::sync::Arc;

use domain::event::codec::decode_envelope_payload;
use domain::event::Upcasters;
use domain::record::{evolve, RecordState};

use crate::store::EventStore;
use crate::CommandError;

/// The state of `stream` after its first `version` events (fewer when the stream is shorter).
pub(crate) async fn stream_state(store: &Arc<dyn EventStore>, upcasters: &Upcasters, stream: &str, version: u64) -> Result<RecordState, CommandError> {
    let events = store.read_stream_range(stream, 0, usize::try_from(version).unwrap_or(usize::MAX)).await?;
    let mut state = RecordState::default();
    for stored in &events {
        state = evolve(state, &decode_envelope_payload(stored, upcasters)?);
    }
    Ok(state)
}
