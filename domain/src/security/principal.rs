//! The caller: a signed-in user, a guest, or the server itself.

/// What kind of caller a principal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    /// A signed-in user (a session or an API key).
    User,
    /// Nobody signed in: the app's guest profile applies, if it names one.
    Guest,
    /// The server itself (app loading, sign-in, internal reads): no rules apply.
    System,
}

/// Who is calling, as the rules need it. Built by the gateway from a session
/// or an API key; the service layer passes it to every operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub kind: PrincipalKind,
    /// The user's record id in the `user` object (`anonymous` for a guest, `system` for the server).
    pub user_id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub tenant: String,
    /// The name of the user's profile (a permission set with `isProfile`).
    pub profile: Option<String>,
    /// Extra permission sets.
    pub permission_sets: Vec<String>,
    pub roles: Vec<String>,
}

impl Principal {
    pub fn system() -> Principal {
        Principal {
            kind: PrincipalKind::System,
            user_id: "system".into(),
            email: None,
            name: None,
            tenant: "default".into(),
            profile: None,
            permission_sets: Vec::new(),
            roles: Vec::new(),
        }
    }

    /// Nobody signed in.
    pub fn guest() -> Principal {
        Principal { kind: PrincipalKind::Guest, user_id: "anonymous".into(), ..Principal::system() }
    }

    /// A signed-in user with the given profile.
    pub fn user(id: &str, profile: Option<&str>) -> Principal {
        Principal { kind: PrincipalKind::User, user_id: id.into(), profile: profile.map(str::to_string), ..Principal::system() }
    }

    /// The profile and the extra sets, in order.
    pub fn set_names(&self) -> impl Iterator<Item = &str> {
        self.profile.iter().map(String::as_str).chain(self.permission_sets.iter().map(String::as_str))
    }

    /// The value of `current_user.<key>` in row rules.
    pub fn context(&self, key: &str) -> Option<crate::value::Value> {
        use crate::value::Value;
        Some(match key {
            "id" | "user_id" => Value::Text(self.user_id.clone()),
            "email" => self.email.clone().map(Value::Text).unwrap_or(Value::Null),
            "name" => self.name.clone().map(Value::Text).unwrap_or(Value::Null),
            "tenant_id" | "tenant" => Value::Text(self.tenant.clone()),
            "profile" => self.profile.clone().map(Value::Text).unwrap_or(Value::Null),
            "role" | "roles" => Value::List(self.roles.iter().cloned().map(Value::Text).collect()),
            _ => return None,
        })
    }
}
