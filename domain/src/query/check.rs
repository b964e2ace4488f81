//! Checking a parsed query against metadata: every field it names must exist.

use super::ast::{AggFunction, Filter, Operand, Query};
use crate::error::DomainError;
use crate::metadata::{Catalog, FieldType, ObjectDef, SYSTEM_FIELDS};

/// Largest page a query may ask for.
pub const MAX_LIMIT: u64 = 10_000;

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
        check_filter(filter, &object, catalog)?;
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
            check_filter(filter, &object, catalog)?;
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

fn check_filter(filter: &mut Filter, object: &ObjectDef, catalog: &Catalog) -> Result<(), DomainError> {
    match filter {
        Filter::And(list) | Filter::Or(list) => list.iter_mut().try_for_each(|f| check_filter(f, object, catalog)),
        Filter::Not(inner) => check_filter(inner, object, catalog),
        Filter::Cond(c) => {
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
