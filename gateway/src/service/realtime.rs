//! Realtime: connections to the hub, subscriptions (record changes and live
//! queries) made with the caller's viewer after the realtime read barrier, and
//! the HTTP sessions and presence the official client's routes use. The
//! WebSocket and GraphQL subscriptions are two wire formats over these.

use std::sync::Arc;

use domain::ErrorCode;
use projections::live::Hub;
pub use projections::live::{Change, Delivery, EventKind, LiveOp, Message, Resume, Spec, Subscribed};
use serde_json::{json, Value as Json};
use tokio::sync::mpsc;

use super::barrier::barrier_on;
use super::caller::Caller;
use super::presence::Parked;
use crate::app::System;
use crate::error::ApiError;

/// Messages buffered per connection before the hub drops it as too slow.
pub const BUFFER: usize = 4_096;

/// A connection to the hub; dropping it ends the connection (its
/// subscriptions are kept a while so the client can resume them).
pub struct Connection {
    hub: Arc<Hub>,
    pub id: u64,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.hub.disconnect(self.id);
    }
}

impl Connection {
    /// Why the hub closed the connection (a slow consumer), if it did.
    pub fn close_reason(&self) -> Option<String> {
        self.hub.close_reason(self.id)
    }
}

/// A new connection buffering at most `capacity` deliveries.
pub fn connect(system: &System, capacity: usize) -> (Connection, mpsc::Receiver<Delivery>) {
    let (id, receiver) = system.hub.connect(capacity);
    (Connection { hub: system.hub.clone(), id }, receiver)
}

/// Subscribes the caller on a connection (or parked, with `None`): the hub
/// first applies everything acknowledged before, so the caller reads its writes.
pub async fn subscribe(system: &System, caller: &Caller, connection: Option<&Connection>, spec: Spec, resume: Resume) -> Result<Subscribed, ApiError> {
    barrier_on(system, &system.realtime_handle, None).await?;
    Ok(system.hub.subscribe(connection.map(|c| c.id), caller.viewer.clone(), spec, resume)?)
}

/// Ends a subscription; whether it existed.
pub fn unsubscribe(system: &System, id: &str) -> bool {
    system.hub.unsubscribe(id)
}

/// The position the realtime hub has reached.
pub fn position(system: &System) -> u64 {
    system.realtime_handle.checkpoint()
}

/// Claims the subscriptions an HTTP session parked, onto a connection;
/// returns the errors of those that could not be claimed, by id.
pub fn claim_session(system: &System, connection: &Connection, session: &str) -> Vec<(String, ApiError)> {
    let mut failed = Vec::new();
    for (id, after) in take_session(system, session) {
        if let Err(error) = system.hub.claim(connection.id, &id, Some(after)) {
            failed.push((id, ApiError::from(error)));
        }
    }
    failed
}

fn take_session(system: &System, session: &str) -> Vec<(String, u64)> {
    system.realtime.parked.lock().unwrap_or_else(|p| p.into_inner()).remove(session).map(|p| p.subscriptions).unwrap_or_default()
}

/// Opens an HTTP session: `{connectionId, transport, url}`.
pub fn open_session(system: &System) -> Json {
    let session = uuid::Uuid::new_v4().to_string();
    {
        let mut parked = system.realtime.parked.lock().unwrap_or_else(|p| p.into_inner());
        // Sessions never claimed by a socket go when their subscriptions would (the hub's retention).
        parked.retain(|_, p| p.since.elapsed() < projections::live::RETAIN);
        parked.insert(session.clone(), Parked { since: std::time::Instant::now(), subscriptions: Vec::new() });
    }
    json!({"connectionId": session, "transport": "websocket", "url": format!("/api/v1/realtime?connectionId={session}")})
}

/// Ends an HTTP session and its parked subscriptions.
pub fn close_session(system: &System, session: &str) {
    for (id, _) in take_session(system, session) {
        system.hub.unsubscribe(&id);
    }
}

/// Subscribes over HTTP, parked on `session` until its WebSocket claims it.
pub async fn subscribe_parked(system: &System, caller: &Caller, session: Option<&str>, spec: Spec) -> Result<Subscribed, ApiError> {
    let subscribed = subscribe(system, caller, None, spec, Resume::default()).await?;
    if let Some(session) = session {
        let mut parked = system.realtime.parked.lock().unwrap_or_else(|p| p.into_inner());
        let Some(list) = parked.get_mut(session) else {
            system.hub.unsubscribe(&subscribed.id);
            return Err(ApiError::new(ErrorCode::ResourceNotFound, format!("no realtime connection '{session}': call connect first")));
        };
        list.subscriptions.push((subscribed.id.to_string(), subscribed.position));
    }
    Ok(subscribed)
}

/// Sets the caller's presence on a channel.
pub fn set_presence(system: &System, caller: &Caller, channel: &str, status: &str, metadata: Option<&Json>) -> Result<(), ApiError> {
    if !["online", "away", "busy", "offline"].contains(&status) {
        return Err(ApiError::new(ErrorCode::InvalidField, format!("presence status '{status}' is not one of online, away, busy, offline")));
    }
    let user = caller.actor().to_string();
    let entry = json!({"userId": user, "status": status, "lastSeen": commands::clock::now().to_rfc3339(), "metadata": metadata});
    system.realtime.presence.lock().unwrap_or_else(|p| p.into_inner()).entry(channel.to_string()).or_default().insert(user, entry);
    Ok(())
}

/// Who is present on a channel.
pub fn presence(system: &System, channel: &str) -> Vec<Json> {
    let presence = system.realtime.presence.lock().unwrap_or_else(|p| p.into_inner());
    presence.get(channel).map(|m| m.values().cloned().collect()).unwrap_or_default()
}
