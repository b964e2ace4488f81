//! Reading a field path of a record: declared and system fields, keys inside
//! composite fields, paths through lookups, and computed formula fields.

use std::borrow::Cow;

use domain::formula::{eval, RecordContext};
use domain::metadata::{Catalog, FieldType, ObjectDef};
use domain::value::{Record, Value};

use super::table::Table;
use crate::hashing::Map;

pub(crate) struct Resolver<'a> {
    pub catalog: &'a Catalog,
    pub tables: &'a Map<String, Table>,
}

impl Resolver<'_> {
    /// The value at `path` (`name`, `address.city`, `account.industry`, a formula field).
    pub fn value(&self, object: &ObjectDef, record: &Record, path: &str) -> Value {
        let (first, rest) = match path.split_once('.') {
            Some((first, rest)) => (first, Some(rest)),
            None => (path, None),
        };
        let field = object.field(first);
        let own = match field {
            Some(f) if f.field_type == FieldType::Formula => match &f.compiled_expression {
                Some(expr) => eval(expr, &RecordContext { record, previous: None, now: commands::clock::now() }),
                None => Value::Null,
            },
            _ => record.get(first).cloned().unwrap_or_default(),
        };
        let Some(rest) = rest else { return own };
        match (field, own) {
            (Some(f), Value::Text(id)) if f.field_type.is_reference() => {
                let target_name = f.reference.as_deref().unwrap_or_default();
                let Some(target) = self.catalog.get(target_name) else {
                    return Value::Null;
                };
                match self.tables.get(&target.name).and_then(|t| t.get(&id)) {
                    Some(related) => self.value(target, related, rest),
                    None => Value::Null,
                }
            }
            (_, Value::Map(map)) => {
                let mut current = Value::Map(map);
                for part in rest.split('.') {
                    current = match current {
                        Value::Map(m) => m.get(part).cloned().unwrap_or_default(),
                        _ => Value::Null,
                    };
                }
                current
            }
            _ => Value::Null,
        }
    }

    /// Like [`Resolver::value`], borrowing plain top-level fields instead of copying them.
    pub fn value_cow<'r>(&self, object: &ObjectDef, record: &'r Record, path: &str) -> Cow<'r, Value> {
        let computed = path.contains('.') || object.field(path).is_some_and(|f| f.field_type == FieldType::Formula);
        if computed {
            return Cow::Owned(self.value(object, record, path));
        }
        match record.get(path) {
            Some(value) => Cow::Borrowed(value),
            None => Cow::Owned(Value::Null),
        }
    }

    /// The row as returned: shared as is, or a copy with its formula fields computed.
    pub fn shared_with_formulas(&self, object: &ObjectDef, row: &std::sync::Arc<Record>) -> std::sync::Arc<Record> {
        if object.fields.iter().any(|f| f.field_type == FieldType::Formula) {
            std::sync::Arc::new(self.with_formulas(object, row))
        } else {
            row.clone()
        }
    }

    /// A copy of the record with its formula fields computed (formulas read the row itself).
    pub fn with_formulas(&self, object: &ObjectDef, record: &Record) -> Record {
        domain::formula::with_formula_fields(object, record, commands::clock::now())
    }
}
