//! Shared by this crate's unit tests: a seeded generator (a seed replays a
//! randomised test) and an envelope around a payload at a position.

use domain::event::EventEnvelope;

/// A small deterministic generator (xorshift64).
pub(crate) struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// An envelope at a position, as a model sees it (the payload travels beside it).
pub(crate) fn envelope(position: u64) -> EventEnvelope {
    EventEnvelope {
        position,
        stream: String::new(),
        stream_version: 1,
        event_id: [0; 16],
        event_type: String::new(),
        schema_version: 1,
        occurred_at: 0,
        actor: "t".into(),
        tenant: "default".into(),
        correlation_id: [0; 16],
        causation_id: None,
        idempotency_key: None,
        payload: Vec::new(),
    }
}
