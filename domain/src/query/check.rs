//! Checking a parsed query against metadata: every field it names must exist.

use super::ast::{AggFunction, Condition, Filter, Op, Operand, Query};
use crate::error::DomainError;
use crate::metadata::{Catalog, FieldType, ObjectDef, SYSTEM_FIELDS};
use crate::value::Value;

/// Largest page a query may ask for.
pub const MAX_LIMIT: u64 = 10_000;

/// What one filter may hold: conditions, values (an `in` list counts each
/// item), and pattern conditions (`regex`, `like`), whose cost per row is the
/// highest. Generous for filters people and clients write (a few dozen
/// conditions, an `in` of a few thousand ids), small enough that one request
/// cannot spend seconds of CPU (20,000 regexes took 13 s in process and 58 s
/// on PostgreSQL before these limits).
pub const MAX_CONDITIONS: usize = 1_000;
pub const MAX_VALUES: usize = 10_000;
pub const MAX_PATTERNS: usize = 20;
/// Longest `regex` or `like` pattern, in bytes.
pub const MAX_PATTERN_LENGTH: usize = 1_000;

/// What a filter has used of its limits so far.
#[derive(Default)]
struct Budget {
    conditions: usize,
    values: usize,
    patterns: usize,
}

impl Budget {
    fn take(&mut self, condition: &Condition) -> Result<(), DomainError> {
        self.conditions += 1;
        if self.conditions > MAX_CONDITIONS {
            return Err(DomainError::InvalidFilter(format!("the filter has more than {MAX_CONDITIONS} conditions")));
        }
        if let Operand::Value(value) = &condition.value {
            self.values += match value {
                Value::List(items) => items.len().max(1),
                _ => 1,
            };
            if self.values > MAX_VALUES {
                return Err(DomainError::InvalidFilter(format!("the filter has more than {MAX_VALUES} values (in lists included)")));
            }
            if value_has_nul(value) {
                return Err(DomainError::InvalidFilter(format!("field '{}': a value contains a NUL character (\\u0000)", condition.field)));
            }
        }
        if matches!(condition.op, Op::Regex | Op::Like) {
            self.patterns += 1;
            if self.patterns > MAX_PATTERNS {
                return Err(DomainError::InvalidFilter(format!("the filter has more than {MAX_PATTERNS} regex or like conditions")));
            }
            if let Operand::Value(Value::Text(pattern)) = &condition.value {
                if pattern.len() > MAX_PATTERN_LENGTH {
                    return Err(DomainError::InvalidFilter(format!("field '{}': the pattern is longer than {MAX_PATTERN_LENGTH} bytes", condition.field)));
                }
            }
            // Compiled once here so a bad pattern is a 400 on every model.
            super::compare::pattern_of(condition)?;
        }
        Ok(())
    }
}

fn value_has_nul(value: &Value) -> bool {
    match value {
        Value::Text(text) => text.contains('\0'),
        Value::List(items) => items.iter().any(value_has_nul),
        Value::Map(record) => record.iter().any(|(k, v)| k.contains('\0') || value_has_nul(v)),
        _ => false,
    }
}

/// Checks and normalises a query for its object: unknown fields are errors that
/// name them, `_id` becomes `id`, expanded relations get their target object.
pub fn check_query(query: &mut Query, catalog: &Catalog) -> Result<(), DomainError> {
    let object = catalog.require(&query.object)?.clone();
    query.object = object.name.clone();
    if let Some(limit) = query.limit {
        if limit > MAX_LIMIT {
            return Err(DomainError::InvalidQuery(format!("limit {limit} is above the maximum of {MAX_LIMIT}")));
        }
    }
    if let Some(filter) = query.filter.as_mut() {
        check_filter(filter, &object, catalog, &mut Budget::default())?;
    }
    if let Some(having) = query.having.as_mut() {
        normalise_ids(having);
    }
    let aliases: Vec<String> = query.aggregations.iter().map(|a| a.alias.clone()).collect();
    for sort in query.order_by.iter_mut() {
        if aliases.contains(&sort.field) {
            continue;
        }
        sort.field = resolve_path(&sort.field, &object, catalog).map_err(DomainError::InvalidSort)?;
    }
    if let Some(fields) = query.fields.as_mut() {
        for field in fields.iter_mut() {
            let relation = field.split('.').next().unwrap_or_default();
            let through_expand = query.expand.contains_key(relation);
            if !through_expand {
                *field = resolve_path(field, &object, catalog).map_err(DomainError::InvalidQuery)?;
            }
        }
    }
    for field in query.group_by.iter_mut() {
        *field = resolve_path(field, &object, catalog).map_err(DomainError::InvalidQuery)?;
    }
    for aggregation in query.aggregations.iter_mut() {
        if let Some(field) = aggregation.field.as_mut() {
            *field = resolve_path(field, &object, catalog).map_err(DomainError::InvalidQuery)?;
            let numeric = object.field(field).is_some_and(|f| f.field_type.is_numeric());
            if matches!(aggregation.function, AggFunction::Sum | AggFunction::Avg) && !numeric {
                return Err(DomainError::InvalidQuery(format!("{:?} needs a numeric field; '{field}' is not", aggregation.function).to_lowercase()));
            }
        }
        if let Some(filter) = aggregation.filter.as_mut() {
            check_filter(filter, &object, catalog, &mut Budget::default())?;
        }
    }
    if let Some(search) = query.search.as_mut() {
        for field in search.fields.iter().chain(search.boost.keys()) {
            if object.field(field).is_none() {
                return Err(DomainError::InvalidQuery(format!("search names unknown field '{field}' of '{}'", object.name)));
            }
        }
    }
    for (relation, sub) in query.expand.iter_mut() {
        let field = object
            .field(relation)
            .filter(|f| f.field_type.is_reference())
            .ok_or_else(|| DomainError::InvalidQuery(format!("cannot expand '{relation}': not a lookup field of '{}'", object.name)))?;
        sub.object = field.reference.clone().unwrap_or_default();
        check_query(sub, catalog)?;
    }
    Ok(())
}

fn normalise_ids(filter: &mut Filter) {
    match filter {
        Filter::And(list) | Filter::Or(list) => list.iter_mut().for_each(normalise_ids),
        Filter::Not(inner) => normalise_ids(inner),
        Filter::Cond(c) => {
            if c.field == "_id" {
                c.field = "id".into();
            }
        }
    }
}

fn check_filter(filter: &mut Filter, object: &ObjectDef, catalog: &Catalog, budget: &mut Budget) -> Result<(), DomainError> {
    match filter {
        Filter::And(list) | Filter::Or(list) => list.iter_mut().try_for_each(|f| check_filter(f, object, catalog, budget)),
        Filter::Not(inner) => check_filter(inner, object, catalog, budget),
        Filter::Cond(c) => {
            budget.take(c)?;
            c.field = resolve_path(&c.field, object, catalog).map_err(DomainError::InvalidFilter)?;
            if let Operand::Field(other) = &mut c.value {
                *other = resolve_path(other, object, catalog).map_err(DomainError::InvalidFilter)?;
            }
            Ok(())
        }
    }
}

/// Resolves a field path on `object`: a system field, a declared field, a key
/// inside a composite field (`address.city`), or a path through a reference
/// (`account.industry`). Returns the normalised path or a message naming the unknown part.
fn resolve_path(path: &str, object: &ObjectDef, catalog: &Catalog) -> Result<String, String> {
    if path == "_id" {
        return Ok("id".into());
    }
    let (first, rest) = match path.split_once('.') {
        Some((first, rest)) => (first, Some(rest)),
        None => (path, None),
    };
    if SYSTEM_FIELDS.contains(&first) {
        return match rest {
            None => Ok(path.to_string()),
            Some(_) => Err(format!("unknown field '{path}' on '{}'", object.name)),
        };
    }
    let field = object.field(first).ok_or_else(|| format!("unknown field '{first}' on '{}'", object.name))?;
    let Some(rest) = rest else {
        return Ok(path.to_string());
    };
    match field.field_type {
        FieldType::Address | FieldType::Location | FieldType::Json | FieldType::File => Ok(path.to_string()),
        t if t.is_reference() => {
            let target_name = field.reference.as_deref().unwrap_or_default();
            let target = catalog.get(target_name).ok_or_else(|| format!("'{first}' references unknown object '{target_name}'"))?;
            let inner = resolve_path(rest, target, catalog)?;
            Ok(format!("{first}.{inner}"))
        }
        _ => Err(format!("'{first}' on '{}' has no sub-field '{rest}'", object.name)),
    }
}
