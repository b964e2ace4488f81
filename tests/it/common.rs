//! Helpers: fresh stores for tests, envelopes, PostgreSQL settings.

use std::sync::Arc;

use commands::store::{open_embedded, open_postgres, EventStore, PostgresSettings};
use domain::event::EventEnvelope;

/// The database tests use; `ops/test` makes sure it is up.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Settings for a fresh schema of its own, so tests run in parallel.
pub fn pg_settings() -> PostgresSettings {
    let mut settings = PostgresSettings::new(database_url());
    settings.schema = Some(format!("t_{}", uuid::Uuid::new_v4().simple()));
    settings.pool_size = 8;
    settings
}

pub async fn postgres(settings: &PostgresSettings) -> Arc<dyn EventStore> {
    match open_postgres(settings).await {
        Ok(store) => Arc::new(store),
        Err(e) => panic!("PostgreSQL is needed at {} (run the tests through ops/test, which starts it): {e}", settings.url),
    }
}

/// A fresh store for a server: PostgreSQL in a schema of its own, or an
/// embedded log in a temporary folder (removed when the guard goes).
pub fn storage(postgres: bool) -> (gateway::config::Storage, Option<tempfile::TempDir>) {
    if postgres {
        (gateway::config::Storage::Postgres(pg_settings()), None)
    } else {
        let dir = tempfile::tempdir().expect("temp dir");
        (gateway::config::Storage::Embedded(dir.path().to_path_buf()), Some(dir))
    }
}

pub fn embedded(dir: &std::path::Path) -> Arc<dyn EventStore> {
    Arc::new(open_embedded(dir).expect("open embedded store"))
}

/// An event with a small opaque payload; the store fills position and version.
pub fn event(tag: &str) -> EventEnvelope {
    EventEnvelope {
        position: 0,
        stream: String::new(),
        stream_version: 0,
        event_id: *uuid::Uuid::new_v4().as_bytes(),
        event_type: "test.event".into(),
        schema_version: 1,
        occurred_at: 1_700_000_000_000_000,
        actor: "tester".into(),
        tenant: "default".into(),
        correlation_id: [7; 16],
        causation_id: None,
        idempotency_key: None,
        payload: tag.as_bytes().to_vec(),
    }
}

pub fn tag(e: &EventEnvelope) -> String {
    String::from_utf8_lossy(&e.payload).into_owned()
}

/// Percent-encodes a query parameter value.
pub fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A small deterministic generator (xorshift64*): a seed replays a randomised test.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// An index below `len`.
    pub fn index(&mut self, len: usize) -> usize {
        (self.next() % len as u64) as usize
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }
}
