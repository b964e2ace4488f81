//! The GraphQL WebSocket (graphql-transport-ws, and the older graphql-ws),
//! with the protocol's rules that async-graphql leaves out: a subscribe
//! before `connection_init` closes with 4401, a second subscribe with an id
//! in use closes with 4409, and a connection holds at most
//! [`MAX_SUBSCRIPTIONS`] subscriptions (one more gets an error message for
//! its id; the others go on). A frame that is not the protocol closes with
//! 1002 (async-graphql's own answer).

use std::collections::HashSet;

use async_graphql::http::{ClientMessage, WebSocket as Protocol, WebSocketProtocols, WsMessage};
use async_graphql::{Data, Executor};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::mpsc;

/// Subscriptions one GraphQL socket may hold (each is a connection of the
/// realtime hub with its own buffer).
pub const MAX_SUBSCRIPTIONS: usize = 200;

/// What the client has done so far on this socket.
#[derive(Default)]
struct Gate {
    initialised: bool,
    active: HashSet<String>,
    /// Why the socket is closed by us (code, reason), once it is.
    close: Option<(u16, String)>,
}

enum Step {
    Pass(Box<serde_json::Result<ClientMessage>>),
    Drop,
    End,
}

impl Gate {
    fn check(&mut self, message: serde_json::Result<ClientMessage>, refusals: &mpsc::UnboundedSender<String>) -> Step {
        match &message {
            Ok(ClientMessage::ConnectionInit { .. }) => self.initialised = true,
            Ok(ClientMessage::Start { id, .. }) => {
                if !self.initialised {
                    self.close = Some((4401, "Unauthorized: send connection_init first".into()));
                    return Step::End;
                }
                if self.active.contains(id) {
                    self.close = Some((4409, format!("Subscriber for {id} already exists")));
                    return Step::End;
                }
                if self.active.len() >= MAX_SUBSCRIPTIONS {
                    let error = json!({"message": format!("a connection holds at most {MAX_SUBSCRIPTIONS} subscriptions"), "extensions": {"code": "rate_limit_exceeded"}});
                    let _ = refusals.send(json!({"type": "error", "id": id, "payload": [error]}).to_string());
                    return Step::Drop;
                }
                self.active.insert(id.clone());
            }
            Ok(ClientMessage::Stop { id }) => {
                self.active.remove(id);
            }
            _ => {}
        }
        Step::Pass(Box::new(message))
    }
}

/// The protocol a client asked for (`Sec-WebSocket-Protocol`), if supported.
pub fn protocol_of(headers: &axum::http::HeaderMap) -> Option<WebSocketProtocols> {
    let offered = headers.get(axum::http::header::SEC_WEBSOCKET_PROTOCOL)?.to_str().ok()?;
    offered.split(',').find_map(|p| p.trim().parse().ok())
}

/// Serves one upgraded socket until either side ends it.
pub async fn serve<E: Executor>(socket: WebSocket, executor: E, protocol: WebSocketProtocols, data: Data) {
    let gate = std::sync::Arc::new(std::sync::Mutex::new(Gate::default()));
    let (refusals_tx, mut refusals) = mpsc::unbounded_channel::<String>();
    let (mut sink, stream) = socket.split();
    let input = {
        let gate = gate.clone();
        stream
            .map(move |frame| {
                let mut gate = gate.lock().expect("gate lock");
                match frame {
                    Ok(Message::Text(text)) => gate.check(ClientMessage::from_bytes(text.as_bytes()), &refusals_tx),
                    Ok(Message::Binary(bytes)) => gate.check(ClientMessage::from_bytes(&bytes[..]), &refusals_tx),
                    Ok(Message::Ping(_) | Message::Pong(_)) => Step::Drop,
                    Ok(Message::Close(_)) => Step::End,
                    Err(_) => {
                        gate.close = Some((1002, "not a WebSocket frame".into()));
                        Step::End
                    }
                }
            })
            .take_while(|step| std::future::ready(!matches!(step, Step::End)))
            .filter_map(|step| {
                std::future::ready(match step {
                    Step::Pass(message) => Some(*message),
                    _ => None,
                })
            })
    };
    let mut output = Protocol::from_message_stream(executor, input, protocol).connection_data(data);
    loop {
        let message = tokio::select! {
            message = output.next() => message,
            Some(refusal) = refusals.recv() => Some(WsMessage::Text(refusal)),
        };
        match message {
            Some(WsMessage::Text(text)) => {
                // The server ended a subscription: its id is free again.
                if text.contains("\"complete\"") {
                    if let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) {
                        if value["type"] == "complete" {
                            if let Some(id) = value["id"].as_str() {
                                gate.lock().expect("gate lock").active.remove(id);
                            }
                        }
                    }
                }
                let text = over_budget(&text).unwrap_or(text);
                if sink.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
            }
            Some(WsMessage::Close(code, reason)) => {
                let _ = sink.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                return;
            }
            None => {
                let close = gate.lock().expect("gate lock").close.take();
                if let Some((code, reason)) = close {
                    let _ = sink.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                }
                return;
            }
        }
    }
}

/// An answer that went over its byte budget ([`super::cost::ResponseBudget`])
/// goes out as its error alone, as over HTTP, not as the partial data.
fn over_budget(text: &str) -> Option<String> {
    let code = domain::ErrorCode::MaxRecordsExceeded.as_str();
    if text.len() < 1 << 20 || !text.contains(code) {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let error = value["payload"]["errors"].as_array()?.iter().find(|e| e["extensions"]["code"] == code)?.clone();
    Some(json!({"id": value["id"], "type": value["type"], "payload": {"data": null, "errors": [error]}}).to_string())
}
