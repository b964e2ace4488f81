//! The analytics query (Cube.js style) and its evaluation over the columns:
//! one pass over the live rows of the cube's object, filtering, bucketing
//! time dimensions and accumulating every measure per group.

use std::collections::{HashMap, HashSet};

use domain::{DomainError, Timestamp};
use serde_json::{json, Map, Value as Json};

use super::columns::{AnalyticsModel, Column};
use domain::query::AggFunction;

use super::condition::{Condition, Predicate};
use super::cube::Cube;
use super::plan::{finish, plan, KeyValue, Summary};
use super::time::{truncate, Granularity};

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

fn key_of(column: &Column, row: usize, granularity: Option<Granularity>) -> Key {
    match column {
        Column::Number(v) => v.get(row).map(|x| Key::Number(x.to_bits())).unwrap_or(Key::Null),
        Column::Text { codes, .. } => codes.get(row).map(Key::Code).unwrap_or(Key::Null),
        Column::Bool(v) => v.get(row).map(Key::Bool).unwrap_or(Key::Null),
        Column::Time(v) => v.get(row).map(|t| Key::Time(granularity.map(|g| truncate(t, g)).unwrap_or(t))).unwrap_or(Key::Null),
    }
}

/// What a key part is, for the answer.
fn key_value(column: &Column, key: Key) -> KeyValue {
    match (column, key) {
        (Column::Text { dictionary, .. }, Key::Code(c)) => KeyValue::Text(dictionary.text(c).to_string()),
        (_, Key::Number(bits)) => KeyValue::Number(f64::from_bits(bits)),
        (_, Key::Bool(b)) => KeyValue::Bool(b),
        (_, Key::Time(t)) => KeyValue::Time(t),
        _ => KeyValue::Null,
    }
}

impl AnalyticsModel {
    /// The generated cubes (one per object) followed by the declared ones.
    pub fn cubes(&self, declared: &[Json]) -> Vec<Cube> {
        super::cube::cubes(&self.catalog, declared)
    }

    /// Runs a query on a cube.
    pub fn run(&self, cube: &Cube, query: &AnalyticsQuery, now: Timestamp) -> Result<AnalyticsResult, DomainError> {
        let empty = super::columns::Table::default();
        let table = self.tables.get(&cube.object).unwrap_or(&empty);
        let column = |field: &str| table.columns.get(field).ok_or_else(|| invalid(format!("field '{field}' of '{}' is not analysed", cube.object)));
        let plan = plan(cube, query, |field| column(field).map(Column::kind), now)?;
        let groups: Vec<(&Column, Option<Granularity>)> =
            plan.groups.iter().map(|g| Ok((column(&g.field)?, g.granularity))).collect::<Result<_, DomainError>>()?;
        let conditions: Vec<(&Column, &Condition)> = plan.conditions.iter().map(|(f, c)| Ok((column(f)?, c))).collect::<Result<_, DomainError>>()?;
        let predicates: Vec<Predicate> = conditions.iter().map(|(col, c)| c.on(col)).collect();
        let measured: Vec<Option<&Column>> = plan.measures.iter().map(|(_, m)| m.field.as_deref().map(column).transpose()).collect::<Result<_, _>>()?;

        let mut accs: KeyMap<Vec<Acc>> = KeyMap::default();
        let mut key: Vec<Key> = Vec::with_capacity(groups.len());
        for row in 0..table.live.len() {
            if !table.live[row] || !predicates.iter().all(|p| p(row)) {
                continue;
            }
            // One key buffer for the scan: a group's key is only copied when the group is new.
            key.clear();
            key.extend(groups.iter().map(|(col, g)| key_of(col, row, *g)));
            if !accs.contains_key(&key) {
                accs.insert(key.clone(), vec![Acc::default(); plan.measures.len()]);
            }
            let slot = accs.get_mut(&key).expect("inserted above");
            for ((acc, (_, measure)), col) in slot.iter_mut().zip(&plan.measures).zip(&measured) {
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
            accs.insert(Vec::new(), vec![Acc::default(); plan.measures.len()]);
        }
        let found = accs
            .into_iter()
            .map(|(key, slot)| {
                let key = groups.iter().zip(&key).map(|((col, _), part)| key_value(col, *part)).collect();
                let summaries = slot
                    .into_iter()
                    .map(|acc| Summary {
                        rows: acc.rows,
                        n: acc.n,
                        sum: acc.sum,
                        min: acc.min,
                        max: acc.max,
                        distinct: acc.distinct.map_or(0, |d| d.len() as u64),
                    })
                    .collect();
                (key, summaries)
            })
            .collect();
        finish(&plan, found, query)
    }
}
