//! The generated schema, kept per metadata version (rebuilt on first use
//! after a definition changes). A leaf: the system holds it, the GraphQL
//! transport fills it.

use std::sync::{Arc, RwLock};

use async_graphql::dynamic::Schema;

#[derive(Default)]
pub struct Schemas {
    current: RwLock<Option<(u64, Arc<Schema>)>>,
}

impl Schemas {
    /// The schema built for `version`, if it is the one kept.
    pub fn get(&self, version: u64) -> Option<Arc<Schema>> {
        match &*self.current.read().unwrap_or_else(|p| p.into_inner()) {
            Some((built, schema)) if *built == version => Some(schema.clone()),
            _ => None,
        }
    }

    pub fn set(&self, version: u64, schema: Arc<Schema>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some((version, schema));
    }
}
