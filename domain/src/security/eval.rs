//! Evaluating a row filter against one record, without a read model: the
//! command service checks writes with it (RLS `using` and `check`, sharing)
//! under its lock. The same semantics as the read models' matcher for the
//! conditions row rules produce; a pattern (regex) never matches here.

use std::borrow::Cow;
use std::cmp::Ordering;

use crate::metadata::{Catalog, ObjectDef};
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

fn equals(value: &Value, operand: &Value) -> bool {
    match value {
        Value::List(items) if !matches!(operand, Value::List(_)) => items.iter().any(|i| i.loose_eq(operand)),
        _ => value.loose_eq(operand),
    }
}

fn lower(value: &Value) -> Option<String> {
    match value {
        Value::Text(s) => Some(s.to_lowercase()),
        Value::Int(_) | Value::Float(_) | Value::Bool(_) => Some(value.to_json().to_string()),
        _ => None,
    }
}

/// `%` any run, `_` one character, case-insensitive.
fn like(text: &str, pattern: &str) -> bool {
    let (t, p): (Vec<char>, Vec<char>) = (text.to_lowercase().chars().collect(), pattern.to_lowercase().chars().collect());
    let (mut ti, mut pi, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '_' || p[pi] == t[ti]) {
            ti += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '%' {
        pi += 1;
    }
    pi == p.len()
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
            let compare = |accept: fn(Ordering) -> bool| value.partial_compare(operand).is_some_and(accept);
            match c.op {
                Op::Eq => equals(&value, operand),
                Op::Ne => !equals(&value, operand),
                Op::Gt => compare(|o| o == Ordering::Greater),
                Op::Gte => compare(|o| o != Ordering::Less),
                Op::Lt => compare(|o| o == Ordering::Less),
                Op::Lte => compare(|o| o != Ordering::Greater),
                Op::In => matches!(operand, Value::List(options) if options.iter().any(|o| equals(&value, o))),
                Op::Nin => !matches!(operand, Value::List(options) if options.iter().any(|o| equals(&value, o))),
                Op::Between => match operand {
                    Value::List(b) if b.len() == 2 => {
                        value.partial_compare(&b[0]).is_some_and(|o| o != Ordering::Less)
                            && value.partial_compare(&b[1]).is_some_and(|o| o != Ordering::Greater)
                    }
                    _ => false,
                },
                Op::Contains | Op::NotContains => {
                    let found = match (&*value, lower(&value), lower(operand)) {
                        (Value::List(items), _, _) => items.iter().any(|i| i.loose_eq(operand)),
                        (_, Some(h), Some(n)) => h.contains(&n),
                        _ => false,
                    };
                    found == (c.op == Op::Contains)
                }
                Op::StartsWith => matches!((lower(&value), lower(operand)), (Some(h), Some(n)) if h.starts_with(&n)),
                Op::EndsWith => matches!((lower(&value), lower(operand)), (Some(h), Some(n)) if h.ends_with(&n)),
                Op::Like => matches!((&*value, operand), (Value::Text(t), Value::Text(p)) if like(t, p)),
                Op::Null => value.is_null() == matches!(operand, Value::Bool(true)),
                Op::Exists => (record.contains_key(c.field.split('.').next().unwrap_or_default()) && !value.is_null()) == matches!(operand, Value::Bool(true)),
                Op::Regex => false,
            }
        }
    }
}
