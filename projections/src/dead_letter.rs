//! Dead letters: events a projection could not apply, parked so that it goes
//! on with the rest of the log instead of retrying one event forever.
//!
//! An event is parked when it cannot be decoded, or when the model refuses
//! it ([`crate::ProjectionError::Rejected`]: data the model cannot hold, a
//! statement it cannot run). The projection moves its checkpoint past it, the
//! projection reports itself degraded, and the letter stays until an
//! operator retries it (the event is applied again, with its stream's later
//! events, once the cause is mended) or skips it (a `projection.event_skipped`
//! event in the log, so the decision is audited and every node and every
//! rebuild forgets the letter at the same position). The PostgreSQL query
//! model keeps its letters in `rm_dead_letters`, committed with its
//! checkpoint; in-process models are folded again at every start, and park
//! again whatever still cannot be applied.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use domain::event::EventEnvelope;
use serde_json::{json, Value as Json};

/// One parked event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    pub position: u64,
    pub event_id: String,
    pub stream: String,
    pub event_type: String,
    /// Why it could not be applied (the model's own words; never a value).
    pub error: String,
}

impl DeadLetter {
    pub fn of(envelope: &EventEnvelope, error: impl std::fmt::Display) -> DeadLetter {
        DeadLetter {
            position: envelope.position,
            event_id: domain::hex::encode(&envelope.event_id),
            stream: envelope.stream.clone(),
            event_type: envelope.event_type.clone(),
            error: error.to_string(),
        }
    }

    /// The letter of an event that could not be decoded.
    pub fn undecodable(envelope: &EventEnvelope, error: impl std::fmt::Display) -> DeadLetter {
        DeadLetter::of(envelope, format!("cannot decode: {error}"))
    }

    pub fn to_json(&self) -> Json {
        json!({
            "position": self.position, "eventId": self.event_id, "stream": self.stream, "eventType": self.event_type, "error": self.error,
        })
    }
}

/// The parked events of one projection, shared by its runner and its handle.
#[derive(Clone, Default)]
pub struct ParkedEvents(Arc<Mutex<BTreeMap<u64, DeadLetter>>>);

impl ParkedEvents {
    pub fn park(&self, letter: DeadLetter) {
        self.0.lock().expect("parked lock").insert(letter.position, letter);
    }

    /// Every letter at once (a stored model's, after a rebuilt copy was swapped in).
    pub fn replace(&self, letters: Vec<DeadLetter>) {
        *self.0.lock().expect("parked lock") = letters.into_iter().map(|l| (l.position, l)).collect();
    }

    /// Forgets the letter at `position`; whether there was one.
    pub fn clear(&self, position: u64) -> bool {
        self.0.lock().expect("parked lock").remove(&position).is_some()
    }

    pub fn get(&self, position: u64) -> Option<DeadLetter> {
        self.0.lock().expect("parked lock").get(&position).cloned()
    }

    /// Every letter, in position order.
    pub fn list(&self) -> Vec<DeadLetter> {
        self.0.lock().expect("parked lock").values().cloned().collect()
    }
}

/// What a fold met that concerns dead letters: the events it could not
/// decode, and the operators' skips (`projection.event_skipped`) it applied.
#[derive(Default)]
pub struct FoldLetters {
    pub letters: Vec<DeadLetter>,
    pub skipped: Vec<(String, u64)>,
}

impl FoldLetters {
    /// The letters one projection still holds after the fold.
    pub fn of(&self, projection: &str) -> Vec<DeadLetter> {
        self.letters.iter().filter(|l| !self.skipped.iter().any(|(p, at)| p == projection && *at == l.position)).cloned().collect()
    }
}
