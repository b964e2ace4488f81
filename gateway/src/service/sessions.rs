//! Sessions and API keys as records: the principal a token opens (after the
//! read barrier, so a session made or revoked a moment ago, here
//! or on another node whose position the client carries, is seen), sliding
//! renewal, and the users of each role.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use commands::service::{Command, CommandMeta};
use domain::query::{Condition, Filter, Op, Operand, Query};
use domain::security::{Access, Principal, PrincipalKind, RoleMembers};
use domain::value::{Record, Value};
use domain::{ErrorCode, Timestamp};
use projections::Viewer;
use serde_json::{json, Map, Value as Json};

use super::barrier::read_and_realtime_barrier;
use super::tokens::{hash_token, new_token, API_KEY_PREFIX};
use crate::app::System;
use crate::error::ApiError;

/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// One record by a field's value, read as the server.
pub(crate) async fn find(system: &System, object: &str, field: &str, value: &str) -> Result<Option<Arc<Record>>, ApiError> {
    let mut query = Query::by_field(object, field, value);
    query.limit = Some(1);
    Ok(system.reader.execute(&Viewer::system(), query).await?.records.into_iter().next())
}

pub(crate) fn text(record: &Record, field: &str) -> Option<String> {
    record.get(field).and_then(Value::as_str).map(str::to_string)
}

pub(crate) fn texts(record: &Record, field: &str) -> Vec<String> {
    match record.get(field) {
        Some(Value::List(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        Some(Value::Text(t)) => vec![t.clone()],
        _ => Vec::new(),
    }
}

fn principal_of_user(user: &Record) -> Principal {
    Principal {
        kind: PrincipalKind::User,
        user_id: text(user, "id").unwrap_or_default(),
        email: text(user, "email"),
        name: text(user, "name"),
        tenant: "default".into(),
        profile: text(user, "profile"),
        permission_sets: texts(user, "permission_sets"),
        roles: texts(user, "roles"),
    }
}

/// A user as the auth routes show it (never its password).
pub(crate) fn user_json(user: &Record) -> Json {
    json!({
        "id": text(user, "id"), "email": text(user, "email"), "name": text(user, "name"),
        "profile": text(user, "profile"), "permissionSets": texts(user, "permission_sets"), "roles": texts(user, "roles"),
        "active": user.get("active").map(Value::to_json).unwrap_or(Json::Bool(true)),
    })
}

/// A token's session or key: the caller's rights, and the session's (or key's) id.
pub struct Opened {
    pub access: Arc<Access>,
    pub id: String,
    pub api_key: bool,
}

/// The user and session a token opens, or why it opens none, once the read model has reached `min`.
pub async fn open_token(system: &System, token: &str, min: Option<u64>) -> Result<Opened, ApiError> {
    // The hub too (on PostgreSQL it follows the log apart): its generation then covers every change up to here.
    read_and_realtime_barrier(system, min).await?;
    let generation = system.hub.auth_generation();
    let hash = hash_token(token);
    let now = commands::clock::now().micros();
    if let Some(hit) = system.tokens.get(&hash, generation) {
        let renew_after = hit.expires.saturating_sub(SESSION_TTL.as_micros() as i64 - 24 * 3600 * 1_000_000);
        if hit.expires > now && (hit.api_key || now < renew_after) {
            return Ok(Opened { access: hit.access, id: hit.id, api_key: hit.api_key });
        }
    }
    let invalid = || ApiError::new(ErrorCode::InvalidToken, "the token is not valid (signed out, revoked, or never issued): sign in again");
    // An API key acts as its user; a session token as the session's.
    let api_key = token.starts_with(API_KEY_PREFIX);
    let (object, field) = if api_key { ("api_key", "key_hash") } else { ("session", "token_hash") };
    let session = find(system, object, field, &hash).await?.ok_or_else(invalid)?;
    let expires = match text(&session, "expires_at") {
        Some(t) => Timestamp::parse(&t).map(Timestamp::micros).unwrap_or(0),
        None if api_key => i64::MAX,
        None => 0,
    };
    if expires <= now {
        return Err(ApiError::new(ErrorCode::SessionExpired, "the session has expired: sign in again"));
    }
    let user_id = text(&session, "user").ok_or_else(invalid)?;
    let user = find(system, "user", "id", &user_id).await?.ok_or_else(invalid)?;
    if user.get("active") == Some(&Value::Bool(false)) {
        return Err(ApiError::new(ErrorCode::InvalidToken, "the account is deactivated"));
    }
    let access = Arc::new(Access::new(principal_of_user(&user), system.policy.clone(), role_members_for(system, min).await?));
    let opened = Opened { access, id: text(&session, "id").unwrap_or_default(), api_key };
    if !api_key && renew(system, &session, expires).await {
        // Renewed: the next request reads the new expiry.
        return Ok(opened);
    }
    let entry = super::token_cache::Entry { generation, access: opened.access.clone(), id: opened.id.clone(), api_key, expires };
    system.tokens.put(hash, entry);
    Ok(opened)
}

/// Sliding sessions: a session used when less than [`SESSION_TTL`] minus a
/// day remains is extended to a full [`SESSION_TTL`] (an event, at most
/// daily). Whether it was.
async fn renew(system: &System, session: &Record, expires: i64) -> bool {
    let now = commands::clock::now().micros();
    let day = 24 * 3600 * 1_000_000i64;
    if expires - now >= SESSION_TTL.as_micros() as i64 - day {
        return false;
    }
    let Some(id) = text(session, "id") else { return false };
    let mut patch = Map::new();
    patch.insert("expires_at".into(), json!(Timestamp::from_micros(now + SESSION_TTL.as_micros() as i64).to_rfc3339()));
    let user = text(session, "user").unwrap_or_default();
    let command = Command::Update { object: "session".into(), id, patch, expected_version: None };
    if let Err(error) = system.commands.execute(command, CommandMeta::actor(&user)).await {
        tracing::warn!(%error, "cannot renew a session");
        return false;
    }
    true
}

/// Opens a session for a user: a session record (an event), the token returned once.
pub(crate) async fn open_session(system: &System, user: &Record) -> Result<Json, ApiError> {
    let token = new_token()?;
    let user_id = text(user, "id").unwrap_or_default();
    let expires = Timestamp::from_micros(commands::clock::now().micros() + SESSION_TTL.as_micros() as i64).to_rfc3339();
    let mut data = Map::new();
    data.insert("user".into(), json!(user_id));
    data.insert("token_hash".into(), json!(hash_token(&token)));
    data.insert("expires_at".into(), json!(expires));
    let outcome = system.commands.execute(Command::Create { object: "session".into(), id: None, data }, CommandMeta::actor(&user_id)).await?;
    Ok(json!({
        "token": token,
        "user": user_json(user),
        "session": {"id": outcome.id, "userId": user_id, "expiresAt": expires, "token": token},
        "redirect": false,
    }))
}

/// The users of each role when the app's sharing rules need them (none otherwise).
pub async fn role_members_for(system: &System, min: Option<u64>) -> Result<Arc<RoleMembers>, ApiError> {
    if Access::needs_role_members(&system.policy) {
        role_members(system, min).await
    } else {
        Ok(Arc::default())
    }
}

/// Role name to the ids of its users (owner-based sharing rules need it),
/// read again only when a user has changed (the hub's auth generation).
pub async fn role_members(system: &System, min: Option<u64>) -> Result<Arc<RoleMembers>, ApiError> {
    read_and_realtime_barrier(system, min).await?;
    let generation = system.hub.auth_generation();
    if let Some(members) = system.tokens.role_members(generation) {
        return Ok(members);
    }
    let members = Arc::new(read_role_members(system).await?);
    system.tokens.put_role_members(generation, members.clone());
    Ok(members)
}

async fn read_role_members(system: &System) -> Result<RoleMembers, ApiError> {
    let mut query = Query::new("user");
    query.filter = Some(Filter::Cond(Condition { field: "roles".into(), op: Op::Null, value: Operand::Value(Value::Bool(false)) }));
    query.limit = Some(domain::query::MAX_LIMIT);
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for user in system.reader.execute(&Viewer::system(), query).await?.records {
        for role in texts(&user, "roles") {
            out.entry(role).or_default().push(text(&user, "id").unwrap_or_default());
        }
    }
    Ok(out)
}
