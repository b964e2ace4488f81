//! Filters compiled for evaluation against records (regexes and LIKE patterns
//! compiled once per query).

use domain::metadata::ObjectDef;
use domain::query::compare::{exists, pattern_of, test};
use domain::query::{Condition, Filter, Op, Operand};
use domain::value::Record;
use domain::DomainError;
use regex::Regex;

use super::values::Resolver;

pub(crate) enum Matcher {
    All(Vec<Matcher>),
    Any(Vec<Matcher>),
    Not(Box<Matcher>),
    Cond { condition: Condition, pattern: Option<Regex> },
}

impl Matcher {
    pub fn compile(filter: &Filter) -> Result<Matcher, DomainError> {
        Ok(match filter {
            Filter::And(list) => Matcher::All(list.iter().map(Matcher::compile).collect::<Result<_, _>>()?),
            Filter::Or(list) => Matcher::Any(list.iter().map(Matcher::compile).collect::<Result<_, _>>()?),
            Filter::Not(inner) => Matcher::Not(Box::new(Matcher::compile(inner)?)),
            Filter::Cond(condition) => Matcher::Cond { condition: condition.clone(), pattern: pattern_of(condition)? },
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
                    return exists(record.contains_key(condition.field.split('.').next().unwrap_or_default()), &value, operand);
                }
                test(condition.op, &value, operand, pattern.as_ref())
            }
        }
    }
}
