//! The service layer: every operation of every surface, transport-neutral.
//! REST, GraphQL and realtime parse, call an operation here with the caller,
//! and render what it returns; none of them reaches a read model, the write
//! model or a store (a tidy test checks). Every operation takes a [`Caller`]
//! (made only by [`Caller::resolve`]), owns the read barrier and the locks,
//! and applies the caller's rights: reads through the caller's `Viewer`
//! (the read models compile the rules into the query), writes through the
//! caller's `WriteGuard` (checked under the command service's lock).
//!
//! Rooms: [`caller`] (who), [`sessions`], [`tokens`], [`limiter`] and [`auth`]
//! (authentication), [`api_keys`], [`permissions`] (checks the client asks
//! for), [`barrier`] (read your writes), [`writes`] (what a caller's write
//! carries; [`hooks`]: Rust code an embedding app runs around it), [`data`] (records: get, query, create, update, delete, batch),
//! [`search`], [`audit`], [`analytics`], [`meta`] (definitions),
//! [`projection_admin`] (status, metrics, rebuilds), [`automation`] (rules, jobs,
//! webhooks), [`workflow_state`] (state machines: config, state, transitions), [`realtime`] (subscriptions).

pub mod analytics;
pub mod api_keys;
pub mod approvals;
pub mod audit;
pub mod auth;
pub mod automation;
pub mod barrier;
pub mod batch;
pub mod caller;
pub mod data;
pub mod flow_host;
pub mod hooks;
pub mod limiter;
pub mod meta;
pub mod openapi;
pub mod permissions;
pub mod presence;
pub mod projection_admin;
pub mod realtime;
pub mod search;
pub mod sessions;
pub mod token_cache;
pub mod tokens;
pub mod workflow_state;
pub mod writes;

pub use caller::Caller;
