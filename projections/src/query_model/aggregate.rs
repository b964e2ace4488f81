//! Group-by and aggregate functions over the matching records.

use std::collections::BTreeMap;

use domain::metadata::ObjectDef;
use domain::query::{AggFunction, Query, SortOrder};
use domain::value::{Record, Value};
use domain::DomainError;

use super::matcher::Matcher;
use super::values::Resolver;

fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9e15 {
        Value::Int(x as i64)
    } else {
        Value::Float(x)
    }
}

/// One output row per group: the group-by fields and each aggregation's alias.
pub(crate) fn aggregate(resolver: &Resolver, object: &ObjectDef, records: &[&Record], query: &Query) -> Result<Vec<Record>, DomainError> {
    let mut groups: BTreeMap<Vec<String>, (Vec<Value>, Vec<&Record>)> = BTreeMap::new();
    for record in records {
        let key_values: Vec<Value> = query.group_by.iter().map(|f| resolver.value(object, record, f)).collect();
        let key: Vec<String> = key_values.iter().map(|v| v.to_json().to_string()).collect();
        groups.entry(key).or_insert_with(|| (key_values, Vec::new())).1.push(record);
    }
    if groups.is_empty() && query.group_by.is_empty() {
        groups.insert(Vec::new(), (Vec::new(), Vec::new()));
    }
    let filters: Vec<Option<Matcher>> = query.aggregations.iter().map(|a| a.filter.as_ref().map(Matcher::compile).transpose()).collect::<Result<_, _>>()?;
    let mut rows = Vec::with_capacity(groups.len());
    for (_, (key_values, members)) in groups {
        let mut row = Record::new();
        for (field, value) in query.group_by.iter().zip(key_values) {
            row.insert(field.clone(), value);
        }
        for (aggregation, filter) in query.aggregations.iter().zip(&filters) {
            let members: Vec<&&Record> = members.iter().filter(|r| filter.as_ref().is_none_or(|m| m.matches(resolver, object, r))).collect();
            let mut values: Vec<Value> = match &aggregation.field {
                Some(field) => members.iter().map(|r| resolver.value(object, r, field)).filter(|v| !v.is_null()).collect(),
                None => members.iter().map(|_| Value::Bool(true)).collect(),
            };
            if aggregation.distinct || aggregation.function == AggFunction::CountDistinct {
                values.sort_by(|a, b| a.total_cmp(b));
                values.dedup();
            }
            let numbers: Vec<f64> = values.iter().filter_map(Value::as_f64).collect();
            let result = match aggregation.function {
                AggFunction::Count | AggFunction::CountDistinct => Value::Int(values.len() as i64),
                AggFunction::Sum => number(numbers.iter().sum()),
                AggFunction::Avg if numbers.is_empty() => Value::Null,
                AggFunction::Avg => Value::Float(numbers.iter().sum::<f64>() / numbers.len() as f64),
                AggFunction::Min => values.iter().min_by(|a, b| a.total_cmp(b)).cloned().unwrap_or_default(),
                AggFunction::Max => values.iter().max_by(|a, b| a.total_cmp(b)).cloned().unwrap_or_default(),
                AggFunction::ArrayAgg => Value::List(values),
                AggFunction::StringAgg => Value::Text(
                    values
                        .iter()
                        .map(|v| match v {
                            Value::Text(s) => s.clone(),
                            other => other.to_json().to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join(","),
                ),
            };
            row.insert(aggregation.alias.clone(), result);
        }
        rows.push(row);
    }
    finish(rows, query)
}

/// HAVING and ORDER BY over aggregate rows (shared by both read models).
pub(crate) fn finish(mut rows: Vec<Record>, query: &Query) -> Result<Vec<Record>, DomainError> {
    if let Some(having) = &query.having {
        let matcher = Matcher::compile(having)?;
        let plain = ObjectDef::from_json(&serde_json::json!({"name": "aggregate_row", "fields": {}})).expect("static definition");
        let (catalog, tables) = (domain::metadata::Catalog::default(), crate::hashing::Map::default());
        let resolver = Resolver { catalog: &catalog, tables: &tables };
        rows.retain(|row| matcher.matches(&resolver, &plain, row));
    }
    if !query.order_by.is_empty() {
        rows.sort_by(|a, b| {
            for sort in &query.order_by {
                let left = a.get(&sort.field).cloned().unwrap_or_default();
                let right = b.get(&sort.field).cloned().unwrap_or_default();
                let ord = left.total_cmp(&right);
                let ord = if sort.order == SortOrder::Desc { ord.reverse() } else { ord };
                if ord != std::cmp::Ordering::Equal {
                    return ord;
                }
            }
            std::cmp::Ordering::Equal
        });
    }
    Ok(rows)
}
