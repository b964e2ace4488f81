//! Authentication (IAuthService): users are records of the built-in `user`
//! object, sessions records of the internal `session` object, so every
//! sign-up, sign-in, sign-out and assignment is an event in the log like any
//! other change (and revocation reaches every node that follows the log).
//!
//! Passwords are hashed with Argon2id (the `argon2` crate's defaults, OWASP's
//! recommendation: 19 MiB, 2 passes, 1 lane) and never stored, logged or
//! returned in clear. Session tokens are 256 random bits, sent once and stored
//! only as their SHA-256. Failed sign-ins are limited per account and per
//! client address ([`Limiter`]).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json as JsonResponse;
use base64::Engine;
use commands::service::{Command, CommandMeta};
use domain::query::{Condition, Filter, Op, Operand, Query};
use domain::security::{Principal, PrincipalKind, SystemPermission, WriteGuard};
use domain::value::{Record, Value};
use domain::{ErrorCode, Timestamp};
use projections::Viewer;
use serde_json::{json, Map, Value as Json};
use sha2::Digest;

use super::caller::Caller;
use crate::app::System;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::routes::support::ok;

/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Failed sign-ins (per account, and per client address) before a lockout.
pub const MAX_FAILURES: u32 = 5;
/// The window failures are counted in, and how long a lockout lasts.
pub const LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 8;

/// The token a request carries: `Authorization: Bearer <token>`, or
/// `?access_token=` (browsers cannot set headers on a WebSocket).
pub fn bearer(parts: &Parts) -> Option<String> {
    bearer_of(&parts.headers, &parts.uri)
}

/// [`bearer`] from the headers and URI.
pub fn bearer_of(headers: &axum::http::HeaderMap, uri: &axum::http::Uri) -> Option<String> {
    if let Some(value) = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let value = value.trim();
        if let Some(token) = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")) {
            return Some(token.trim().to_string());
        }
    }
    let query = uri.query()?;
    serde_urlencoded::from_str::<Vec<(String, String)>>(query).ok()?.into_iter().find(|(k, _)| k == "access_token").map(|(_, v)| v)
}

/// The stored form of a session token.
pub fn hash_token(token: &str) -> String {
    sha2::Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn new_token() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| {
        tracing::error!(error = %e, "no randomness for a session token");
        ApiError::new(ErrorCode::InternalError, "cannot create a session")
    })?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

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

fn eq(field: &str, value: &str) -> Filter {
    Filter::Cond(Condition { field: field.into(), op: Op::Eq, value: Operand::Value(Value::Text(value.to_string())) })
}

/// Waits until the query model has every write acknowledged so far (a session made a moment ago is seen).
async fn settle(system: &System) -> Result<(), ApiError> {
    settle_at(system, None).await
}

/// [`settle`], and at least `min` (a position the client got from another node, `X-Min-Position`).
pub(crate) async fn settle_at(system: &System, min: Option<u64>) -> Result<(), ApiError> {
    let head = (*system.commands.store().head().borrow()).max(min.unwrap_or(0));
    if system.query.wait_for(head, system.read_wait).await {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::Timeout, "the read model is behind; retry"))
    }
}

/// One record by a field's value, read as the server.
async fn find(system: &System, object: &str, field: &str, value: &str) -> Result<Option<Arc<Record>>, ApiError> {
    let mut query = Query::new(object);
    query.filter = Some(eq(field, value));
    query.limit = Some(1);
    Ok(system.reader.execute(&Viewer::system(), query).await?.records.into_iter().next())
}

fn text(record: &Record, field: &str) -> Option<String> {
    record.get(field).and_then(Value::as_str).map(str::to_string)
}

fn texts(record: &Record, field: &str) -> Vec<String> {
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

fn user_json(user: &Record) -> Json {
    json!({
        "id": text(user, "id"), "email": text(user, "email"), "name": text(user, "name"),
        "profile": text(user, "profile"), "permissionSets": texts(user, "permission_sets"), "roles": texts(user, "roles"),
        "active": user.get("active").map(Value::to_json).unwrap_or(Json::Bool(true)),
    })
}

/// The user and session a token opens, or why it opens none.
pub async fn principal_of_token(system: &System, token: &str) -> Result<(Principal, String), ApiError> {
    principal_of_token_at(system, token, None).await
}

/// [`principal_of_token`] once the read model has reached `min` (so a sign-out on another node is seen).
pub async fn principal_of_token_at(system: &System, token: &str, min: Option<u64>) -> Result<(Principal, String), ApiError> {
    settle_at(system, min).await?;
    let invalid = || ApiError::new(ErrorCode::InvalidToken, "the token is not valid (signed out, revoked, or never issued): sign in again");
    // An API key acts as its user; a session token as the session's.
    let object = if token.starts_with(super::api_keys::PREFIX) { "api_key" } else { "session" };
    let session = find(system, object, if object == "session" { "token_hash" } else { "key_hash" }, &hash_token(token)).await?.ok_or_else(invalid)?;
    let expires = match text(&session, "expires_at") {
        Some(t) => Timestamp::parse(&t).map(Timestamp::micros).unwrap_or(0),
        None if object == "api_key" => i64::MAX,
        None => 0,
    };
    if expires <= commands::clock::now().micros() {
        return Err(ApiError::new(ErrorCode::SessionExpired, "the session has expired: sign in again"));
    }
    let user_id = text(&session, "user").ok_or_else(invalid)?;
    if object == "session" {
        renew(system, &session, expires).await;
    }
    let user = find(system, "user", "id", &user_id).await?.ok_or_else(invalid)?;
    if user.get("active") == Some(&Value::Bool(false)) {
        return Err(ApiError::new(ErrorCode::InvalidToken, "the account is deactivated"));
    }
    Ok((principal_of_user(&user), text(&session, "id").unwrap_or_default()))
}

/// Sliding sessions: a session used when less than [`SESSION_TTL`] minus a
/// day remains is extended to a full [`SESSION_TTL`] (an event, at most daily).
async fn renew(system: &System, session: &Record, expires: i64) {
    let now = commands::clock::now().micros();
    let day = 24 * 3600 * 1_000_000i64;
    if expires - now >= SESSION_TTL.as_micros() as i64 - day {
        return;
    }
    let Some(id) = text(session, "id") else { return };
    let mut patch = Map::new();
    patch.insert("expires_at".into(), json!(Timestamp::from_micros(now + SESSION_TTL.as_micros() as i64).to_rfc3339()));
    let user = text(session, "user").unwrap_or_default();
    if let Err(error) =
        system.commands.execute(Command::Update { object: "session".into(), id, patch, expected_version: None }, CommandMeta::actor(&user)).await
    {
        tracing::warn!(%error, "cannot renew a session");
    }
}

/// Role name to the ids of its users (owner-based sharing rules need it).
pub async fn role_members(system: &System) -> Result<BTreeMap<String, Vec<String>>, ApiError> {
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

/// Failed sign-ins per account and per client address.
#[derive(Default)]
pub struct Limiter {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Limiter {
    /// Whether a key is locked out now.
    fn locked(&self, key: &str) -> bool {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.get(key).is_some_and(|(count, since)| *count >= MAX_FAILURES && since.elapsed() < LOCKOUT)
    }

    /// Counts a failure; returns whether it started a lockout.
    fn fail(&self, key: &str) -> bool {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() > 100_000 {
            failures.retain(|_, (_, since)| since.elapsed() < LOCKOUT);
        }
        let entry = failures.entry(key.to_string()).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= LOCKOUT {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
        entry.0 == MAX_FAILURES
    }

    fn clear(&self, key: &str) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

/// Appends an authentication event (a failed sign-in, a lockout). A failure to record is logged, not shown.
async fn record_auth_event(system: &System, kind: &str, email: &str, client: &str) {
    let mut data = Map::new();
    data.insert("kind".into(), json!(kind));
    data.insert("email".into(), json!(email));
    data.insert("client".into(), json!(client.trim_start_matches("ip:")));
    if let Err(error) = system.commands.execute(Command::Create { object: "auth_event".into(), id: None, data }, CommandMeta::actor("anonymous")).await {
        tracing::error!(%error, kind, "cannot record an authentication event");
    }
}

fn field<'a>(body: &'a Json, key: &str) -> Result<&'a str, ApiError> {
    body.get(key).and_then(Json::as_str).filter(|s| !s.is_empty()).ok_or_else(|| ApiError::new(ErrorCode::MissingRequiredField, format!("'{key}' is required")))
}

/// Opens a session for a user: a session record (an event), the token returned once.
async fn open_session(system: &System, user: &Record) -> Result<Json, ApiError> {
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

/// The client's address, when the server was served with connection info.
pub(crate) struct ClientAddress(Option<SocketAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)))
    }
}

fn client_key(client: &ClientAddress) -> String {
    format!("ip:{}", client.0.map(|a| a.ip().to_string()).unwrap_or_else(|| "local".into()))
}

/// `POST /api/v1/auth/sign-up/email {email, password, name?}` -> `{token, user, session}`.
pub(crate) async fn sign_up(State(system): State<Arc<System>>, JsonBody(body): JsonBody) -> Result<Response, ApiError> {
    if !system.policy.sign_up {
        return Err(ApiError::new(ErrorCode::PermissionDenied, "sign-up is closed on this server: ask an administrator for an account"));
    }
    let email = field(&body, "email")?.trim().to_lowercase();
    let password = field(&body, "password")?.to_string();
    if password.chars().count() < MIN_PASSWORD {
        return Err(ApiError::new(ErrorCode::ValueTooShort, format!("the password needs at least {MIN_PASSWORD} characters")));
    }
    let name = body.get("name").and_then(Json::as_str).filter(|n| !n.trim().is_empty()).map(str::to_string).unwrap_or_else(|| email.clone());
    settle(&system).await?;
    if find(&system, "user", "email", &email).await?.is_some() {
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
    let user = outcome.record.clone().unwrap_or_default();
    let payload = open_session(&system, &user).await?;
    Ok((StatusCode::OK, JsonResponse(ok(payload))).into_response())
}

/// `POST /api/v1/auth/sign-in/email {email, password}` -> `{token, user, session}`; 401
/// `invalid_credentials`, 429 `rate_limit_exceeded` after repeated failures.
pub(crate) async fn sign_in(State(system): State<Arc<System>>, client: ClientAddress, JsonBody(body): JsonBody) -> Result<Response, ApiError> {
    let email = field(&body, "email")?.trim().to_lowercase();
    let password = field(&body, "password")?.to_string();
    let (account, client) = (format!("account:{email}"), client_key(&client));
    if system.limiter.locked(&account) || system.limiter.locked(&client) {
        return Err(ApiError::new(ErrorCode::RateLimitExceeded, format!("too many failed sign-ins: try again in {} minutes", LOCKOUT.as_secs() / 60)));
    }
    settle(&system).await?;
    let user = find(&system, "user", "email", &email).await?;
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
        let locked = system.limiter.fail(&account) | system.limiter.fail(&client);
        tracing::warn!(client = %client, locked, "failed sign-in");
        // Each failure and each lockout is an event (in the audit trail); bounded by the lockout itself.
        record_auth_event(&system, "sign_in_failed", &email, &client).await;
        if locked {
            record_auth_event(&system, "locked_out", &email, &client).await;
        }
        return Err(ApiError::new(ErrorCode::InvalidCredentials, "wrong email or password"));
    }
    system.limiter.clear(&account);
    let user = user.expect("valid implies a user");
    Ok(JsonResponse(ok(open_session(&system, &user).await?)).into_response())
}

/// `POST /api/v1/auth/sign-out`: the session is deleted (an event), at once on
/// every node (a request carrying the answer's `X-Log-Position` as
/// `X-Min-Position` is refused anywhere).
pub(crate) async fn sign_out(State(system): State<Arc<System>>, caller: Caller) -> Result<Response, ApiError> {
    let mut position = 0;
    if let Some(session) = caller.session.as_ref().filter(|_| !caller.api_key) {
        let command = Command::Delete { object: "session".into(), id: session.clone(), expected_version: None };
        position = system.commands.execute(command, CommandMeta::actor(caller.actor())).await?.position;
    }
    Ok((crate::routes::support::position_headers(position), JsonResponse(ok(json!({"success": true})))).into_response())
}

/// `GET /api/v1/auth/get-session` -> `{session, user}` (`null` without a valid token).
pub(crate) async fn get_session(
    State(system): State<Arc<System>>,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
) -> Result<JsonResponse<Json>, ApiError> {
    let Some(token) = bearer_of(&headers, &uri) else { return Ok(JsonResponse(ok(Json::Null))) };
    let Ok((principal, session)) = principal_of_token(&system, &token).await else { return Ok(JsonResponse(ok(Json::Null))) };
    let user = find(&system, "user", "id", &principal.user_id).await?.map(|u| user_json(&u)).unwrap_or(Json::Null);
    Ok(JsonResponse(ok(json!({"session": {"id": session, "userId": principal.user_id}, "user": user}))))
}

fn action_allowed(caller: &Caller, system: &System, object: &str, action: &str) -> Result<bool, ApiError> {
    let catalog = system.reader.catalog();
    let definition = catalog.require(object)?;
    let p = caller.access().grant(&catalog, definition).permission;
    Ok(match action {
        "read" => p.can_read(),
        "create" => p.create || p.modify_all,
        "edit" | "update" => p.edit || p.modify_all,
        "delete" => p.delete || p.modify_all,
        "transfer" => p.transfer || p.modify_all,
        "restore" => p.restore,
        "purge" => p.purge,
        other => {
            return Err(ApiError::new(ErrorCode::InvalidField, format!("unknown action '{other}' (create, read, edit, delete, transfer, restore, purge)")))
        }
    })
}

/// `POST /api/v1/auth/check {object, action, recordId?, field?}` -> `{allowed, reason?}`.
pub(crate) async fn check(State(system): State<Arc<System>>, caller: Caller, JsonBody(body): JsonBody) -> Result<JsonResponse<Json>, ApiError> {
    let object = field(&body, "object")?;
    let action = field(&body, "action")?;
    let mut allowed = action_allowed(&caller, &system, object, action)?;
    let mut reason = (!allowed).then(|| format!("no {action} permission on {object}"));
    if let (true, Some(field)) = (allowed, body.get("field").and_then(Json::as_str)) {
        let catalog = system.reader.catalog();
        let grant = caller.access().grant(&catalog, catalog.require(object)?);
        let ok_field = if action == "read" { grant.can_read_field(field) } else { !grant.readonly.contains(field) };
        if !ok_field {
            allowed = false;
            reason = Some(format!("field '{field}' is not accessible for {action}"));
        }
    }
    if let (true, Some(id)) = (allowed, body.get("recordId").and_then(Json::as_str)) {
        if system.reader.get(&caller.viewer, object, id).await?.is_none() {
            allowed = false;
            reason = Some(format!("record {id} is not visible"));
        } else if action != "read" && action != "create" {
            let guard = WriteGuard::new(caller.access(), &system.commands.catalog(), object)?;
            let state = system.commands.record_state(object, id);
            if let (Some(guard), Some(record)) = (guard, state.record) {
                let op = if action == "delete" { domain::security::WriteOp::Delete } else { domain::security::WriteOp::Update };
                let commands_catalog = system.commands.catalog();
                let fetch = |o: &str, i: &str| system.commands.record_state(o, i).record;
                if let Err(e) = guard.check_before(op, &commands_catalog, &record, &fetch) {
                    allowed = false;
                    reason = Some(e.to_string());
                }
            }
        }
    }
    Ok(JsonResponse(ok(json!({"allowed": allowed, "reason": reason}))))
}

/// `GET /api/v1/auth/permissions/{object}` -> `{object, permissions, fieldPermissions}`.
pub(crate) async fn permissions_of(State(system): State<Arc<System>>, caller: Caller, Path(object): Path<String>) -> Result<JsonResponse<Json>, ApiError> {
    let catalog = system.reader.catalog();
    let definition = catalog.require(&object)?;
    let grant = caller.access().grant(&catalog, definition);
    let fields: Map<String, Json> = definition
        .fields
        .iter()
        .filter(|f| !grant.hidden.contains(&f.name) || grant.passwords.contains(&f.name))
        .map(|f| (f.name.clone(), json!({"readable": grant.can_read_field(&f.name), "editable": !grant.readonly.contains(&f.name)})))
        .collect();
    Ok(JsonResponse(ok(json!({"object": definition.name, "permissions": grant.permission.to_json(), "fieldPermissions": fields}))))
}

/// `GET /api/v1/auth/permissions/effective` -> `{objects: {name: ObjectPermission}, systemPermissions}`.
pub(crate) async fn effective(State(system): State<Arc<System>>, caller: Caller) -> Result<JsonResponse<Json>, ApiError> {
    let catalog = system.reader.catalog();
    let mut objects = Map::new();
    for definition in catalog.objects() {
        let grant = caller.access().grant(&catalog, definition);
        if grant.permission.can_read() || grant.permission.create {
            objects.insert(definition.name.clone(), grant.permission.to_json());
        }
    }
    Ok(JsonResponse(ok(json!({"objects": objects, "systemPermissions": caller.access().system_permissions(), "user": caller.principal().user_id}))))
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
