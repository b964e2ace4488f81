//! The state of the realtime HTTP routes: sessions (subscriptions made over
//! HTTP, parked until a WebSocket claims them) and presence per channel. In
//! memory, per node.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use serde_json::Value as Json;

/// A session's subscriptions waiting for their WebSocket: (id, position made at).
pub(crate) struct Parked {
    pub since: Instant,
    pub subscriptions: Vec<(String, u64)>,
}

/// Sessions (subscriptions waiting for their WebSocket) and presence.
#[derive(Default)]
pub struct Sessions {
    /// session id -> its parked subscriptions.
    pub(crate) parked: Mutex<HashMap<String, Parked>>,
    /// channel -> user -> presence.
    pub(crate) presence: Mutex<HashMap<String, HashMap<String, Json>>>,
}
