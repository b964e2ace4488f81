//! Metadata: apps, objects, fields and validation rules, in the protocol's JSON form.
//!
//! Definitions are parsed into typed, checked structures ([`ObjectDef`]); the JSON
//! as given is kept beside them, because it is what the metadata API serves and
//! what metadata events carry.

mod app;
mod breaking;
mod catalog;
mod decide;
pub mod examples;
mod field;
mod field_type;
pub mod keys;
pub mod migration;
mod naming;
mod object;
mod rule;
pub mod schema;
mod schema_reference;

pub use app::{load_app, AppDef, Manifest, SeedSet};
pub use breaking::breaking_changes;
pub use catalog::{builtin_objects, Catalog};
pub use decide::{decide_metadata, evolve_catalog, MetadataCommand, ObjectSpec};
pub use field::{DeleteBehavior, FieldDef, SelectOption};
pub use field_type::FieldType;
pub use naming::{check_machine_name, check_option_value, fully_qualified_name, SYSTEM_FIELDS};
pub use object::{IndexDef, ObjectDef};
pub use rule::{RuleEvent, RuleKind, Severity, TextFormat, ValidationRule};
pub use schema_reference::reference as app_format_reference;

#[cfg(test)]
mod tests;
