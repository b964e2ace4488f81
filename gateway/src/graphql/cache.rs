//! The generated schemas, kept per metadata version and per view (callers
//! whose rights show the same objects and fields share one schema); rebuilt
//! on first use after a definition changes. A leaf: the system holds it, the
//! GraphQL transport fills it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_graphql::dynamic::Schema;

/// Most views kept for one metadata version.
const MAX_VIEWS: usize = 256;

#[derive(Default)]
pub struct Schemas {
    /// The metadata version the kept schemas were built for, and the schema per view.
    current: RwLock<(u64, HashMap<String, Arc<Schema>>)>,
}

impl Schemas {
    /// The schema built for `version` and `view`, if kept.
    pub fn get(&self, version: u64, view: &str) -> Option<Arc<Schema>> {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        (current.0 == version).then(|| current.1.get(view).cloned()).flatten()
    }

    pub fn set(&self, version: u64, view: String, schema: Arc<Schema>) {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        if current.0 != version || current.1.len() >= MAX_VIEWS {
            *current = (version, HashMap::new());
        }
        current.1.insert(view, schema);
    }
}
