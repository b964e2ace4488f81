//! The realtime wire protocol (JSON text frames).
//!
//! Client to server:
//! - `{"type":"subscribe", "id"?, "object"?, "events"?: ["record.created", ...], "filter"?, "fields"?, "after"?}`:
//!   record changes; `after` (a log position) replays what came after it.
//!   With the `id` of a kept subscription it resumes that one.
//! - `{"type":"live", "id"?, "object", "query"?: QueryAST, "after"?}`: a live query.
//! - `{"type":"unsubscribe", "id"}`, `{"type":"ping"}`.
//!
//! Server to client: `subscribed {id, position}`, `unsubscribed {id}`, `pong {position}`,
//! `error {id?, error}` (the error object of the REST envelope), record events
//! in the spec's wire shape (`{type: "record.created", id, object, action,
//! payload: {id, record, previous, changes}, timestamp, userId}`) plus
//! `subscriptionId` and `position`, and for live queries `snapshot {subscriptionId,
//! position, records, total, hasMore}` then `ops {subscriptionId, position, ops, total, hasMore}`
//! with ops `{op: remove|insert|update|move, id, index?, record?}`.

use crate::service::realtime::{Delivery, EventKind, LiveOp, Message, Resume, Spec};
use domain::query::{parse_filter, parse_query, Query};
use domain::value::record_to_json;
use domain::{DomainError, ErrorCode};
use serde_json::{json, Value as Json};

use crate::error::ApiError;

/// A parsed client message.
pub(crate) enum Request {
    Subscribe { spec: Spec, resume: Resume },
    Unsubscribe { id: String },
    Ping,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::ValidationError, message)
}

fn text(body: &Json, key: &str) -> Result<Option<String>, ApiError> {
    match body.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(bad(format!("'{key}' must be a string, got {other}"))),
    }
}

fn position(body: &Json, key: &str) -> Result<Option<u64>, ApiError> {
    match body.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
        Some(Json::String(s)) if s.parse::<u64>().is_ok() => Ok(s.parse().ok()),
        Some(other) => Err(bad(format!("'{key}' must be a log position (a whole number), got {other}"))),
    }
}

fn strings(body: &Json, key: &str) -> Result<Vec<String>, ApiError> {
    match body.get(key) {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::String(s)) => Ok(vec![s.clone()]),
        Some(Json::Array(items)) => items.iter().map(|i| i.as_str().map(str::to_string).ok_or_else(|| bad(format!("'{key}' must list strings")))).collect(),
        Some(other) => Err(bad(format!("'{key}' must be a list of strings, got {other}"))),
    }
}

/// The object a subscription names: `object`, or `channel` (the client's name); `*` means every object.
fn object_of(body: &Json) -> Result<Option<String>, ApiError> {
    let object = match text(body, "object")? {
        Some(o) => Some(o),
        None => text(body, "channel")?,
    };
    Ok(object.filter(|o| !o.is_empty() && o != "*"))
}

/// A record-changes spec from `{object|channel, events, filter, fields}`.
pub(crate) fn changes_spec(body: &Json) -> Result<Spec, ApiError> {
    let object = object_of(body)?;
    let kinds = strings(body, "events")?
        .iter()
        .map(|name| {
            EventKind::parse(name)
                .ok_or_else(|| bad(format!("unknown event type '{name}': use record.created, record.updated, record.deleted or field.changed")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let filter = match body.get("filter").or_else(|| body.get("where")) {
        None | Some(Json::Null) => None,
        Some(json) => Some(parse_filter(json).map_err(ApiError::from)?),
    };
    Ok(Spec::Changes { object, kinds, filter, fields: strings(body, "fields")? })
}

/// A live-query spec from `{object, query}` (the query in any accepted QueryAST form).
pub(crate) fn live_spec(body: &Json) -> Result<Spec, ApiError> {
    let Some(object) = object_of(body)? else {
        return Err(ApiError::from(DomainError::InvalidQuery("a live query needs an object".into())));
    };
    let query: Query = match body.get("query") {
        None | Some(Json::Null) => Query::new(&object),
        Some(json) => parse_query(&object, json)?,
    };
    Ok(Spec::Live { query: Box::new(query) })
}

pub(crate) fn parse(text_frame: &str) -> Result<Request, ApiError> {
    let body: Json = serde_json::from_str(text_frame).map_err(|e| bad(format!("malformed JSON: {e}")))?;
    if !body.is_object() {
        return Err(bad("a message must be a JSON object with a 'type'"));
    }
    let resume = || -> Result<Resume, ApiError> { Ok(Resume { id: text(&body, "id")?, after: position(&body, "after")? }) };
    match text(&body, "type")?.as_deref() {
        Some("subscribe") => Ok(Request::Subscribe { spec: changes_spec(&body)?, resume: resume()? }),
        Some("live") => Ok(Request::Subscribe { spec: live_spec(&body)?, resume: resume()? }),
        Some("unsubscribe") => Ok(Request::Unsubscribe { id: text(&body, "id")?.ok_or_else(|| bad("unsubscribe needs the subscription 'id'"))? }),
        Some("ping") => Ok(Request::Ping),
        Some(other) => Err(bad(format!("unknown message type '{other}': use subscribe, live, unsubscribe or ping"))),
        None => Err(bad("a message needs a 'type'")),
    }
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn op_json(op: &LiveOp) -> Json {
    match op {
        LiveOp::Remove { id } => json!({"op": "remove", "id": id}),
        LiveOp::Insert { id, index, record } => json!({"op": "insert", "id": id, "index": index, "record": record_to_json(record)}),
        LiveOp::Update { id, index, record } => json!({"op": "update", "id": id, "index": index, "record": record_to_json(record)}),
        LiveOp::Move { id, index } => json!({"op": "move", "id": id, "index": index}),
    }
}

/// A delivery as a text frame. A record event reuses the change's payload,
/// serialised once for every subscriber.
pub(crate) fn render(delivery: &Delivery) -> String {
    match &delivery.message {
        Message::Event { kind, change } => {
            // Everything but the subscription id is the same for every subscriber: built once.
            let tail = change.cached(kind.slot(), || {
                format!(
                    r#""id":"{}","object":{},"action":"{}","position":{},"timestamp":"{}","userId":{},"payload":{}}}"#,
                    change.event_uuid(),
                    quoted(&change.object),
                    change.kind.action(),
                    change.position,
                    change.timestamp(),
                    quoted(&change.actor),
                    change.payload_json(),
                )
            });
            let mut frame = String::with_capacity(tail.len() + delivery.subscription.len() + 48);
            frame.push_str(r#"{"type":""#);
            frame.push_str(kind.name());
            frame.push_str(r#"","subscriptionId":"#);
            frame.push_str(&quoted(&delivery.subscription));
            frame.push(',');
            frame.push_str(tail);
            frame
        }
        Message::Snapshot(s) => json!({
            "type": "snapshot",
            "subscriptionId": &*delivery.subscription,
            "position": s.position,
            "records": s.records.iter().map(|r| record_to_json(r)).collect::<Vec<_>>(),
            "total": s.total,
            "hasMore": s.has_more,
        })
        .to_string(),
        Message::Ops(o) => json!({
            "type": "ops",
            "subscriptionId": &*delivery.subscription,
            "position": o.position,
            "ops": o.ops.iter().map(op_json).collect::<Vec<_>>(),
            "total": o.total,
            "hasMore": o.has_more,
        })
        .to_string(),
    }
}
