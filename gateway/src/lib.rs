//! The gateway: HTTP (REST) over the command service and the read models,
//! configuration, and the `objectstack` binary.
//!
//! No business rules live here: each handler extracts, calls `commands` or
//! `projections`, and maps errors through [`error::ApiError`], the one place
//! where error codes become HTTP statuses.
//!
//! Entry points: [`app::start`] builds the running system from [`config::Settings`];
//! [`server::serve`] serves it on a listener the caller owns until the caller's
//! shutdown future resolves.

pub mod admin;
pub mod app;
pub mod app_file;
pub mod change_plan;
pub mod config;
pub mod config_file;
pub mod console;
mod edge_errors;
pub mod error;
mod extract;
pub mod graphql;
mod listen;
pub mod metrics;
pub mod projector;
pub mod realtime;
pub mod relay;
pub mod replay;
mod request_info;
mod routes;
pub mod server;
pub mod service;
pub mod snapshots;
pub mod status;
pub mod telemetry;
mod trace_links;
mod wire;
