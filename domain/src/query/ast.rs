//! The normalised query tree.

use std::collections::BTreeMap;

use crate::value::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    Nin,
    /// `[min, max]`, inclusive.
    Between,
    /// Case-insensitive substring.
    Contains,
    NotContains,
    StartsWith,
    EndsWith,
    /// SQL pattern with `%` and `_`, case-insensitive.
    Like,
    /// `true`: the value is null or absent; `false`: it is present.
    Null,
    /// `true`: the field is present (even if null); `false`: absent.
    Exists,
    Regex,
}

/// The right-hand side of a condition: a value, or another field (`{"$field": "start_date"}`).
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Value(Value),
    Field(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// A field name or a dotted path through a relation (`account.industry`).
    pub field: String,
    pub op: Op,
    pub value: Operand,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Cond(Condition),
}

impl Filter {
    /// Conjunction that flattens nested ANDs and drops empty ones.
    pub fn and(filters: Vec<Filter>) -> Filter {
        let mut out = Vec::new();
        for f in filters {
            match f {
                Filter::And(inner) => out.extend(inner),
                other => out.push(other),
            }
        }
        if out.len() == 1 {
            out.pop().expect("one element")
        } else {
            Filter::And(out)
        }
    }

    /// Every field path the filter reads.
    pub fn fields(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Filter::And(list) | Filter::Or(list) => list.iter().for_each(|f| f.collect(out)),
            Filter::Not(inner) => inner.collect(out),
            Filter::Cond(c) => {
                out.push(&c.field);
                if let Operand::Field(other) = &c.value {
                    out.push(other);
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOrder {
    Asc,
    Desc,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SortNode {
    pub field: String,
    pub order: SortOrder,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunction {
    Count,
    Sum,
    Avg,
    Min,
    Max,
    CountDistinct,
    ArrayAgg,
    StringAgg,
}

impl AggFunction {
    /// The function a name means (case-insensitive; `countDistinct` is accepted too).
    pub fn parse(name: &str) -> Option<AggFunction> {
        Some(match name.to_ascii_lowercase().as_str() {
            "count" => AggFunction::Count,
            "sum" => AggFunction::Sum,
            "avg" => AggFunction::Avg,
            "min" => AggFunction::Min,
            "max" => AggFunction::Max,
            "count_distinct" | "countdistinct" => AggFunction::CountDistinct,
            "array_agg" => AggFunction::ArrayAgg,
            "string_agg" => AggFunction::StringAgg,
            _ => return None,
        })
    }

    /// The snake-case name (also the SQL function for sum, avg, min and max).
    pub fn name(self) -> &'static str {
        match self {
            AggFunction::Count => "count",
            AggFunction::Sum => "sum",
            AggFunction::Avg => "avg",
            AggFunction::Min => "min",
            AggFunction::Max => "max",
            AggFunction::CountDistinct => "count_distinct",
            AggFunction::ArrayAgg => "array_agg",
            AggFunction::StringAgg => "string_agg",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Aggregation {
    pub function: AggFunction,
    /// `None` only for `count` (count of rows).
    pub field: Option<String>,
    pub alias: String,
    pub distinct: bool,
    pub filter: Option<Filter>,
}

/// Full-text search clause.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    pub query: String,
    pub fields: Vec<String>,
    pub fuzzy: bool,
    /// `true` when every term must match (`operator: "and"`).
    pub match_all: bool,
    pub boost: BTreeMap<String, f64>,
    pub min_score: Option<f64>,
    pub highlight: bool,
}

/// A query against one object.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Query {
    pub object: String,
    /// Selected fields (`None`: all). Dotted paths select through expanded relations.
    pub fields: Option<Vec<String>>,
    pub filter: Option<Filter>,
    pub search: Option<Search>,
    pub order_by: Vec<SortNode>,
    pub limit: Option<u64>,
    pub offset: u64,
    /// Relations to load: reference field → sub-query on the target object.
    pub expand: BTreeMap<String, Query>,
    pub group_by: Vec<String>,
    pub aggregations: Vec<Aggregation>,
    pub having: Option<Filter>,
    pub distinct: bool,
    /// Whether the response carries the true total (default true).
    pub count: bool,
}

impl Query {
    pub fn new(object: &str) -> Query {
        Query { object: object.to_string(), count: true, ..Query::default() }
    }

    /// The records whose `field` is `value` (a text).
    pub fn by_field(object: &str, field: &str, value: &str) -> Query {
        let mut query = Query::new(object);
        query.filter = Some(Filter::Cond(Condition { field: field.into(), op: Op::Eq, value: Operand::Value(Value::Text(value.to_string())) }));
        query
    }

    /// The one record with this id (at most one row).
    pub fn by_id(object: &str, id: &str) -> Query {
        let mut query = Query::by_field(object, "id", id);
        query.limit = Some(1);
        query
    }
}
