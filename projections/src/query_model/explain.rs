//! Explaining a query on the in-process model: which conditions the indexes
//! answer and how many rows each may hold, whether the filter is answered
//! exactly (no row checked), how many rows were checked, and how the page was
//! found. The query runs as the caller's (row rules included), so the
//! explanation is of what actually runs.

use domain::query::{Condition, Filter, Operand, Query};
use serde_json::{json, Value as Json};

use super::plan::{self, Candidates};
use super::table::Table;
use super::{page, QueryOutput};

/// A condition as text: `estimate Gt 50`.
fn text(c: &Condition) -> String {
    let operand = match &c.value {
        Operand::Value(v) => v.to_json().to_string(),
        Operand::Field(other) => format!("the field {other}"),
    };
    format!("{} {:?} {operand}", c.field, c.op)
}

/// The filter's tree, each condition with how it is answered.
fn describe(table: &Table, filter: &Filter) -> Json {
    match filter {
        Filter::Cond(c) => match plan::condition_plan(table, c) {
            Some((rows, how)) => json!({"condition": text(c), "by": how, "rowsAtMost": rows}),
            None => json!({"condition": text(c), "by": "a check of each candidate row"}),
        },
        Filter::And(parts) => json!({"and": parts.iter().map(|p| describe(table, p)).collect::<Vec<_>>()}),
        Filter::Or(parts) => json!({"or": parts.iter().map(|p| describe(table, p)).collect::<Vec<_>>()}),
        Filter::Not(inner) => json!({"not": describe(table, inner), "by": "a check of each candidate row"}),
    }
}

/// The explanation of a query already checked and secured, with its answer's total.
pub(super) fn explain(table: &Table, query: &Query, candidates: &Candidates, output: &QueryOutput) -> Json {
    let limit = query.limit.unwrap_or(super::DEFAULT_LIMIT);
    let wanted = query.offset.saturating_add(limit);
    let plain = query.group_by.is_empty() && query.aggregations.is_empty();
    let found = match query.order_by.as_slice() {
        _ if !plain || !candidates.exact => None,
        [] => Some(page::by_id(table, candidates, wanted).how),
        [sort] => page::by_field(table, candidates, &sort.field, sort.order, query.filter.as_ref(), wanted).map(|p| p.how),
        _ => None,
    };
    let how = match found {
        Some(how) => how,
        None if !plain => "the matches grouped and aggregated",
        None if query.order_by.is_empty() => "the matches gathered and the first ones by id selected",
        None => "the matches sorted, only as far as the page",
    };
    let considered = candidates.len(table);
    json!({
        "model": "in-process",
        "object": query.object,
        "rows": table.row_count(),
        "filter": query.filter.as_ref().map(|f| describe(table, f)),
        "answeredByIndexes": candidates.exact,
        "candidates": considered,
        "rowsChecked": if candidates.exact { 0 } else { considered },
        "page": how,
        "total": output.total,
        "returned": output.records.len(),
    })
}
