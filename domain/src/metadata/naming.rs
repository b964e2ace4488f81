//! Naming rules for machine names, option values and namespaces.

/// Fields every record carries without declaring them.
pub const SYSTEM_FIELDS: [&str; 7] = ["id", "created_at", "updated_at", "created_by", "modified_by", "modified_at", "space_id"];

/// Namespaces whose objects keep their short names.
const RESERVED_NAMESPACES: [&str; 2] = ["base", "system"];

/// `^[a-z_][a-z0-9_]*$`: object names, field names, rule names.
pub fn check_machine_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = match chars.next() {
        Some(c) if c.is_ascii_lowercase() || c == '_' => chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
        _ => false,
    };
    if valid {
        Ok(())
    } else {
        Err(format!("'{name}' is not a valid name: use lowercase snake_case (^[a-z_][a-z0-9_]*$)"))
    }
}

/// Select option values are system identifiers: `^[a-z][a-z0-9_.]*$`, at least 2 characters.
pub fn check_option_value(value: &str) -> Result<(), String> {
    let mut chars = value.chars();
    let valid = value.len() >= 2
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
    if valid {
        Ok(())
    } else {
        Err(format!("option value '{value}' is not a system identifier (^[a-z][a-z0-9_.]*$, 2+ characters)"))
    }
}

/// The fully qualified name of an object: `namespace__name`, or the short name
/// when there is no namespace or it is reserved.
pub fn fully_qualified_name(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) if !RESERVED_NAMESPACES.contains(&ns) => format!("{ns}__{name}"),
        _ => name.to_string(),
    }
}

/// A namespace is a machine name without a double underscore.
pub fn check_namespace(namespace: &str) -> Result<(), String> {
    check_machine_name(namespace)?;
    if namespace.contains("__") || namespace.starts_with('_') {
        return Err(format!("namespace '{namespace}' must not start with '_' or contain '__'"));
    }
    Ok(())
}
