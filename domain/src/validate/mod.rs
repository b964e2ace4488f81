//! Validation of values and records against metadata.
//!
//! - [`check_value`]: the value rules of one field type (type, length, range,
//!   precision/scale, options, formats, composite shapes).
//! - [`check_rules`]: the object-level validation rules (script, unique,
//!   state_machine, format, cross_field, json_schema, conditional).

mod formats;
mod json_schema;
mod rules;
mod value;

pub use formats::{is_email, is_phone, is_url};
pub use rules::{check_rules, RuleOutcome};
pub use value::{check_value, has_nul};

#[cfg(test)]
mod tests;
