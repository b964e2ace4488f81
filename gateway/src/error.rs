//! The one table from error codes to HTTP statuses, and the error envelope:
//! `{success: false, error: {code, message, category, httpStatus, retryable,
//! fieldErrors?, details?}, code, message}` (top-level `code`/`message` too,
//! which clients read).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use commands::{CommandError, StoreError};
use domain::error::ErrorCategory;
use domain::{DomainError, ErrorCode, FieldError};
use serde_json::{json, Value as Json};

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub field_errors: Vec<FieldError>,
    /// Boxed: a JSON value is large, and errors travel in `Result`s.
    pub details: Option<Box<Json>>,
    /// Overrides the status the code maps to (413, 415, 405 for transport errors).
    pub status: Option<StatusCode>,
}

/// The HTTP status of an error code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::ObjectNotFound | ErrorCode::RecordNotFound | ErrorCode::FieldNotFound => StatusCode::NOT_FOUND,
        ErrorCode::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorCode::NotImplemented => StatusCode::NOT_IMPLEMENTED,
        other => match other.category() {
            ErrorCategory::Validation => StatusCode::BAD_REQUEST,
            ErrorCategory::NotFound => StatusCode::NOT_FOUND,
            ErrorCategory::Conflict => StatusCode::CONFLICT,
            ErrorCategory::Server => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCategory::Maintenance => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCategory::Authentication => StatusCode::UNAUTHORIZED,
            ErrorCategory::Authorization => StatusCode::FORBIDDEN,
            ErrorCategory::RateLimit => StatusCode::TOO_MANY_REQUESTS,
        },
    }
}

fn category_name(code: ErrorCode) -> &'static str {
    match code.category() {
        ErrorCategory::Validation => "validation",
        ErrorCategory::NotFound => "not_found",
        ErrorCategory::Conflict => "conflict",
        ErrorCategory::Server => "server",
        ErrorCategory::Maintenance => "maintenance",
        ErrorCategory::Authentication => "authentication",
        ErrorCategory::Authorization => "authorization",
        ErrorCategory::RateLimit => "rate_limit",
    }
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into(), field_errors: Vec::new(), details: None, status: None }
    }

    pub fn with_status(mut self, status: StatusCode) -> ApiError {
        self.status = Some(status);
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status.unwrap_or_else(|| status_of(self.code))
    }

    /// The error object (`error` in the envelope), also used inside batch results.
    pub fn body(&self) -> Json {
        let mut error = json!({
            "code": self.code.as_str(),
            "message": self.message,
            "category": category_name(self.code),
            "httpStatus": self.status().as_u16(),
            "retryable": matches!(self.code, ErrorCode::ConcurrentModification | ErrorCode::ServiceUnavailable | ErrorCode::Timeout | ErrorCode::RateLimitExceeded),
        });
        if !self.field_errors.is_empty() {
            error["fieldErrors"] = field_errors_json(&self.field_errors);
        }
        if let Some(details) = &self.details {
            error["details"] = (**details).clone();
        }
        error
    }
}

impl ApiError {
    /// The whole answer's body: `{success: false, error, code, message}`.
    pub fn envelope(&self) -> Json {
        json!({"success": false, "error": self.body(), "code": self.code.as_str(), "message": self.message})
    }

    /// The error as a GraphQL error: the message, and `extensions` holding
    /// the same error object as the REST envelope (`code`, `category`,
    /// `httpStatus`, `fieldErrors`...).
    pub fn to_graphql(&self) -> async_graphql::Error {
        let Json::Object(body) = self.body() else { unreachable!("the error body is an object") };
        body.into_iter().fold(async_graphql::Error::new(self.message.clone()), |error, (key, value)| {
            let value = async_graphql::Value::from_json(value).unwrap_or(async_graphql::Value::Null);
            async_graphql::ErrorExtensions::extend_with(error, |_, extensions| extensions.set(key.clone(), value.clone()))
        })
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        ApiError { code: e.code(), message: e.to_string(), field_errors: e.field_errors().to_vec(), details: None, status: None }
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Rejected(domain) => domain.into(),
            CommandError::Conflict { expected, actual } => ApiError {
                code: ErrorCode::ConcurrentModification,
                message: format!("the record changed: expected version {expected}, current version {actual}"),
                field_errors: Vec::new(),
                details: Some(Box::new(json!({"expectedVersion": expected, "currentVersion": actual}))),
                status: None,
            },
            CommandError::Contended => ApiError::new(ErrorCode::ConcurrentModification, e.to_string()),
            // The IETF Idempotency-Key draft's answer to a key reused with another request.
            CommandError::KeyReused => ApiError::new(ErrorCode::ResourceConflict, e.to_string()).with_status(StatusCode::UNPROCESSABLE_ENTITY),
            CommandError::Store(store) => store.into(),
        }
    }
}

impl From<projections::ReadError> for ApiError {
    fn from(e: projections::ReadError) -> Self {
        match e {
            projections::ReadError::Rejected(domain) => domain.into(),
            projections::ReadError::Store(message) => {
                tracing::error!(error = %message, "read model store error");
                ApiError::new(ErrorCode::DatabaseError, "the read model failed to answer")
            }
        }
    }
}

impl From<projections::ProjectionError> for ApiError {
    fn from(e: projections::ProjectionError) -> Self {
        tracing::error!(error = %e, "projection error");
        ApiError::new(ErrorCode::DatabaseError, "the read model failed")
    }
}

impl From<projections::live::LiveError> for ApiError {
    fn from(e: projections::live::LiveError) -> Self {
        use projections::live::LiveError;
        match e {
            LiveError::Rejected(domain) => domain.into(),
            gap @ LiveError::ResumeGap { .. } => ApiError::new(ErrorCode::ResourceConflict, gap.to_string()),
            closed @ LiveError::Closed => ApiError::new(ErrorCode::ServiceUnavailable, closed.to_string()),
            many @ (LiveError::TooMany | LiveError::TooManyRows(_)) => ApiError::new(ErrorCode::ValidationError, many.to_string()),
            unknown @ LiveError::Unknown(_) => ApiError::new(ErrorCode::ResourceNotFound, unknown.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store error");
        let code = match e {
            StoreError::Unavailable(_) => ErrorCode::ServiceUnavailable,
            StoreError::Postgres(_) => ErrorCode::DatabaseError,
            _ => ErrorCode::InternalError,
        };
        // Internals (SQL, paths) stay in the log.
        ApiError::new(code, "the event store failed; nothing was written")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, axum::Json(self.envelope())).into_response();
        // For the access log and the metrics' errors by code.
        response.extensions_mut().insert(self.code);
        response
    }
}

/// How a JSON value is named in error messages ("an object", "a string"...).
pub fn json_kind(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// Field errors (or a write's warnings) as the protocol shows them: `[{field, code, message}]`.
pub fn field_errors_json(errors: &[FieldError]) -> Json {
    errors.iter().map(|f| json!({"field": f.field, "code": f.code.as_str(), "message": f.message})).collect()
}
