//! The REST transport (spec rest.md), grouped by concern: each handler
//! parses, calls the service layer with the caller, and renders.

mod analytics;
mod audit;
mod auth;
mod automation;
mod batch;
mod data;
mod discovery;
mod meta;
mod projection_admin;
mod search;
mod workflow;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

use crate::app::System;

pub(crate) fn router() -> Router<Arc<System>> {
    Router::new()
        .route("/.well-known/objectstack", get(discovery::discovery))
        .route("/api/v1", get(discovery::discovery))
        .route("/api/v1/discovery", get(discovery::discovery))
        .route("/api/v1/health", get(discovery::health))
        .route("/api/v1/openapi.json", get(discovery::openapi))
        .route("/api/v1/meta", get(meta::types))
        .route("/api/v1/meta/types", get(meta::types))
        .route("/api/v1/meta/{kind}", get(meta::items))
        .route("/api/v1/meta/{kind}/{name}", get(meta::item).put(meta::put_item).delete(meta::delete_item))
        .route("/api/v1/data/{object}", get(data::list).post(data::create))
        .route("/api/v1/data/{object}/query", post(data::query))
        .route("/api/v1/data/{object}/batch", post(batch::batch))
        .route("/api/v1/data/{object}/createMany", post(batch::create_many))
        .route("/api/v1/data/{object}/updateMany", post(batch::update_many))
        .route("/api/v1/data/{object}/deleteMany", post(batch::delete_many))
        .route("/api/v1/data/{object}/{id}", get(data::get_one).patch(data::update).delete(data::delete))
        .route("/api/v1/data/{object}/{id}/history", get(audit::history))
        .route("/api/v1/audit", get(audit::audit))
        .route("/api/v1/projections", get(projection_admin::list))
        .route("/metrics", get(projection_admin::metrics))
        .route("/api/v1/search", get(search::search))
        .route("/api/v1/analytics/query", post(analytics::query))
        .route("/api/v1/analytics/meta", get(analytics::meta))
        .route("/api/v1/analytics/meta/{cube}", get(analytics::meta_of))
        .route("/api/v1/analytics/sql", post(analytics::sql))
        .route("/api/v1/analytics/explain", post(analytics::explain))
        .route("/api/v1/auth/sign-up/email", post(auth::sign_up))
        .route("/api/v1/auth/sign-in/email", post(auth::sign_in))
        .route("/api/v1/auth/sign-out", post(auth::sign_out))
        .route("/api/v1/auth/get-session", get(auth::get_session))
        .route("/api/v1/auth/check", post(auth::check))
        .route("/api/v1/auth/api-keys", get(auth::list_keys).post(auth::create_key))
        .route("/api/v1/auth/api-keys/{id}", axum::routing::delete(auth::revoke_key))
        .route("/api/v1/auth/permissions/effective", get(auth::effective))
        .route("/api/v1/auth/permissions/{object}", get(auth::permissions_of))
        .route("/api/v1/automation", get(automation::overview))
        .route("/api/v1/automation/trigger/{name}", post(automation::trigger_flow))
        .route("/api/v1/workflow/{object}/config", get(workflow::config))
        .route("/api/v1/workflow/{object}/{id}/state", get(workflow::state))
        .route("/api/v1/workflow/{object}/{id}/history", get(workflow::history))
        .route("/api/v1/workflow/{object}/{id}/transition", post(workflow::transition))
        .route("/api/v1/workflow/{object}/{id}/submit", post(workflow::submit))
        .route("/api/v1/workflow/{object}/{id}/approve", post(workflow::approve))
        .route("/api/v1/workflow/{object}/{id}/reject", post(workflow::reject))
        .route("/api/v1/workflow/{object}/{id}/recall", post(workflow::recall))
        .route("/api/v1/jobs", get(automation::jobs))
        .route("/api/v1/jobs/{name}/executions", get(automation::executions))
        .route("/api/v1/jobs/{name}/trigger", post(automation::trigger))
        .route("/api/v1/webhooks", get(automation::webhooks))
        .route("/api/v1/webhooks/{name}/deliveries", get(automation::deliveries))
        .route("/api/v1/projections/{name}", get(projection_admin::one))
        .route("/api/v1/projections/{name}/rebuild", post(projection_admin::start_rebuild))
        .route("/api/v1/projections/{name}/dead-letters/{position}/retry", post(projection_admin::retry))
        .route("/api/v1/projections/{name}/dead-letters/{position}/skip", post(projection_admin::skip))
}
