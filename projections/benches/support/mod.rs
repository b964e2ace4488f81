//! Shared by the benchmarks: an envelope around a payload, as the command
//! side would write it (the store assigns positions on append; benchmarks that
//! feed models directly give one), and the process's resident memory.
//! Each benchmark uses part of it.
#![allow(dead_code)]

use domain::event::codec::encode_payload;
use domain::event::{EventEnvelope, EventPayload};

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
