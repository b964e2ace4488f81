//! Cross-crate integration tests, one binary (see STYLE.md): the event store
//! suite run against both stores, store-specific crash and ordering tests,
//! and command handling end to end.
//!
//! PostgreSQL tests are not optional: they need the server that `ops/test`
//! makes sure is running, and fail with a message naming it otherwise.

mod analytics;
mod analytics_models;
mod audit;
mod audit_models;
mod automation;
mod client_compat;
mod common;
mod embedded_recovery;
mod fuzz;
mod graphql;
mod hardening;
mod hooks;
mod outbound_tls;
mod partitioned;
mod planner;
mod postgres_ordering;
mod read_models;
mod realtime;
mod rebuild;
mod replay;
mod rest;
mod search;
mod security;
mod service;
mod sharing;
mod store_suite;
mod tidy;
mod upcast;
mod writer_nodes;
