//! Analytics (IAnalyticsService): Cube.js-style queries answered from the
//! columnar analytics model in process, or by SQL on the PostgreSQL query
//! model's tables (`projections::AnalyticsReader`); cube metadata; the SQL a
//! query is on PostgreSQL (`/sql`: the statement the PostgreSQL store runs;
//! a dry run on the embedded store) and how it is answered. A caller must read the cube's object,
//! every row of it (row rules are not compiled into cubes), and every field a
//! query names.

use domain::ErrorCode;
use projections::analytics::{parse_query, pg, AnalyticsQuery, AnalyticsResult, Cube};
use serde_json::{json, Value as Json};

use super::barrier::barrier_on;
use super::caller::Caller;
use crate::app::System;
use crate::error::ApiError;

fn cube_of(system: &System, name: &str) -> Result<Cube, ApiError> {
    let cubes = system.analytics_reader.cubes(&system.reader.catalog(), &system.cubes);
    let known: Vec<String> = cubes.iter().map(|c| c.name.clone()).collect();
    cubes
        .into_iter()
        .find(|c| c.name == name)
        .ok_or_else(|| ApiError::new(ErrorCode::ObjectNotFound, format!("no cube '{name}' (known: {})", known.join(", "))))
}

/// Analytics reads whole columns: the caller must read the cube's object,
/// every row of it (row rules are not compiled into cubes yet), and every
/// field the query names as a measure, dimension or filter.
fn allowed(system: &System, caller: &Caller, cube: &Cube, query: &AnalyticsQuery) -> Result<(), ApiError> {
    let catalog = system.reader.catalog();
    let Some(definition) = catalog.get(&cube.object) else { return Ok(()) };
    let grant = caller.access().grant(&catalog, definition);
    if !grant.permission.can_read() {
        return Err(ApiError::new(ErrorCode::PermissionDenied, format!("you may not read {}", cube.object)));
    }
    if grant.read_rows.is_some() {
        return Err(ApiError::new(
            ErrorCode::PermissionDenied,
            format!("analytics over {} needs access to all of its records (view all records)", cube.object),
        ));
    }
    let members = query
        .measures
        .iter()
        .chain(query.dimensions.iter())
        .chain(query.filters.iter().map(|f| &f.member))
        .chain(query.time_dimensions.iter().map(|t| &t.dimension))
        .chain(query.order.iter().map(|(m, _)| m));
    for member in members {
        let name = member.rsplit('.').next().unwrap_or(member);
        // A generated member is the field itself or `<field>_<measure>`.
        if let Some(hidden) = grant.hidden.iter().find(|h| name == h.as_str() || name.strip_prefix(h.as_str()).is_some_and(|rest| rest.starts_with('_'))) {
            return Err(ApiError::new(ErrorCode::FieldNotAccessible, format!("field '{hidden}' of {} is not accessible", cube.object)));
        }
    }
    Ok(())
}

/// The cube and the query a body asks for, once the caller may run it.
pub async fn prepare(system: &System, caller: &Caller, body: &Json) -> Result<(Cube, AnalyticsQuery), ApiError> {
    barrier_on(system, &system.analytics, None).await?;
    let query = parse_query(body)?;
    let cube = cube_of(system, &query.cube)?;
    allowed(system, caller, &cube, &query)?;
    Ok((cube, query))
}

/// Runs a query: the result and the SQL it would be on PostgreSQL.
pub async fn run(system: &System, caller: &Caller, body: &Json) -> Result<(AnalyticsResult, String), ApiError> {
    let (cube, query) = prepare(system, caller, body).await?;
    let now = commands::clock::now();
    let result = system.analytics_reader.run(&system.reader.catalog(), &cube, &query, now).await?;
    let (sql, _) = pg::sql(&system.reader.catalog(), &cube, &query, now)?;
    Ok((result, sql))
}

fn readable(catalog: &domain::metadata::Catalog, caller: &Caller, object: &str) -> bool {
    catalog.get(object).is_some_and(|d| caller.access().grant(catalog, d).permission.can_read())
}

/// The cubes over objects the caller may read: `{cubes}`.
pub async fn cubes(system: &System, caller: &Caller) -> Result<Json, ApiError> {
    barrier_on(system, &system.analytics, None).await?;
    let catalog = system.reader.catalog();
    let cubes: Vec<Json> =
        system.analytics_reader.cubes(&catalog, &system.cubes).iter().filter(|c| readable(&catalog, caller, &c.object)).map(Cube::meta).collect();
    Ok(json!({"cubes": cubes}))
}

/// One cube's metadata.
pub async fn cube(system: &System, caller: &Caller, name: &str) -> Result<Json, ApiError> {
    barrier_on(system, &system.analytics, None).await?;
    let cube = cube_of(system, name)?;
    if !readable(&system.reader.catalog(), caller, &cube.object) {
        return Err(ApiError::new(ErrorCode::PermissionDenied, format!("you may not read {}", cube.object)));
    }
    Ok(cube.meta())
}

/// `{sql, params}`: the query as SQL on the PostgreSQL read model (a dry run).
pub async fn to_sql(system: &System, caller: &Caller, body: &Json) -> Result<Json, ApiError> {
    let (cube, query) = prepare(system, caller, body).await?;
    let (sql, params) = pg::sql(&system.reader.catalog(), &cube, &query, commands::clock::now())?;
    Ok(json!({"sql": sql, "params": params}))
}

/// How a query is answered.
pub async fn explain(system: &System, caller: &Caller, body: &Json) -> Result<Json, ApiError> {
    let (cube, query) = prepare(system, caller, body).await?;
    let (sql, params) = pg::sql(&system.reader.catalog(), &cube, &query, commands::clock::now())?;
    let rows = system.analytics_reader.rows_of(&cube.object).await?;
    let counts =
        format!("{} filter(s), {} time dimension(s), grouping by {} dimension(s)", query.filters.len(), query.time_dimensions.len(), query.dimensions.len());
    let (source, pass) = match system.analytics_reader {
        projections::AnalyticsReader::Memory(_) => {
            (format!("cube '{}' reads object '{}' from the columnar analytics model ({rows} live rows)", cube.name, cube.object), format!("one pass: {counts}"))
        }
        projections::AnalyticsReader::Postgres(_) => (
            format!("cube '{}' reads object '{}' by SQL on the PostgreSQL query model's table ({rows} live rows)", cube.name, cube.object),
            format!("PostgreSQL filters, groups and accumulates: {counts}"),
        ),
    };
    let plan = vec![source, pass, format!("measures accumulated per group: {}", query.measures.join(", ")), "then ordered, offset and limited".to_string()];
    Ok(json!({"cube": cube.name, "object": cube.object, "rows": rows, "plan": plan, "sql": sql, "params": params}))
}
