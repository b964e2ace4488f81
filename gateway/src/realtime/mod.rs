//! The ObjectStack realtime surface: a WebSocket at the discovery route
//! `realtime` (`/api/v1/realtime`), and the HTTP routes the official client
//! calls (`connect`, `subscribe`, `unsubscribe`, `disconnect`, `presence`).
//!
//! Everything is served by the service layer (`service::realtime`, over the hub): subscriptions to
//! record changes (`record.created|updated|deleted`, `field.changed`, by
//! object, event types, filter and fields) and live queries (the current
//! result, then only the changes). The wire protocol is in [`protocol`].

pub mod http;
pub(crate) mod protocol;
pub(crate) mod socket;
