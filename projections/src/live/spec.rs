//! What a subscription asks for, and the messages it gets.

use std::sync::Arc;

use domain::query::{Filter, Query};
use domain::value::Record;

use super::change::{Change, ChangeKind};

/// The spec's realtime event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Created,
    Updated,
    Deleted,
    /// An update, delivered once per update that changed a watched field.
    FieldChanged,
}

impl EventKind {
    pub const ALL: [EventKind; 4] = [EventKind::Created, EventKind::Updated, EventKind::Deleted, EventKind::FieldChanged];

    /// Accepts `record.created`, `created`, `data.record.created`, `field.changed`...
    pub fn parse(name: &str) -> Option<EventKind> {
        let name = name.strip_prefix("data.").unwrap_or(name);
        Some(match name.strip_prefix("record.").unwrap_or(name) {
            "created" | "create" | "insert" => EventKind::Created,
            "updated" | "update" => EventKind::Updated,
            "deleted" | "delete" | "remove" => EventKind::Deleted,
            "field.changed" | "field_changed" => EventKind::FieldChanged,
            _ => return None,
        })
    }

    /// A small index per kind (for per-kind caches).
    pub fn slot(self) -> usize {
        self as usize
    }

    /// The wire name (`record.created`, ..., `field.changed`).
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Created => "record.created",
            EventKind::Updated => "record.updated",
            EventKind::Deleted => "record.deleted",
            EventKind::FieldChanged => "field.changed",
        }
    }

    pub(crate) fn of(kind: ChangeKind) -> EventKind {
        match kind {
            ChangeKind::Created => EventKind::Created,
            ChangeKind::Updated => EventKind::Updated,
            ChangeKind::Deleted => EventKind::Deleted,
        }
    }
}

/// What a subscription follows.
#[derive(Debug, Clone)]
pub enum Spec {
    /// Record changes of one object (or of every object), of the given kinds,
    /// for records that pass the filter before or after the change.
    /// `fields` narrows `field.changed` (and updates) to changes of those fields.
    Changes { object: Option<String>, kinds: Vec<EventKind>, filter: Option<Filter>, fields: Vec<String> },
    /// A list query: its current result, then the changes to it.
    Live { query: Box<Query> },
}

/// A change to a live query's result. Applied in order to the previous result
/// (removes first, then inserts, updates and moves by ascending index), they
/// give the new one.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveOp {
    Remove {
        id: String,
    },
    Insert {
        id: String,
        index: usize,
        record: Arc<Record>,
    },
    Update {
        id: String,
        index: usize,
        record: Arc<Record>,
    },
    /// The record did not change but its place did.
    Move {
        id: String,
        index: usize,
    },
}

#[derive(Debug)]
pub struct Snapshot {
    pub position: u64,
    pub records: Vec<Arc<Record>>,
    pub total: Option<u64>,
    pub has_more: bool,
}

#[derive(Debug)]
pub struct OpsMessage {
    /// The result is current as of this position.
    pub position: u64,
    pub ops: Vec<LiveOp>,
    pub total: Option<u64>,
    pub has_more: bool,
}

/// What a subscriber receives.
#[derive(Debug, Clone)]
pub enum Message {
    /// A record change that matched a [`Spec::Changes`] subscription.
    Event { kind: EventKind, change: Arc<Change> },
    /// A live query's whole result (first, and when a resume cannot be replayed).
    Snapshot(Arc<Snapshot>),
    /// Changes to a live query's result.
    Ops(Arc<OpsMessage>),
}

impl Message {
    /// The log position the message is current as of.
    pub fn position(&self) -> u64 {
        match self {
            Message::Event { change, .. } => change.position,
            Message::Snapshot(s) => s.position,
            Message::Ops(o) => o.position,
        }
    }
}

/// A message for one subscription of a connection.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub subscription: Arc<str>,
    pub message: Message,
}
