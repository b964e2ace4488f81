//! Realtime: record changes and live queries, fanned out from committed events.
//!
//! The [`Hub`] is a projection like any other (it does not care where events
//! come from): it keeps its own in-process query model, and for each event it
//! applies it knows the record before and after. It then
//! - hands each matching [`Spec::Changes`] subscription the change
//!   (`record.created|updated|deleted`, `field.changed`), and
//! - re-runs each [`Spec::Live`] query whose object the batch touched and
//!   sends only the difference ([`LiveOp`]s) from the last result.
//!
//! Delivery never blocks the append path or the other subscribers: every
//! connection has a bounded buffer, and a connection that lets it fill is
//! closed with a reason ([`Hub::close_reason`]). Subscriptions outlive their
//! connection for a while, so a client that reconnects resumes after the last
//! position it saw: changes are replayed from a ring of recent changes, live
//! queries from the subscription's own history of ops; no gap, no duplicate.

mod change;
mod diff;
mod hub;
mod spec;

pub use change::{Change, ChangeKind};
pub use diff::{apply as apply_ops, diff};
pub use hub::{Hub, HubStats, LiveError, LiveProjection, Resume, Subscribed, MAX_SUBSCRIPTIONS, RETAIN};
pub use spec::{Delivery, EventKind, LiveOp, Message, OpsMessage, Snapshot, Spec};
