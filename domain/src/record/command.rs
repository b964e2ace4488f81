//! Record commands and what `decide` needs besides the state.

use serde_json::{Map, Value as Json};

use super::lookups::Lookups;
use crate::error::FieldError;
use crate::event::EventPayload;
use crate::time::Timestamp;

/// A write to one record. The record id is part of the stream, given alongside.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordCommand {
    /// The fields as written by the client (flat JSON object, `id` excluded).
    Create {
        data: Map<String, Json>,
    },
    /// A partial record: fields present are set (`null` clears), others kept.
    Update {
        patch: Map<String, Json>,
    },
    Delete,
}

/// Context of a decision: the clock, who acts, and facts about other records.
pub struct DecideContext<'a> {
    pub now: Timestamp,
    pub actor: &'a str,
    pub lookups: &'a dyn Lookups,
    /// Skip the object-level validation rules (value rules, required fields and
    /// references still apply). Only for trusted imports such as an app's seed
    /// data, whose hooks (which would fill fields the rules ask for) cannot run here.
    pub skip_rules: bool,
    /// The server's own processes (workflow field updates, jobs) write: read-only
    /// fields, which exist for them to fill, may be set. Never set for a caller.
    pub automation: bool,
}

/// The events to append, and warnings from rules of severity warning/info.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decision {
    pub events: Vec<EventPayload>,
    pub warnings: Vec<FieldError>,
}
