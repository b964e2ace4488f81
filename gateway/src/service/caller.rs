//! The caller of an operation: the principal a token opens (or a guest), and
//! the rights that follow, as a [`projections::Viewer`] every read passes to
//! the read models. Every service operation takes a [`Caller`]; transports
//! get one only from [`Caller::resolve`] (through their extractor), so no
//! surface can call an operation anonymously by accident.

use std::sync::Arc;

use domain::security::{Access, Principal, SystemPermission};
use domain::ErrorCode;
use projections::Viewer;

use super::sessions;
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
    /// A log position the client has seen (`X-Min-Position`, from another
    /// node): reads wait for it, and so do writes, so that they are decided
    /// on a write model that holds it.
    pub seen: Option<u64>,
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

    /// The caller a bearer token makes (none: a guest, refused with 401 when
    /// the app declares permissions and names no guest profile), once the read
    /// model has reached `min` (a position the client got from another node).
    pub async fn resolve(system: &System, token: Option<&str>, min: Option<u64>) -> Result<Caller, ApiError> {
        let (access, session, api_key) = match token {
            Some(token) => {
                let opened = sessions::open_token(system, token, min).await?;
                (opened.access, Some(opened.id), opened.api_key)
            }
            None => {
                if system.policy.declared && system.policy.guest_profile.is_none() {
                    return Err(ApiError::new(
                        ErrorCode::Unauthenticated,
                        "sign in first: send Authorization: Bearer <token> (POST /api/v1/auth/sign-in/email)",
                    ));
                }
                (guest(system, min).await?, None, false)
            }
        };
        Ok(Caller { viewer: Viewer::signed_in(access, session.as_deref()), session, api_key, seen: min })
    }
}

/// A guest's rights (kept while no user has changed: role members are part of them).
async fn guest(system: &System, min: Option<u64>) -> Result<Arc<Access>, ApiError> {
    let generation = system.hub.auth_generation();
    if let Some(access) = system.tokens.guest(generation) {
        return Ok(access);
    }
    let access = Arc::new(Access::new(Principal::guest(), system.policy.clone(), sessions::role_members_for(system, min).await?));
    system.tokens.put_guest(generation, access.clone());
    Ok(access)
}
