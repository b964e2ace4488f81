//! What a changed definition would do to the records already there: a
//! required field they lack, a value no longer allowed (a removed option, a
//! shorter maximum, another type). Such a change is refused with this report,
//! because every one of those records could no longer be edited.

use std::collections::BTreeMap;

use super::ObjectDef;
use crate::validate::check_value;
use crate::value::{Record, Value};

/// The problems, one line per field and kind, with how many records have
/// them (empty: the change is safe for the data there).
pub fn breaking_changes<'a>(new: &ObjectDef, records: impl Iterator<Item = &'a Record>) -> Vec<String> {
    let mut missing: BTreeMap<&str, usize> = BTreeMap::new();
    let mut invalid: BTreeMap<&str, (usize, String)> = BTreeMap::new();
    for record in records {
        for field in &new.fields {
            if field.field_type.is_read_only() {
                continue;
            }
            match record.get(&field.name) {
                None | Some(Value::Null) => {
                    if field.required {
                        *missing.entry(&field.name).or_default() += 1;
                    }
                }
                Some(value) => {
                    if let Err(error) = check_value(field, &value.to_json()) {
                        let entry = invalid.entry(&field.name).or_insert((0, error.message));
                        entry.0 += 1;
                    }
                }
            }
        }
    }
    let mut report: Vec<String> = missing
        .into_iter()
        .map(|(field, n)| format!("'{field}' would be required but {n} record(s) have no value (add it optional, fill it, then require it)"))
        .collect();
    report.extend(
        invalid.into_iter().map(|(field, (n, example))| format!("{n} record(s) hold a value of '{field}' the new definition refuses (e.g. {example})")),
    );
    report
}
