//! What both analytics models share around their scan: a query resolved
//! against its cube (groups, conditions, measures, checked in one order, so
//! both refuse a query with the same message), and the rows they aggregate
//! turned into the answer (labels, measure values, order, paging), so both
//! answer a query with the same rows in the same order.

use domain::query::AggFunction;
use domain::{DomainError, Timestamp};
use serde_json::{json, Map, Value as Json};

use super::columns::Kind;
use super::condition::{as_text, Condition};
use super::cube::{Cube, DimensionType, Measure};
use super::query::{AnalyticsQuery, AnalyticsResult, FilterOp, MemberFilter};
use super::time::{bucket_label, Granularity};

/// A group-by part: its output name, the field, the time bucket (time
/// dimensions), and the type the answer's fields list gives it.
pub(super) struct Group {
    pub name: String,
    pub field: String,
    pub granularity: Option<Granularity>,
    pub kind: DimensionType,
}

pub(super) struct Plan<'c> {
    pub groups: Vec<Group>,
    /// `(field, condition)`: a row passes when every one does.
    pub conditions: Vec<(String, Condition)>,
    /// `(member, measure)` in the query's order.
    pub measures: Vec<(String, &'c Measure)>,
}

fn invalid(message: impl Into<String>) -> DomainError {
    DomainError::InvalidQuery(message.into())
}

/// Resolves a query on a cube; `kind_of` gives an analysed field's kind (or
/// refuses a field that is not analysed).
pub(super) fn plan<'c>(
    cube: &'c Cube,
    query: &AnalyticsQuery,
    kind_of: impl Fn(&str) -> Result<Kind, DomainError>,
    now: Timestamp,
) -> Result<Plan<'c>, DomainError> {
    let unknown = |kind: &str, member: &str| {
        let known: Vec<&str> =
            if kind == "measure" { cube.measures.iter().map(|m| m.name.as_str()).collect() } else { cube.dimensions.iter().map(|d| d.name.as_str()).collect() };
        invalid(format!("cube '{}' has no {kind} '{member}' (known: {})", cube.name, known.join(", ")))
    };
    let measures =
        query.measures.iter().map(|m| cube.measure(m).map(|d| (m.clone(), d)).ok_or_else(|| unknown("measure", m))).collect::<Result<Vec<_>, _>>()?;
    let mut groups = Vec::new();
    for member in &query.dimensions {
        let dimension = cube.dimension(member).ok_or_else(|| unknown("dimension", member))?;
        kind_of(&dimension.field)?;
        groups.push(Group { name: member.clone(), field: dimension.field.clone(), granularity: None, kind: dimension.kind });
    }
    let mut conditions = Vec::new();
    for td in &query.time_dimensions {
        let dimension = cube.dimension(&td.dimension).ok_or_else(|| unknown("dimension", &td.dimension))?;
        if dimension.kind != DimensionType::Time {
            return Err(invalid(format!("'{}' is not a time dimension", td.dimension)));
        }
        let kind = kind_of(&dimension.field)?;
        if let Some(range) = &td.date_range {
            let filter = MemberFilter { member: td.dimension.clone(), op: FilterOp::InDateRange, values: vec![range.clone()] };
            conditions.push((dimension.field.clone(), Condition::of(kind, &filter, now)?));
        }
        if let Some(g) = td.granularity {
            groups.push(Group {
                name: format!("{}.{}", td.dimension, g.name()),
                field: dimension.field.clone(),
                granularity: Some(g),
                kind: DimensionType::Time,
            });
        }
    }
    for filter in &query.filters {
        let dimension = cube.dimension(&filter.member).ok_or_else(|| unknown("dimension", &filter.member))?;
        conditions.push((dimension.field.clone(), Condition::of(kind_of(&dimension.field)?, filter, now)?));
    }
    for (_, measure) in &measures {
        if let Some(field) = &measure.field {
            kind_of(field)?;
        }
    }
    Ok(Plan { groups, conditions, measures })
}

/// A group-by key part, as a model found it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum KeyValue {
    Null,
    Text(String),
    Number(f64),
    Bool(bool),
    /// Microseconds (truncated to the group's granularity).
    Time(i64),
}

impl KeyValue {
    fn into_label(self) -> Json {
        match self {
            KeyValue::Null => Json::Null,
            KeyValue::Text(t) => Json::String(t),
            KeyValue::Number(x) => json!(x),
            KeyValue::Bool(b) => Json::Bool(b),
            KeyValue::Time(t) => Json::String(bucket_label(t)),
        }
    }
}

/// What a model accumulated for one measure in one group.
#[derive(Debug, Clone, Default)]
pub(super) struct Summary {
    /// Rows in the group.
    pub rows: u64,
    /// Rows with a value of the measured field (a number, for sums and the like).
    pub n: u64,
    pub sum: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Distinct values of the measured field.
    pub distinct: u64,
}

fn value(measure: &Measure, s: &Summary) -> Json {
    match measure.agg {
        AggFunction::Count => json!(if measure.field.is_some() { s.n } else { s.rows }),
        AggFunction::CountDistinct => json!(s.distinct),
        // As in SQL: the sum of no values is null.
        AggFunction::Sum if s.n > 0 => json!(s.sum),
        AggFunction::Avg if s.n > 0 => json!(s.sum / s.n as f64),
        AggFunction::Sum | AggFunction::Avg => Json::Null,
        AggFunction::Min => s.min.map(|x| json!(x)).unwrap_or(Json::Null),
        AggFunction::Max => s.max.map(|x| json!(x)).unwrap_or(Json::Null),
        // Cubes refuse list aggregates (`Cube::declared`).
        AggFunction::ArrayAgg | AggFunction::StringAgg => Json::Null,
    }
}

fn compare(a: &Json, b: &Json) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Json::Null, Json::Null) => Ordering::Equal,
        (Json::Null, _) => Ordering::Greater,
        (_, Json::Null) => Ordering::Less,
        (Json::Number(x), Json::Number(y)) => x.as_f64().unwrap_or(0.0).total_cmp(&y.as_f64().unwrap_or(0.0)),
        (Json::Bool(x), Json::Bool(y)) => x.cmp(y),
        _ => as_text(a).cmp(&as_text(b)),
    }
}

/// The answer from the groups a model aggregated (`(key, a summary per
/// measure)`; with no group-by, one group of an empty key even when no row
/// matched): ordered as asked (by default time buckets ascending, else the
/// first measure descending; ties on every group column), then paged.
pub(super) fn finish(plan: &Plan, groups: Vec<(Vec<KeyValue>, Vec<Summary>)>, query: &AnalyticsQuery) -> Result<AnalyticsResult, DomainError> {
    let mut rows: Vec<Map<String, Json>> = groups
        .into_iter()
        .map(|(key, summaries)| {
            let mut row = Map::new();
            for (group, part) in plan.groups.iter().zip(key) {
                row.insert(group.name.clone(), part.into_label());
            }
            for ((name, measure), summary) in plan.measures.iter().zip(&summaries) {
                row.insert(name.clone(), value(measure, summary));
            }
            row
        })
        .collect();
    let mut order: Vec<(String, bool)> = query.order.clone();
    if order.is_empty() {
        if let Some(group) = plan.groups.iter().find(|g| g.granularity.is_some()) {
            order.push((group.name.clone(), false));
        } else if let Some((name, _)) = plan.measures.first() {
            order.push((name.clone(), true));
        }
    }
    for (member, _) in &order {
        if !rows.first().is_none_or(|r| r.contains_key(member)) {
            return Err(invalid(format!("order names '{member}', which the query does not select")));
        }
    }
    rows.sort_by(|a, b| {
        for (member, desc) in &order {
            let ord = compare(&a[member], &b[member]);
            let ord = if *desc { ord.reverse() } else { ord };
            if ord != std::cmp::Ordering::Equal {
                return ord;
            }
        }
        plan.groups.iter().map(|g| compare(&a[&g.name], &b[&g.name])).find(|o| o.is_ne()).unwrap_or(std::cmp::Ordering::Equal)
    });
    let rows: Vec<Map<String, Json>> = rows.into_iter().skip(query.offset).take(query.limit.unwrap_or(10_000)).collect();
    let mut fields: Vec<(String, &'static str)> = plan.groups.iter().map(|g| (g.name.clone(), g.kind.name())).collect();
    fields.extend(plan.measures.iter().map(|(n, _)| (n.clone(), "number")));
    Ok(AnalyticsResult { rows, fields })
}
