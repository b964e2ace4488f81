//! Filters compiled for evaluation against records (regexes and LIKE patterns
//! compiled once per query).

use std::cmp::Ordering;

use domain::metadata::ObjectDef;
use domain::query::{Condition, Filter, Op, Operand};
use domain::value::{Record, Value};
use domain::DomainError;
use regex::Regex;

use super::values::Resolver;

pub(crate) enum Matcher {
    All(Vec<Matcher>),
    Any(Vec<Matcher>),
    Not(Box<Matcher>),
    Cond { condition: Condition, pattern: Option<Regex> },
}

fn like_to_regex(pattern: &str) -> String {
    let mut out = String::from("(?is)^");
    for c in pattern.chars() {
        match c {
            '%' => out.push_str(".*"),
            '_' => out.push('.'),
            other => out.push_str(&regex::escape(&other.to_string())),
        }
    }
    out.push('$');
    out
}

impl Matcher {
    pub fn compile(filter: &Filter) -> Result<Matcher, DomainError> {
        Ok(match filter {
            Filter::And(list) => Matcher::All(list.iter().map(Matcher::compile).collect::<Result<_, _>>()?),
            Filter::Or(list) => Matcher::Any(list.iter().map(Matcher::compile).collect::<Result<_, _>>()?),
            Filter::Not(inner) => Matcher::Not(Box::new(Matcher::compile(inner)?)),
            Filter::Cond(condition) => {
                let pattern = match (&condition.op, &condition.value) {
                    (Op::Regex, Operand::Value(Value::Text(p))) => Some(p.clone()),
                    (Op::Like, Operand::Value(Value::Text(p))) => Some(like_to_regex(p)),
                    _ => None,
                };
                let pattern = pattern
                    .map(|p| Regex::new(&p).map_err(|e| DomainError::InvalidFilter(format!("field '{}': bad pattern: {e}", condition.field))))
                    .transpose()?;
                Matcher::Cond { condition: condition.clone(), pattern }
            }
        })
    }

    pub fn matches(&self, resolver: &Resolver, object: &ObjectDef, record: &Record) -> bool {
        match self {
            Matcher::All(list) => list.iter().all(|m| m.matches(resolver, object, record)),
            Matcher::Any(list) => list.iter().any(|m| m.matches(resolver, object, record)),
            Matcher::Not(inner) => !inner.matches(resolver, object, record),
            Matcher::Cond { condition, pattern } => {
                let value = resolver.value_cow(object, record, &condition.field);
                let other;
                let operand = match &condition.value {
                    Operand::Value(v) => v,
                    Operand::Field(field) => {
                        other = resolver.value(object, record, field);
                        &other
                    }
                };
                if condition.op == Op::Exists {
                    let present = record.contains_key(condition.field.split('.').next().unwrap_or_default()) && !value.is_null();
                    return present == matches!(operand, Value::Bool(true));
                }
                test(condition.op, &value, operand, pattern.as_ref())
            }
        }
    }
}

fn text_lower(value: &Value) -> Option<String> {
    match value {
        Value::Text(s) => Some(s.to_lowercase()),
        Value::Int(_) | Value::Float(_) | Value::Bool(_) => Some(value.to_json().to_string()),
        _ => None,
    }
}

fn equals(value: &Value, operand: &Value) -> bool {
    match value {
        // A list field equals a scalar when it contains it (multi-select, tags).
        Value::List(items) if !matches!(operand, Value::List(_)) => items.iter().any(|i| i.loose_eq(operand)),
        _ => value.loose_eq(operand),
    }
}

fn compare(value: &Value, operand: &Value, accept: impl Fn(Ordering) -> bool) -> bool {
    value.partial_compare(operand).is_some_and(accept)
}

fn test(op: Op, value: &Value, operand: &Value, pattern: Option<&Regex>) -> bool {
    match op {
        Op::Eq => equals(value, operand),
        Op::Ne => !equals(value, operand),
        Op::Gt => compare(value, operand, |o| o == Ordering::Greater),
        Op::Gte => compare(value, operand, |o| o != Ordering::Less),
        Op::Lt => compare(value, operand, |o| o == Ordering::Less),
        Op::Lte => compare(value, operand, |o| o != Ordering::Greater),
        Op::In => match operand {
            Value::List(options) => options.iter().any(|o| equals(value, o)),
            _ => false,
        },
        Op::Nin => match operand {
            Value::List(options) => !options.iter().any(|o| equals(value, o)),
            _ => true,
        },
        Op::Between => match operand {
            Value::List(bounds) if bounds.len() == 2 => {
                compare(value, &bounds[0], |o| o != Ordering::Less) && compare(value, &bounds[1], |o| o != Ordering::Greater)
            }
            _ => false,
        },
        Op::Contains | Op::NotContains => {
            let found = match (value, operand) {
                (Value::List(items), _) => items.iter().any(|i| i.loose_eq(operand)),
                _ => match (text_lower(value), text_lower(operand)) {
                    (Some(haystack), Some(needle)) => haystack.contains(&needle),
                    _ => false,
                },
            };
            found == (op == Op::Contains)
        }
        Op::StartsWith => {
            matches!((text_lower(value), text_lower(operand)), (Some(h), Some(n)) if h.starts_with(&n))
        }
        Op::EndsWith => {
            matches!((text_lower(value), text_lower(operand)), (Some(h), Some(n)) if h.ends_with(&n))
        }
        Op::Like | Op::Regex => match (value, pattern) {
            (Value::Text(s), Some(re)) => re.is_match(s),
            _ => false,
        },
        Op::Null => value.is_null() == matches!(operand, Value::Bool(true)),
        Op::Exists => unreachable!("handled by the caller"),
    }
}
