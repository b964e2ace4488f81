//! Hooks for apps that embed the server as a Rust library: code that runs
//! before a caller's record write is decided (it may change the fields
//! written, or refuse the write) and after it commits. They run here, in
//! the service layer, so every surface's writes pass them: REST, GraphQL,
//! batches and flows run as their caller. The server's own processes
//! (workflow rules, system flows, jobs) do not. An app file's JavaScript
//! hooks (`hooks: [{handler: ...}]`) cannot run in this server.
//!
//! ```no_run
//! # async fn example(settings: gateway::config::Settings) -> anyhow::Result<()> {
//! use gateway::service::hooks::{Hooks, Operation};
//! let hooks = Hooks::default()
//!     .before_write(Some("task"), |write, fields| {
//!         if write.operation == Operation::Create && !fields.contains_key("priority") {
//!             fields.insert("priority".into(), "normal".into());
//!         }
//!         Ok(())
//!     })
//!     .after_write(None, |write, outcome| tracing::info!(object = write.object, id = %outcome.id, "written"));
//! let system = gateway::app::start_with_hooks(&settings, hooks).await?;
//! # Ok(()) }
//! ```

use std::sync::Arc;

use domain::ErrorCode;
use serde_json::{Map, Value as Json};

use commands::service::{Command, Outcome};
use domain::security::Principal;

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

/// The write a hook sees.
pub struct Write<'a> {
    /// Who writes (the caller's user id, profile, roles).
    pub caller: &'a Principal,
    pub object: &'a str,
    pub operation: Operation,
    /// The record's id (`None` for a create that names none).
    pub id: Option<&'a str>,
}

/// Before a write: may change the fields written (empty for a delete), or
/// refuse it with a message (a 400 `validation_error` to the caller).
pub type BeforeHook = Arc<dyn Fn(&Write, &mut Map<String, Json>) -> Result<(), String> + Send + Sync>;
/// After a write committed.
pub type AfterHook = Arc<dyn Fn(&Write, &Outcome) + Send + Sync>;

/// The hooks of one server, each for one object (or every object: `None`).
#[derive(Clone, Default)]
pub struct Hooks {
    before: Vec<(Option<String>, BeforeHook)>,
    after: Vec<(Option<String>, AfterHook)>,
}

impl Hooks {
    pub fn before_write(mut self, object: Option<&str>, hook: impl Fn(&Write, &mut Map<String, Json>) -> Result<(), String> + Send + Sync + 'static) -> Hooks {
        self.before.push((object.map(str::to_string), Arc::new(hook)));
        self
    }

    pub fn after_write(mut self, object: Option<&str>, hook: impl Fn(&Write, &Outcome) + Send + Sync + 'static) -> Hooks {
        self.after.push((object.map(str::to_string), Arc::new(hook)));
        self
    }

    /// Runs the before hooks of a record command, in the order registered.
    pub(crate) fn before(&self, caller: &Principal, command: &mut Command) -> Result<(), ApiError> {
        if self.before.is_empty() {
            return Ok(());
        }
        let mut none = Map::new();
        let (object, operation, id, fields) = match command {
            Command::Create { object, id, data } => (object.as_str(), Operation::Create, id.as_deref(), data),
            Command::Update { object, id, patch, .. } => (object.as_str(), Operation::Update, Some(id.as_str()), patch),
            Command::Delete { object, id, .. } => (object.as_str(), Operation::Delete, Some(id.as_str()), &mut none),
            _ => return Ok(()),
        };
        let write = Write { caller, object, operation, id };
        for (only, hook) in &self.before {
            if only.as_deref().is_none_or(|o| o == object) {
                hook(&write, fields).map_err(|message| ApiError::new(ErrorCode::ValidationError, message))?;
            }
        }
        Ok(())
    }

    /// Runs the after hooks of a committed record write.
    pub(crate) fn after(&self, caller: &Principal, operation: Operation, outcome: &Outcome) {
        let write = Write { caller, object: &outcome.object, operation, id: Some(&outcome.id) };
        for (only, hook) in &self.after {
            if only.as_deref().is_none_or(|o| o == outcome.object) {
                hook(&write, outcome);
            }
        }
    }
}

/// The operation of a record command.
pub(crate) fn operation_of(command: &Command) -> Option<Operation> {
    match command {
        Command::Create { .. } => Some(Operation::Create),
        Command::Update { .. } => Some(Operation::Update),
        Command::Delete { .. } => Some(Operation::Delete),
        _ => None,
    }
}
