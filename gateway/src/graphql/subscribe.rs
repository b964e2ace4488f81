//! Subscription resolvers: record changes and live queries, served by the
//! realtime hub (the same mechanism as the realtime WebSocket).

use async_graphql::dynamic::{FieldValue, ResolverContext};
use futures_util::stream::{self, BoxStream, StreamExt};
use serde_json::Value as Json;

use super::resolve::{context, gql, Result};
use super::values::{arg_json, filter_of, position_of, sort_of, string_of};
use crate::error::ApiError;
use crate::service::realtime::{self, Delivery, EventKind, Resume, Spec};

fn kinds(ctx: &ResolverContext<'_>) -> Result<Vec<EventKind>> {
    let Some(Json::Array(items)) = arg_json(&ctx.args, "events").map_err(gql)? else { return Ok(Vec::new()) };
    Ok(items
        .iter()
        .filter_map(Json::as_str)
        .filter_map(|name| match name {
            "CREATED" => Some(EventKind::Created),
            "UPDATED" => Some(EventKind::Updated),
            "DELETED" => Some(EventKind::Deleted),
            "FIELD_CHANGED" => Some(EventKind::FieldChanged),
            _ => None,
        })
        .collect())
}

fn strings(ctx: &ResolverContext<'_>, name: &str) -> Result<Vec<String>> {
    Ok(match arg_json(&ctx.args, name).map_err(gql)? {
        Some(Json::Array(items)) => items.iter().filter_map(Json::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    })
}

/// Subscribes on a fresh hub connection and streams its deliveries; when the
/// hub drops the connection (a slow consumer) the stream ends with the reason as an error.
async fn open<'a>(ctx: &ResolverContext<'a>, spec: Spec) -> Result<BoxStream<'a, Result<FieldValue<'a>>>> {
    let (system, request) = context(ctx)?;
    let resume = Resume { id: string_of(&ctx.args, "resumeId").map_err(gql)?, after: position_of(&ctx.args, "after").map_err(gql)? };
    // The connection ends (the hub forgets it) when the stream is dropped.
    let (connection, receiver) = realtime::connect(system, realtime::BUFFER);
    realtime::subscribe(system, &request.caller, Some(&connection), spec, resume).await.map_err(gql)?;
    let stream = stream::unfold(Some((receiver, connection)), |state| async move {
        let (mut receiver, connection) = state?;
        match receiver.recv().await {
            Some(delivery) => Some((Ok(FieldValue::owned_any::<Delivery>(delivery)), Some((receiver, connection)))),
            None => {
                let reason = connection.close_reason().unwrap_or_else(|| "the subscription ended".into());
                Some((Err(gql(ApiError::new(domain::ErrorCode::ServiceUnavailable, reason))), None))
            }
        }
    });
    Ok(stream.boxed())
}

/// `objectChanged(filter, where, events, fields, after, resumeId)`.
pub async fn changes<'a>(ctx: &ResolverContext<'a>, object: &str) -> Result<BoxStream<'a, Result<FieldValue<'a>>>> {
    let spec =
        Spec::Changes { object: Some(object.to_string()), kinds: kinds(ctx)?, filter: filter_of(&ctx.args).map_err(gql)?, fields: strings(ctx, "fields")? };
    open(ctx, spec).await
}

/// `objectLive(filter, where, sort, limit, offset, after, resumeId)`.
pub async fn live<'a>(ctx: &ResolverContext<'a>, object: &str) -> Result<BoxStream<'a, Result<FieldValue<'a>>>> {
    let mut query = domain::query::Query::new(object);
    query.filter = filter_of(&ctx.args).map_err(gql)?;
    query.order_by = sort_of(&ctx.args).map_err(gql)?;
    query.limit = position_of(&ctx.args, "limit").map_err(gql)?;
    query.offset = position_of(&ctx.args, "offset").map_err(gql)?.unwrap_or(0);
    open(ctx, Spec::Live { query: Box::new(query) }).await
}
