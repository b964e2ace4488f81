//! Reads as of a past moment, computed from the log: the query model folded
//! up to a log position (or to the last event at or before a time).

use std::sync::Arc;

use commands::store::EventStore;
use domain::event::codec::decode_envelope_payload;
use domain::Timestamp;

use crate::query_model::QueryModel;
use crate::reader::ReadError;

/// A past moment: a log position, or a time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AsOf {
    Position(u64),
    Time(Timestamp),
}

impl AsOf {
    /// `asOf=` as sent: a whole number is a position, anything else an ISO-8601 time.
    pub fn parse(text: &str) -> Option<AsOf> {
        match text.trim().parse::<u64>() {
            Ok(position) => Some(AsOf::Position(position)),
            Err(_) => Timestamp::parse(text.trim()).map(AsOf::Time),
        }
    }

    fn includes(&self, position: u64, occurred_at: i64) -> bool {
        match self {
            AsOf::Position(p) => position <= *p,
            AsOf::Time(t) => occurred_at <= t.micros(),
        }
    }
}

/// The query model as it was at `as_of`, and the position it stands at.
pub async fn query_model_as_of(store: &Arc<dyn EventStore>, as_of: AsOf) -> Result<(QueryModel, u64), ReadError> {
    let upcasters = domain::event::registry();
    let mut model = QueryModel::default();
    let mut after = 0;
    let mut reached = 0;
    'read: loop {
        let batch = store.read_all(after, 10_000).await.map_err(|e| ReadError::Store(e.to_string()))?;
        let Some(last) = batch.last() else { break };
        after = last.position;
        for envelope in &batch {
            if !as_of.includes(envelope.position, envelope.occurred_at) {
                // Positions follow commit order; a time bound may see a few out-of-order
                // clocks, so a time bound keeps scanning the batch but a position bound stops.
                if matches!(as_of, AsOf::Position(_)) {
                    break 'read;
                }
                continue;
            }
            let payload = decode_envelope_payload(envelope, upcasters).map_err(|e| ReadError::Store(e.to_string()))?;
            model.apply(envelope, &payload);
            reached = envelope.position;
        }
    }
    Ok((model, reached))
}

/// One record as it was at `as_of`, folded from its own stream only (fast
/// for any log size), with its formula fields computed. `None` when it did
/// not exist then.
pub async fn record_as_of(
    store: &Arc<dyn EventStore>,
    object: &domain::metadata::ObjectDef,
    id: &str,
    as_of: AsOf,
) -> Result<Option<domain::value::Record>, ReadError> {
    let upcasters = domain::event::registry();
    let stream = domain::event::StreamId::record(&object.name, id);
    let mut state = domain::record::RecordState::default();
    let mut at = 0;
    for envelope in store.read_stream(stream.as_str(), 1).await.map_err(|e| ReadError::Store(e.to_string()))? {
        if !as_of.includes(envelope.position, envelope.occurred_at) {
            continue;
        }
        let payload = decode_envelope_payload(&envelope, upcasters).map_err(|e| ReadError::Store(e.to_string()))?;
        state = domain::record::evolve(state, &payload);
        at = envelope.occurred_at;
    }
    Ok(state.record.map(|r| domain::formula::with_formula_fields(object, &r, Timestamp::from_micros(at))))
}
