//! What a GraphQL request may ask for, checked on its document before it
//! runs: how many rows its lists may return, counted through nesting and
//! aliases (a list inside a list of 100 asks for 100 times its limit), and
//! how many fields it selects. The depth and complexity limits of the
//! schema count fields, not rows: 200 aliases of a list with `limit: 10000`
//! passed them and built a 70 MB answer. An extension of every generated
//! schema, so queries, mutations and subscriptions on either transport pass it.
//!
//! Rows are not bytes: 50,000 rows of large records still make a huge answer.
//! So every request also gets a [`ResponseBudget`] (the extension puts a fresh
//! one in each request's data, HTTP and WebSocket alike): every leaf value a
//! field resolves is charged its JSON size and its name's, and past
//! [`MAX_RESPONSE_BYTES`] the leaf that crossed it fails with
//! `max_records_exceeded` and every later one resolves to null, so memory
//! stops growing with the answer. The whole answer is then that one error
//! (over HTTP, and on the socket). Subscriptions' events are not charged
//! (each is one change).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, ServerError, ServerResult, Variables};
use async_graphql_value::{ConstValue, Value};

/// Rows one request may ask for, all lists together (five lists at the largest page).
pub const MAX_ROWS: u64 = 50_000;
/// Fields one request may select, aliases and fragment uses counted each time.
pub const MAX_FIELDS: u64 = 2_000;
/// Rows a list is counted for when it names no limit (the query models' default page).
const DEFAULT_ROWS: u64 = 100;
/// Bytes of values (and their fields' names) one answer may hold.
pub const MAX_RESPONSE_BYTES: u64 = 32 * 1024 * 1024;

/// What one request's answer has taken so far.
#[derive(Default)]
pub struct ResponseBudget {
    used: AtomicU64,
    exceeded: AtomicBool,
}

/// What charging a leaf says.
pub enum Charge {
    /// Within the budget: resolve the value.
    Fits,
    /// This leaf crossed the budget: fail it with the reason.
    Crossed,
    /// The budget was crossed before: resolve to null.
    Over,
}

impl ResponseBudget {
    /// Charges a field's value against `limit` bytes ([`MAX_RESPONSE_BYTES`]).
    pub fn charge(&self, name: &str, value: &async_graphql::Value, limit: u64) -> Charge {
        if self.exceeded.load(Ordering::Relaxed) {
            return Charge::Over;
        }
        let bytes = name.len() as u64 + 4 + json_size(value);
        if self.used.fetch_add(bytes, Ordering::Relaxed) + bytes <= limit {
            return Charge::Fits;
        }
        match self.exceeded.swap(true, Ordering::Relaxed) {
            false => Charge::Crossed,
            true => Charge::Over,
        }
    }
}

/// The message of the error the crossing leaf fails with.
pub fn too_large() -> String {
    format!("the answer would be larger than {} MiB: ask for fewer rows or fields", MAX_RESPONSE_BYTES / (1024 * 1024))
}

/// About the bytes a value takes in JSON (strings counted by their length, not their escapes).
fn json_size(value: &async_graphql::Value) -> u64 {
    use async_graphql::Value as V;
    match value {
        V::Null => 4,
        V::Boolean(_) => 5,
        V::Number(_) => 8,
        V::String(s) => s.len() as u64 + 2,
        V::Enum(name) => name.len() as u64 + 2,
        V::Binary(bytes) => bytes.len() as u64 * 4 / 3 + 2,
        V::List(items) => 2 + items.iter().map(|v| json_size(v) + 1).sum::<u64>(),
        V::Object(map) => 2 + map.iter().map(|(k, v)| k.len() as u64 + 4 + json_size(v)).sum::<u64>(),
    }
}

/// Fields that return pages of rows: the ones that take a page size.
fn page_size(field: &async_graphql::parser::types::Field, variables: &Variables) -> Option<u64> {
    let name = field.name.node.as_str();
    let listing = name.ends_with("List") || name.ends_with("Aggregate") || matches!(name, "audit" | "search");
    let argument = field.arguments.iter().find(|(n, _)| matches!(n.node.as_str(), "limit" | "first")).map(|(_, v)| &v.node);
    let value = match argument {
        Some(Value::Variable(variable)) => variables.get(variable).and_then(|v| match v {
            ConstValue::Number(n) => n.as_u64(),
            _ => None,
        }),
        Some(Value::Number(n)) => n.as_u64(),
        _ => None,
    };
    match (value, listing || argument.is_some()) {
        (Some(rows), _) => Some(rows.max(1)),
        (None, true) => Some(DEFAULT_ROWS),
        (None, false) => None,
    }
}

#[derive(Default)]
struct Tally {
    rows: u64,
    fields: u64,
}

fn walk(set: &SelectionSet, document: &ExecutableDocument, variables: &Variables, factor: u64, depth: usize, tally: &mut Tally) -> Result<(), String> {
    if depth > 64 {
        return Err("the query nests fragments too deeply".into());
    }
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => {
                tally.fields += 1;
                let inner = match page_size(&field.node, variables) {
                    Some(rows) => {
                        let rows = factor.saturating_mul(rows);
                        tally.rows = tally.rows.saturating_add(rows);
                        rows
                    }
                    None => factor,
                };
                walk(&field.node.selection_set.node, document, variables, inner, depth + 1, tally)?;
            }
            Selection::InlineFragment(fragment) => walk(&fragment.node.selection_set.node, document, variables, factor, depth + 1, tally)?,
            Selection::FragmentSpread(spread) => {
                let name: &Name = &spread.node.fragment_name.node;
                if let Some(fragment) = document.fragments.get(name) {
                    walk(&fragment.node.selection_set.node, document, variables, factor, depth + 1, tally)?;
                }
            }
        }
        if tally.rows > MAX_ROWS {
            return Err(format!("the query asks for more than {MAX_ROWS} rows (each list counts its limit, times the lists it is inside)"));
        }
        if tally.fields > MAX_FIELDS {
            return Err(format!("the query selects more than {MAX_FIELDS} fields (aliases and fragment uses counted each time)"));
        }
    }
    Ok(())
}

/// Checks a parsed request against the limits.
pub fn check(document: &ExecutableDocument, variables: &Variables) -> Result<(), String> {
    let mut tally = Tally::default();
    for (_, operation) in document.operations.iter() {
        walk(&operation.node.selection_set.node, document, variables, 1, 0, &mut tally)?;
    }
    Ok(())
}

/// The limits as a schema extension.
pub struct CostLimit;

impl ExtensionFactory for CostLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(CostLimitExtension)
    }
}

struct CostLimitExtension;

#[async_trait::async_trait]
impl Extension for CostLimitExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: async_graphql::Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<async_graphql::Request> {
        next.run(ctx, request.data(Arc::new(ResponseBudget::default()))).await
    }

    async fn parse_query(&self, ctx: &ExtensionContext<'_>, query: &str, variables: &Variables, next: NextParseQuery<'_>) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        check(&document, variables).map_err(|message| ServerError::new(message, None))?;
        Ok(document)
    }
}
