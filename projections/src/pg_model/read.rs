//! Answering queries from the PostgreSQL read model.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use deadpool_postgres::Pool;
use domain::metadata::{Catalog, ObjectDef};
use domain::query::{check_query, AggFunction, Aggregation, Query, SortOrder};
use domain::value::{Record, Value};
use domain::DomainError;
use serde_json::json;

use super::sql::{self, Kind, Params};
use super::table;
use crate::query_model::aggregate::finish;
use crate::query_model::{ids_of, mask_output, page, select, QueryOutput, Viewer, DEFAULT_LIMIT};
use crate::reader::ReadError;
use domain::security::secure_query;

#[derive(Clone)]
pub struct PgReader {
    pool: Pool,
    catalog: Arc<RwLock<Catalog>>,
}

fn parse_record(text: &str) -> Result<Record, ReadError> {
    let json: serde_json::Value = serde_json::from_str(text).map_err(ReadError::store)?;
    match domain::value::Value::from_json(&json) {
        Value::Map(map) => Ok(map),
        _ => Err(ReadError::store("a stored row is not an object")),
    }
}

/// Formula fields are computed on read, from the row itself.
fn with_formulas(object: &ObjectDef, record: Record) -> Record {
    domain::formula::with_formula_fields(object, &record, commands::clock::now())
}

impl PgReader {
    /// The pool the model is read through (its schema is the live model's).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub(crate) fn new(pool: Pool, catalog: Arc<RwLock<Catalog>>) -> Self {
        PgReader { pool, catalog }
    }

    pub fn catalog(&self) -> Catalog {
        self.catalog.read().expect("catalog lock").clone()
    }

    pub async fn get(&self, viewer: &Viewer, object: &str, id: &str) -> Result<Option<Record>, ReadError> {
        let definition = self.catalog().require(object)?.clone();
        if !viewer.access.is_system() {
            return Ok(self.execute(viewer, Query::by_id(&definition.name, id)).await?.records.into_iter().next().map(std::sync::Arc::unwrap_or_clone));
        }
        let client = self.pool.get().await.map_err(ReadError::store)?;
        let sql = format!("SELECT data::text FROM {} WHERE id = $1", table(&definition.name));
        let row = client.query_opt(&sql, &[&id]).await.map_err(ReadError::store)?;
        row.map(|r| parse_record(r.get(0)).map(|rec| with_formulas(&definition, rec))).transpose()
    }

    /// Runs a query secured for the viewer (row rules in the SQL, hidden fields masked).
    pub async fn execute(&self, viewer: &Viewer, mut query: Query) -> Result<QueryOutput, ReadError> {
        let catalog = self.catalog();
        check_query(&mut query, &catalog)?;
        let mask = secure_query(&viewer.access, &catalog, &mut query)?;
        let mut output = self.run(&catalog, query).await?;
        mask_output(&mask, &mut output);
        Ok(output)
    }

    async fn run(&self, catalog: &Catalog, query: Query) -> Result<QueryOutput, ReadError> {
        let object = catalog.require(&query.object)?.clone();
        if !query.group_by.is_empty() || !query.aggregations.is_empty() {
            let mut params = Params::default();
            let where_sql = match &query.filter {
                Some(f) => sql::filter(catalog, &object, f, &mut params)?,
                None => "TRUE".into(),
            };
            return self.aggregate(catalog, &object, &query, where_sql, params).await;
        }
        let List { page_sql, count_sql, params } = list_sql(catalog, &object, &query)?;
        let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
        let client = self.pool.get().await.map_err(ReadError::store)?;
        let refs = params.refs();
        let rows = client.query(&page_sql, &refs).await.map_err(ReadError::store)?;
        let has_more_rows = rows.len() as u64 > limit;
        let mut records: Vec<Record> =
            rows.iter().take(limit as usize).map(|r| parse_record(r.get(0)).map(|rec| with_formulas(&object, rec))).collect::<Result<_, _>>()?;
        let total = if query.count { Some(client.query_one(&count_sql, &refs).await.map_err(ReadError::store)?.get::<_, i64>(0) as u64) } else { None };
        drop(client);
        for (relation, sub) in &query.expand {
            self.expand(catalog, relation, sub, &mut records).await?;
        }
        if let Some(fields) = &query.fields {
            for record in records.iter_mut() {
                select(record, fields, query.expand.keys());
            }
        }
        Ok(QueryOutput { records: records.into_iter().map(std::sync::Arc::new).collect(), total, has_more: has_more_rows })
    }

    /// How PostgreSQL runs a list for the viewer (its row rules included):
    /// the SQL (values as parameters) and `EXPLAIN (ANALYZE, BUFFERS)` of the
    /// page and of the count, which run.
    pub async fn explain(&self, viewer: &Viewer, mut query: Query) -> Result<serde_json::Value, ReadError> {
        let catalog = self.catalog();
        check_query(&mut query, &catalog)?;
        secure_query(&viewer.access, &catalog, &mut query)?;
        if !query.group_by.is_empty() || !query.aggregations.is_empty() {
            return Err(DomainError::InvalidQuery("explain covers lists; aggregates are not explained on the PostgreSQL read model".into()).into());
        }
        let object = catalog.require(&query.object)?.clone();
        let List { page_sql, count_sql, params } = list_sql(&catalog, &object, &query)?;
        let client = self.pool.get().await.map_err(ReadError::store)?;
        let refs = params.refs();
        let mut plans = Vec::new();
        for sql in [&page_sql, &count_sql] {
            let row = client.query_one(&format!("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}"), &refs).await.map_err(ReadError::store)?;
            let plan: serde_json::Value = row.try_get(0).map_err(ReadError::store)?;
            plans.push(json!({"sql": sql, "plan": plan}));
        }
        let [page, count]: [serde_json::Value; 2] = plans.try_into().expect("two plans");
        Ok(json!({"model": "postgres", "object": object.name, "page": page, "count": count}))
    }

    /// One look-up per relation for the whole page.
    async fn expand(&self, catalog: &Catalog, relation: &str, sub: &Query, records: &mut [Record]) -> Result<(), ReadError> {
        let target = catalog.require(&sub.object)?.clone();
        let mut ids: Vec<String> = records.iter().flat_map(|r| ids_of(r.get(relation))).collect();
        ids.sort();
        ids.dedup();
        if ids.is_empty() {
            return Ok(());
        }
        let client = self.pool.get().await.map_err(ReadError::store)?;
        // The sub-query's filter holds the viewer's row rules on the target: a related record they hide is null.
        let mut params = Params::default();
        let id_list: Vec<String> = ids.iter().map(|id| params.text(id.clone())).collect();
        let visible = match &sub.filter {
            Some(f) => sql::filter(catalog, &target, f, &mut params)?,
            None => "TRUE".into(),
        };
        let sql = format!("SELECT t.id, t.data::text, ({visible}) FROM {} t WHERE t.id IN ({})", table(&target.name), id_list.join(", "));
        let mut related: HashMap<String, Record> = HashMap::new();
        let mut hidden: std::collections::HashSet<String> = Default::default();
        for row in client.query(&sql, &params.refs()).await.map_err(ReadError::store)? {
            if !row.get::<_, bool>(2) {
                hidden.insert(row.get(0));
                continue;
            }
            let mut record = with_formulas(&target, parse_record(row.get(1))?);
            if let Some(fields) = &sub.fields {
                select(&mut record, fields, sub.expand.keys());
            }
            related.insert(row.get(0), record);
        }
        for record in records.iter_mut() {
            let replaced = match record.get(relation) {
                Some(Value::Text(id)) if hidden.contains(id) => Some(Value::Null),
                Some(Value::Text(id)) => related.get(id).cloned().map(Value::Map),
                Some(Value::List(items)) => {
                    Some(Value::List(items.iter().filter_map(Value::as_str).filter_map(|id| related.get(id).cloned().map(Value::Map)).collect()))
                }
                _ => None,
            };
            if let Some(value) = replaced {
                record.insert(relation.to_string(), value);
            }
        }
        Ok(())
    }

    async fn aggregate(&self, catalog: &Catalog, object: &ObjectDef, query: &Query, where_sql: String, mut params: Params) -> Result<QueryOutput, ReadError> {
        let mut columns = Vec::new();
        let mut group_terms = Vec::new();
        for field in &query.group_by {
            let e = sql::path(catalog, object, field, "t", 0)?;
            columns.push(format!("({})::text", e.json));
            group_terms.push(e.json.clone());
        }
        for aggregation in &query.aggregations {
            columns.push(aggregate_sql(catalog, object, aggregation, &mut params)?);
        }
        let mut sql = format!("SELECT {} FROM {} t WHERE {where_sql}", columns.join(", "), table(&object.name));
        if !group_terms.is_empty() {
            sql.push_str(&format!(" GROUP BY {}", group_terms.join(", ")));
            let order: Vec<String> = group_terms.iter().map(|g| format!("({g})::text COLLATE \"C\"")).collect();
            sql.push_str(&format!(" ORDER BY {}", order.join(", ")));
        }
        let client = self.pool.get().await.map_err(ReadError::store)?;
        let rows = client.query(&sql, &params.refs()).await.map_err(ReadError::store)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut record = Record::new();
            let names = query.group_by.iter().chain(query.aggregations.iter().map(|a| &a.alias));
            for (i, name) in names.enumerate() {
                let text: Option<String> = row.get(i);
                let value = match text {
                    Some(t) => Value::from_json(&serde_json::from_str(&t).map_err(ReadError::store)?),
                    None => Value::Null,
                };
                record.insert(name.clone(), normalise_number(value));
            }
            for aggregation in &query.aggregations {
                let value = record.get(&aggregation.alias).cloned().unwrap_or_default();
                let fixed = match (aggregation.function, value) {
                    (AggFunction::Sum, Value::Null) => Value::Int(0),
                    (AggFunction::ArrayAgg, Value::Null) => Value::List(Vec::new()),
                    (AggFunction::StringAgg, Value::Null) => Value::Text(String::new()),
                    (AggFunction::Avg, Value::Int(i)) => Value::Float(i as f64),
                    (_, v) => v,
                };
                record.insert(aggregation.alias.clone(), fixed);
            }
            out.push(record);
        }
        let rows = finish(out, query)?;
        Ok(page(rows, query))
    }
}

/// The column of an aggregation, as JSON text.
/// Numbers from `numeric` come back as JSON numbers; whole ones become integers.
fn normalise_number(value: Value) -> Value {
    match value {
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9e15 => Value::Int(f as i64),
        other => other,
    }
}

fn aggregate_sql(catalog: &Catalog, object: &ObjectDef, aggregation: &Aggregation, params: &mut Params) -> Result<String, ReadError> {
    let filter = match &aggregation.filter {
        Some(f) => Some(sql::filter(catalog, object, f, params)?),
        None => None,
    };
    let distinct = if aggregation.distinct { "DISTINCT " } else { "" };
    let e = match &aggregation.field {
        Some(field) => Some(sql::path(catalog, object, field, "t", 0)?),
        None => None,
    };
    let with_filter = |sql: String, extra: Option<String>| {
        let conditions: Vec<String> = filter.iter().cloned().chain(extra).collect();
        if conditions.is_empty() {
            sql
        } else {
            format!("{sql} FILTER (WHERE {})", conditions.join(" AND "))
        }
    };
    let sql = match (aggregation.function, &e) {
        (AggFunction::Count, None) => with_filter("count(*)".into(), None),
        (AggFunction::Count, Some(e)) => with_filter(format!("count({distinct}{})", e.json), None),
        (AggFunction::CountDistinct, Some(e)) => with_filter(format!("count(DISTINCT {})", e.json), None),
        (AggFunction::Sum, Some(e)) => with_filter(format!("sum({distinct}{})", e.typed), None),
        // sum as float8 over the count: the same arithmetic as the in-process model.
        (AggFunction::Avg, Some(e)) => {
            let sum = with_filter(format!("sum({distinct}{})::float8", e.typed), None);
            let count = with_filter(format!("count({distinct}{})", e.typed), None);
            // float8 as text keeps every digit (jsonb would round it through numeric).
            return Ok(format!("(({sum} / nullif({count}, 0)))::text"));
        }
        (AggFunction::Min | AggFunction::Max, Some(e)) => {
            let name = if aggregation.function == AggFunction::Min { "min" } else { "max" };
            match e.kind {
                Kind::Number => with_filter(format!("{name}({})", e.typed), None),
                Kind::Bool => with_filter(format!("{}({})", if name == "min" { "bool_and" } else { "bool_or" }, e.typed), None),
                Kind::Text => with_filter(format!("{name}({} COLLATE \"C\")", e.text), None),
                Kind::Json => with_filter(format!("{name}({})", e.json), None),
            }
        }
        (AggFunction::ArrayAgg, Some(e)) => with_filter(format!("jsonb_agg({} ORDER BY t.id COLLATE \"C\")", e.json), Some(format!("{} IS NOT NULL", e.json))),
        (AggFunction::StringAgg, Some(e)) => with_filter(format!("string_agg({}, ',' ORDER BY t.id COLLATE \"C\")", e.text), None),
        (_, None) => return Err(ReadError::Rejected(domain::DomainError::InvalidQuery(format!("aggregation '{}' needs a field", aggregation.alias)))),
    };
    Ok(format!("(to_jsonb({sql}))::text"))
}

/// A list's statements: the page (one row more than the limit, to tell
/// whether more follow) and the count, with their parameters.
struct List {
    page_sql: String,
    count_sql: String,
    params: Params,
}

fn list_sql(catalog: &Catalog, object: &ObjectDef, query: &Query) -> Result<List, DomainError> {
    let mut params = Params::default();
    let where_sql = match &query.filter {
        Some(f) => sql::filter(catalog, object, f, &mut params)?,
        None => "TRUE".into(),
    };
    let mut order = Vec::new();
    for sort in &query.order_by {
        let e = sql::path(catalog, object, &sort.field, "t", 0)?;
        order.extend(sql::order_terms(&e, sort.order == SortOrder::Desc));
    }
    order.push("t.id COLLATE \"C\"".into());
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    let table = table(&object.name);
    let page_sql = format!("SELECT t.data::text FROM {table} t WHERE {where_sql} ORDER BY {} LIMIT {} OFFSET {}", order.join(", "), limit + 1, query.offset);
    let count_sql = format!("SELECT count(*) FROM {table} t WHERE {where_sql}");
    Ok(List { page_sql, count_sql, params })
}
