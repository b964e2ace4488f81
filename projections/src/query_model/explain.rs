//! Explaining a query on the in-process model: which conditions the indexes
//! answer and how many rows each may hold, whether the filter is answered
//! exactly (no row checked), how many rows were checked, and how the page was
//! found. The query runs as the caller's (row rules included), so the
//! explanation is of what actually runs.

use domain::query::{Condition, Filter, Operand, Query};
use serde_json::{json, Value as Json};

use super::plan;
use super::table::Table;
use super::QueryOutput;

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

/// How a query found its rows, as [`super::QueryModel`] ran it.
pub(super) struct Trace {
    /// The indexes answered the whole filter (no row checked).
    pub exact: bool,
    /// Rows the indexes left to consider.
    pub candidates: u64,
    pub how: &'static str,
}

/// The explanation of a query that ran, with its answer.
pub(super) fn explain(table: &Table, query: &Query, trace: &Trace, output: &QueryOutput) -> Json {
    json!({
        "model": "in-process",
        "object": query.object,
        "rows": table.row_count(),
        "filter": query.filter.as_ref().map(|f| describe(table, f)),
        "answeredByIndexes": trace.exact,
        "candidates": trace.candidates,
        "rowsChecked": if trace.exact { 0 } else { trace.candidates },
        "page": trace.how,
        "total": output.total,
        "returned": output.records.len(),
    })
}
