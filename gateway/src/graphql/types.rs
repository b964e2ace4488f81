//! Names and types of the generated schema: object names to GraphQL type
//! names, and each field type to a fitting scalar, enum, list or object.

use domain::metadata::{FieldDef, FieldType, ObjectDef};

/// `todo_task` -> `TodoTask`, `crm__account` -> `CrmAccount`.
pub fn type_name(object: &str) -> String {
    object
        .split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut chars = p.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// A valid GraphQL name (`[_A-Za-z][_0-9A-Za-z]*`, not starting with `__`).
pub fn is_name(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic()) && chars.all(|c| c == '_' || c.is_ascii_alphanumeric()) && !text.starts_with("__")
}

/// What a field is on the GraphQL side.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    String,
    Float,
    Boolean,
    Date,
    DateTime,
    Time,
    Json,
    /// A select-like field whose option values are all GraphQL names: the enum's type name.
    Enum(String),
    /// A reference: the related object's name.
    Reference(String),
}

impl Kind {
    /// The scalar or type name of one value.
    pub fn type_ref_name(&self) -> String {
        match self {
            Kind::String => "String".into(),
            Kind::Float => "Float".into(),
            Kind::Boolean => "Boolean".into(),
            Kind::Date => "Date".into(),
            Kind::DateTime => "DateTime".into(),
            Kind::Time => "Time".into(),
            Kind::Json => "JSON".into(),
            Kind::Enum(name) => name.clone(),
            Kind::Reference(object) => type_name(object),
        }
    }

    /// The type of one value in inputs (references take ids).
    pub fn input_name(&self) -> String {
        match self {
            Kind::Reference(_) => "ID".into(),
            other => other.type_ref_name(),
        }
    }

    /// The comparison input used in filters, if the field can be filtered on.
    pub fn filter_input(&self) -> Option<&'static str> {
        match self {
            Kind::String | Kind::Enum(_) | Kind::Date | Kind::DateTime | Kind::Time => Some("StringFilter"),
            Kind::Float => Some("FloatFilter"),
            Kind::Boolean => Some("BooleanFilter"),
            Kind::Reference(_) => Some("IDFilter"),
            Kind::Json => None,
        }
    }
}

/// The enum type name for a select field, when its options make one.
pub fn enum_name(object: &ObjectDef, field: &FieldDef) -> Option<String> {
    let usable = !field.options.is_empty() && field.options.iter().all(|o| is_name(&o.value));
    usable.then(|| format!("{}{}", type_name(&object.name), type_name(&field.name)))
}

/// How a field appears in the schema, and whether it holds a list.
pub fn kind_of(object: &ObjectDef, field: &FieldDef) -> (Kind, bool) {
    let kind = match field.field_type {
        t if t.is_numeric() => Kind::Float,
        FieldType::Boolean | FieldType::Toggle => Kind::Boolean,
        FieldType::Date => Kind::Date,
        FieldType::Datetime => Kind::DateTime,
        FieldType::Time => Kind::Time,
        t if t.has_options() => enum_name(object, field).map(Kind::Enum).unwrap_or(Kind::String),
        t if t.is_reference() => Kind::Reference(field.reference.clone().unwrap_or_else(|| object.name.clone())),
        FieldType::Vector => Kind::Float,
        FieldType::Tags | FieldType::Autonumber => Kind::String,
        t if t.is_text() => Kind::String,
        _ => Kind::Json,
    };
    let list = field.is_list() && !matches!(kind, Kind::Json);
    (kind, list)
}

/// System fields every record carries, with their kinds.
pub const SYSTEM: [(&str, Kind); 6] = [
    ("created_at", Kind::DateTime),
    ("updated_at", Kind::DateTime),
    ("created_by", Kind::String),
    ("modified_by", Kind::String),
    ("modified_at", Kind::DateTime),
    ("space_id", Kind::String),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(type_name("todo_task"), "TodoTask");
        assert_eq!(type_name("crm__account"), "CrmAccount");
        assert!(is_name("in_progress"));
        assert!(!is_name("in-progress"));
        assert!(!is_name("1st"));
        assert!(!is_name("__x"));
    }
}
