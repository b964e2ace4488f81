//! Webhooks (`Webhook`): every committed change of an object that matches a
//! webhook's triggers is delivered to its URL after commit, at least once,
//! with retries and a signature; how is `commands::process::webhooks`.

use serde_json::{Map, Value as Json};

use super::check::{boolean, invalid, name, number, properties, text};
use crate::error::DomainError;
use crate::metadata::{Catalog, FieldType};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookTrigger {
    Create,
    Update,
    Delete,
}

impl WebhookTrigger {
    pub fn name(self) -> &'static str {
        match self {
            WebhookTrigger::Create => "create",
            WebhookTrigger::Update => "update",
            WebhookTrigger::Delete => "delete",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    Exponential,
    Linear,
    Fixed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub backoff: Backoff,
    pub initial_delay_ms: u64,
    pub max_delay_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_retries: 3, backoff: Backoff::Exponential, initial_delay_ms: 1000, max_delay_ms: 60_000 }
    }
}

impl RetryPolicy {
    /// The wait before retry `n` (1 for the first retry).
    pub fn delay_ms(&self, retry: u32) -> u64 {
        let base = self.initial_delay_ms;
        let delay = match self.backoff {
            Backoff::Fixed => base,
            Backoff::Linear => base.saturating_mul(retry as u64),
            Backoff::Exponential => base.saturating_mul(1u64 << (retry.saturating_sub(1)).min(32)),
        };
        delay.min(self.max_delay_ms)
    }
}

/// How the receiver authenticates the sender (besides the signature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    Bearer { token: String },
    Basic { username: String, password: String },
    ApiKey { header: String, key: String },
}

#[derive(Debug, Clone)]
pub struct Webhook {
    pub name: String,
    /// The object whose changes are sent (`None`: every object's).
    pub object: Option<String>,
    pub triggers: Vec<WebhookTrigger>,
    /// An `http://` URL.
    pub url: String,
    pub method: String,
    pub headers: Vec<(String, String)>,
    /// A body sent instead of the change (as JSON).
    pub body: Option<Json>,
    /// Fields of the record to send (empty: all but passwords).
    pub payload_fields: Vec<String>,
    pub authentication: Option<Authentication>,
    pub retry: RetryPolicy,
    pub timeout_ms: u64,
    /// The HMAC-SHA256 key of the `X-ObjectStack-Signature` header.
    pub secret: Option<String>,
    pub active: bool,
}

const PROPERTIES: [&str; 16] = [
    "name",
    "label",
    "object",
    "triggers",
    "url",
    "method",
    "headers",
    "body",
    "payloadFields",
    "includeSession",
    "authentication",
    "retryPolicy",
    "timeoutMs",
    "secret",
    "isActive",
    "description",
];

impl Webhook {
    pub fn parse(json: &Json, catalog: &Catalog) -> Result<Webhook, DomainError> {
        let mut allowed = PROPERTIES.to_vec();
        allowed.push("tags");
        let map = properties("webhook", json, &allowed)?;
        let hook_name = name("webhook", map)?;
        let what = format!("webhook '{hook_name}'");
        let object = match text(&what, map, "object")? {
            Some(object) => Some(catalog.get(object).ok_or_else(|| invalid(format!("{what}: unknown object '{object}'")))?.clone()),
            None => None,
        };
        let mut triggers = Vec::new();
        for trigger in map.get("triggers").and_then(Json::as_array).map(Vec::as_slice).unwrap_or_default() {
            triggers.push(match trigger.as_str().unwrap_or_default() {
                "create" => WebhookTrigger::Create,
                "update" => WebhookTrigger::Update,
                "delete" => WebhookTrigger::Delete,
                other => return Err(invalid(format!("{what}: trigger '{other}' is not supported (create, update, delete)"))),
            });
        }
        if triggers.is_empty() {
            triggers = vec![WebhookTrigger::Create, WebhookTrigger::Update, WebhookTrigger::Delete];
        }
        let url = text(&what, map, "url")?.ok_or_else(|| invalid(format!("{what}: 'url' is required")))?;
        if !super::is_http_url(url) {
            return Err(invalid(format!("{what}: 'url' must be an http:// or https:// URL")));
        }
        let method = text(&what, map, "method")?.unwrap_or("POST").to_ascii_uppercase();
        if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
            return Err(invalid(format!("{what}: unknown method '{method}'")));
        }
        let mut headers = Vec::new();
        if let Some(given) = map.get("headers") {
            let given = given.as_object().ok_or_else(|| invalid(format!("{what}: 'headers' must be an object of strings")))?;
            for (key, value) in given {
                let value = value.as_str().ok_or_else(|| invalid(format!("{what}: header '{key}' must be a string")))?;
                headers.push((key.clone(), value.to_string()));
            }
        }
        let mut payload_fields = Vec::new();
        for field in map.get("payloadFields").and_then(Json::as_array).map(Vec::as_slice).unwrap_or_default() {
            let field = field.as_str().unwrap_or_default();
            if let Some(object) = &object {
                match object.field(field) {
                    None if !crate::metadata::SYSTEM_FIELDS.contains(&field) => {
                        return Err(invalid(format!("{what}: payloadFields names unknown field '{field}' of '{}'", object.name)))
                    }
                    Some(f) if f.field_type == FieldType::Password => return Err(invalid(format!("{what}: password field '{field}' is never sent"))),
                    _ => {}
                }
            }
            payload_fields.push(field.to_string());
        }
        Ok(Webhook {
            name: hook_name.to_string(),
            object: object.map(|o| o.name.clone()),
            triggers,
            url: url.to_string(),
            method,
            headers,
            body: map.get("body").filter(|b| !b.is_null()).cloned(),
            payload_fields,
            authentication: authentication(&what, map)?,
            retry: retry_policy(&what, map)?,
            timeout_ms: number(&what, map, "timeoutMs", 30_000, 1000, 300_000)?,
            secret: text(&what, map, "secret")?.map(str::to_string),
            active: boolean(&what, map, "isActive", true)?,
        })
    }

    /// Whether a change of `object` by `trigger` goes to this webhook.
    pub fn wants(&self, object: &str, trigger: WebhookTrigger) -> bool {
        self.active && self.object.as_deref().is_none_or(|o| o == object) && self.triggers.contains(&trigger)
    }
}

fn authentication(what: &str, map: &Map<String, Json>) -> Result<Option<Authentication>, DomainError> {
    let Some(auth) = map.get("authentication") else { return Ok(None) };
    let what = format!("{what} authentication");
    let auth = properties(&what, auth, &["type", "credentials"])?;
    let credentials = auth.get("credentials").and_then(Json::as_object);
    let credential = |key: &str| -> Result<String, DomainError> {
        credentials.and_then(|c| c.get(key)).and_then(Json::as_str).map(str::to_string).ok_or_else(|| invalid(format!("{what}: credentials need '{key}'")))
    };
    Ok(match text(&what, auth, "type")?.unwrap_or("none") {
        "none" => None,
        "bearer" => Some(Authentication::Bearer { token: credential("token")? }),
        "basic" => Some(Authentication::Basic { username: credential("username")?, password: credential("password")? }),
        "api-key" => Some(Authentication::ApiKey {
            header: credentials.and_then(|c| c.get("header")).and_then(Json::as_str).unwrap_or("X-API-Key").to_string(),
            key: credential("key")?,
        }),
        other => return Err(invalid(format!("{what}: unknown type '{other}' (none, bearer, basic, api-key)"))),
    })
}

fn retry_policy(what: &str, map: &Map<String, Json>) -> Result<RetryPolicy, DomainError> {
    let Some(policy) = map.get("retryPolicy") else { return Ok(RetryPolicy::default()) };
    let what = format!("{what} retryPolicy");
    let policy = properties(&what, policy, &["maxRetries", "backoffStrategy", "initialDelayMs", "maxDelayMs"])?;
    let backoff = match text(&what, policy, "backoffStrategy")?.unwrap_or("exponential") {
        "exponential" => Backoff::Exponential,
        "linear" => Backoff::Linear,
        "fixed" => Backoff::Fixed,
        other => return Err(invalid(format!("{what}: unknown backoffStrategy '{other}'"))),
    };
    Ok(RetryPolicy {
        max_retries: number(&what, policy, "maxRetries", 3, 0, 10)? as u32,
        backoff,
        initial_delay_ms: number(&what, policy, "initialDelayMs", 1000, 100, 3_600_000)?,
        max_delay_ms: number(&what, policy, "maxDelayMs", 60_000, 1000, 86_400_000)?,
    })
}
