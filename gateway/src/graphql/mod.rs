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
mod resolve;
mod subscribe;
pub mod types;
mod values;

use std::sync::{Arc, RwLock};

use async_graphql::dynamic::Schema;
use async_graphql::http::{GraphiQLSource, ALL_WEBSOCKET_PROTOCOLS};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::{FromRequestParts, Request, State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use domain::ErrorCode;

pub use self::resolve::RequestInfo;
use crate::app::System;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::routes::support::{barrier_on, read_barrier};

/// The schema of the current metadata, rebuilt when the metadata changes.
#[derive(Default)]
pub struct Schemas {
    current: RwLock<Option<(u64, Arc<Schema>)>>,
}

impl Schemas {
    /// The schema for the hub's metadata version, generated on first use after a change.
    pub fn current(&self, system: &System) -> Result<Arc<Schema>, ApiError> {
        let version = system.hub.metadata_version();
        if let Some((built, schema)) = &*self.current.read().unwrap_or_else(|p| p.into_inner()) {
            if *built == version {
                return Ok(schema.clone());
            }
        }
        let (version, catalog) = system.hub.catalog();
        let schema = Arc::new(build::build(&catalog).map_err(|error| {
            tracing::error!(%error, "cannot generate the GraphQL schema");
            ApiError::new(ErrorCode::InternalError, format!("the GraphQL schema cannot be generated from the metadata: {error}"))
        })?);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some((version, schema.clone()));
        Ok(schema)
    }
}

/// The SDL of the schema generated for a catalog (for snapshots and `GET /api/v1/graphql/schema`).
pub fn sdl(catalog: &domain::metadata::Catalog) -> Result<String, String> {
    build::build(catalog).map(|s| s.sdl()).map_err(|e| e.to_string())
}

/// Reads wait for this node's acknowledged writes, and the schema for its metadata.
async fn barriers(system: &System, headers: &HeaderMap) -> Result<(), ApiError> {
    read_barrier(system, headers, None).await?;
    barrier_on(system, &system.realtime_handle, headers, None).await
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
    let schema = system.graphql.current(&system)?;
    let request = request.data(system.clone()).data(RequestInfo { headers, caller });
    let response = with_codes(schema.execute(request).await);
    Ok(axum::Json(response).into_response())
}

/// `GET /api/v1/graphql`: a WebSocket for subscriptions when asked to upgrade, GraphiQL otherwise.
pub(crate) async fn get(State(system): State<Arc<System>>, request: Request) -> Result<Response, ApiError> {
    let (mut parts, _body) = request.into_parts();
    let wants_socket = parts.headers.get(axum::http::header::UPGRADE).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if !wants_socket {
        let page = GraphiQLSource::build().endpoint("/api/v1/graphql").subscription_endpoint("/api/v1/graphql").finish();
        return Ok(Html(page).into_response());
    }
    let protocol = GraphQLProtocol::from_request_parts(&mut parts, &system)
        .await
        .map_err(|_| ApiError::new(ErrorCode::ValidationError, "unsupported WebSocket subprotocol: use graphql-transport-ws or graphql-ws"))?;
    let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, &system)
        .await
        .map_err(|e| ApiError::new(ErrorCode::ValidationError, format!("cannot open a WebSocket: {e}")))?;
    let caller = crate::service::Caller::resolve(&system, &parts).await?;
    barriers(&system, &parts.headers).await?;
    let schema = system.graphql.current(&system)?;
    let headers = parts.headers.clone();
    Ok(upgrade
        .read_buffer_size(crate::realtime::socket::READ_BUFFER)
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            let mut data = async_graphql::Data::default();
            data.insert(system.clone());
            data.insert(RequestInfo { headers, caller });
            GraphQLWebSocket::new(socket, (*schema).clone(), protocol).with_data(data).serve().await
        })
        .into_response())
}

/// `GET /api/v1/graphql/schema`: the SDL of the current schema.
pub(crate) async fn schema(State(system): State<Arc<System>>, headers: HeaderMap) -> Result<Response, ApiError> {
    barriers(&system, &headers).await?;
    Ok(system.graphql.current(&system)?.sdl().into_response())
}
