//! The caller of a request: the bearer token's session (or none), turned into
//! the caller's rights. Handlers of every data surface take a [`Caller`], so
//! none can reach the data without one.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use domain::security::{Access, Principal, SystemPermission};
use domain::ErrorCode;
use projections::Viewer;

use super::auth;
use crate::app::System;
use crate::error::ApiError;

/// Who is calling, with the rights that follow.
#[derive(Clone)]
pub struct Caller {
    pub viewer: Viewer,
    /// The session (or API key) the bearer token opened (`None`: no token).
    pub session: Option<String>,
    /// Whether the token was an API key.
    pub api_key: bool,
}

impl Caller {
    pub fn access(&self) -> &Access {
        &self.viewer.access
    }

    pub fn principal(&self) -> &Principal {
        self.viewer.access.principal()
    }

    /// The actor stamped on the events this caller causes.
    pub fn actor(&self) -> &str {
        &self.principal().user_id
    }

    /// Refuses unless the caller holds a system permission.
    pub fn require(&self, permission: SystemPermission) -> Result<(), ApiError> {
        if self.access().has(permission) {
            Ok(())
        } else {
            Err(ApiError::new(ErrorCode::PermissionDenied, format!("this needs the {} permission", permission.name())))
        }
    }

    /// Resolves the caller of a request from its headers (and `?access_token=` for WebSockets).
    pub async fn resolve(system: &System, parts: &Parts) -> Result<Caller, ApiError> {
        let token = auth::bearer(parts);
        let api_key = token.as_deref().is_some_and(|t| t.starts_with(super::api_keys::PREFIX));
        let (principal, session) = match token {
            Some(token) => {
                // A position the client got from another node (a sign-out there) is waited for.
                let min = crate::routes::support::min_position(&parts.headers, None)?;
                let (principal, session) = auth::principal_of_token_at(system, &token, min).await?;
                (principal, Some(session))
            }
            None => {
                if system.policy.declared && system.policy.guest_profile.is_none() {
                    return Err(ApiError::new(
                        ErrorCode::Unauthenticated,
                        "sign in first: send Authorization: Bearer <token> (POST /api/v1/auth/sign-in/email)",
                    ));
                }
                (Principal::guest(), None)
            }
        };
        let members = if Access::needs_role_members(&system.policy) { auth::role_members(system).await? } else { Default::default() };
        Ok(Caller { viewer: Viewer::new(Access::new(principal, system.policy.clone(), Arc::new(members))), session, api_key })
    }
}

impl FromRequestParts<Arc<System>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, system: &Arc<System>) -> Result<Self, Self::Rejection> {
        Caller::resolve(system, parts).await
    }
}
