//! A catalog as a model's own files keep it: each object as the definition
//! event that would make it, applied again when the files are read.

use domain::event::{EventPayload, ObjectDefined};
use domain::metadata::{evolve_catalog, Catalog};

/// The catalog's objects as definitions.
pub fn definitions(catalog: &Catalog) -> Vec<ObjectDefined> {
    catalog
        .objects()
        .map(|object| ObjectDefined {
            name: object.name.clone(),
            namespace: catalog.namespace_of(&object.name).map(str::to_string),
            definition: object.raw.to_string(),
        })
        .collect()
}

/// The catalog the definitions make; why not, when one does not apply.
pub fn from_definitions(definitions: impl IntoIterator<Item = ObjectDefined>) -> Result<Catalog, String> {
    let mut catalog = Catalog::default();
    for defined in definitions {
        evolve_catalog(&mut catalog, &EventPayload::ObjectDefined(defined)).map_err(|e| format!("a kept definition does not apply: {e}"))?;
    }
    Ok(catalog)
}
