//! Analytics answered by PostgreSQL on the query model's tables
//! (`obj_{object} (id, data jsonb)`), so a gateway on PostgreSQL holds no
//! columnar copy of the records. The query is resolved and its answer
//! ordered and paged by the code the columnar model uses ([`super::plan`]);
//! PostgreSQL filters, groups and accumulates.
//!
//! A field reads as the columnar model reads it: a number only from a JSON
//! number, a text only from a JSON string, a boolean only from a JSON
//! boolean, a time only from a stored date (`YYYY-MM-DD`) or datetime (the
//! ISO form writes are normalised to); anything else is no value. Texts
//! compare in byte order (`COLLATE "C"`), contains/starts/ends ignore case,
//! times bucket in UTC (weeks from Monday), as in process.

use deadpool_postgres::Pool;
use domain::metadata::Catalog;
use domain::query::AggFunction;
use domain::{DomainError, Timestamp};
use serde_json::{json, Value as Json};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::columns::{analysed_fields, Kind};
use super::condition::{Condition, NumberTest, TextTest};
use super::cube::Cube;
use super::plan::{finish, plan, KeyValue, Plan, Summary};
use super::query::{AnalyticsQuery, AnalyticsResult};
use super::time::Granularity;
use crate::pg_model::table;
use crate::reader::ReadError;

/// The stored forms of a date and of a datetime (what writes normalise to).
const TIME_FORM: &str = r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z)?$";

const DAY: i64 = 86_400_000_000;

fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A field's value as the columnar model reads it (NULL: no value).
fn value_sql(field: &str, kind: Kind) -> String {
    if field == "id" {
        return "t.id".to_string();
    }
    let json = format!("(t.data->{})", quote_literal(field));
    let text = format!("(t.data->>{})", quote_literal(field));
    match kind {
        Kind::Number => format!("(CASE WHEN jsonb_typeof({json}) = 'number' THEN {text}::float8 END)"),
        Kind::Text => format!("(CASE WHEN jsonb_typeof({json}) = 'string' THEN {text} END)"),
        Kind::Bool => format!("(CASE WHEN jsonb_typeof({json}) = 'boolean' THEN {text}::boolean END)"),
        Kind::Time => format!("(CASE WHEN {text} ~ '{TIME_FORM}' THEN (extract(epoch FROM {text}::timestamptz) * 1000000)::bigint END)"),
    }
}

/// `micros` (SQL) floored to a multiple of `unit` microseconds.
fn floor_to(micros: &str, unit: i64) -> String {
    format!("({micros} - ((({micros}) % {unit}) + {unit}) % {unit})")
}

/// The start of the bucket holding `micros` (SQL), as `time::truncate` gives it.
fn bucket_sql(micros: &str, granularity: Granularity) -> String {
    match granularity {
        Granularity::Second => floor_to(micros, 1_000_000),
        Granularity::Minute => floor_to(micros, 60_000_000),
        Granularity::Hour => floor_to(micros, 3_600_000_000),
        Granularity::Day => floor_to(micros, DAY),
        Granularity::Week => {
            // 1970-01-01 was a Thursday: three days after a Monday.
            let days = format!("({} / {DAY})", floor_to(micros, DAY));
            format!("(({days} - ((({days} + 3) % 7) + 7) % 7) * {DAY})")
        }
        Granularity::Month | Granularity::Quarter | Granularity::Year => format!(
            "(extract(epoch FROM date_trunc('{}', timestamptz 'epoch' + ({micros}) * interval '1 microsecond')) * 1000000)::bigint",
            granularity.sql_unit()
        ),
    }
}

/// A parameter of the statement.
enum Param {
    Text(String),
    Texts(Vec<String>),
    Number(f64),
    Numbers(Vec<f64>),
    Bools(Vec<bool>),
    Micros(i64),
}

impl Param {
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Param::Text(v) => v,
            Param::Texts(v) => v,
            Param::Number(v) => v,
            Param::Numbers(v) => v,
            Param::Bools(v) => v,
            Param::Micros(v) => v,
        }
    }

    fn to_json(&self) -> Json {
        match self {
            Param::Text(v) => json!(v),
            Param::Texts(v) => json!(v),
            Param::Number(v) => json!(v),
            Param::Numbers(v) => json!(v),
            Param::Bools(v) => json!(v),
            Param::Micros(v) => json!(v),
        }
    }
}

/// Parameters, numbered as they are added.
#[derive(Default)]
struct Params(Vec<Param>);

impl Params {
    fn add(&mut self, value: Param) -> String {
        self.0.push(value);
        format!("${}", self.0.len())
    }

    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.0.iter().map(Param::as_sql).collect()
    }
}

/// Any of `wanted` passes `test` (SQL with `{w}` for the wanted text).
fn any_text(wanted: &[String], test: &str, params: &mut Params) -> String {
    let tests: Vec<String> = wanted.iter().map(|w| test.replace("{w}", &params.add(Param::Text(w.clone())))).collect();
    format!("({})", tests.join(" OR "))
}

/// A condition as SQL on `value`: true, false or (no value) NULL, which the caller maps.
fn test_sql(condition: &Condition, value: &str, params: &mut Params) -> String {
    match condition {
        Condition::Set => format!("({value} IS NOT NULL)"),
        Condition::NotSet => format!("({value} IS NULL)"),
        Condition::Text { test, wanted, lowered } => {
            let lower = format!("lower({value})");
            match test {
                TextTest::Equals => format!("({value} = ANY({}::text[]))", params.add(Param::Texts(wanted.clone()))),
                TextTest::NotEquals => format!("(NOT {value} = ANY({}::text[]))", params.add(Param::Texts(wanted.clone()))),
                TextTest::Contains => any_text(lowered, &format!("strpos({lower}, {{w}}::text) > 0"), params),
                TextTest::NotContains => format!("(NOT {})", any_text(lowered, &format!("strpos({lower}, {{w}}::text) > 0"), params)),
                TextTest::StartsWith => any_text(lowered, &format!("starts_with({lower}, {{w}}::text)"), params),
                TextTest::EndsWith => any_text(lowered, &format!("right({lower}, char_length({{w}}::text)) = {{w}}::text"), params),
                TextTest::Gt => any_text(wanted, &format!("{value} COLLATE \"C\" > {{w}}::text"), params),
                TextTest::Gte => any_text(wanted, &format!("{value} COLLATE \"C\" >= {{w}}::text"), params),
                TextTest::Lt => any_text(wanted, &format!("{value} COLLATE \"C\" < {{w}}::text"), params),
                TextTest::Lte => any_text(wanted, &format!("{value} COLLATE \"C\" <= {{w}}::text"), params),
            }
        }
        Condition::Number { test, numbers } => {
            let first = numbers[0];
            match test {
                NumberTest::Equals => format!("({value} = ANY({}::float8[]))", params.add(Param::Numbers(numbers.clone()))),
                NumberTest::NotEquals => format!("(NOT {value} = ANY({}::float8[]))", params.add(Param::Numbers(numbers.clone()))),
                NumberTest::Gt => format!("({value} > {}::float8)", params.add(Param::Number(first))),
                NumberTest::Gte => format!("({value} >= {}::float8)", params.add(Param::Number(first))),
                NumberTest::Lt => format!("({value} < {}::float8)", params.add(Param::Number(first))),
                NumberTest::Lte => format!("({value} <= {}::float8)", params.add(Param::Number(first))),
            }
        }
        Condition::Bool { negate, wanted } => format!("(({value} = ANY({}::bool[])) <> {negate})", params.add(Param::Bools(wanted.clone()))),
        Condition::Time { from, to, negate } => {
            format!("(({value} >= {}::bigint AND {value} < {}::bigint) <> {negate})", params.add(Param::Micros(*from)), params.add(Param::Micros(*to)))
        }
    }
}

/// What one measure reads, as five SQL columns: values, sum, min, max, distinct values.
fn measure_sql(agg: AggFunction, value: Option<(String, Kind)>) -> [String; 5] {
    let none = || ["0::bigint".to_string(), "NULL::float8".to_string(), "NULL::float8".to_string(), "NULL::float8".to_string(), "0::bigint".to_string()];
    let Some((value, kind)) = value else { return none() };
    match agg {
        AggFunction::Count => {
            let mut out = none();
            out[0] = format!("count({value})");
            out
        }
        AggFunction::CountDistinct => {
            let mut out = none();
            out[4] = format!("count(DISTINCT {value})");
            out
        }
        // Sums and the like read numbers only.
        _ if kind == Kind::Number => [format!("count({value})"), format!("sum({value})"), format!("min({value})"), format!("max({value})"), "0::bigint".into()],
        _ => none(),
    }
}

/// The SQL of a plan on `table`, and its parameters.
fn statement(plan: &Plan, table: &str, kind_of: &dyn Fn(&str) -> Kind) -> (String, Params) {
    let mut params = Params::default();
    let mut select: Vec<String> = plan
        .groups
        .iter()
        .map(|g| {
            let kind = kind_of(&g.field);
            let value = value_sql(&g.field, kind);
            match g.granularity {
                Some(granularity) if kind == Kind::Time => bucket_sql(&value, granularity),
                _ => value,
            }
        })
        .collect();
    select.push("count(*)".into());
    for (_, measure) in &plan.measures {
        let value = measure.field.as_deref().map(|f| (value_sql(f, kind_of(f)), kind_of(f)));
        select.extend(measure_sql(measure.agg, value));
    }
    let conditions: Vec<String> = plan
        .conditions
        .iter()
        .map(|(field, condition)| format!("coalesce({}, {})", test_sql(condition, &value_sql(field, kind_of(field)), &mut params), condition.null_passes()))
        .collect();
    let mut sql = format!("SELECT {} FROM {table} t", select.join(", "));
    if !conditions.is_empty() {
        sql.push_str(&format!(" WHERE {}", conditions.join(" AND ")));
    }
    if !plan.groups.is_empty() {
        let by: Vec<String> = (1..=plan.groups.len()).map(|i| i.to_string()).collect();
        sql.push_str(&format!(" GROUP BY {}", by.join(", ")));
    }
    (sql, params)
}

/// A group's key and its summaries from a result row.
fn group_of(row: &Row, plan: &Plan, kind_of: &dyn Fn(&str) -> Kind) -> Result<(Vec<KeyValue>, Vec<Summary>), tokio_postgres::Error> {
    let mut key = Vec::with_capacity(plan.groups.len());
    for (i, group) in plan.groups.iter().enumerate() {
        let part = match kind_of(&group.field) {
            Kind::Text => row.try_get::<_, Option<String>>(i)?.map(KeyValue::Text),
            Kind::Number => row.try_get::<_, Option<f64>>(i)?.map(KeyValue::Number),
            Kind::Bool => row.try_get::<_, Option<bool>>(i)?.map(KeyValue::Bool),
            Kind::Time => row.try_get::<_, Option<i64>>(i)?.map(KeyValue::Time),
        };
        key.push(part.unwrap_or(KeyValue::Null));
    }
    let at = plan.groups.len();
    let rows: i64 = row.try_get(at)?;
    let mut summaries = Vec::with_capacity(plan.measures.len());
    for m in 0..plan.measures.len() {
        let c = at + 1 + m * 5;
        summaries.push(Summary {
            rows: rows as u64,
            n: row.try_get::<_, i64>(c)? as u64,
            sum: row.try_get::<_, Option<f64>>(c + 1)?.unwrap_or(0.0),
            min: row.try_get(c + 2)?,
            max: row.try_get(c + 3)?,
            distinct: row.try_get::<_, i64>(c + 4)? as u64,
        });
    }
    Ok((key, summaries))
}

/// An object's table as the statement names it (`"obj_…"`; [`table`] gives
/// only names that need no escaping).
fn quoted_table(object: &str) -> String {
    format!("\"{}\"", table(object))
}

/// The rows of an object's table (none when it has no table).
pub async fn rows(pool: &Pool, object: &str) -> Result<usize, ReadError> {
    let client = pool.get().await.map_err(ReadError::store)?;
    let exists: bool = client.query_one("SELECT to_regclass($1) IS NOT NULL", &[&quoted_table(object)]).await.map_err(ReadError::store)?.get(0);
    if !exists {
        return Ok(0);
    }
    let count: i64 = client.query_one(&format!("SELECT count(*) FROM {}", quoted_table(object)), &[]).await.map_err(ReadError::store)?.get(0);
    Ok(count as usize)
}

/// The analysed fields of the cube's object and their kinds (the id a text,
/// whatever a field of that name is declared as, as the id column is).
fn kinds(catalog: &Catalog, cube: &Cube) -> impl Fn(&str) -> Option<Kind> {
    let fields = catalog.get(&cube.object).map(|object| analysed_fields(object)).unwrap_or_default();
    move |field: &str| if field == "id" { Some(Kind::Text) } else { fields.iter().find(|(f, _)| f == field).map(|(_, k)| *k) }
}

/// The query resolved on the cube, as the columnar model resolves it.
fn resolve<'c>(cube: &'c Cube, query: &AnalyticsQuery, kind: &dyn Fn(&str) -> Option<Kind>, now: Timestamp) -> Result<Plan<'c>, DomainError> {
    let refuse = |field: &str| DomainError::InvalidQuery(format!("field '{field}' of '{}' is not analysed", cube.object));
    plan(cube, query, |field| kind(field).ok_or_else(|| refuse(field)), now)
}

/// The statement a query is on PostgreSQL, and its parameters (`/analytics/sql`, `/explain`).
pub fn sql(catalog: &Catalog, cube: &Cube, query: &AnalyticsQuery, now: Timestamp) -> Result<(String, Vec<Json>), DomainError> {
    let kind = kinds(catalog, cube);
    let plan = resolve(cube, query, &kind, now)?;
    let (sql, params) = statement(&plan, &quoted_table(&cube.object), &|field| kind(field).unwrap_or(Kind::Text));
    Ok((sql, params.0.iter().map(Param::to_json).collect()))
}

/// Runs a query on a cube over the query model's tables, as the columnar
/// model would answer it.
pub async fn run(pool: &Pool, catalog: &Catalog, cube: &Cube, query: &AnalyticsQuery, now: Timestamp) -> Result<AnalyticsResult, ReadError> {
    let kind = kinds(catalog, cube);
    let plan = resolve(cube, query, &kind, now)?;
    let kind_of = |field: &str| kind(field).unwrap_or(Kind::Text);
    if catalog.get(&cube.object).is_none() {
        // No object, no rows (the plan named no field, or it was refused).
        let summaries = vec![Summary::default(); plan.measures.len()];
        let groups = if plan.groups.is_empty() { vec![(Vec::new(), summaries)] } else { Vec::new() };
        return Ok(finish(&plan, groups, query)?);
    }
    let (sql, params) = statement(&plan, &quoted_table(&cube.object), &kind_of);
    let mut client = pool.get().await.map_err(ReadError::store)?;
    let tx = client.build_transaction().read_only(true).start().await.map_err(ReadError::store)?;
    // Dates and datetimes are read, and months bucketed, in UTC.
    tx.batch_execute("SET LOCAL TimeZone = 'UTC'").await.map_err(ReadError::store)?;
    let rows = tx.query(&sql, &params.refs()).await.map_err(ReadError::store)?;
    tx.commit().await.map_err(ReadError::store)?;
    let groups = rows.iter().map(|row| group_of(row, &plan, &kind_of)).collect::<Result<Vec<_>, _>>().map_err(ReadError::store)?;
    Ok(finish(&plan, groups, query)?)
}
