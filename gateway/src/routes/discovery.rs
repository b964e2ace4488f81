//! Discovery (`/.well-known/objectstack`, `/api/v1`, `/api/v1/discovery`) and health.
//! Only services that exist are advertised.

use std::sync::Arc;

use axum::extract::State;
use axum::Json as JsonResponse;
use serde_json::{json, Value as Json};

use crate::app::System;
use crate::wire::ok;

pub(crate) async fn discovery(State(system): State<Arc<System>>) -> JsonResponse<Json> {
    let routes = json!({"data": "/api/v1/data", "metadata": "/api/v1/meta", "realtime": "/api/v1/realtime", "graphql": "/api/v1/graphql", "search": "/api/v1/search", "analytics": "/api/v1/analytics", "auth": "/api/v1/auth", "permissions": "/api/v1/auth", "automation": "/api/v1/automation", "jobs": "/api/v1/jobs", "workflow": "/api/v1/workflow", "openapi": "/api/v1/openapi.json", "console": "/_/"});
    JsonResponse(ok(json!({
        "name": system.app_name,
        "apiName": "ObjectStack API",
        "version": "v1",
        "environment": "development",
        "routes": routes,
        "endpoints": routes,
        "features": {"graphql": true, "search": true, "websockets": true, "files": false, "analytics": true,
                     "ai": false, "workflow": true, "notifications": false, "i18n": false},
        "services": {
            "data": {"enabled": true, "status": "available", "route": "/api/v1/data", "provider": "objectstack-rs"},
            "metadata": {"enabled": true, "status": "available", "route": "/api/v1/meta", "provider": "objectstack-rs"},
            "graphql": {"enabled": true, "status": "available", "route": "/api/v1/graphql", "provider": "objectstack-rs"},
            "realtime": {"enabled": true, "status": "available", "route": "/api/v1/realtime", "provider": "objectstack-rs"},
            "search": {"enabled": true, "status": "available", "route": "/api/v1/search", "provider": "objectstack-rs"},
            "analytics": {"enabled": true, "status": "available", "route": "/api/v1/analytics", "provider": "objectstack-rs"},
            "auth": {"enabled": true, "status": "available", "route": "/api/v1/auth", "provider": "objectstack-rs"},
            "automation": {"enabled": true, "status": "available", "route": "/api/v1/automation", "provider": "objectstack-rs",
                           "message": "workflow rules (field updates), flows (api, autolaunched, record_change) and webhooks"},
            "job": {"enabled": true, "status": "available", "route": "/api/v1/jobs", "provider": "objectstack-rs"},
            "workflow": {"enabled": true, "status": "available", "route": "/api/v1/workflow", "provider": "objectstack-rs",
                         "message": "state machines (an object's state_machine rules) and approval processes (submit, approve, reject, recall)"},
        },
        "locale": {"default": "en", "supported": ["en"], "timezone": "UTC"}
    })))
}

/// `GET /api/v1/openapi.json`: the REST API as the caller may use it.
pub(crate) async fn openapi(State(system): State<Arc<System>>, caller: crate::service::Caller) -> JsonResponse<Json> {
    JsonResponse(crate::service::openapi::document(&system, &caller))
}

pub(crate) async fn health(State(system): State<Arc<System>>) -> JsonResponse<Json> {
    JsonResponse(ok(json!({"status": "ok", "position": crate::service::barrier::reached(&system)})))
}
