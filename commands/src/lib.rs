//! The write side: command handling and the event stores.
//!
//! - [`store`]: the [`store::EventStore`] trait and its two implementations, the
//!   embedded log file (default) and PostgreSQL. Nothing else writes events.
//! - [`service`]: [`service::CommandService`] validates commands against
//!   metadata and current state (through `domain::record::decide`), stamps
//!   system fields and appends with the expected stream version and the
//!   idempotency key.
//! - [`seed`]: loading an app (metadata events, then seed records) through commands.
//!
//! Entry points: [`store::open_embedded`], [`store::open_postgres`],
//! [`service::CommandService::start`], [`service::CommandService::execute`].

pub mod clock;
pub mod error;
pub mod seed;
pub mod service;
pub mod store;

pub use error::{CommandError, StoreError};
