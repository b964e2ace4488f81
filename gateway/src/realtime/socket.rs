//! One WebSocket connection: client messages in, deliveries out.
//!
//! Deliveries come from the hub through a bounded buffer; the hub closes a
//! connection that lets it fill (code 1013 with the reason), and a send that
//! makes no progress for [`SEND_TIMEOUT`] ends the connection too, so a dead
//! peer never holds anything up.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket};
use axum::extract::{State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;

use super::protocol::{self, Request};
use crate::app::System;
use crate::error::ApiError;
use crate::extract::QueryPairs;
use crate::routes::support::barrier_on;
use crate::service::Caller;

/// Messages buffered per connection before the hub drops it as too slow.
pub const BUFFER: usize = 4_096;
/// How long one frame may take to go out.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest client frame.
const MAX_FRAME: usize = 1 << 20;
/// Read buffer per socket. Clients send little; tungstenite zero-fills the
/// whole buffer before each read, so its 128 KiB default costs a 128 KiB
/// memset per wake-up (a quarter of the server's CPU at 10k subscribers).
pub const READ_BUFFER: usize = 4 << 10;

pub(crate) async fn upgrade(State(system): State<Arc<System>>, caller: Caller, headers: HeaderMap, mut params: QueryPairs, ws: WebSocketUpgrade) -> Response {
    let session = params.take("connectionId");
    let viewer = caller.viewer;
    ws.max_message_size(MAX_FRAME).read_buffer_size(READ_BUFFER).on_upgrade(move |socket| run(system, socket, session, viewer, headers))
}

/// Queues frames and flushes once. A timer is only armed when the socket
/// cannot take the frames at once (the common case needs none).
async fn send_all(sink: &mut futures_util::stream::SplitSink<WebSocket, WsMessage>, frames: Vec<String>) -> bool {
    let all = async {
        for frame in frames {
            sink.feed(WsMessage::Text(frame.into())).await?;
        }
        sink.flush().await
    };
    let mut all = std::pin::pin!(all);
    match futures_util::poll!(all.as_mut()) {
        std::task::Poll::Ready(result) => result.is_ok(),
        std::task::Poll::Pending => matches!(tokio::time::timeout(SEND_TIMEOUT, all).await, Ok(Ok(()))),
    }
}

fn error_frame(id: Option<&str>, error: &ApiError) -> String {
    json!({"type": "error", "id": id, "error": error.body()}).to_string()
}

async fn run(system: Arc<System>, socket: WebSocket, session: Option<String>, viewer: projections::Viewer, headers: HeaderMap) {
    let (connection, mut deliveries) = system.hub.connect(BUFFER);
    let (mut sink, mut stream) = socket.split();
    // Subscriptions made over HTTP for this session start flowing here.
    if let Some(session) = session {
        for (id, after) in system.realtime.take_session(&session) {
            if let Err(error) = system.hub.claim(connection, &id, Some(after)) {
                let error = ApiError::from(error);
                if !send_all(&mut sink, vec![error_frame(Some(&id), &error)]).await {
                    system.hub.disconnect(connection);
                    return;
                }
            }
        }
    }
    loop {
        tokio::select! {
            biased;
            incoming = stream.next() => {
                let reply = match incoming {
                    Some(Ok(WsMessage::Text(text))) => handle(&system, connection, &viewer, &headers, &text).await,
                    Some(Ok(WsMessage::Binary(_))) => Some(error_frame(None, &ApiError::new(domain::ErrorCode::ValidationError, "send JSON text frames"))),
                    Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => None,
                };
                if let Some(reply) = reply {
                    if !send_all(&mut sink, vec![reply]).await {
                        break;
                    }
                }
            }
            delivery = deliveries.recv() => match delivery {
                Some(delivery) => {
                    // Whatever else is already waiting goes out with it, in one flush.
                    let mut frames = vec![protocol::render(&delivery)];
                    while frames.len() < 64 {
                        let Ok(more) = deliveries.try_recv() else { break };
                        frames.push(protocol::render(&more));
                    }
                    if !send_all(&mut sink, frames).await {
                        break;
                    }
                }
                None => {
                    let reason = system.hub.close_reason(connection).unwrap_or_else(|| "closed by the server".into());
                    let mut reason_text = reason;
                    reason_text.truncate(120);
                    let frame = CloseFrame { code: 1013, reason: reason_text.into() };
                    let _ = tokio::time::timeout(SEND_TIMEOUT, sink.send(WsMessage::Close(Some(frame)))).await;
                    break;
                }
            }
        }
    }
    system.hub.disconnect(connection);
}

async fn handle(system: &System, connection: u64, viewer: &projections::Viewer, headers: &HeaderMap, text: &str) -> Option<String> {
    let request = match protocol::parse(text) {
        Ok(request) => request,
        Err(error) => return Some(error_frame(None, &error)),
    };
    match request {
        Request::Ping => Some(json!({"type": "pong", "position": system.realtime_handle.checkpoint()}).to_string()),
        Request::Unsubscribe { id } => {
            let removed = system.hub.unsubscribe(&id);
            Some(json!({"type": "unsubscribed", "id": id, "found": removed}).to_string())
        }
        Request::Subscribe { spec, resume } => {
            let id = resume.id.clone();
            // Read your writes: the hub first applies everything acknowledged before this message.
            if let Err(error) = barrier_on(system, &system.realtime_handle, headers, None).await {
                return Some(error_frame(id.as_deref(), &error));
            }
            match system.hub.subscribe(Some(connection), viewer.clone(), spec, resume) {
                // The reply goes out before anything the subscription delivers (the
                // deliveries wait in the buffer until this frame is sent).
                Ok(subscribed) => Some(json!({"type": "subscribed", "id": &*subscribed.id, "position": subscribed.position}).to_string()),
                Err(error) => Some(error_frame(id.as_deref(), &ApiError::from(error))),
            }
        }
    }
}
