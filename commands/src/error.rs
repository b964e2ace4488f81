//! Errors of the write side, split by who must act.

use domain::{DomainError, ErrorCode};

/// Errors from an event store.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The stream is not at the expected version: someone else wrote first.
    #[error("stream {stream} is at version {actual}, expected {expected}")]
    Conflict { stream: String, expected: u64, actual: u64 },
    /// The idempotency key was already used by a committed append.
    #[error("idempotency key {key} was already used")]
    KeyUsed { key: String },
    /// Another record holds a unique value the append claims (a record
    /// written through another process sharing the store).
    #[error("{object}: the value of {} is already used", fields.join(", "))]
    Claimed { object: String, fields: Vec<String> },
    /// The request itself is malformed (empty, a stream twice): a caller bug.
    #[error("invalid append: {0}")]
    InvalidAppend(String),
    #[error("storage io: {0}")]
    Io(String),
    /// The log is damaged somewhere other than a torn tail.
    #[error("log corrupt: {0}")]
    Corrupt(String),
    #[error("postgres: {0}")]
    Postgres(String),
    /// The store was shut down, or an earlier failure made it refuse writes.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Io(e.to_string())
    }
}

/// Errors from executing a command.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CommandError {
    /// The command broke a domain rule: the caller must change the request.
    #[error(transparent)]
    Rejected(#[from] DomainError),
    /// Optimistic concurrency: the record changed since the version the caller named.
    #[error("record changed: expected version {expected}, current version {actual}")]
    Conflict { expected: u64, actual: u64 },
    /// A command that named no version kept losing races on its stream (it
    /// is decided again against the fresh state each time): nothing was written.
    #[error("the record kept changing while this write was decided; retry")]
    Contended,
    /// The idempotency key was used before for a different request (its
    /// fingerprint, the correlation id, differs): nothing was written.
    #[error("this idempotency key was used for a different request")]
    KeyReused,
    /// The store failed; nothing was written.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for CommandError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { expected, actual, .. } => CommandError::Conflict { expected, actual },
            StoreError::Claimed { object, fields } => {
                let message = format!("{object}: the value of {} is already used by another record", fields.join(", "));
                let errors = fields.iter().map(|f| domain::FieldError::new(f.clone(), ErrorCode::DuplicateValue, message.clone())).collect();
                CommandError::Rejected(DomainError::Duplicate { message, errors })
            }
            other => CommandError::Store(other),
        }
    }
}

impl CommandError {
    pub fn code(&self) -> ErrorCode {
        match self {
            CommandError::Rejected(e) => e.code(),
            CommandError::Conflict { .. } | CommandError::Contended => ErrorCode::ConcurrentModification,
            CommandError::KeyReused => ErrorCode::ResourceConflict,
            CommandError::Store(StoreError::Unavailable(_)) => ErrorCode::ServiceUnavailable,
            CommandError::Store(StoreError::Postgres(_)) => ErrorCode::DatabaseError,
            CommandError::Store(_) => ErrorCode::InternalError,
        }
    }
}
