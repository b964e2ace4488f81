//! Evaluating a row filter against one record, without a read model: the
//! command service checks writes with it (RLS `using` and `check`, sharing)
//! under its lock. The value tests are the read model's (`query::compare`).

use std::borrow::Cow;

use crate::metadata::{Catalog, ObjectDef};
use crate::query::compare::{exists, pattern_of, test};
use crate::query::{Filter, Op, Operand};
use crate::value::{Record, Value};

/// The value at a path, following references through `fetch(object, id)`.
fn value_at<'r>(path: &str, record: &'r Record, object: &ObjectDef, catalog: &Catalog, fetch: &dyn Fn(&str, &str) -> Option<Record>) -> Cow<'r, Value> {
    let Some((first, rest)) = path.split_once('.') else {
        return record.get(path).map(Cow::Borrowed).unwrap_or(Cow::Owned(Value::Null));
    };
    let target = object.field(first).and_then(|f| f.reference.as_deref()).and_then(|t| catalog.get(t));
    let (Some(target), Some(Value::Text(id))) = (target, record.get(first)) else { return Cow::Owned(Value::Null) };
    match fetch(&target.name, id) {
        Some(related) => Cow::Owned(value_at(rest, &related, target, catalog, fetch).into_owned()),
        None => Cow::Owned(Value::Null),
    }
}

/// Whether `record` of `object` matches `filter`.
pub fn matches(filter: &Filter, record: &Record, object: &ObjectDef, catalog: &Catalog, fetch: &dyn Fn(&str, &str) -> Option<Record>) -> bool {
    match filter {
        Filter::And(list) => list.iter().all(|f| matches(f, record, object, catalog, fetch)),
        Filter::Or(list) => list.iter().any(|f| matches(f, record, object, catalog, fetch)),
        Filter::Not(inner) => !matches(inner, record, object, catalog, fetch),
        Filter::Cond(c) => {
            let value = value_at(&c.field, record, object, catalog, fetch);
            let other;
            let operand = match &c.value {
                Operand::Value(v) => v,
                Operand::Field(f) => {
                    other = value_at(f, record, object, catalog, fetch).into_owned();
                    &other
                }
            };
            if c.op == Op::Exists {
                return exists(record.contains_key(c.field.split('.').next().unwrap_or_default()), &value, operand);
            }
            // A pattern that does not compile matches nothing (row rules never write one).
            match pattern_of(c) {
                Ok(pattern) => test(c.op, &value, operand, pattern.as_ref()),
                Err(_) => false,
            }
        }
    }
}
