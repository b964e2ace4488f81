//! The catalog: every object currently defined, folded from metadata events.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;

use super::naming::fully_qualified_name;
use super::object::ObjectDef;
use crate::error::DomainError;

/// Objects by short name, plus fully qualified aliases (`todo__task` → `task`).
/// The maps are shared: a clone (every read takes one) costs two reference
/// counts, and a change copies them only while another clone holds them.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    objects: Arc<BTreeMap<String, Arc<ObjectDef>>>,
    namespaces: Arc<BTreeMap<String, Option<String>>>,
}

/// Objects every server has: `user`, the target of `owner` lookups (apps
/// reference it without defining it; it comes from the auth plugin upstream),
/// and the internal objects of authentication (`session`, `api_key`,
/// `auth_event`: see `security::INTERNAL_OBJECTS`).
pub fn builtin_objects() -> Vec<serde_json::Value> {
    vec![
        json!({
            "name": "user",
            "label": "User",
            "pluralLabel": "Users",
            "isSystem": true,
            "fields": {
                "name": {"type": "text", "label": "Name", "required": true, "searchable": true},
                "email": {"type": "email", "label": "Email", "unique": true},
                "active": {"type": "boolean", "label": "Active", "defaultValue": true},
                "password": {"type": "password", "label": "Password"},
                "profile": {"type": "text", "label": "Profile"},
                "permission_sets": {"type": "tags", "label": "Permission sets"},
                "roles": {"type": "tags", "label": "Roles"}
            }
        }),
        json!({
            "name": "session",
            "label": "Session",
            "pluralLabel": "Sessions",
            "isSystem": true,
            "fields": {
                "user": {"type": "lookup", "reference": "user", "required": true, "deleteBehavior": "cascade"},
                "token_hash": {"type": "text", "required": true, "unique": true},
                "expires_at": {"type": "datetime", "required": true}
            }
        }),
        json!({
            "name": "api_key",
            "label": "API key",
            "pluralLabel": "API keys",
            "isSystem": true,
            "fields": {
                "user": {"type": "lookup", "reference": "user", "required": true, "deleteBehavior": "cascade"},
                "name": {"type": "text", "required": true},
                "key_hash": {"type": "text", "required": true, "unique": true},
                "prefix": {"type": "text"},
                "expires_at": {"type": "datetime"}
            }
        }),
        json!({
            "name": "auth_event",
            "label": "Authentication event",
            "pluralLabel": "Authentication events",
            "isSystem": true,
            "fields": {
                "kind": {"type": "text", "required": true},
                "email": {"type": "text"},
                "client": {"type": "text"}
            }
        }),
    ]
}

impl Catalog {
    /// Resolves a short or fully qualified object name.
    pub fn get(&self, name: &str) -> Option<&Arc<ObjectDef>> {
        if let Some(object) = self.objects.get(name) {
            return Some(object);
        }
        let (namespace, short) = name.split_once("__")?;
        match self.namespaces.get(short) {
            Some(Some(ns)) if ns == namespace => self.objects.get(short),
            _ => None,
        }
    }

    /// Whether two catalogs are the same snapshot (a change copies the maps
    /// whenever another clone holds them, so a kept clone that is the same
    /// snapshot is also the same content).
    pub fn same_snapshot(&self, other: &Catalog) -> bool {
        Arc::ptr_eq(&self.objects, &other.objects) && Arc::ptr_eq(&self.namespaces, &other.namespaces)
    }

    /// Whether `object` is this catalog's own definition of its name (not a copy or a proposed change).
    pub fn holds(&self, object: &ObjectDef) -> bool {
        self.objects.get(&object.name).is_some_and(|kept| std::ptr::eq(kept.as_ref(), object))
    }

    pub fn require(&self, name: &str) -> Result<&Arc<ObjectDef>, DomainError> {
        self.get(name).ok_or_else(|| DomainError::ObjectNotFound(name.to_string()))
    }

    pub fn objects(&self) -> impl Iterator<Item = &Arc<ObjectDef>> {
        self.objects.values()
    }

    /// The catalog as one viewer sees it: each object as `view` shows it, or left out.
    pub fn restricted(&self, view: impl Fn(&ObjectDef) -> Option<ObjectDef>) -> Catalog {
        let mut out = Catalog::default();
        for (name, object) in self.objects.iter() {
            if let Some(shown) = view(object) {
                out.insert(shown, self.namespaces.get(name).cloned().flatten());
            }
        }
        out
    }

    pub fn namespace_of(&self, name: &str) -> Option<&str> {
        self.namespaces.get(name).and_then(|n| n.as_deref())
    }

    pub fn fully_qualified_name(&self, name: &str) -> String {
        fully_qualified_name(self.namespace_of(name), name)
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    pub(crate) fn insert(&mut self, object: ObjectDef, namespace: Option<String>) {
        Arc::make_mut(&mut self.namespaces).insert(object.name.clone(), namespace);
        Arc::make_mut(&mut self.objects).insert(object.name.clone(), Arc::new(object));
    }

    pub(crate) fn remove(&mut self, name: &str) {
        Arc::make_mut(&mut self.objects).remove(name);
        Arc::make_mut(&mut self.namespaces).remove(name);
    }

    /// Every reference field of `object` must target a known object (or itself).
    pub fn check_references(&self, object: &ObjectDef) -> Result<(), DomainError> {
        for field in object.fields.iter().filter(|f| f.field_type.is_reference()) {
            let target = field.reference.as_deref().unwrap_or_default();
            if target != object.name && self.get(target).is_none() {
                return Err(DomainError::InvalidDefinition(format!(
                    "object '{}': field '{}': reference to unknown object '{target}'",
                    object.name, field.name
                )));
            }
        }
        Ok(())
    }

    /// Reference fields elsewhere that point at `name`: `(object, field)`.
    pub fn referrers(&self, name: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for object in self.objects.values().filter(|o| o.name != name) {
            for field in object.fields.iter().filter(|f| f.field_type.is_reference()) {
                if field.reference.as_deref() == Some(name) {
                    out.push((object.name.clone(), field.name.clone()));
                }
            }
        }
        out
    }
}
