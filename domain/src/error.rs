//! Stable error codes (the spec's `StandardErrorCode`) and the domain error type.
//!
//! Every surface (REST, GraphQL, CLI) maps [`ErrorCode`] to its own status in one
//! place; the code strings here are part of the public protocol and never change.

use std::fmt;

/// A stable, protocol-level error code (snake_case on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    ValidationError,
    InvalidField,
    MissingRequiredField,
    InvalidFormat,
    ValueTooLong,
    ValueTooShort,
    ValueOutOfRange,
    InvalidReference,
    DuplicateValue,
    InvalidQuery,
    InvalidFilter,
    InvalidSort,
    MaxRecordsExceeded,
    ObjectNotFound,
    RecordNotFound,
    FieldNotFound,
    EndpointNotFound,
    ResourceNotFound,
    ResourceConflict,
    ConcurrentModification,
    LockConflict,
    DeleteRestricted,
    DuplicateRecord,
    InternalError,
    DatabaseError,
    Timeout,
    ServiceUnavailable,
    NotImplemented,
    Unauthenticated,
    InvalidCredentials,
    InvalidToken,
    SessionExpired,
    PermissionDenied,
    FieldNotAccessible,
    RecordNotAccessible,
    RateLimitExceeded,
}

/// Who must act on an error, which is what an HTTP status expresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCategory {
    Validation,
    NotFound,
    Conflict,
    Server,
    Maintenance,
    Authentication,
    Authorization,
    RateLimit,
}

impl ErrorCode {
    /// Every code, in declaration order (the OpenAPI document lists them).
    pub const ALL: [ErrorCode; 36] = [
        ErrorCode::ValidationError,
        ErrorCode::InvalidField,
        ErrorCode::MissingRequiredField,
        ErrorCode::InvalidFormat,
        ErrorCode::ValueTooLong,
        ErrorCode::ValueTooShort,
        ErrorCode::ValueOutOfRange,
        ErrorCode::InvalidReference,
        ErrorCode::DuplicateValue,
        ErrorCode::InvalidQuery,
        ErrorCode::InvalidFilter,
        ErrorCode::InvalidSort,
        ErrorCode::MaxRecordsExceeded,
        ErrorCode::ObjectNotFound,
        ErrorCode::RecordNotFound,
        ErrorCode::FieldNotFound,
        ErrorCode::EndpointNotFound,
        ErrorCode::ResourceNotFound,
        ErrorCode::ResourceConflict,
        ErrorCode::ConcurrentModification,
        ErrorCode::LockConflict,
        ErrorCode::DeleteRestricted,
        ErrorCode::DuplicateRecord,
        ErrorCode::InternalError,
        ErrorCode::DatabaseError,
        ErrorCode::Timeout,
        ErrorCode::ServiceUnavailable,
        ErrorCode::NotImplemented,
        ErrorCode::Unauthenticated,
        ErrorCode::InvalidCredentials,
        ErrorCode::InvalidToken,
        ErrorCode::SessionExpired,
        ErrorCode::PermissionDenied,
        ErrorCode::FieldNotAccessible,
        ErrorCode::RecordNotAccessible,
        ErrorCode::RateLimitExceeded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ValidationError => "validation_error",
            ErrorCode::InvalidField => "invalid_field",
            ErrorCode::MissingRequiredField => "missing_required_field",
            ErrorCode::InvalidFormat => "invalid_format",
            ErrorCode::ValueTooLong => "value_too_long",
            ErrorCode::ValueTooShort => "value_too_short",
            ErrorCode::ValueOutOfRange => "value_out_of_range",
            ErrorCode::InvalidReference => "invalid_reference",
            ErrorCode::DuplicateValue => "duplicate_value",
            ErrorCode::InvalidQuery => "invalid_query",
            ErrorCode::InvalidFilter => "invalid_filter",
            ErrorCode::InvalidSort => "invalid_sort",
            ErrorCode::MaxRecordsExceeded => "max_records_exceeded",
            ErrorCode::ObjectNotFound => "object_not_found",
            ErrorCode::RecordNotFound => "record_not_found",
            ErrorCode::FieldNotFound => "field_not_found",
            ErrorCode::EndpointNotFound => "endpoint_not_found",
            ErrorCode::ResourceNotFound => "resource_not_found",
            ErrorCode::ResourceConflict => "resource_conflict",
            ErrorCode::ConcurrentModification => "concurrent_modification",
            ErrorCode::LockConflict => "lock_conflict",
            ErrorCode::DeleteRestricted => "delete_restricted",
            ErrorCode::DuplicateRecord => "duplicate_record",
            ErrorCode::InternalError => "internal_error",
            ErrorCode::DatabaseError => "database_error",
            ErrorCode::Timeout => "timeout",
            ErrorCode::ServiceUnavailable => "service_unavailable",
            ErrorCode::NotImplemented => "not_implemented",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::SessionExpired => "session_expired",
            ErrorCode::PermissionDenied => "permission_denied",
            ErrorCode::FieldNotAccessible => "field_not_accessible",
            ErrorCode::RecordNotAccessible => "record_not_accessible",
            ErrorCode::RateLimitExceeded => "rate_limit_exceeded",
        }
    }

    pub fn category(self) -> ErrorCategory {
        use ErrorCode::*;
        match self {
            ValidationError | InvalidField | MissingRequiredField | InvalidFormat | ValueTooLong | ValueTooShort | ValueOutOfRange | InvalidReference
            | DuplicateValue | InvalidQuery | InvalidFilter | InvalidSort | MaxRecordsExceeded => ErrorCategory::Validation,
            ObjectNotFound | RecordNotFound | FieldNotFound | EndpointNotFound | ResourceNotFound => ErrorCategory::NotFound,
            ResourceConflict | ConcurrentModification | LockConflict | DeleteRestricted | DuplicateRecord => ErrorCategory::Conflict,
            InternalError | DatabaseError | Timeout | NotImplemented => ErrorCategory::Server,
            ServiceUnavailable => ErrorCategory::Maintenance,
            Unauthenticated | InvalidCredentials | InvalidToken | SessionExpired => ErrorCategory::Authentication,
            PermissionDenied | FieldNotAccessible | RecordNotAccessible => ErrorCategory::Authorization,
            RateLimitExceeded => ErrorCategory::RateLimit,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem with one field of a write or a definition.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub code: ErrorCode,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: ErrorCode, message: impl Into<String>) -> Self {
        FieldError { field: field.into(), code, message: message.into() }
    }
}

/// Errors raised by pure domain rules. Each carries a stable code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    /// A write broke one or more field or record rules.
    #[error("{message}")]
    Validation { message: String, errors: Vec<FieldError> },
    /// An app or object definition is invalid.
    #[error("invalid definition: {0}")]
    InvalidDefinition(String),
    #[error("object '{0}' not found")]
    ObjectNotFound(String),
    #[error("record {id} not found in {object}")]
    RecordNotFound { object: String, id: String },
    #[error("record {id} already exists in {object}")]
    RecordExists { object: String, id: String },
    #[error("{0}")]
    InvalidQuery(String),
    #[error("{0}")]
    InvalidFilter(String),
    #[error("{0}")]
    InvalidSort(String),
    #[error("{message}")]
    Duplicate { message: String, errors: Vec<FieldError> },
    #[error("cannot delete {object} {id}: {reason}")]
    DeleteRestricted { object: String, id: String, reason: String },
    /// The caller may not do this (object permission, system permission).
    #[error("{0}")]
    PermissionDenied(String),
    /// The caller may not read (or write) a field the request names.
    #[error("{0}")]
    FieldNotAccessible(String),
    /// The record exists but the caller's row rules refuse the operation.
    #[error("{0}")]
    RecordNotAccessible(String),
    /// A stored event could not be decoded (unknown type or schema version, corrupt bytes).
    #[error("cannot decode event: {0}")]
    Decode(String),
    /// The record's stream holds an event this server cannot read, so its
    /// state is unknown: it cannot be changed until that is mended.
    #[error("{0}")]
    Unreadable(String),
    /// The record is locked (pending approval): callers cannot change it.
    #[error("{0}")]
    Locked(String),
}

impl DomainError {
    pub fn code(&self) -> ErrorCode {
        match self {
            DomainError::Validation { errors, .. } => match errors.as_slice() {
                [one] => one.code,
                _ => ErrorCode::ValidationError,
            },
            DomainError::InvalidDefinition(_) => ErrorCode::ValidationError,
            DomainError::ObjectNotFound(_) => ErrorCode::ObjectNotFound,
            DomainError::RecordNotFound { .. } => ErrorCode::RecordNotFound,
            DomainError::RecordExists { .. } => ErrorCode::DuplicateRecord,
            DomainError::InvalidQuery(_) => ErrorCode::InvalidQuery,
            DomainError::InvalidFilter(_) => ErrorCode::InvalidFilter,
            DomainError::InvalidSort(_) => ErrorCode::InvalidSort,
            DomainError::Duplicate { .. } => ErrorCode::DuplicateValue,
            DomainError::DeleteRestricted { .. } => ErrorCode::DeleteRestricted,
            DomainError::PermissionDenied(_) => ErrorCode::PermissionDenied,
            DomainError::FieldNotAccessible(_) => ErrorCode::FieldNotAccessible,
            DomainError::RecordNotAccessible(_) => ErrorCode::RecordNotAccessible,
            DomainError::Decode(_) => ErrorCode::InternalError,
            DomainError::Unreadable(_) => ErrorCode::ResourceConflict,
            DomainError::Locked(_) => ErrorCode::LockConflict,
        }
    }

    /// Per-field errors, when the error is about fields.
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            DomainError::Validation { errors, .. } | DomainError::Duplicate { errors, .. } => errors,
            _ => &[],
        }
    }

    /// A validation error built from field errors; the message names them all.
    pub fn validation(object: &str, errors: Vec<FieldError>) -> DomainError {
        let parts: Vec<String> = errors.iter().map(|e| e.message.clone()).collect();
        DomainError::Validation { message: format!("validation failed for {object}: {}", parts.join("; ")), errors }
    }
}

pub type Result<T, E = DomainError> = std::result::Result<T, E>;

#[cfg(test)]
mod all_codes {
    use super::ErrorCode;

    #[test]
    fn every_code_is_listed_once() {
        let mut names: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorCode::ALL.len());
    }
}
