//! Events: the envelope every stored event has, the payloads, and the codec.
//!
//! **Stability boundary**: payload encodings are part of the stored log. A change
//! to a payload's shape bumps its schema version and registers an [`Upcaster`]
//! from the old version; old bytes are never rewritten.

pub mod codec;
mod envelope;
mod payload;
pub mod process;
mod reuse;
mod upcast;

pub use envelope::{EventEnvelope, EventId, StreamId};
pub use payload::{
    automated_to_json, EventPayload, EventSkipped, FieldChange, ObjectDefined, ObjectRemoved, RecordCreated, RecordDeleted, RecordDeletedV1, RecordUpdated,
    RuleApplied,
};
pub use process::ProcessEvent;
pub use reuse::{copy_envelope_into, decode_envelope_into, view_envelope, EnvelopeView};
pub use upcast::{registry, Upcaster, Upcasters};
