//! Commands as the service takes them, with who sends them, and their outcome.

use domain::event::{EventEnvelope, EventId};
use domain::metadata::MetadataCommand;
use domain::value::Record;
use domain::FieldError;
use serde_json::{Map, Value as Json};

#[derive(Debug, Clone)]
pub enum Command {
    /// Creates a record; the id is generated (UUIDv7) when not given.
    Create {
        object: String,
        id: Option<String>,
        data: Map<String, Json>,
    },
    Update {
        object: String,
        id: String,
        patch: Map<String, Json>,
        expected_version: Option<u64>,
    },
    /// Deletes a record; referencing records follow their `deleteBehavior`
    /// (cascade, set_null, or restrict), in the same atomic append.
    Delete {
        object: String,
        id: String,
        expected_version: Option<u64>,
    },
    Metadata(MetadataCommand),
    /// An operator gives up on an event a projection parked (a dead letter):
    /// recorded in the log (`projection.event_skipped`) so that every node
    /// and every rebuild forgets it at the same point.
    SkipParkedEvent {
        projection: String,
        position: u64,
        reason: String,
    },
    /// A step of one of the server's own processes (`commands::process`):
    /// appended to its stream with the version the process last saw there,
    /// so two nodes racing for the same step meet here and one wins.
    Process {
        stream: String,
        expected_version: Option<u64>,
        event: domain::event::ProcessEvent,
    },
}

impl Command {
    /// The stream version the caller named, if any (optimistic concurrency).
    pub fn expected_version(&self) -> Option<u64> {
        match self {
            Command::Update { expected_version, .. } | Command::Delete { expected_version, .. } | Command::Process { expected_version, .. } => {
                *expected_version
            }
            _ => None,
        }
    }

    /// What the command does, for traces: `create`, `update`, `delete`,
    /// `metadata`, `skip_parked_event` or `process`.
    pub fn kind(&self) -> &'static str {
        match self {
            Command::Create { .. } => "create",
            Command::Update { .. } => "update",
            Command::Delete { .. } => "delete",
            Command::Metadata(_) => "metadata",
            Command::SkipParkedEvent { .. } => "skip_parked_event",
            Command::Process { .. } => "process",
        }
    }

    /// The object a record command writes.
    pub fn object(&self) -> Option<&str> {
        match self {
            Command::Create { object, .. } | Command::Update { object, .. } | Command::Delete { object, .. } => Some(object),
            _ => None,
        }
    }
}

/// Who sends a command and how it is tied to others. Every event carries it.
#[derive(Debug, Clone)]
pub struct CommandMeta {
    pub actor: String,
    pub tenant: String,
    /// A repeat of the key returns the first result instead of acting again.
    pub idempotency_key: Option<String>,
    pub correlation_id: Option<EventId>,
    pub causation_id: Option<EventId>,
    /// Skip object-level validation rules: set only when loading an app's seed data.
    pub skip_rules: bool,
    /// Sent by the server's own processes (`commands::process`): read-only
    /// fields may be set. The gateway never sets it.
    pub automation: bool,
    /// The caller's rights on the object written (`None`: the server itself).
    /// Checked under the write-model lock against the record before and after.
    pub guard: Option<std::sync::Arc<domain::security::WriteGuard>>,
}

impl CommandMeta {
    pub fn system() -> CommandMeta {
        CommandMeta::actor("system")
    }

    pub fn actor(actor: &str) -> CommandMeta {
        CommandMeta {
            actor: actor.to_string(),
            tenant: "default".into(),
            idempotency_key: None,
            correlation_id: None,
            causation_id: None,
            skip_rules: false,
            automation: false,
            guard: None,
        }
    }

    pub fn with_key(mut self, key: impl Into<String>) -> CommandMeta {
        self.idempotency_key = Some(key.into());
        self
    }
}

/// What a command did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Log position of the last event written (0 when nothing was written):
    /// a reader that waits for it sees this write.
    pub position: u64,
    pub stream: String,
    pub object: String,
    /// The record id (empty for metadata commands).
    pub id: String,
    /// The stream's version after the command.
    pub version: u64,
    /// The record after the command (`None` after a delete, and for metadata).
    pub record: Option<Record>,
    pub events: Vec<EventEnvelope>,
    /// Failures of rules with severity warning or info.
    pub warnings: Vec<FieldError>,
    /// True when this is the stored result of an earlier command with the same key.
    pub replayed: bool,
}

impl Outcome {
    /// The outcome of a command on a stream that is not a record's (a
    /// definition, an operator's decision), before its append is placed.
    pub(crate) fn unplaced(stream: String, object: String) -> Outcome {
        Outcome { position: 0, stream, object, id: String::new(), version: 0, record: None, events: Vec::new(), warnings: Vec::new(), replayed: false }
    }
}
