//! The analytics query (Cube.js style) and its evaluation over the columns:
//! one pass over the live rows of the cube's object, filtering, bucketing
//! time dimensions and accumulating every measure per group.

use std::collections::{HashMap, HashSet};

use domain::{DomainError, Timestamp};
use serde_json::{json, Map, Value as Json};

use super::columns::{AnalyticsModel, Column};
use domain::query::AggFunction;

use super::cube::{Cube, DimensionType};
use super::time::{bucket_label, date_range, truncate, Granularity};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    Equals,
    NotEquals,
    Contains,
    NotContains,
    StartsWith,
    EndsWith,
    Gt,
    Gte,
    Lt,
    Lte,
    Set,
    NotSet,
    InDateRange,
    NotInDateRange,
    BeforeDate,
    AfterDate,
}

impl FilterOp {
    fn parse(name: &str) -> Option<FilterOp> {
        Some(match name {
            "equals" => FilterOp::Equals,
            "notEquals" => FilterOp::NotEquals,
            "contains" => FilterOp::Contains,
            "notContains" => FilterOp::NotContains,
            "startsWith" => FilterOp::StartsWith,
            "endsWith" => FilterOp::EndsWith,
            "gt" => FilterOp::Gt,
            "gte" => FilterOp::Gte,
            "lt" => FilterOp::Lt,
            "lte" => FilterOp::Lte,
            "set" => FilterOp::Set,
            "notSet" => FilterOp::NotSet,
            "inDateRange" => FilterOp::InDateRange,
            "notInDateRange" => FilterOp::NotInDateRange,
            "beforeDate" => FilterOp::BeforeDate,
            "afterDate" => FilterOp::AfterDate,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            FilterOp::Equals => "equals",
            FilterOp::NotEquals => "notEquals",
            FilterOp::Contains => "contains",
            FilterOp::NotContains => "notContains",
            FilterOp::StartsWith => "startsWith",
            FilterOp::EndsWith => "endsWith",
            FilterOp::Gt => "gt",
            FilterOp::Gte => "gte",
            FilterOp::Lt => "lt",
            FilterOp::Lte => "lte",
            FilterOp::Set => "set",
            FilterOp::NotSet => "notSet",
            FilterOp::InDateRange => "inDateRange",
            FilterOp::NotInDateRange => "notInDateRange",
            FilterOp::BeforeDate => "beforeDate",
            FilterOp::AfterDate => "afterDate",
        }
    }
}

#[derive(Debug, Clone)]
pub struct MemberFilter {
    pub member: String,
    pub op: FilterOp,
    pub values: Vec<Json>,
}

#[derive(Debug, Clone)]
pub struct TimeDimension {
    pub dimension: String,
    pub granularity: Option<Granularity>,
    pub date_range: Option<Json>,
}

#[derive(Debug, Clone, Default)]
pub struct AnalyticsQuery {
    pub cube: String,
    pub measures: Vec<String>,
    pub dimensions: Vec<String>,
    pub filters: Vec<MemberFilter>,
    pub time_dimensions: Vec<TimeDimension>,
    /// `(member, descending)`.
    pub order: Vec<(String, bool)>,
    pub limit: Option<usize>,
    pub offset: usize,
}

/// The answer: rows keyed by member, and the fields with their types.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyticsResult {
    pub rows: Vec<Map<String, Json>>,
    pub fields: Vec<(String, &'static str)>,
}

impl AnalyticsResult {
    pub fn to_json(&self) -> Json {
        json!({"rows": self.rows, "fields": self.fields.iter().map(|(n, t)| json!({"name": n, "type": t})).collect::<Vec<_>>()})
    }
}

/// Most rows an analytics query returns.
pub const MAX_ROWS: usize = 50_000;

fn invalid(message: impl Into<String>) -> DomainError {
    DomainError::InvalidQuery(message.into())
}

fn strings(json: Option<&Json>, what: &str) -> Result<Vec<String>, DomainError> {
    match json {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::Array(items)) => items.iter().map(|i| i.as_str().map(str::to_string).ok_or_else(|| invalid(format!("{what} must list names")))).collect(),
        Some(other) => Err(invalid(format!("{what} must be a list of names, got {other}"))),
    }
}

/// Parses `{cube, query: {...}}` or a bare query with `cube` (or members named `cube.member`).
pub fn parse_query(body: &Json) -> Result<AnalyticsQuery, DomainError> {
    let query = body.get("query").filter(|q| q.is_object()).unwrap_or(body);
    let Json::Object(map) = query else { return Err(invalid("an analytics query is a JSON object")) };
    for key in map.keys() {
        if !["cube", "measures", "dimensions", "filters", "timeDimensions", "order", "limit", "offset", "timezone", "format", "query"].contains(&key.as_str()) {
            return Err(invalid(format!("unknown analytics query key '{key}'")));
        }
    }
    let measures = strings(map.get("measures"), "measures")?;
    let dimensions = strings(map.get("dimensions"), "dimensions")?;
    let cube = body
        .get("cube")
        .or_else(|| map.get("cube"))
        .and_then(Json::as_str)
        .map(str::to_string)
        .or_else(|| measures.iter().chain(&dimensions).find_map(|m| m.split_once('.').map(|(c, _)| c.to_string())))
        .ok_or_else(|| invalid("name the cube (`cube`, or members as `cube.member`)"))?;
    if let Some(tz) = map.get("timezone").and_then(Json::as_str) {
        if !tz.eq_ignore_ascii_case("utc") {
            return Err(invalid(format!("timezone '{tz}' is not supported yet: time dimensions are in UTC")));
        }
    }
    let mut filters = Vec::new();
    if let Some(list) = map.get("filters") {
        for filter in list.as_array().ok_or_else(|| invalid("filters must be a list"))? {
            let member = filter.get("member").or_else(|| filter.get("dimension")).and_then(Json::as_str).ok_or_else(|| invalid("a filter needs a member"))?;
            let op_name = filter.get("operator").and_then(Json::as_str).ok_or_else(|| invalid("a filter needs an operator"))?;
            let op = FilterOp::parse(op_name).ok_or_else(|| invalid(format!("unknown filter operator '{op_name}'")))?;
            let values = match filter.get("values") {
                None | Some(Json::Null) => Vec::new(),
                Some(Json::Array(v)) => v.clone(),
                Some(single) => vec![single.clone()],
            };
            filters.push(MemberFilter { member: member.to_string(), op, values });
        }
    }
    let mut time_dimensions = Vec::new();
    if let Some(list) = map.get("timeDimensions") {
        for td in list.as_array().ok_or_else(|| invalid("timeDimensions must be a list"))? {
            let dimension = td.get("dimension").and_then(Json::as_str).ok_or_else(|| invalid("a time dimension needs a dimension"))?;
            let granularity = match td.get("granularity").and_then(Json::as_str) {
                None => None,
                Some(g) => Some(Granularity::parse(g).ok_or_else(|| invalid(format!("unknown granularity '{g}' (use {})", Granularity::ALL.join(", "))))?),
            };
            time_dimensions.push(TimeDimension { dimension: dimension.to_string(), granularity, date_range: td.get("dateRange").cloned() });
        }
    }
    let mut order = Vec::new();
    match map.get("order") {
        None | Some(Json::Null) => {}
        Some(Json::Object(o)) => {
            for (member, dir) in o {
                order.push((member.clone(), dir.as_str() == Some("desc")));
            }
        }
        Some(Json::Array(items)) => {
            for item in items {
                match item {
                    Json::Array(pair) if pair.len() == 2 => order.push((pair[0].as_str().unwrap_or_default().to_string(), pair[1].as_str() == Some("desc"))),
                    _ => return Err(invalid("order entries are [member, \"asc\"|\"desc\"]")),
                }
            }
        }
        Some(other) => return Err(invalid(format!("order must be {{member: asc|desc}}, got {other}"))),
    }
    let whole = |key: &str| -> Result<Option<usize>, DomainError> {
        match map.get(key) {
            None | Some(Json::Null) => Ok(None),
            Some(v) => v.as_u64().map(|n| Some(n as usize)).ok_or_else(|| invalid(format!("{key} must be a whole number"))),
        }
    };
    let limit = whole("limit")?;
    if limit.is_some_and(|l| l > MAX_ROWS) {
        return Err(invalid(format!("limit is above the maximum of {MAX_ROWS}")));
    }
    Ok(AnalyticsQuery { cube, measures, dimensions, filters, time_dimensions, order, limit, offset: whole("offset")?.unwrap_or(0) })
}

/// A fast hasher for group keys (small integers; no need for DoS resistance:
/// the keys come from the model, not from the request).
#[derive(Default)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0.rotate_left(5) ^ value).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u32(&mut self, value: u32) {
        self.write_u64(value as u64);
    }
    fn write_u8(&mut self, value: u8) {
        self.write_u64(value as u64);
    }
    fn write_usize(&mut self, value: usize) {
        self.write_u64(value as u64);
    }
    fn write_i64(&mut self, value: i64) {
        self.write_u64(value as u64);
    }
    fn write_isize(&mut self, value: isize) {
        self.write_u64(value as u64);
    }
}

type KeyMap<V> = HashMap<Vec<Key>, V, std::hash::BuildHasherDefault<KeyHasher>>;

/// One group-by key part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Null,
    Code(u32),
    Number(u64),
    Bool(bool),
    Time(i64),
}

#[derive(Debug, Clone, Default)]
struct Acc {
    rows: u64,
    n: u64,
    sum: f64,
    min: Option<f64>,
    max: Option<f64>,
    distinct: Option<HashSet<Key>>,
}

fn as_f64(value: &Json) -> Option<f64> {
    match value {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn as_text(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn as_time(value: &Json) -> Result<i64, DomainError> {
    let text = value.as_str().ok_or_else(|| invalid(format!("{value} is not an ISO date or datetime")))?;
    Timestamp::parse(text).map(Timestamp::micros).ok_or_else(|| invalid(format!("'{text}' is not an ISO date or datetime")))
}

/// A row predicate over one column.
type Predicate<'a> = Box<dyn Fn(usize) -> bool + 'a>;

fn predicate<'a>(column: &'a Column, filter: &MemberFilter, now: Timestamp) -> Result<Predicate<'a>, DomainError> {
    use FilterOp::*;
    let values = &filter.values;
    let need = |n: usize| -> Result<(), DomainError> {
        if values.len() < n {
            Err(invalid(format!("filter '{}' {} needs {n} value(s)", filter.member, filter.op.name())))
        } else {
            Ok(())
        }
    };
    match (column, filter.op) {
        (_, Set) => Ok(Box::new(move |r| column.is_set(r))),
        (_, NotSet) => Ok(Box::new(move |r| !column.is_set(r))),
        (Column::Text { codes, dictionary, .. }, op) => {
            need(1)?;
            let wanted: Vec<String> = values.iter().map(as_text).collect();
            let lowered: Vec<String> = wanted.iter().map(|w| w.to_lowercase()).collect();
            // Decide per dictionary entry once, then per row by code.
            let verdict: Vec<bool> = dictionary
                .texts()
                .map(|text| {
                    let lower = text.to_lowercase();
                    let is_wanted = wanted.iter().any(|w| w == text);
                    match op {
                        Equals => is_wanted,
                        NotEquals => !is_wanted,
                        Contains => lowered.iter().any(|w| lower.contains(w.as_str())),
                        NotContains => !lowered.iter().any(|w| lower.contains(w.as_str())),
                        StartsWith => lowered.iter().any(|w| lower.starts_with(w.as_str())),
                        EndsWith => lowered.iter().any(|w| lower.ends_with(w.as_str())),
                        Gt => wanted.iter().any(|w| text > w.as_str()),
                        Gte => wanted.iter().any(|w| text >= w.as_str()),
                        Lt => wanted.iter().any(|w| text < w.as_str()),
                        Lte => wanted.iter().any(|w| text <= w.as_str()),
                        _ => false,
                    }
                })
                .collect();
            if matches!(op, InDateRange | NotInDateRange | BeforeDate | AfterDate) {
                return Err(invalid(format!("'{}' is not a time dimension", filter.member)));
            }
            let null_passes = matches!(op, NotEquals | NotContains);
            Ok(Box::new(move |r| codes.get(r).map(|c| verdict[c as usize]).unwrap_or(null_passes)))
        }
        (Column::Number(cells), op) => {
            need(1)?;
            let numbers: Vec<f64> =
                values.iter().map(|v| as_f64(v).ok_or_else(|| invalid(format!("'{}' compares numbers, got {v}", filter.member)))).collect::<Result<_, _>>()?;
            let first = numbers[0];
            let test: Box<dyn Fn(f64) -> bool> = match op {
                Equals => Box::new(move |x| numbers.contains(&x)),
                NotEquals => Box::new(move |x| !numbers.contains(&x)),
                Gt => Box::new(move |x| x > first),
                Gte => Box::new(move |x| x >= first),
                Lt => Box::new(move |x| x < first),
                Lte => Box::new(move |x| x <= first),
                other => return Err(invalid(format!("'{}' is a number: {} does not apply", filter.member, other.name()))),
            };
            let null_passes = op == NotEquals;
            Ok(Box::new(move |r| cells.get(r).map(&test).unwrap_or(null_passes)))
        }
        (Column::Bool(cells), op) => {
            need(1)?;
            let wanted: Vec<bool> = values.iter().map(|v| matches!(v, Json::Bool(true)) || v.as_str() == Some("true")).collect();
            match op {
                Equals => Ok(Box::new(move |r| cells.get(r).is_some_and(|b| wanted.contains(&b)))),
                NotEquals => Ok(Box::new(move |r| cells.get(r).is_none_or(|b| !wanted.contains(&b)))),
                other => Err(invalid(format!("'{}' is a boolean: {} does not apply", filter.member, other.name()))),
            }
        }
        (Column::Time(cells), op) => {
            let (from, to) = match op {
                InDateRange | NotInDateRange => {
                    let range = if values.len() == 1 { values[0].clone() } else { Json::Array(values.clone()) };
                    date_range(&range, now).map_err(invalid)?
                }
                BeforeDate | Lt => (i64::MIN, as_time(values.first().ok_or_else(|| invalid("a date is needed"))?)?),
                Lte => (i64::MIN, as_time(values.first().ok_or_else(|| invalid("a date is needed"))?)? + 1),
                AfterDate | Gt => (as_time(values.first().ok_or_else(|| invalid("a date is needed"))?)? + 1, i64::MAX),
                Gte => (as_time(values.first().ok_or_else(|| invalid("a date is needed"))?)?, i64::MAX),
                Equals | NotEquals => {
                    let t = as_time(values.first().ok_or_else(|| invalid("a date is needed"))?)?;
                    (t, t + 1)
                }
                other => return Err(invalid(format!("'{}' is a time: {} does not apply", filter.member, other.name()))),
            };
            let negate = matches!(op, NotInDateRange | NotEquals);
            Ok(Box::new(move |r| match cells.get(r) {
                Some(t) => (t >= from && t < to) != negate,
                None => negate,
            }))
        }
    }
}

fn key_of(column: &Column, row: usize, granularity: Option<Granularity>) -> Key {
    match column {
        Column::Number(v) => v.get(row).map(|x| Key::Number(x.to_bits())).unwrap_or(Key::Null),
        Column::Text { codes, .. } => codes.get(row).map(Key::Code).unwrap_or(Key::Null),
        Column::Bool(v) => v.get(row).map(Key::Bool).unwrap_or(Key::Null),
        Column::Time(v) => v.get(row).map(|t| Key::Time(granularity.map(|g| truncate(t, g)).unwrap_or(t))).unwrap_or(Key::Null),
    }
}

fn label(column: &Column, key: Key) -> Json {
    match (column, key) {
        (_, Key::Null) => Json::Null,
        (Column::Text { dictionary, .. }, Key::Code(c)) => Json::String(dictionary.text(c).to_string()),
        (_, Key::Number(bits)) => json!(f64::from_bits(bits)),
        (_, Key::Bool(b)) => Json::Bool(b),
        (_, Key::Time(t)) => Json::String(bucket_label(t)),
        _ => Json::Null,
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

impl AnalyticsModel {
    /// The generated cubes (one per object) followed by the declared ones.
    pub fn cubes(&self, declared: &[Json]) -> Vec<Cube> {
        let mut cubes: Vec<Cube> = self.catalog.objects().filter(|o| o.api_enabled).map(|o| Cube::generated(o)).collect();
        cubes.sort_by(|a, b| a.name.cmp(&b.name));
        for json in declared {
            match Cube::declared(json, &self.catalog) {
                Ok(cube) => {
                    cubes.retain(|c| c.name != cube.name);
                    cubes.push(cube);
                }
                Err(error) => tracing::warn!(%error, "a declared cube is skipped"),
            }
        }
        cubes
    }

    /// Runs a query on a cube.
    pub fn run(&self, cube: &Cube, query: &AnalyticsQuery, now: Timestamp) -> Result<AnalyticsResult, DomainError> {
        let unknown = |kind: &str, member: &str| {
            let known: Vec<&str> = if kind == "measure" {
                cube.measures.iter().map(|m| m.name.as_str()).collect()
            } else {
                cube.dimensions.iter().map(|d| d.name.as_str()).collect()
            };
            invalid(format!("cube '{}' has no {kind} '{member}' (known: {})", cube.name, known.join(", ")))
        };
        let measures =
            query.measures.iter().map(|m| cube.measure(m).map(|d| (m.clone(), d)).ok_or_else(|| unknown("measure", m))).collect::<Result<Vec<_>, _>>()?;
        let empty = super::columns::Table::default();
        let table = self.tables.get(&cube.object).unwrap_or(&empty);
        let column = |field: &str| table.columns.get(field).ok_or_else(|| invalid(format!("field '{field}' of '{}' is not analysed", cube.object)));
        // Group-by parts: (output name, column, granularity).
        let mut groups: Vec<(String, &Column, Option<Granularity>, DimensionType)> = Vec::new();
        for member in &query.dimensions {
            let dimension = cube.dimension(member).ok_or_else(|| unknown("dimension", member))?;
            groups.push((member.clone(), column(&dimension.field)?, None, dimension.kind));
        }
        let mut predicates: Vec<Predicate> = Vec::new();
        for td in &query.time_dimensions {
            let dimension = cube.dimension(&td.dimension).ok_or_else(|| unknown("dimension", &td.dimension))?;
            if dimension.kind != DimensionType::Time {
                return Err(invalid(format!("'{}' is not a time dimension", td.dimension)));
            }
            let col = column(&dimension.field)?;
            if let Some(range) = &td.date_range {
                let filter = MemberFilter { member: td.dimension.clone(), op: FilterOp::InDateRange, values: vec![range.clone()] };
                predicates.push(predicate(col, &filter, now)?);
            }
            if let Some(g) = td.granularity {
                groups.push((format!("{}.{}", td.dimension, g.name()), col, Some(g), DimensionType::Time));
            }
        }
        for filter in &query.filters {
            let dimension = cube.dimension(&filter.member).ok_or_else(|| unknown("dimension", &filter.member))?;
            predicates.push(predicate(column(&dimension.field)?, filter, now)?);
        }
        let measured: Vec<Option<&Column>> = measures.iter().map(|(_, m)| m.field.as_deref().map(column).transpose()).collect::<Result<_, _>>()?;

        let mut accs: KeyMap<Vec<Acc>> = KeyMap::default();
        let mut key: Vec<Key> = Vec::with_capacity(groups.len());
        for row in 0..table.live.len() {
            if !table.live[row] || !predicates.iter().all(|p| p(row)) {
                continue;
            }
            // One key buffer for the scan: a group's key is only copied when the group is new.
            key.clear();
            key.extend(groups.iter().map(|(_, col, g, _)| key_of(col, row, *g)));
            if !accs.contains_key(&key) {
                accs.insert(key.clone(), vec![Acc::default(); measures.len()]);
            }
            let slot = accs.get_mut(&key).expect("inserted above");
            for ((acc, (_, measure)), col) in slot.iter_mut().zip(&measures).zip(&measured) {
                acc.rows += 1;
                let Some(col) = col else { continue };
                match measure.agg {
                    AggFunction::CountDistinct => {
                        let k = key_of(col, row, None);
                        if k != Key::Null {
                            acc.distinct.get_or_insert_with(HashSet::new).insert(k);
                        }
                        continue;
                    }
                    AggFunction::Count => {
                        acc.n += u64::from(col.is_set(row));
                        continue;
                    }
                    _ => {}
                }
                if let Column::Number(cells) = col {
                    if let Some(x) = cells.get(row) {
                        acc.n += 1;
                        acc.sum += x;
                        acc.min = Some(acc.min.map_or(x, |m| m.min(x)));
                        acc.max = Some(acc.max.map_or(x, |m| m.max(x)));
                    }
                }
            }
        }
        if accs.is_empty() && groups.is_empty() {
            accs.insert(Vec::new(), vec![Acc::default(); measures.len()]);
        }
        let mut rows: Vec<Map<String, Json>> = accs
            .into_iter()
            .map(|(key, slot)| {
                let mut row = Map::new();
                for ((name, col, _, _), part) in groups.iter().zip(&key) {
                    row.insert(name.clone(), label(col, *part));
                }
                for ((name, measure), acc) in measures.iter().zip(slot) {
                    let value = match measure.agg {
                        AggFunction::Count => json!(if measure.field.is_some() { acc.n } else { acc.rows }),
                        AggFunction::CountDistinct => json!(acc.distinct.map_or(0, |d| d.len())),
                        // As in SQL: the sum of no values is null.
                        AggFunction::Sum if acc.n > 0 => json!(acc.sum),
                        AggFunction::Sum => Json::Null,
                        AggFunction::Avg if acc.n > 0 => json!(acc.sum / acc.n as f64),
                        AggFunction::Avg => Json::Null,
                        AggFunction::Min => acc.min.map(|x| json!(x)).unwrap_or(Json::Null),
                        AggFunction::Max => acc.max.map(|x| json!(x)).unwrap_or(Json::Null),
                        // Cubes refuse list aggregates (`Cube::declared`).
                        AggFunction::ArrayAgg | AggFunction::StringAgg => Json::Null,
                    };
                    row.insert(name.clone(), value);
                }
                row
            })
            .collect();
        // Order: as asked; by default time buckets ascending, else the first measure descending.
        let mut order: Vec<(String, bool)> = query.order.clone();
        if order.is_empty() {
            if let Some((name, ..)) = groups.iter().find(|g| g.2.is_some()) {
                order.push((name.clone(), false));
            } else if let Some((name, _)) = measures.first() {
                order.push((name.clone(), true));
            }
        }
        for (member, _) in &order {
            if !rows.first().is_none_or(|r| r.contains_key(member)) {
                return Err(invalid(format!("order names '{member}', which the query does not select")));
            }
        }
        // Ties fall back on every column, so results are deterministic.
        let names: Vec<String> = groups.iter().map(|g| g.0.clone()).collect();
        rows.sort_by(|a, b| {
            for (member, desc) in &order {
                let ord = compare(&a[member], &b[member]);
                let ord = if *desc { ord.reverse() } else { ord };
                if ord != std::cmp::Ordering::Equal {
                    return ord;
                }
            }
            names.iter().map(|n| compare(&a[n], &b[n])).find(|o| *o != std::cmp::Ordering::Equal).unwrap_or(std::cmp::Ordering::Equal)
        });
        let rows: Vec<Map<String, Json>> = rows.into_iter().skip(query.offset).take(query.limit.unwrap_or(10_000)).collect();
        let mut fields: Vec<(String, &'static str)> = groups.iter().map(|(n, _, _, t)| (n.clone(), t.name())).collect();
        fields.extend(measures.iter().map(|(n, _)| (n.clone(), "number")));
        Ok(AnalyticsResult { rows, fields })
    }
}
