//! Securing a read (a query rewritten for the caller, and what to mask in its
//! answer) and a write (what a change must satisfy before and after).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Map, Value as Json};

use super::access::{Access, ObjectGrant};
use super::eval::matches;
use crate::error::DomainError;
use crate::metadata::{Catalog, ObjectDef};
use crate::query::{Filter, Query};
use crate::value::{Record, Value};

/// Fields to take out of an answer: the object's hidden fields, and those of expanded relations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mask {
    pub hidden: BTreeSet<String>,
    pub relations: BTreeMap<String, Mask>,
}

impl Mask {
    /// Whether the mask takes nothing out.
    pub fn is_empty(&self) -> bool {
        self.hidden.is_empty() && self.relations.values().all(Mask::is_empty)
    }

    /// Takes the masked fields out of a record.
    pub fn apply(&self, record: &mut Record) {
        for field in &self.hidden {
            record.remove(field.as_str());
        }
        for (relation, mask) in &self.relations {
            if mask.is_empty() {
                continue;
            }
            match record.get_mut_value(relation) {
                Some(Value::Map(inner)) => mask.apply(inner),
                Some(Value::List(items)) => {
                    for item in items {
                        if let Value::Map(inner) = item {
                            mask.apply(inner);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Whether a record holds a masked field (the answer must be copied before it is masked).
    pub fn touches(&self, record: &Record) -> bool {
        self.hidden.iter().any(|f| record.contains_key(f.as_str())) || self.relations.iter().any(|(r, m)| !m.is_empty() && record.contains_key(r.as_str()))
    }
}

fn no_field(object: &str, path: &str) -> DomainError {
    DomainError::FieldNotAccessible(format!("field '{path}' of {object} is not accessible"))
}

/// Checks that the caller may read every field a path goes through.
fn check_path(access: &Access, catalog: &Catalog, object: &ObjectDef, grant: &ObjectGrant, path: &str) -> Result<(), DomainError> {
    let (first, rest) = match path.split_once('.') {
        Some((first, rest)) => (first, Some(rest)),
        None => (path, None),
    };
    if !grant.can_read_field(first) {
        return Err(no_field(&object.name, path));
    }
    let Some(rest) = rest else { return Ok(()) };
    let Some(target) = object.field(first).and_then(|f| f.reference.as_deref()).and_then(|t| catalog.get(t)) else { return Ok(()) };
    let target_grant = access.grant(catalog, target);
    if !target_grant.permission.can_read() {
        return Err(no_field(&object.name, path));
    }
    check_path(access, catalog, target, &target_grant, rest)
}

/// Rewrites a query for the caller: refuses it when the caller may not read
/// the object or names a field it may not read (in a filter, sort, grouping,
/// aggregation or search), ANDs the caller's row rules into the filter, drops
/// expansions of objects it may not read, and says what to mask in the answer.
pub fn secure_query(access: &Access, catalog: &Catalog, query: &mut Query) -> Result<Mask, DomainError> {
    if access.is_system() {
        return Ok(Mask::default());
    }
    let object = catalog.require(&query.object)?.clone();
    let grant = access.grant(catalog, &object);
    if !grant.permission.can_read() {
        return Err(DomainError::PermissionDenied(format!("you may not read {}", object.name)));
    }
    let mut paths: Vec<String> = Vec::new();
    for filter in [&query.filter, &query.having].into_iter().flatten() {
        paths.extend(filter.fields().into_iter().map(str::to_string));
    }
    paths.extend(query.order_by.iter().map(|s| s.field.clone()));
    paths.extend(query.group_by.iter().cloned());
    for aggregation in &query.aggregations {
        paths.extend(aggregation.field.iter().cloned());
        if let Some(filter) = &aggregation.filter {
            paths.extend(filter.fields().into_iter().map(str::to_string));
        }
    }
    if let Some(search) = &query.search {
        paths.extend(search.fields.iter().cloned());
        paths.extend(search.boost.keys().cloned());
    }
    let having_aliases: BTreeSet<&str> = query.aggregations.iter().map(|a| a.alias.as_str()).collect();
    for path in &paths {
        if having_aliases.contains(path.as_str())
            || !path.contains('.') && object.field(path).is_none() && !crate::metadata::SYSTEM_FIELDS.contains(&path.as_str())
        {
            // Aggregate aliases, and names the query check will refuse as unknown.
            continue;
        }
        check_path(access, catalog, &object, &grant, path)?;
    }
    if let Some(rows) = grant.read_rows.clone() {
        query.filter = Some(match query.filter.take() {
            Some(filter) => Filter::and(vec![filter, rows]),
            None => rows,
        });
    }
    if let Some(fields) = &mut query.fields {
        fields.retain(|f| grant.can_read_field(f.split('.').next().unwrap_or_default()));
    }
    let mut mask = Mask { hidden: grant.hidden.clone(), relations: BTreeMap::new() };
    // Relations through a hidden field, or to an object the caller may not read, are not expanded.
    query
        .expand
        .retain(|relation, sub| grant.can_read_field(relation) && catalog.get(&sub.object).is_some_and(|t| access.grant(catalog, t).permission.can_read()));
    for (relation, sub) in query.expand.iter_mut() {
        mask.relations.insert(relation.clone(), secure_query(access, catalog, sub)?);
    }
    Ok(mask)
}

/// A write operation, for [`WriteGuard`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOp {
    Create,
    Update,
    Delete,
}

/// What one caller's writes to one object must satisfy, checked by the
/// command service under its lock against the record before and after each change.
#[derive(Debug, Clone)]
pub struct WriteGuard {
    pub object: String,
    grant: Arc<ObjectGrant>,
    /// The caller may set or change the owner (transfer, or modify all).
    may_transfer: bool,
    /// The caller's rights: its user id (a record may always be given to its
    /// writer), and what it sees of the objects this one references (asked
    /// only when a write sets a reference).
    access: Arc<Access>,
}

fn verb(op: WriteOp) -> &'static str {
    match op {
        WriteOp::Create => "create",
        WriteOp::Update => "edit",
        WriteOp::Delete => "delete",
    }
}

impl WriteGuard {
    /// The guard of a caller on an object (`None` for the server itself, which is never refused).
    pub fn new(access: &Arc<Access>, catalog: &Catalog, object: &str) -> Result<Option<WriteGuard>, DomainError> {
        if access.is_system() {
            return Ok(None);
        }
        let def = catalog.require(object)?;
        let grant = access.grant(catalog, def);
        let may_transfer = grant.permission.transfer || grant.permission.modify_all || access.is_open();
        Ok(Some(WriteGuard { object: def.name.clone(), grant, may_transfer, access: access.clone() }))
    }

    fn caller(&self) -> &str {
        &self.access.principal().user_id
    }

    /// Whether the caller may point a reference at `record` of `target`: it
    /// may read that object and sees the record (its own user always). A
    /// reference to a record it cannot see is refused as if the record did
    /// not exist (no oracle).
    pub fn may_reference(&self, catalog: &Catalog, target: &str, record: &Record, fetch: &dyn Fn(&str, &str) -> Option<Record>) -> bool {
        let id = record.get("id").and_then(Value::as_str).unwrap_or_default();
        if target == "user" && id == self.caller() {
            return true;
        }
        let Some(def) = catalog.get(target) else { return false };
        let seen = self.access.grant(catalog, def);
        seen.permission.can_read() && seen.read_rows.as_ref().is_none_or(|rows| matches(rows, record, def, catalog, fetch))
    }

    /// Refuses an operation the caller's object permissions do not allow.
    pub fn allow(&self, op: WriteOp) -> Result<(), DomainError> {
        let p = self.grant.permission;
        let allowed = match op {
            WriteOp::Create => p.create || p.modify_all,
            WriteOp::Update => p.edit || p.modify_all,
            WriteOp::Delete => p.delete || p.modify_all,
        };
        if allowed {
            Ok(())
        } else {
            Err(DomainError::PermissionDenied(format!("you may not {} {} records", verb(op), self.object)))
        }
    }

    /// The owner field to stamp with the caller on create (the body does not name it).
    pub fn owner_to_stamp(&self, data: &Map<String, Json>) -> Option<&str> {
        (!data.contains_key(&self.grant.owner_field) && self.grant.owner_field != "created_by").then_some(self.grant.owner_field.as_str())
    }

    /// Fields of type password (hashed by the service before they are written).
    pub fn passwords(&self) -> &BTreeSet<String> {
        &self.grant.passwords
    }

    /// Refuses writing a field the caller may not edit (owner changes need transfer).
    pub fn check_fields(&self, data: &Map<String, Json>, current: Option<&Record>) -> Result<(), DomainError> {
        for (name, value) in data {
            if crate::metadata::SYSTEM_FIELDS.contains(&name.as_str()) || name == "_id" {
                continue;
            }
            if self.grant.readonly.contains(name) {
                let why = if self.grant.hidden.contains(name) && !self.grant.passwords.contains(name) { "is not accessible" } else { "is read-only for you" };
                return Err(DomainError::FieldNotAccessible(format!("field '{name}' of {} {why}", self.object)));
            }
            if *name == self.grant.owner_field && !self.may_transfer {
                let unchanged = current.and_then(|r| r.get(name.as_str())).is_some_and(|v| v.to_json() == *value);
                let to_self = current.is_none() && value.as_str() == Some(self.caller());
                if !unchanged && !to_self {
                    return Err(DomainError::FieldNotAccessible(format!("setting the owner of {} records needs the transfer permission", self.object)));
                }
            }
        }
        Ok(())
    }

    /// Checks the record as it is before an update or delete: a record the
    /// caller cannot see is not found; one it sees but may not change is refused.
    pub fn check_before(&self, op: WriteOp, catalog: &Catalog, record: &Record, fetch: &dyn Fn(&str, &str) -> Option<Record>) -> Result<(), DomainError> {
        let def = catalog.require(&self.object)?;
        let id = record.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
        if let Some(rows) = &self.grant.read_rows {
            if !matches(rows, record, def, catalog, fetch) {
                return Err(DomainError::RecordNotFound { object: self.object.clone(), id });
            }
        }
        let rows = match op {
            WriteOp::Update => &self.grant.update_rows,
            WriteOp::Delete => &self.grant.delete_rows,
            WriteOp::Create => &None,
        };
        if let Some(rows) = rows {
            if !matches(rows, record, def, catalog, fetch) {
                return Err(DomainError::RecordNotAccessible(format!("you may not {} {} {id}", verb(op), self.object)));
            }
        }
        Ok(())
    }

    /// Checks the record a create or update leaves behind (RLS `check`).
    pub fn check_after(&self, op: WriteOp, catalog: &Catalog, record: &Record, fetch: &dyn Fn(&str, &str) -> Option<Record>) -> Result<(), DomainError> {
        let def = catalog.require(&self.object)?;
        let check = match op {
            WriteOp::Create => &self.grant.insert_check,
            WriteOp::Update => &self.grant.update_check,
            WriteOp::Delete => &None,
        };
        if let Some(check) = check {
            if !matches(check, record, def, catalog, fetch) {
                return Err(DomainError::RecordNotAccessible(format!("the {} record would break a row-level security check", self.object)));
            }
        }
        Ok(())
    }
}
