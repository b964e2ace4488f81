//! What one caller may do: the union of the caller's profile and permission
//! sets, compiled per object into an [`ObjectGrant`] (object rights, hidden
//! and read-only fields, and the row filters of each operation).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use crate::metadata::{Catalog, FieldType, ObjectDef, SYSTEM_FIELDS};
use crate::query::{Condition, Filter, Op, Operand};
use crate::value::Value;

use super::permission_set::{ObjectPermission, RlsOperation};
use super::policy::{Recipient, SecurityPolicy, SharedRecords, SharingModel};
use super::predicate::never;
use super::principal::{Principal, PrincipalKind};
use super::INTERNAL_OBJECTS;

/// System permissions this server checks (names as an app writes them in `systemPermissions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemPermission {
    /// Change object definitions (`PUT /meta/...`).
    ManageMetadata,
    /// Rebuild projections.
    ManageProjections,
    /// Read the whole audit trail and `/metrics`.
    ViewAuditTrail,
    /// Assign profiles, permission sets and roles to users.
    ManageUsers,
    /// Read every record of every object (implies read on all objects).
    ViewAllData,
    /// See and run the app's jobs and read webhook deliveries.
    ManageAutomation,
    /// Everything: every object, every record, bypassing row rules (the administrator).
    ModifyAllData,
}

/// Fields of the `user` object only user managers set: who a user is and what it may do.
const USER_ADMIN_FIELDS: [&str; 4] = ["profile", "permission_sets", "roles", "password"];

impl SystemPermission {
    pub const ALL: [SystemPermission; 7] = [
        SystemPermission::ManageMetadata,
        SystemPermission::ManageProjections,
        SystemPermission::ViewAuditTrail,
        SystemPermission::ManageUsers,
        SystemPermission::ViewAllData,
        SystemPermission::ManageAutomation,
        SystemPermission::ModifyAllData,
    ];

    fn bit(self) -> u8 {
        1 << self as u8
    }

    pub fn name(self) -> &'static str {
        match self {
            SystemPermission::ManageMetadata => "manage_metadata",
            SystemPermission::ManageProjections => "manage_projections",
            SystemPermission::ViewAuditTrail => "view_audit_trail",
            SystemPermission::ManageUsers => "manage_users",
            SystemPermission::ViewAllData => "view_all_data",
            SystemPermission::ManageAutomation => "manage_automation",
            SystemPermission::ModifyAllData => "modify_all_data",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The server itself: nothing is refused or hidden.
    System,
    /// The app declares no security (local development): everything but passwords.
    Open,
    /// The app's rules apply.
    Governed,
}

/// Role name to the ids of its users (owner sharing rules by role).
pub type RoleMembers = BTreeMap<String, Vec<String>>;

/// One caller's rights, ready to compile per object.
#[derive(Debug, Clone)]
pub struct Access {
    mode: Mode,
    principal: Principal,
    policy: Arc<SecurityPolicy>,
    /// Role name to the ids of its users (for owner-based sharing rules).
    role_members: Arc<RoleMembers>,
    /// The sets the caller holds that the app declares (the profile first),
    /// resolved once: every grant folds them.
    held: Vec<String>,
    /// The system permissions the caller holds, one bit per [`SystemPermission`].
    system: u8,
    /// Grants compiled so far (shared by clones: they hold the same rights).
    grants: Arc<GrantMemo>,
}

/// The grants one caller's requests have compiled, for one catalog snapshot:
/// a caller kept between requests (the gateway keeps one per session)
/// compiles each object's grant once, not once per request. The snapshot is
/// held, so it is the same content as long as it is the same snapshot; a new
/// snapshot (a definition changed) starts afresh.
#[derive(Default)]
struct GrantMemo(Mutex<Option<Compiled>>);

/// A catalog snapshot and the grants compiled from it, by object name.
type Compiled = (Catalog, HashMap<String, Arc<ObjectGrant>>);

impl std::fmt::Debug for GrantMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GrantMemo")
    }
}

/// Objects a memo holds at most (a caller touching more compiles the rest each time).
const MEMO_OBJECTS: usize = 256;

impl GrantMemo {
    fn get(&self, catalog: &Catalog, object: &str) -> Option<Arc<ObjectGrant>> {
        let kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        kept.as_ref().filter(|(at, _)| at.same_snapshot(catalog)).and_then(|(_, grants)| grants.get(object).cloned())
    }

    fn put(&self, catalog: &Catalog, object: &str, grant: Arc<ObjectGrant>) {
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match kept.as_mut() {
            Some((at, grants)) if at.same_snapshot(catalog) => {
                if grants.len() < MEMO_OBJECTS {
                    grants.insert(object.to_string(), grant);
                }
            }
            _ => *kept = Some((catalog.clone(), HashMap::from([(object.to_string(), grant)]))),
        }
    }
}

/// What a caller may do on one object.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectGrant {
    pub permission: ObjectPermission,
    /// Fields the caller may not read (passwords always).
    pub hidden: BTreeSet<String>,
    /// Fields the caller may not write (hidden ones included, passwords excepted when editable).
    pub readonly: BTreeSet<String>,
    /// Fields of type password: hidden from every reader, writable (hashed) by who may edit them.
    pub passwords: BTreeSet<String>,
    /// The field that names a record's owner (`owner`, `owner_id`, else `created_by`).
    pub owner_field: String,
    /// Rows the caller sees (`None`: all).
    pub read_rows: Option<Filter>,
    /// Rows the caller may update / delete (within those it sees).
    pub update_rows: Option<Filter>,
    pub delete_rows: Option<Filter>,
    /// What a created / updated record must satisfy (RLS `check`).
    pub insert_check: Option<Filter>,
    pub update_check: Option<Filter>,
}

fn and(parts: Vec<Option<Filter>>) -> Option<Filter> {
    let parts: Vec<Filter> = parts.into_iter().flatten().collect();
    (!parts.is_empty()).then(|| Filter::and(parts))
}

fn or(parts: Vec<Filter>) -> Option<Filter> {
    match parts.len() {
        0 => None,
        1 => parts.into_iter().next(),
        _ => Some(Filter::Or(parts)),
    }
}

fn cond(field: &str, op: Op, value: Value) -> Filter {
    Filter::Cond(Condition { field: field.into(), op, value: Operand::Value(value) })
}

/// Every condition of a filter read through a relation (`field` -> `relation.field`).
fn prefixed(filter: &Filter, relation: &str) -> Filter {
    match filter {
        Filter::And(list) => Filter::And(list.iter().map(|f| prefixed(f, relation)).collect()),
        Filter::Or(list) => Filter::Or(list.iter().map(|f| prefixed(f, relation)).collect()),
        Filter::Not(inner) => Filter::Not(Box::new(prefixed(inner, relation))),
        Filter::Cond(c) => Filter::Cond(Condition {
            field: format!("{relation}.{}", c.field),
            op: c.op,
            value: match &c.value {
                Operand::Field(f) => Operand::Field(format!("{relation}.{f}")),
                other => other.clone(),
            },
        }),
    }
}

/// The field naming a record's owner.
pub fn owner_field(object: &ObjectDef) -> String {
    for name in ["owner", "owner_id"] {
        if object.field(name).is_some_and(|f| f.field_type.is_reference()) {
            return name.into();
        }
    }
    "created_by".into()
}

impl Access {
    /// The server itself.
    pub fn system() -> Access {
        Access {
            mode: Mode::System,
            principal: Principal::system(),
            policy: Default::default(),
            role_members: Default::default(),
            held: Vec::new(),
            system: u8::MAX,
            grants: Arc::default(),
        }
    }

    /// A caller under an app's policy: open when the app declares no security.
    pub fn new(principal: Principal, policy: Arc<SecurityPolicy>, role_members: Arc<RoleMembers>) -> Access {
        let mode = match principal.kind {
            PrincipalKind::System => Mode::System,
            _ if !policy.declared => Mode::Open,
            _ => Mode::Governed,
        };
        // A guest holds the guest profile (or nothing); a user its profile and sets.
        let held: Vec<String> = match principal.kind {
            PrincipalKind::Guest => policy.guest_profile.iter().cloned().collect(),
            _ => principal.set_names().filter(|n| policy.sets.contains_key(*n)).map(str::to_string).collect(),
        };
        let system = match mode {
            Mode::System | Mode::Open => u8::MAX,
            Mode::Governed => {
                let names: Vec<&std::collections::BTreeSet<String>> = held.iter().filter_map(|n| policy.sets.get(n)).map(|s| &s.system_permissions).collect();
                let holds = |p: SystemPermission| names.iter().any(|s| s.contains(p.name()) || s.contains(SystemPermission::ModifyAllData.name()));
                SystemPermission::ALL.iter().filter(|p| holds(**p)).fold(0, |bits, p| bits | p.bit())
            }
        };
        Access { mode, principal, policy, role_members, held, system, grants: Arc::default() }
    }

    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    pub fn is_system(&self) -> bool {
        self.mode == Mode::System
    }

    /// Whether the app declares no security (everything but passwords is open).
    pub fn is_open(&self) -> bool {
        self.mode == Mode::Open
    }

    fn sets(&self) -> impl Iterator<Item = &super::permission_set::PermissionSet> {
        self.held.iter().filter_map(|n| self.policy.sets.get(n))
    }

    /// Whether the caller holds a system permission (`modify_all_data` implies every one).
    pub fn has(&self, permission: SystemPermission) -> bool {
        self.system & permission.bit() != 0
    }

    /// The system permissions the caller holds, by name.
    pub fn system_permissions(&self) -> Vec<&'static str> {
        SystemPermission::ALL.iter().filter(|p| self.has(**p)).map(|p| p.name()).collect()
    }

    fn object_permission(&self, object: &str) -> ObjectPermission {
        if INTERNAL_OBJECTS.contains(&object) {
            return if self.mode == Mode::System { ObjectPermission::ALL } else { ObjectPermission::default() };
        }
        match self.mode {
            Mode::System | Mode::Open => ObjectPermission::ALL,
            Mode::Governed => {
                if self.has(SystemPermission::ModifyAllData) {
                    return ObjectPermission::ALL;
                }
                let mut out = self.sets().fold(ObjectPermission::default(), |acc, s| acc.union(s.object(object)));
                if self.has(SystemPermission::ViewAllData) {
                    out.read = true;
                    out.view_all = true;
                }
                out
            }
        }
    }

    /// What the caller may do on `object` (compiled once per catalog
    /// snapshot when `object` is that snapshot's own definition).
    pub fn grant(&self, catalog: &Catalog, object: &ObjectDef) -> Arc<ObjectGrant> {
        if !catalog.holds(object) {
            return Arc::new(self.grant_at(catalog, object, 0));
        }
        if let Some(grant) = self.grants.get(catalog, &object.name) {
            return grant;
        }
        let grant = Arc::new(self.grant_at(catalog, object, 0));
        self.grants.put(catalog, &object.name, grant.clone());
        grant
    }

    fn grant_at(&self, catalog: &Catalog, object: &ObjectDef, depth: usize) -> ObjectGrant {
        let permission = self.object_permission(&object.name);
        let owner_field = owner_field(object);
        let mut grant = ObjectGrant {
            permission,
            hidden: BTreeSet::new(),
            readonly: BTreeSet::new(),
            passwords: BTreeSet::new(),
            owner_field: owner_field.clone(),
            read_rows: None,
            update_rows: None,
            delete_rows: None,
            insert_check: None,
            update_check: None,
        };
        if self.mode == Mode::System {
            return grant;
        }
        for field in &object.fields {
            if field.field_type == FieldType::Password {
                grant.hidden.insert(field.name.clone());
                grant.passwords.insert(field.name.clone());
            }
        }
        if self.mode == Mode::Open || self.has(SystemPermission::ModifyAllData) {
            return grant;
        }
        if !permission.can_read() && !permission.create {
            grant.read_rows = Some(never());
            return grant;
        }
        // Field-level security: the most permissive of the sets that grant the object.
        let sets: Vec<_> = self.sets().collect();
        for field in &object.fields {
            let readable = sets.iter().any(|s| s.object(&object.name).can_read() && s.field(&object.name, &field.name).is_none_or(|p| p.readable));
            let editable = sets.iter().any(|s| {
                let o = s.object(&object.name);
                (o.edit || o.create || o.modify_all) && s.field(&object.name, &field.name).is_none_or(|p| p.editable)
            });
            if !readable {
                grant.hidden.insert(field.name.clone());
            }
            if !editable || (!readable && !grant.passwords.contains(&field.name)) {
                grant.readonly.insert(field.name.clone());
            }
        }
        if object.name == "user" && !self.has(SystemPermission::ManageUsers) {
            grant.readonly.extend(USER_ADMIN_FIELDS.iter().map(|f| f.to_string()));
        }
        // Row-level security: permissive policies of the held sets, ORed per operation
        // (the administrator, `modify_all_data`, returned above: it bypasses them).
        let policies: Vec<_> = sets
            .iter()
            .flat_map(|s| s.row_level_security.iter())
            .filter(|p| p.enabled && p.object == object.name && (p.roles.is_empty() || p.roles.iter().any(|r| self.principal.roles.contains(r))))
            .collect();
        let rls = |operation: RlsOperation, use_check: bool| -> Option<Filter> {
            let applicable: Vec<Filter> = policies
                .iter()
                .filter(|p| p.operation.covers(operation))
                .filter_map(|p| if use_check { p.check.as_ref().or(p.using.as_ref()) } else { p.using.as_ref() })
                .map(|pred| pred.compile(&self.principal))
                .collect();
            or(applicable)
        };
        // Sharing: the org-wide default, widened by sharing rules.
        let model = SharingModel::of(object).unwrap_or(SharingModel::ReadWrite);
        let mine = cond(&owner_field, Op::Eq, Value::Text(self.principal.user_id.clone()));
        let shared = |edit_only: bool| -> Vec<Filter> {
            self.policy
                .sharing_rules
                .iter()
                .filter(|r| r.object == object.name && (r.edit || !edit_only) && self.receives(&r.shared_with))
                .map(|r| match &r.records {
                    SharedRecords::Criteria(predicate) => predicate.compile(&self.principal),
                    SharedRecords::OwnedBy(owners) => cond(&owner_field, Op::In, Value::List(self.owners(owners).into_iter().map(Value::Text).collect())),
                })
                .collect()
        };
        let parent = || -> Option<(String, ObjectGrant)> {
            let field = object.fields.iter().find(|f| f.field_type == FieldType::MasterDetail)?;
            let target = catalog.get(field.reference.as_deref()?)?;
            (depth < 4).then(|| (field.name.clone(), self.grant_at(catalog, target, depth + 1)))
        };
        let (sharing_read, sharing_edit) = match model {
            SharingModel::ReadWrite => (None, None),
            SharingModel::Read => {
                let mut edit = vec![mine.clone()];
                edit.extend(shared(true));
                (None, or(edit))
            }
            SharingModel::Private => {
                let mut read = vec![mine.clone()];
                read.extend(shared(false));
                let mut edit = vec![mine.clone()];
                edit.extend(shared(true));
                (or(read), or(edit))
            }
            SharingModel::ControlledByParent => match parent() {
                Some((relation, parent)) => {
                    (parent.read_rows.as_ref().map(|f| prefixed(f, &relation)), parent.update_rows.as_ref().map(|f| prefixed(f, &relation)))
                }
                None => (None, None),
            },
        };
        let (sharing_read, sharing_edit) =
            (if permission.view_all || permission.modify_all { None } else { sharing_read }, if permission.modify_all { None } else { sharing_edit });
        grant.read_rows = and(vec![rls(RlsOperation::Select, false), sharing_read]);
        grant.update_rows = and(vec![grant.read_rows.clone(), rls(RlsOperation::Update, false), sharing_edit.clone()]);
        grant.delete_rows = and(vec![grant.read_rows.clone(), rls(RlsOperation::Delete, false), sharing_edit]);
        grant.insert_check = rls(RlsOperation::Insert, true);
        grant.update_check = rls(RlsOperation::Update, true);
        grant
    }

    /// Whether the caller is among a rule's recipients.
    fn receives(&self, recipient: &Recipient) -> bool {
        let principal = &self.principal;
        match recipient.kind.as_str() {
            "user" => principal.user_id == recipient.value || principal.email.as_deref() == Some(recipient.value.as_str()),
            "role" | "group" => principal.roles.contains(&recipient.value),
            // The role and those below it: the caller's role or one of its ancestors is the value.
            "role_and_subordinates" => principal.roles.iter().any(|r| self.policy.role_and_ancestors(r).contains(&recipient.value)),
            "guest" => principal.kind == PrincipalKind::Guest,
            _ => false,
        }
    }

    /// The user ids an owner rule covers.
    fn owners(&self, owners: &Recipient) -> Vec<String> {
        match owners.kind.as_str() {
            "user" => vec![owners.value.clone()],
            "role" | "group" => self.role_members.get(&owners.value).cloned().unwrap_or_default(),
            "role_and_subordinates" => self
                .role_members
                .iter()
                .filter(|(role, _)| self.policy.role_and_ancestors(role).contains(&owners.value))
                .flat_map(|(_, users)| users.iter().cloned())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Whether the policy has owner rules over roles (the caller then needs role members).
    pub fn needs_role_members(policy: &SecurityPolicy) -> bool {
        policy.sharing_rules.iter().any(|r| matches!(&r.records, SharedRecords::OwnedBy(o) if o.kind != "user"))
    }

    /// An object as this caller may see it described: `None` when it may
    /// neither read nor create it; otherwise without the fields it may not
    /// read (passwords stay: they can be written), in `fields` and in the
    /// definition as given (`raw`).
    pub fn describe(&self, catalog: &Catalog, object: &ObjectDef) -> Option<ObjectDef> {
        let grant = self.grant(catalog, object);
        if !grant.permission.can_read() && !grant.permission.create {
            return None;
        }
        let hidden: BTreeSet<&String> = grant.hidden.difference(&grant.passwords).collect();
        let mut shown = object.clone();
        if hidden.is_empty() {
            return Some(shown);
        }
        shown.fields.retain(|f| !hidden.contains(&f.name));
        match shown.raw.get_mut("fields") {
            Some(serde_json::Value::Object(fields)) => fields.retain(|name, _| !hidden.contains(name)),
            Some(serde_json::Value::Array(fields)) => {
                fields.retain(|f| !f.get("name").and_then(serde_json::Value::as_str).is_some_and(|n| hidden.iter().any(|h| h.as_str() == n)))
            }
            _ => {}
        }
        Some(shown)
    }

    /// The catalog as this caller may see it: every object as [`Access::describe`] shows it.
    pub fn catalog_view(&self, catalog: &Catalog) -> Catalog {
        if self.mode == Mode::System {
            return catalog.clone();
        }
        catalog.restricted(|object| self.describe(catalog, object))
    }

    /// What decides [`Access::catalog_view`]: callers with equal keys see the same catalog.
    pub fn view_key(&self) -> String {
        let mut sets: Vec<&str> = match self.mode {
            Mode::Governed => self.held.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        };
        sets.sort_unstable();
        format!("{:?}/{}", self.mode, sets.join(","))
    }
}

impl ObjectGrant {
    /// System fields are always readable: only declared fields can be hidden.
    pub fn can_read_field(&self, field: &str) -> bool {
        SYSTEM_FIELDS.contains(&field) || !self.hidden.contains(field)
    }
}
