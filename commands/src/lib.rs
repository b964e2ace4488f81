//! The write side: command handling and the event stores.
//!
//! - [`store`]: the [`store::EventStore`] trait and its two implementations, the
//!   embedded log file (default) and PostgreSQL. Nothing else writes events.
//! - [`service`]: [`service::CommandService`] validates commands against
//!   metadata and current state (through `domain::record::decide`), stamps
//!   system fields and appends with the expected stream version and the
//!   idempotency key.
//! - [`process`]: the server's own processes (workflow rules, webhooks, jobs):
//!   reactions to committed events that answer with commands.
//! - [`seed`]: loading an app (metadata events, then seed records) through commands.
//! - [`snapshot`]: models saved to files with the position they are current as of
//!   (the write model here, the in-process read models in `projections::snapshot`).
//!
//! Entry points: [`store::open_embedded`], [`store::open_postgres`],
//! [`service::CommandService::start`], [`service::CommandService::execute`].

pub mod clock;
pub mod error;
pub mod kafka;
pub mod process;
pub mod seed;
pub mod service;
pub mod snapshot;
pub mod store;
pub mod trace;

pub use error::{CommandError, StoreError};
