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
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;

use super::protocol::{self, Request};
use crate::app::System;
use crate::error::ApiError;
use crate::extract::QueryPairs;
use crate::service::realtime::{self, Connection, BUFFER};
use crate::service::Caller;
use crate::wire::READ_BUFFER;

/// How long one frame may take to go out.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest client frame.
const MAX_FRAME: usize = 1 << 20;

pub(crate) async fn upgrade(State(system): State<Arc<System>>, caller: Caller, mut params: QueryPairs, ws: WebSocketUpgrade) -> Response {
    let session = params.take("connectionId");
    ws.max_message_size(MAX_FRAME).read_buffer_size(READ_BUFFER).on_upgrade(move |socket| run(system, socket, session, caller))
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

async fn run(system: Arc<System>, socket: WebSocket, session: Option<String>, caller: Caller) {
    let (connection, mut deliveries) = realtime::connect(&system, BUFFER);
    let (mut sink, mut stream) = socket.split();
    // Subscriptions made over HTTP for this session start flowing here.
    if let Some(session) = session {
        for (id, error) in realtime::claim_session(&system, &connection, &session) {
            if !send_all(&mut sink, vec![error_frame(Some(&id), &error)]).await {
                return;
            }
        }
    }
    loop {
        tokio::select! {
            biased;
            incoming = stream.next() => {
                let reply = match incoming {
                    Some(Ok(WsMessage::Text(text))) => handle(&system, &connection, &caller, &text).await,
                    Some(Ok(WsMessage::Binary(_))) => Some(error_frame(None, &ApiError::new(domain::ErrorCode::ValidationError, "send JSON text frames"))),
                    Some(Ok(WsMessage::Close(_))) | None => break,
                    Some(Err(_)) => {
                        // Not a WebSocket frame: a protocol error, said with its code.
                        let frame = CloseFrame { code: 1002, reason: "protocol error".into() };
                        let _ = tokio::time::timeout(SEND_TIMEOUT, sink.send(WsMessage::Close(Some(frame)))).await;
                        break;
                    }
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
                    let mut reason = connection.close_reason().unwrap_or_else(|| "closed by the server".into());
                    reason.truncate(120);
                    let frame = CloseFrame { code: 1013, reason: reason.into() };
                    let _ = tokio::time::timeout(SEND_TIMEOUT, sink.send(WsMessage::Close(Some(frame)))).await;
                    break;
                }
            }
        }
    }
}

async fn handle(system: &System, connection: &Connection, caller: &Caller, text: &str) -> Option<String> {
    let request = match protocol::parse(text) {
        Ok(request) => request,
        Err(error) => return Some(error_frame(None, &error)),
    };
    match request {
        Request::Ping => Some(json!({"type": "pong", "position": realtime::position(system)}).to_string()),
        Request::Unsubscribe { id } => {
            let removed = realtime::unsubscribe(system, &id);
            Some(json!({"type": "unsubscribed", "id": id, "found": removed}).to_string())
        }
        Request::Subscribe { spec, resume } => {
            let id = resume.id.clone();
            match realtime::subscribe(system, caller, Some(connection), spec, resume).await {
                // The reply goes out before anything the subscription delivers (the
                // deliveries wait in the buffer until this frame is sent).
                Ok(subscribed) => Some(json!({"type": "subscribed", "id": &*subscribed.id, "position": subscribed.position}).to_string()),
                Err(error) => Some(error_frame(id.as_deref(), &error)),
            }
        }
    }
}
