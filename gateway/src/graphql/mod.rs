//! GraphQL at the discovery route `graphql` (`/api/v1/graphql`): a schema
//! generated at run time from the metadata ([`build`]), regenerated when an
//! object definition changes (no restart), served over HTTP POST, with
//! GraphiQL on GET and subscriptions over WebSocket (graphql-transport-ws,
//! and the legacy graphql-ws) on the same path.
//!
//! Resolvers use the same read path, commands and error codes as REST
//! ([`resolve`]); subscriptions use the realtime hub ([`subscribe`]). Every
//! error carries `extensions.code` from the one error table.

pub mod build;
pub mod cache;
mod cost;
pub(crate) mod page;
mod resolve;
mod socket;
mod subscribe;
pub mod types;
mod values;

use std::sync::Arc;

use async_graphql::dynamic::Schema;
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use axum::extract::{FromRequestParts, Request, State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use domain::ErrorCode;

pub use self::resolve::RequestInfo;
use crate::app::System;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::service::Caller;

pub use self::cache::Schemas;

/// The schema of the current metadata as a caller may see it (objects it may
/// not use are left out, fields it may not read are not described), generated
/// on first use after a change and shared by callers with the same view.
pub fn current(system: &System, caller: &Caller) -> Result<Arc<Schema>, ApiError> {
    let (version, view) = crate::service::meta::api_key(system, caller);
    if let Some(schema) = system.graphql.get(version, &view) {
        return Ok(schema);
    }
    let (version, catalog) = crate::service::meta::api_catalog(system, caller);
    let schema = Arc::new(build::build(&catalog).map_err(|error| {
        tracing::error!(%error, "cannot generate the GraphQL schema");
        ApiError::new(ErrorCode::InternalError, format!("the GraphQL schema cannot be generated from the metadata: {error}"))
    })?);
    system.graphql.set(version, view, schema.clone());
    Ok(schema)
}

/// The SDL of the schema generated for a catalog (for snapshots and `GET /api/v1/graphql/schema`).
pub fn sdl(catalog: &domain::metadata::Catalog) -> Result<String, String> {
    build::build(catalog).map(|s| s.sdl()).map_err(|e| e.to_string())
}

/// Reads wait for this node's acknowledged writes, and the schema for its metadata.
async fn barriers(system: &System, headers: &HeaderMap) -> Result<(), ApiError> {
    let min = crate::wire::min_position(headers, None)?;
    crate::service::barrier::read_and_realtime_barrier(system, min).await
}

/// Errors GraphQL itself raised (parse, validation, limits) get a code too.
fn with_codes(mut response: async_graphql::Response) -> async_graphql::Response {
    for error in response.errors.iter_mut() {
        let has_code = error.extensions.as_ref().is_some_and(|e| e.get("code").is_some());
        if !has_code {
            error.extensions.get_or_insert_with(Default::default).set("code", ErrorCode::InvalidQuery.as_str());
        }
    }
    response
}

/// `POST /api/v1/graphql` with `{query, operationName?, variables?}`.
pub(crate) async fn post(
    State(system): State<Arc<System>>,
    caller: crate::service::Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let request: async_graphql::Request = serde_json::from_value(body)
        .map_err(|e| ApiError::new(ErrorCode::ValidationError, format!("a GraphQL request is {{query, operationName?, variables?}}: {e}")))?;
    barriers(&system, &headers).await?;
    let schema = current(&system, &caller)?;
    let request = request.data(system.clone()).data(RequestInfo { headers, caller });
    let response = with_codes(schema.execute(request).await);
    // An answer over its byte budget is that one error, not a partial answer.
    let too_large = |e: &async_graphql::ServerError| {
        e.extensions.as_ref().and_then(|x| x.get("code")).is_some_and(|c| *c == async_graphql::Value::from(ErrorCode::MaxRecordsExceeded.as_str()))
    };
    if let Some(error) = response.errors.iter().find(|e| too_large(e)) {
        return Err(ApiError::new(ErrorCode::MaxRecordsExceeded, error.message.clone()));
    }
    Ok(axum::Json(response).into_response())
}

/// `GET /api/v1/graphql`: a WebSocket for subscriptions when asked to upgrade, GraphiQL otherwise.
pub(crate) async fn get(State(system): State<Arc<System>>, request: Request) -> Result<Response, ApiError> {
    let (mut parts, _body) = request.into_parts();
    let wants_socket = parts.headers.get(axum::http::header::UPGRADE).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if !wants_socket {
        return Ok(page::page());
    }
    let protocol = socket::protocol_of(&parts.headers)
        .ok_or_else(|| ApiError::new(ErrorCode::ValidationError, "unsupported WebSocket subprotocol: use graphql-transport-ws or graphql-ws"))?;
    let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, &system)
        .await
        .map_err(|e| ApiError::new(ErrorCode::ValidationError, format!("cannot open a WebSocket: {e}")))?;
    let caller = crate::extract::caller_of(&system, &parts).await?;
    barriers(&system, &parts.headers).await?;
    let schema = current(&system, &caller)?;
    let headers = parts.headers.clone();
    Ok(upgrade
        .read_buffer_size(crate::wire::READ_BUFFER)
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            let mut data = async_graphql::Data::default();
            data.insert(system.clone());
            data.insert(RequestInfo { headers, caller });
            socket::serve(socket, (*schema).clone(), protocol, data).await
        })
        .into_response())
}

/// `GET /api/v1/graphql/schema`: the SDL of the current schema.
pub(crate) async fn schema(State(system): State<Arc<System>>, caller: Caller, headers: HeaderMap) -> Result<Response, ApiError> {
    barriers(&system, &headers).await?;
    Ok(current(&system, &caller)?.sdl().into_response())
}
