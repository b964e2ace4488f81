//! Permission sets and profiles as the app declares them (the protocol's
//! `PermissionSet`, `ObjectPermission`, `FieldPermission`,
//! `RowLevelSecurityPolicy`), parsed and checked.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;

use super::predicate::{parse_predicate, Predicate};
use crate::error::DomainError;

/// What a set grants on one object (every flag defaults to false).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ObjectPermission {
    pub create: bool,
    pub read: bool,
    pub edit: bool,
    pub delete: bool,
    pub transfer: bool,
    pub restore: bool,
    pub purge: bool,
    /// Sees every record, whatever the sharing model says.
    pub view_all: bool,
    /// Reads and changes every record, whatever the sharing model says.
    pub modify_all: bool,
}

impl ObjectPermission {
    pub const ALL: ObjectPermission =
        ObjectPermission { create: true, read: true, edit: true, delete: true, transfer: true, restore: true, purge: true, view_all: true, modify_all: true };

    /// The union of two grants (the most permissive).
    pub fn union(self, other: ObjectPermission) -> ObjectPermission {
        ObjectPermission {
            create: self.create || other.create,
            read: self.read || other.read,
            edit: self.edit || other.edit,
            delete: self.delete || other.delete,
            transfer: self.transfer || other.transfer,
            restore: self.restore || other.restore,
            purge: self.purge || other.purge,
            view_all: self.view_all || other.view_all,
            modify_all: self.modify_all || other.modify_all,
        }
    }

    /// Reading is implied by every other right but create.
    pub fn can_read(&self) -> bool {
        self.read || self.edit || self.delete || self.view_all || self.modify_all
    }

    pub fn to_json(self) -> Json {
        serde_json::json!({
            "allowCreate": self.create, "allowRead": self.can_read(), "allowEdit": self.edit || self.modify_all,
            "allowDelete": self.delete || self.modify_all, "allowTransfer": self.transfer || self.modify_all,
            "allowRestore": self.restore, "allowPurge": self.purge,
            "viewAllRecords": self.view_all || self.modify_all, "modifyAllRecords": self.modify_all,
        })
    }

    fn parse(context: &str, json: &Json) -> Result<ObjectPermission, DomainError> {
        let map = json.as_object().ok_or_else(|| invalid(format!("{context} must be an object of flags")))?;
        let mut out = ObjectPermission::default();
        for (key, value) in map {
            let flag = value.as_bool().ok_or_else(|| invalid(format!("{context}.{key} must be true or false")))?;
            let slot = match key.as_str() {
                "allowCreate" => &mut out.create,
                "allowRead" => &mut out.read,
                "allowEdit" => &mut out.edit,
                "allowDelete" => &mut out.delete,
                "allowTransfer" => &mut out.transfer,
                "allowRestore" => &mut out.restore,
                "allowPurge" => &mut out.purge,
                "viewAllRecords" => &mut out.view_all,
                "modifyAllRecords" => &mut out.modify_all,
                other => return Err(invalid(format!("{context}: unknown permission '{other}'"))),
            };
            *slot = flag;
        }
        Ok(out)
    }
}

/// Field-level security for one field (the protocol's defaults: readable, not editable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldPermission {
    pub readable: bool,
    pub editable: bool,
}

/// Which operations a row-level policy covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RlsOperation {
    Select,
    Insert,
    Update,
    Delete,
    All,
}

impl RlsOperation {
    fn parse(text: &str) -> Option<RlsOperation> {
        Some(match text {
            "select" => RlsOperation::Select,
            "insert" => RlsOperation::Insert,
            "update" => RlsOperation::Update,
            "delete" => RlsOperation::Delete,
            "all" => RlsOperation::All,
            _ => return None,
        })
    }

    /// Whether the policy applies to `operation`.
    pub fn covers(self, operation: RlsOperation) -> bool {
        self == RlsOperation::All || self == operation
    }
}

/// A row-level security policy (`using` filters what is read and what may be
/// changed or deleted; `check` what a write may leave behind, `using` when absent).
#[derive(Debug, Clone, PartialEq)]
pub struct RlsPolicy {
    pub name: String,
    pub object: String,
    pub operation: RlsOperation,
    pub using: Option<Predicate>,
    pub check: Option<Predicate>,
    /// Roles the policy applies to (empty: everyone holding the set).
    pub roles: Vec<String>,
    /// A disabled policy neither grants nor restricts anything.
    pub enabled: bool,
}

/// A permission set or, with `is_profile`, a profile.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PermissionSet {
    pub name: String,
    pub is_profile: bool,
    /// Object name (or `*`, every object) to its grant.
    pub objects: BTreeMap<String, ObjectPermission>,
    /// `object.field` to its field permission.
    pub fields: BTreeMap<String, FieldPermission>,
    pub system_permissions: BTreeSet<String>,
    pub row_level_security: Vec<RlsPolicy>,
}

fn invalid(message: String) -> DomainError {
    DomainError::InvalidDefinition(format!("permissions: {message}"))
}

impl PermissionSet {
    /// Parses one entry of the app's `permissions`.
    pub fn parse(json: &Json) -> Result<PermissionSet, DomainError> {
        let map = json.as_object().ok_or_else(|| invalid("each permission set must be an object".into()))?;
        let name = map.get("name").and_then(Json::as_str).unwrap_or_default().to_string();
        if name.len() < 2
            || !name.starts_with(|c: char| c.is_ascii_lowercase())
            || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(invalid(format!("permission set name '{name}' must be snake_case, 2 characters or more")));
        }
        let mut set = PermissionSet { name: name.clone(), ..PermissionSet::default() };
        for (key, value) in map {
            match key.as_str() {
                "name" | "label" | "description" | "tabPermissions" | "contextVariables" => {}
                "isProfile" => set.is_profile = value.as_bool().ok_or_else(|| invalid(format!("{name}.isProfile must be true or false")))?,
                "objects" => {
                    let objects = value.as_object().ok_or_else(|| invalid(format!("{name}.objects must be an object")))?;
                    for (object, grant) in objects {
                        set.objects.insert(object.clone(), ObjectPermission::parse(&format!("{name}.objects.{object}"), grant)?);
                    }
                }
                "fields" => {
                    let fields = value.as_object().ok_or_else(|| invalid(format!("{name}.fields must be an object")))?;
                    for (path, grant) in fields {
                        if !path.contains('.') {
                            return Err(invalid(format!("{name}.fields: '{path}' must be 'object.field'")));
                        }
                        let flag = |key: &str, default: bool| -> Result<bool, DomainError> {
                            match grant.get(key) {
                                None => Ok(default),
                                Some(Json::Bool(b)) => Ok(*b),
                                Some(_) => Err(invalid(format!("{name}.fields.{path}.{key} must be true or false"))),
                            }
                        };
                        set.fields.insert(path.clone(), FieldPermission { readable: flag("readable", true)?, editable: flag("editable", false)? });
                    }
                }
                "systemPermissions" => {
                    let items = value.as_array().ok_or_else(|| invalid(format!("{name}.systemPermissions must be a list")))?;
                    for item in items {
                        let text = item.as_str().ok_or_else(|| invalid(format!("{name}.systemPermissions holds names")))?;
                        set.system_permissions.insert(text.to_string());
                    }
                }
                "rowLevelSecurity" => {
                    let items = value.as_array().ok_or_else(|| invalid(format!("{name}.rowLevelSecurity must be a list")))?;
                    for item in items {
                        set.row_level_security.push(parse_policy(&name, item)?);
                    }
                }
                other => return Err(invalid(format!("{name}: unknown key '{other}'"))),
            }
        }
        Ok(set)
    }

    /// The field permission of `object.field`, if the set names one.
    pub fn field(&self, object: &str, field: &str) -> Option<FieldPermission> {
        if self.fields.is_empty() {
            return None;
        }
        self.fields.get(&format!("{object}.{field}")).copied()
    }

    /// What the set grants on an object (`*` applies to every object).
    pub fn object(&self, object: &str) -> ObjectPermission {
        let exact = self.objects.get(object).copied().unwrap_or_default();
        match self.objects.get("*") {
            Some(all) => exact.union(*all),
            None => exact,
        }
    }
}

/// Parses one RLS policy (standalone in `policies`, or inside a set).
pub(crate) fn parse_policy(owner: &str, json: &Json) -> Result<RlsPolicy, DomainError> {
    let text = |key: &str| json.get(key).and_then(Json::as_str).map(str::to_string);
    let name = text("name").ok_or_else(|| invalid(format!("{owner}: a row-level policy needs a name")))?;
    let object = text("object").ok_or_else(|| invalid(format!("{owner}.{name}: a row-level policy needs an object")))?;
    let operation = text("operation")
        .and_then(|o| RlsOperation::parse(&o))
        .ok_or_else(|| invalid(format!("{owner}.{name}: operation must be select, insert, update, delete or all")))?;
    let predicate = |key: &str| -> Result<Option<Predicate>, DomainError> {
        match text(key) {
            None => Ok(None),
            Some(source) => parse_predicate(&source).map(Some).map_err(|e| invalid(format!("{owner}.{name}.{key}: {e}"))),
        }
    };
    let (using, check) = (predicate("using")?, predicate("check")?);
    if using.is_none() && check.is_none() {
        return Err(invalid(format!("{owner}.{name}: a row-level policy needs using or check")));
    }
    let roles = json.get("roles").and_then(Json::as_array).map(|r| r.iter().filter_map(Json::as_str).map(str::to_string).collect()).unwrap_or_default();
    let enabled = json.get("enabled").and_then(Json::as_bool).unwrap_or(true);
    Ok(RlsPolicy { name, object, operation, using, check, roles, enabled })
}
