//! The app's security declarations as one value: permission sets and
//! profiles (`permissions`), roles (`roles`), sharing rules (`sharingRules`),
//! and who new sign-ups and guests are (`auth`, this server's key:
//! `{defaultProfile?, guestProfile?, signUp = true}`).

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::permission_set::PermissionSet;
use super::predicate::{parse_predicate, Predicate};
use crate::error::DomainError;
use crate::metadata::{Catalog, ObjectDef};

/// An object's org-wide default (the object's `sharingModel`; OWD names accepted too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharingModel {
    /// Only the owner (and those rules share with) sees a record.
    Private,
    /// Everyone with read permission sees every record; only the owner edits.
    Read,
    /// Everyone with the object permissions sees and edits every record (the default).
    ReadWrite,
    /// A record is seen and edited by who may see and edit its master record.
    ControlledByParent,
}

impl SharingModel {
    /// The model an object declares (`read_write` when it declares none).
    pub fn of(object: &ObjectDef) -> Result<SharingModel, DomainError> {
        Ok(match object.raw.get("sharingModel").and_then(Json::as_str) {
            None | Some("read_write" | "public_read_write" | "full") => SharingModel::ReadWrite,
            Some("private") => SharingModel::Private,
            Some("read" | "public_read") => SharingModel::Read,
            Some("controlled_by_parent") => SharingModel::ControlledByParent,
            Some(other) => {
                return Err(DomainError::InvalidDefinition(format!(
                    "object '{}': sharingModel '{other}' is not private, read, read_write, full or controlled_by_parent",
                    object.name
                )))
            }
        })
    }
}

/// Who a sharing rule shares with, or whose records an owner rule covers.
#[derive(Debug, Clone, PartialEq)]
pub struct Recipient {
    /// `user`, `role`, `role_and_subordinates`, `group` (a role here) or `guest`.
    pub kind: String,
    pub value: String,
}

/// Which records a sharing rule opens up.
#[derive(Debug, Clone, PartialEq)]
pub enum SharedRecords {
    /// Records matching a condition.
    Criteria(Predicate),
    /// Records owned by the recipient's users.
    OwnedBy(Recipient),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SharingRule {
    pub name: String,
    pub object: String,
    /// `false`: read only; `true`: read and edit (`edit` or `full`).
    pub edit: bool,
    pub shared_with: Recipient,
    pub records: SharedRecords,
}

/// The app's whole security declaration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecurityPolicy {
    pub sets: BTreeMap<String, PermissionSet>,
    pub sharing_rules: Vec<SharingRule>,
    /// Role name to its parent role.
    pub roles: BTreeMap<String, Option<String>>,
    /// The profile new sign-ups get.
    pub default_profile: Option<String>,
    /// The profile of callers who are not signed in.
    pub guest_profile: Option<String>,
    /// Whether anyone may sign up (`auth.signUp`, default true).
    pub sign_up: bool,
    /// Whether the app declares any security at all (otherwise the server runs open, for local development).
    pub declared: bool,
}

fn invalid(message: String) -> DomainError {
    DomainError::InvalidDefinition(message)
}

fn recipient(rule: &str, json: Option<&Json>) -> Result<Recipient, DomainError> {
    let kind = json.and_then(|j| j.get("type")).and_then(Json::as_str).unwrap_or_default();
    let value = json.and_then(|j| j.get("value")).and_then(Json::as_str).unwrap_or_default();
    if !["user", "role", "role_and_subordinates", "group", "guest"].contains(&kind) {
        return Err(invalid(format!("sharing rule '{rule}': the recipient type must be user, role, role_and_subordinates, group or guest")));
    }
    Ok(Recipient { kind: kind.into(), value: value.into() })
}

impl SecurityPolicy {
    /// Reads `permissions`, `roles`, `sharingRules` and `auth` from an app and
    /// checks them against its objects: every name they use must exist.
    pub fn from_app(app: &Json, catalog: &Catalog) -> Result<SecurityPolicy, DomainError> {
        let mut policy = SecurityPolicy { sign_up: true, ..SecurityPolicy::default() };
        for item in app.get("permissions").and_then(Json::as_array).into_iter().flatten() {
            let set = PermissionSet::parse(item)?;
            if policy.sets.contains_key(&set.name) {
                return Err(invalid(format!("permissions: '{}' is declared twice", set.name)));
            }
            for object in set.objects.keys().filter(|o| *o != "*") {
                catalog.require(object).map_err(|_| invalid(format!("permission set '{}' names an unknown object '{object}'", set.name)))?;
            }
            for path in set.fields.keys() {
                let (object, field) = path.split_once('.').unwrap_or_default();
                let def = catalog.require(object).map_err(|_| invalid(format!("permission set '{}' names an unknown object in '{path}'", set.name)))?;
                if def.field(field).is_none() {
                    return Err(invalid(format!("permission set '{}' names an unknown field '{path}'", set.name)));
                }
            }
            for rls in &set.row_level_security {
                check_predicate_fields(catalog, &rls.object, &format!("{}.{}", set.name, rls.name), rls.using.iter().chain(rls.check.iter()))?;
            }
            policy.sets.insert(set.name.clone(), set);
        }
        for item in app.get("roles").and_then(Json::as_array).into_iter().flatten() {
            let name = item.get("name").and_then(Json::as_str).ok_or_else(|| invalid("roles: each role needs a name".into()))?;
            policy.roles.insert(name.to_string(), item.get("parent").and_then(Json::as_str).map(str::to_string));
        }
        for item in app.get("sharingRules").and_then(Json::as_array).into_iter().flatten() {
            let text = |key: &str| item.get(key).and_then(Json::as_str).map(str::to_string);
            let name = text("name").ok_or_else(|| invalid("sharingRules: each rule needs a name".into()))?;
            if item.get("active").and_then(Json::as_bool) == Some(false) {
                continue;
            }
            let object = text("object").ok_or_else(|| invalid(format!("sharing rule '{name}' needs an object")))?;
            catalog.require(&object).map_err(|_| invalid(format!("sharing rule '{name}' names an unknown object '{object}'")))?;
            let edit = match text("accessLevel").as_deref() {
                None | Some("read") => false,
                Some("edit" | "full") => true,
                Some(other) => return Err(invalid(format!("sharing rule '{name}': accessLevel '{other}' is not read, edit or full"))),
            };
            let records = match text("type").as_deref() {
                Some("criteria") => {
                    let source = text("condition").ok_or_else(|| invalid(format!("sharing rule '{name}' needs a condition")))?;
                    let predicate = parse_predicate(&source).map_err(|e| invalid(format!("sharing rule '{name}': {e}")))?;
                    check_predicate_fields(catalog, &object, &name, std::iter::once(&predicate))?;
                    SharedRecords::Criteria(predicate)
                }
                Some("owner") => SharedRecords::OwnedBy(recipient(&name, item.get("ownedBy"))?),
                _ => return Err(invalid(format!("sharing rule '{name}': type must be criteria or owner"))),
            };
            policy.sharing_rules.push(SharingRule {
                name,
                object,
                edit,
                shared_with: recipient(&text("name").unwrap_or_default(), item.get("sharedWith"))?,
                records,
            });
        }
        if let Some(auth) = app.get("auth") {
            let profile = |key: &str| -> Result<Option<String>, DomainError> {
                match auth.get(key).and_then(Json::as_str) {
                    None => Ok(None),
                    Some(name) if policy.sets.get(name).is_some_and(|s| s.is_profile) => Ok(Some(name.to_string())),
                    Some(name) => Err(invalid(format!("auth.{key}: '{name}' is not a profile declared in permissions (isProfile: true)"))),
                }
            };
            policy.default_profile = profile("defaultProfile")?;
            policy.guest_profile = profile("guestProfile")?;
            policy.sign_up = auth.get("signUp").and_then(Json::as_bool).unwrap_or(true);
        }
        for object in catalog.objects() {
            SharingModel::of(object)?;
        }
        policy.declared = !policy.sets.is_empty();
        Ok(policy)
    }

    /// The role and every role above it.
    pub fn role_and_ancestors(&self, role: &str) -> Vec<String> {
        let mut out = vec![role.to_string()];
        let mut current = role.to_string();
        while let Some(Some(parent)) = self.roles.get(&current) {
            if out.contains(parent) {
                break;
            }
            out.push(parent.clone());
            current = parent.clone();
        }
        out
    }
}

fn check_predicate_fields<'a>(catalog: &Catalog, object: &str, owner: &str, predicates: impl Iterator<Item = &'a Predicate>) -> Result<(), DomainError> {
    let def = catalog.require(object).map_err(|_| invalid(format!("'{owner}' names an unknown object '{object}'")))?;
    for predicate in predicates {
        for path in predicate.fields() {
            let first = path.split('.').next().unwrap_or_default();
            if !crate::metadata::SYSTEM_FIELDS.contains(&first) && def.field(first).is_none() {
                return Err(invalid(format!("'{owner}': object '{object}' has no field '{first}'")));
            }
        }
    }
    Ok(())
}
