//! Pure domain model of objectstack-rs.
//!
//! No IO, no async, no clock: time, ids and lookups of other records come in as
//! parameters. Everything here is deterministic and tested without a runtime.
//!
//! Layout:
//! - [`metadata`]: apps, objects, fields, validation rules, loading the protocol's JSON form.
//! - [`value`]: the record value model and its JSON mapping; [`fields`]: the record itself (a sorted vector of fields); [`name`]: field names, interned when decoded.
//! - [`validate`]: value rules per field type and the object-level validation rules.
//! - [`formula`]: the formula language used by script rules, conditions and defaults.
//! - [`event`]: the event envelope, payloads, the bincode codec and the upcaster path.
//! - [`record`]: record and metadata commands, `decide` and `evolve`.
//! - [`query`]: the query AST and the parsers of every accepted filter/sort/URL form.
//! - [`automation`]: workflow rules, webhooks and jobs an app declares (what runs them is `commands::process`).
//! - [`error`]: the stable error codes shared by every surface.
//! - [`hash`], [`hex`]: a stable non-cryptographic hash, and bytes as hex text.
//!
//! Entry points: [`metadata::load_app`], [`record::decide`], [`record::evolve`],
//! [`metadata::decide_metadata`], [`query::parse_query`], [`event::codec`].

pub mod automation;
pub mod error;
pub mod event;
pub mod fields;
pub mod formula;
pub mod hash;
pub mod hex;
pub mod metadata;
pub mod name;
pub mod query;
pub mod record;
pub mod security;
pub mod texts;
pub mod time;
pub mod validate;
pub mod value;

pub use error::{DomainError, ErrorCode, FieldError};
pub use time::Timestamp;
pub use value::{Record, Value};
