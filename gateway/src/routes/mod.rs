//! Routes of the REST API (spec rest.md), grouped by concern.

mod analytics;
pub(crate) mod audit;
mod batch;
pub(crate) mod data;
mod discovery;
mod meta;
mod projections;
pub(crate) mod search;
pub(crate) mod support;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use domain::ErrorCode;

use crate::app::System;
use crate::realtime;

use crate::error::ApiError;
pub(crate) use data::{execute_with_key, written_record_value};

pub(crate) fn router() -> Router<Arc<System>> {
    Router::new()
        .route("/.well-known/objectstack", get(discovery::discovery))
        .route("/api/v1", get(discovery::discovery))
        .route("/api/v1/discovery", get(discovery::discovery))
        .route("/api/v1/health", get(discovery::health))
        .route("/api/v1/meta", get(meta::types))
        .route("/api/v1/meta/types", get(meta::types))
        .route("/api/v1/meta/{kind}", get(meta::items))
        .route("/api/v1/meta/{kind}/{name}", get(meta::item).put(meta::put_item))
        .route("/api/v1/data/{object}", get(data::list).post(data::create))
        .route("/api/v1/data/{object}/query", post(data::query))
        .route("/api/v1/data/{object}/batch", post(batch::batch))
        .route("/api/v1/data/{object}/createMany", post(batch::create_many))
        .route("/api/v1/data/{object}/updateMany", post(batch::update_many))
        .route("/api/v1/data/{object}/deleteMany", post(batch::delete_many))
        .route("/api/v1/data/{object}/{id}", get(data::get_one).patch(data::update).delete(data::delete))
        .route("/api/v1/data/{object}/{id}/history", get(audit::history))
        .route("/api/v1/audit", get(audit::audit))
        .route("/api/v1/projections", get(projections::list))
        .route("/metrics", get(projections::metrics))
        .route("/api/v1/search", get(search::search))
        .route("/api/v1/analytics/query", post(analytics::query))
        .route("/api/v1/analytics/meta", get(analytics::meta))
        .route("/api/v1/analytics/meta/{cube}", get(analytics::meta_of))
        .route("/api/v1/analytics/sql", post(analytics::sql))
        .route("/api/v1/analytics/explain", post(analytics::explain))
        .route("/api/v1/auth/sign-up/email", post(crate::service::auth::sign_up))
        .route("/api/v1/auth/sign-in/email", post(crate::service::auth::sign_in))
        .route("/api/v1/auth/sign-out", post(crate::service::auth::sign_out))
        .route("/api/v1/auth/get-session", get(crate::service::auth::get_session))
        .route("/api/v1/auth/check", post(crate::service::auth::check))
        .route("/api/v1/auth/api-keys", get(crate::service::api_keys::list).post(crate::service::api_keys::create))
        .route("/api/v1/auth/api-keys/{id}", axum::routing::delete(crate::service::api_keys::revoke))
        .route("/api/v1/auth/permissions/effective", get(crate::service::auth::effective))
        .route("/api/v1/auth/permissions/{object}", get(crate::service::auth::permissions_of))
        .route("/api/v1/graphql", get(crate::graphql::get).post(crate::graphql::post))
        .route("/api/v1/graphql/schema", get(crate::graphql::schema))
        .route("/api/v1/realtime", get(realtime::socket::upgrade))
        .route("/api/v1/realtime/connect", post(realtime::http::connect))
        .route("/api/v1/realtime/disconnect", post(realtime::http::disconnect))
        .route("/api/v1/realtime/subscribe", post(realtime::http::subscribe))
        .route("/api/v1/realtime/unsubscribe", post(realtime::http::unsubscribe))
        .route("/api/v1/realtime/presence", axum::routing::put(realtime::http::set_presence))
        .route("/api/v1/realtime/presence/{channel}", get(realtime::http::get_presence))
        .route("/api/v1/projections/{name}", get(projections::one))
        .route("/api/v1/projections/{name}/rebuild", post(projections::start_rebuild))
        .fallback(|| async { ApiError::new(ErrorCode::EndpointNotFound, "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(ErrorCode::ValidationError, "method not allowed on this route").with_status(StatusCode::METHOD_NOT_ALLOWED)
        })
}
