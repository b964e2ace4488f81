//! Authentication (IAuthService): users are records of the built-in `user`
//! object, sessions records of the internal `session` object, so every
//! sign-up, sign-in, sign-out and assignment is an event in the log like any
//! other change (and revocation reaches every node that follows the log).
//!
//! Passwords are hashed with Argon2id (the `argon2` crate's defaults, OWASP's
//! recommendation: 19 MiB, 2 passes, 1 lane) and never stored, logged or
//! returned in clear. Failed sign-ins are limited per account and per client
//! address (`limiter`), and each failure and lockout is an event.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use commands::service::{Command, CommandMeta};
use domain::query::{Condition, Filter, Op, Operand, Query};
use domain::security::SystemPermission;
use domain::value::Value;
use domain::ErrorCode;
use projections::Viewer;
use serde_json::{json, Map, Value as Json};

use super::barrier::read_barrier;
use super::caller::Caller;
use super::limiter::LOCKOUT;
use super::sessions::{find, open_session, open_token, text, user_json};
use crate::app::System;
use crate::error::ApiError;

/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 8;

/// Hashes a password with Argon2id (on the blocking pool: it takes tens of milliseconds on purpose).
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| e.to_string())?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
        Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r)
    .map_err(|error| {
        tracing::error!(%error, "cannot hash a password");
        ApiError::new(ErrorCode::InternalError, "cannot store the password")
    })
}

async fn verify_password(hash: String, password: String) -> bool {
    tokio::task::spawn_blocking(move || PasswordHash::new(&hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok()))
        .await
        .unwrap_or(false)
}

/// Appends an authentication event (a failed sign-in, a lockout). A failure to record is logged, not shown.
async fn record_auth_event(system: &System, kind: &str, email: &str, client: &str) {
    let mut data = Map::new();
    data.insert("kind".into(), json!(kind));
    data.insert("email".into(), json!(email));
    data.insert("client".into(), json!(client));
    if let Err(error) = system.commands.execute(Command::Create { object: "auth_event".into(), id: None, data }, CommandMeta::actor("anonymous")).await {
        tracing::error!(%error, kind, "cannot record an authentication event");
    }
}

/// Signs a new user up (with the app's default profile) and opens a session: `{token, user, session}`.
pub async fn sign_up(system: &System, email: &str, password: String, name: Option<&str>) -> Result<Json, ApiError> {
    if !system.policy.sign_up {
        return Err(ApiError::new(ErrorCode::PermissionDenied, "sign-up is closed on this server: ask an administrator for an account"));
    }
    let email = email.trim().to_lowercase();
    if password.chars().count() < MIN_PASSWORD {
        return Err(ApiError::new(ErrorCode::ValueTooShort, format!("the password needs at least {MIN_PASSWORD} characters")));
    }
    let name = name.filter(|n| !n.trim().is_empty()).map(str::to_string).unwrap_or_else(|| email.clone());
    read_barrier(system, None).await?;
    if find(system, "user", "email", &email).await?.is_some() {
        return Err(ApiError::new(ErrorCode::DuplicateRecord, "an account with this email exists: sign in instead"));
    }
    let id = uuid::Uuid::now_v7().to_string();
    let mut data = Map::new();
    data.insert("name".into(), json!(name));
    data.insert("email".into(), json!(email));
    data.insert("password".into(), json!(hash_password(password).await?));
    if let Some(profile) = &system.policy.default_profile {
        data.insert("profile".into(), json!(profile));
    }
    let outcome = system.commands.execute(Command::Create { object: "user".into(), id: Some(id.clone()), data }, CommandMeta::actor(&id)).await?;
    open_session(system, &outcome.record.unwrap_or_default()).await
}

/// Signs in from `client` (an address, for the limits): `{token, user, session}`, or
/// `invalid_credentials`, or `rate_limit_exceeded` while locked out.
pub async fn sign_in(system: &System, client: &str, email: &str, password: String) -> Result<Json, ApiError> {
    let email = email.trim().to_lowercase();
    let (account, client_key) = (format!("account:{email}"), format!("ip:{client}"));
    if system.limiter.locked(&account) || system.limiter.locked(&client_key) {
        return Err(ApiError::new(ErrorCode::RateLimitExceeded, format!("too many failed sign-ins: try again in {} minutes", LOCKOUT.as_secs() / 60)));
    }
    read_barrier(system, None).await?;
    let user = find(system, "user", "email", &email).await?;
    let hash = user.as_ref().and_then(|u| text(u, "password"));
    // Unknown accounts cost a hash too, so timing does not tell which accounts exist.
    let valid = match hash {
        Some(hash) => verify_password(hash, password).await,
        None => {
            let _ = hash_password(password).await;
            false
        }
    };
    let active = user.as_ref().is_some_and(|u| u.get("active") != Some(&Value::Bool(false)));
    if !valid || !active {
        let locked = system.limiter.fail(&account) | system.limiter.fail(&client_key);
        tracing::warn!(%client, locked, "failed sign-in");
        // Each failure and each lockout is an event (in the audit trail); bounded by the lockout itself.
        record_auth_event(system, "sign_in_failed", &email, client).await;
        if locked {
            record_auth_event(system, "locked_out", &email, client).await;
        }
        return Err(ApiError::new(ErrorCode::InvalidCredentials, "wrong email or password"));
    }
    system.limiter.clear(&account);
    open_session(system, &user.expect("valid implies a user")).await
}

/// Ends the caller's session (an event, at once on every node that reaches
/// its position); returns that position. API keys are revoked, not signed out.
pub async fn sign_out(system: &System, caller: &Caller) -> Result<u64, ApiError> {
    let Some(session) = caller.session.as_ref().filter(|_| !caller.api_key) else { return Ok(0) };
    let command = Command::Delete { object: "session".into(), id: session.clone(), expected_version: None };
    Ok(system.commands.execute(command, CommandMeta::actor(caller.actor())).await?.position)
}

/// `{session, user}` for a token, `null` when it opens none.
pub async fn session_of(system: &System, token: Option<&str>) -> Result<Json, ApiError> {
    let Some(token) = token else { return Ok(Json::Null) };
    let Ok(opened) = open_token(system, token, None).await else { return Ok(Json::Null) };
    let user = find(system, "user", "id", &opened.access.principal().user_id).await?.map(|u| user_json(&u)).unwrap_or(Json::Null);
    Ok(json!({"session": {"id": opened.id, "userId": opened.access.principal().user_id}, "user": user}))
}

/// Makes the first administrator when none exists yet: the user with this
/// email gets (or is created with) the `admin` profile.
pub async fn bootstrap_admin(system: &System, email: &str, password: &str) -> anyhow::Result<()> {
    if password.chars().count() < MIN_PASSWORD {
        anyhow::bail!("OBJECTSTACK_ADMIN_PASSWORD needs at least {MIN_PASSWORD} characters");
    }
    let admin_profiles: Vec<&str> = system
        .policy
        .sets
        .values()
        .filter(|s| s.is_profile && s.system_permissions.contains(SystemPermission::ModifyAllData.name()))
        .map(|s| s.name.as_str())
        .collect();
    let Some(profile) = admin_profiles.first().map(|p| p.to_string()) else {
        anyhow::bail!("the app declares no profile with modify_all_data, so there is no administrator to make");
    };
    let mut query = Query::new("user");
    query.filter = Some(Filter::Cond(Condition {
        field: "profile".into(),
        op: Op::In,
        value: Operand::Value(Value::List(admin_profiles.iter().map(|p| Value::Text(p.to_string())).collect())),
    }));
    query.limit = Some(1);
    if !system.reader.execute(&Viewer::system(), query).await.map_err(|e| anyhow::anyhow!(e.to_string()))?.records.is_empty() {
        return Ok(());
    }
    let email = email.trim().to_lowercase();
    let mut data = Map::new();
    data.insert("profile".into(), json!(profile));
    data.insert("password".into(), json!(hash_password(password.to_string()).await.map_err(|e| anyhow::anyhow!(e.message))?));
    let existing = find(system, "user", "email", &email).await.map_err(|e| anyhow::anyhow!(e.message))?;
    let command = match existing {
        Some(user) => Command::Update { object: "user".into(), id: text(&user, "id").unwrap_or_default(), patch: data, expected_version: None },
        None => {
            data.insert("name".into(), json!("Administrator"));
            data.insert("email".into(), json!(email));
            Command::Create { object: "user".into(), id: None, data }
        }
    };
    let outcome = system.commands.execute(command, CommandMeta::system()).await?;
    system.query.wait_for(outcome.position, system.read_wait).await;
    tracing::info!(%email, %profile, "administrator created");
    Ok(())
}
