//! Shared by the benchmarks: a seeded generator, an envelope around a payload, as the command
//! side would write it (the store assigns positions on append; benchmarks that
//! feed models directly give one), a log of `item` records, and the
//! process's resident memory.
//! Each benchmark uses part of it.
#![allow(dead_code)]

use std::sync::Arc;

use commands::store::{AppendRequest, EventStore, ExpectedVersion, StreamAppend};
use domain::event::codec::encode_payload;
use domain::event::{EventEnvelope, EventPayload, ObjectDefined, RecordCreated};
use domain::value::{Record, Value};

#[path = "../../src/test_rng.rs"]
mod rng;
#[allow(unused_imports)] // each benchmark uses part of this module
pub use rng::Rng;

pub fn envelope(position: u64, payload: &EventPayload) -> EventEnvelope {
    let (event_type, schema_version, bytes) = encode_payload(payload);
    EventEnvelope {
        position,
        stream: String::new(),
        stream_version: 0,
        event_id: *uuid::Uuid::now_v7().as_bytes(),
        event_type: event_type.into(),
        schema_version,
        occurred_at: 1_790_000_000_000_000,
        actor: "bench".into(),
        tenant: "default".into(),
        correlation_id: [0; 16],
        causation_id: None,
        idempotency_key: None,
        payload: bytes,
    }
}

/// The process's resident memory, in MiB.
pub fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    kib.unwrap_or(0) as f64 / 1024.0
}

/// The `item` object (title, status, amount) defined, then `events` creates of it.
pub async fn fill(store: &Arc<dyn EventStore>, events: u64) {
    let definition = serde_json::json!({"name": "item", "fields": {
        "title": {"type": "text"}, "status": {"type": "select", "options": [{"label": "Open", "value": "open"}, {"label": "Done", "value": "done"}]},
        "amount": {"type": "number"}}});
    let defined = EventPayload::ObjectDefined(ObjectDefined { name: "item".into(), namespace: None, definition: definition.to_string() });
    let first = AppendRequest {
        streams: vec![StreamAppend { stream: "$meta/item".into(), expected: ExpectedVersion::Exact(0), events: vec![envelope(0, &defined)] }],
        idempotency_key: None,
        unique: Default::default(),
    };
    store.append(first).await.expect("define");
    let mut n = 0u64;
    while n < events {
        let mut streams = Vec::with_capacity(1000);
        for _ in 0..1000.min(events - n) {
            let mut record = Record::new();
            record.insert("id", Value::Text(format!("i{n:08}")));
            record.insert("title", Value::Text(format!("item {n}")));
            record.insert("status", Value::Text(if n.is_multiple_of(2) { "open" } else { "done" }.into()));
            record.insert("amount", Value::Int((n % 1000) as i64));
            let created = EventPayload::RecordCreated(RecordCreated { object: "item".into(), id: format!("i{n:08}"), record, automated: Vec::new() });
            streams.push(StreamAppend { stream: format!("item/i{n:08}"), expected: ExpectedVersion::Exact(0), events: vec![envelope(0, &created)] });
            n += 1;
        }
        store.append(AppendRequest { streams, idempotency_key: None, unique: Default::default() }).await.expect("append");
    }
}

/// The `item` object defined, `records` creates, then updates of them (the
/// amount of a record picked in turn) up to `events` events: a log much
/// longer than its data.
pub async fn fill_updates(store: &Arc<dyn EventStore>, records: u64, events: u64) {
    use domain::event::{FieldChange, RecordUpdated};
    fill(store, records.min(events)).await;
    let mut n = records;
    while n < events {
        let mut streams = Vec::with_capacity(1000);
        // One event per stream in each append: the records of a batch are distinct.
        for _ in 0..1000.min(events - n).min(records) {
            let id = format!("i{:08}", n % records);
            let change = FieldChange { field: "amount".into(), old: Value::Null, new: Value::Int((n % 997) as i64) };
            let updated = EventPayload::RecordUpdated(RecordUpdated { object: "item".into(), id: id.clone(), changes: vec![change], automated: Vec::new() });
            streams.push(StreamAppend { stream: format!("item/{id}"), expected: ExpectedVersion::Any, events: vec![envelope(0, &updated)] });
            n += 1;
        }
        store.append(AppendRequest { streams, idempotency_key: None, unique: Default::default() }).await.expect("append");
    }
}
