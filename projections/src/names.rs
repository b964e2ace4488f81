//! [`Names`]: one shared copy of each of a small set of names that read models
//! repeat for every entry (field names, actors, tenants, object names).

use std::sync::Arc;

#[derive(Default)]
pub(crate) struct Names(crate::hashing::Set<Arc<str>>);

impl Names {
    /// The shared copy of `name` (made on first use).
    pub(crate) fn get(&mut self, name: &str) -> Arc<str> {
        if let Some(known) = self.0.get(name) {
            return known.clone();
        }
        let name: Arc<str> = Arc::from(name);
        self.0.insert(name.clone());
        name
    }
}
