//! The in-process query read model: one table per object, answering the
//! whole query AST (filters, sort, paging with true totals, select, expand,
//! count, group-by aggregates). Formula fields are computed on read.
//!
//! Reads go through [`QueryModel::execute`] and [`QueryModel::get`] with a
//! [`Viewer`]: the one place where row- and field-level security will filter.

pub(crate) mod aggregate;
mod explain;
mod index_build;
mod index_file;
mod matcher;
mod page;
mod plan;
mod range_cache;
mod record_filter;
mod record_source;
mod rows;
mod slots;
mod snapshot;
mod table;
mod values;

use std::collections::HashMap;
use std::sync::Arc;

use domain::event::{EventEnvelope, EventPayload};
use domain::metadata::{evolve_catalog, Catalog, ObjectDef};
use domain::query::{check_query, Query, SortOrder};
use domain::security::{secure_query, Access, Mask};
use domain::value::{Record, Value};
use domain::DomainError;

use self::explain::Trace;
use self::matcher::Matcher;
pub use self::record_filter::RecordFilter;
pub use self::record_source::{RecordsOf, RowsAt};
use self::rows::Row;
pub use self::snapshot::LoadedDigests;
use self::table::Table;
use self::values::Resolver;
use crate::hashing::Map;
use crate::history::{History, ModelSnapshot, SharedRows};

/// Who is reading, with what rights: every read of either model takes one,
/// and [`secure_query`] rewrites the query for it (row rules in the filter,
/// no hidden field named) before it runs, and masks its answer after.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub access: Arc<Access>,
    /// The session (or API key) the viewer signed in with: when it is
    /// revoked, the realtime hub ends the viewer's subscriptions.
    pub session: Option<Arc<str>>,
}

impl Viewer {
    /// The server itself: no rule applies (internal reads only).
    pub fn system() -> Viewer {
        Viewer { access: Arc::new(Access::system()), session: None }
    }

    /// A viewer signed in with a session (or an API key).
    pub fn signed_in(access: Arc<Access>, session: Option<&str>) -> Viewer {
        Viewer { access, session: session.map(Arc::from) }
    }

    pub fn actor(&self) -> &str {
        &self.access.principal().user_id
    }
}

/// Takes what the caller may not read out of an answer (copying only rows that hold some).
pub fn mask_output(mask: &Mask, output: &mut QueryOutput) {
    if mask.is_empty() {
        return;
    }
    for record in output.records.iter_mut() {
        if mask.touches(record) {
            mask.apply(Arc::make_mut(record));
        }
    }
}

/// The answer to a query: records (or aggregate rows), the true total and whether more follow.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryOutput {
    /// Shared with the read model when nothing was computed or selected.
    pub records: Vec<Arc<Record>>,
    /// Matches before paging (`None` when the query asked for no count).
    pub total: Option<u64>,
    pub has_more: bool,
}

/// Page size when a query names none.
pub const DEFAULT_LIMIT: u64 = 100;

#[derive(Default)]
pub struct QueryModel {
    catalog: Catalog,
    tables: Map<String, Table>,
    checkpoint: u64,
    /// Indexes are built once at the end of a bulk load, not kept up per event.
    deferred: bool,
    /// Where this model keeps its past states for as-of reads (the model that
    /// serves the realtime hub; `None` for every other copy).
    history: Option<Arc<History>>,
    /// The latest `occurred_at` of the events applied.
    max_occurred_at: i64,
    /// The digests of the rows a snapshot's load decoded, until taken.
    loaded_digests: Option<snapshot::LoadedDigests>,
}

impl QueryModel {
    /// The position of the last event applied.
    pub fn checkpoint(&self) -> u64 {
        self.checkpoint
    }

    /// Rows per object, to compare two copies of the model.
    pub fn row_counts(&self) -> Vec<(String, usize)> {
        let mut counts: Vec<(String, usize)> = self.tables.iter().map(|(name, table)| (name.clone(), table.row_count())).collect();
        counts.sort();
        counts
    }

    /// Starts a bulk load (a fresh copy being folded from the log): rows go
    /// in without index upkeep until [`QueryModel::end_bulk`]. Reads in between
    /// would scan instead of using indexes, so only unpublished copies do this.
    /// A model in bulk mode already (as a snapshot's load leaves it) is left
    /// as it is: a table that took its saved indexes keeps them up.
    pub fn begin_bulk(&mut self) {
        if self.deferred {
            return;
        }
        self.deferred = true;
        self.tables.values_mut().for_each(Table::defer_indexes);
    }

    /// Ends a bulk load: builds every index in one sort per field.
    pub fn end_bulk(&mut self) {
        // Digests a load left untaken are of no use past it.
        self.loaded_digests = None;
        self.deferred = false;
        self.tables.values_mut().for_each(Table::end_bulk);
    }

    /// Moves the checkpoint past events that carried nothing for this model.
    pub(crate) fn advance(&mut self, position: u64) {
        self.checkpoint = self.checkpoint.max(position);
    }

    /// Applies one event it may keep (no copy of the record): the rebuild path.
    pub fn apply_owned(&mut self, envelope: &EventEnvelope, payload: EventPayload) {
        match payload {
            EventPayload::RecordCreated(e) => {
                self.checkpoint = envelope.position;
                self.table(&e.object).put(e.id, e.record);
                self.applied(envelope);
            }
            other => self.apply(envelope, &other),
        }
    }

    /// Applies one event (the caller skips events at or below the checkpoint).
    pub fn apply(&mut self, envelope: &EventEnvelope, payload: &EventPayload) {
        self.apply_event(envelope, payload);
        self.applied(envelope);
    }

    /// After an event: the latest time, and in a bulk fold (which nobody
    /// reads yet) a snapshot for the history when one is due. A served model
    /// takes its snapshots under a read lock instead ([`QueryModel::keep_history`]).
    fn applied(&mut self, envelope: &EventEnvelope) {
        self.max_occurred_at = self.max_occurred_at.max(envelope.occurred_at);
        if self.deferred {
            self.keep_history();
        }
    }

    /// Takes a snapshot for the history when one is due (a model kept
    /// nowhere does nothing). The realtime hub calls it after each batch,
    /// under the read lock, so readers go on while it copies.
    pub fn keep_history(&self) {
        if let Some(history) = &self.history {
            if history.due(self.checkpoint, || self.tables.values().map(Table::row_count).sum()) {
                history.keep(self.snapshot());
            }
        }
    }

    fn apply_event(&mut self, envelope: &EventEnvelope, payload: &EventPayload) {
        self.checkpoint = envelope.position;
        match payload {
            EventPayload::RecordCreated(e) => {
                self.table(&e.object).put(e.id.clone(), e.record.clone());
            }
            EventPayload::RecordUpdated(e) => {
                let changes: Vec<(String, Value)> = e.changes.iter().map(|c| (c.field.clone(), c.new.clone())).collect();
                self.table(&e.object).update(&e.id, &changes);
            }
            EventPayload::RecordDeleted(e) => {
                self.table(&e.object).remove(&e.id);
            }
            EventPayload::ObjectDefined(e) | EventPayload::ObjectAltered(e) => {
                if let Err(error) = evolve_catalog(&mut self.catalog, payload) {
                    tracing::error!(%error, "query model cannot apply a definition");
                }
                if let Some(definition) = self.catalog.get(&e.name).cloned() {
                    let deferred = self.deferred;
                    self.tables.entry(e.name.clone()).or_insert_with(|| Table::new(deferred)).configure(&definition);
                }
            }
            EventPayload::ObjectRemoved(e) => {
                let _ = evolve_catalog(&mut self.catalog, payload);
                self.tables.remove(&e.name);
            }
            EventPayload::EventSkipped(_) | EventPayload::Process(_) => {}
        }
    }
}

impl QueryModel {
    /// Keeps this model's past states in `history` from now on.
    pub fn set_history(&mut self, history: Arc<History>) {
        self.history = Some(history);
    }

    /// An empty model for a fold that will replace this one (the start load,
    /// a rebuild), keeping its history where this one keeps it.
    pub fn fresh(&self) -> QueryModel {
        QueryModel { history: self.history.clone(), ..QueryModel::default() }
    }

    /// The rows as they are now, shared.
    pub fn snapshot(&self) -> ModelSnapshot {
        let mut tables: Vec<(String, SharedRows)> = self.tables.iter().map(|(name, table)| (name.clone(), table.shared_rows())).collect();
        tables.sort_by(|a, b| a.0.cmp(&b.0));
        ModelSnapshot { position: self.checkpoint, max_occurred_at: self.max_occurred_at, catalog: self.catalog.clone(), tables }
    }

    /// The rows as they are now, shared: the history's snapshot when it
    /// holds one at this model's position (as a decoded snapshot's model
    /// does), otherwise a new one.
    pub fn shared_snapshot(&self) -> Arc<ModelSnapshot> {
        let kept = self.history.as_ref().and_then(|history| history.latest(|position, _| position == self.checkpoint));
        kept.unwrap_or_else(|| Arc::new(self.snapshot()))
    }

    /// The digests of the rows this model's snapshot held, as its load
    /// hashed them (see `snapshot`), once: for [`RowsAt::with_digests`].
    pub fn take_loaded_digests(&mut self) -> Option<snapshot::LoadedDigests> {
        self.loaded_digests.take()
    }

    /// A model holding a snapshot's rows (shared with it), in bulk mode: the
    /// caller folds what follows and ends with [`QueryModel::end_bulk`].
    pub fn from_snapshot(snapshot: &ModelSnapshot) -> QueryModel {
        let mut model = QueryModel { catalog: snapshot.catalog.clone(), deferred: true, ..QueryModel::default() };
        for (name, rows) in &snapshot.tables {
            let table = model.table(name);
            for (id, record) in rows {
                table.put_shared(id.clone(), record.clone());
            }
        }
        model.checkpoint = snapshot.position;
        model.max_occurred_at = snapshot.max_occurred_at;
        model
    }

    /// The table of an object, created (and configured) on first use.
    fn table(&mut self, object: &str) -> &mut Table {
        if !self.tables.contains_key(object) {
            let mut table = Table::new(self.deferred);
            if let Some(definition) = self.catalog.get(object) {
                table.configure(definition);
            }
            self.tables.insert(object.to_string(), table);
        }
        self.tables.get_mut(object).expect("inserted above")
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// One record with its formula fields computed, or `None` (also when the viewer may not see it).
    pub fn get(&self, viewer: &Viewer, object: &str, id: &str) -> Result<Option<Record>, DomainError> {
        let definition = self.catalog.require(object)?;
        let resolver = Resolver { catalog: &self.catalog, tables: &self.tables };
        if viewer.access.is_system() {
            return Ok(self.tables.get(&definition.name).and_then(|t| t.get(id)).map(|r| resolver.with_formulas(definition, r)));
        }
        Ok(self.execute(viewer, Query::by_id(&definition.name, id))?.records.into_iter().next().map(Arc::unwrap_or_clone))
    }

    /// Runs a parsed query: checks it against the catalog, secures it for the
    /// viewer, evaluates it, and masks what the viewer may not read.
    pub fn execute(&self, viewer: &Viewer, mut query: Query) -> Result<QueryOutput, DomainError> {
        check_query(&mut query, &self.catalog)?;
        let mask = secure_query(&viewer.access, &self.catalog, &mut query)?;
        let mut output = self.run(viewer, &query)?;
        mask_output(&mask, &mut output);
        Ok(output)
    }

    /// How a query runs for the viewer (its row rules included): which
    /// conditions indexes answer, how many rows were checked, how the page was
    /// found, and the total. Runs the query.
    pub fn explain(&self, viewer: &Viewer, mut query: Query) -> Result<serde_json::Value, DomainError> {
        check_query(&mut query, &self.catalog)?;
        secure_query(&viewer.access, &self.catalog, &mut query)?;
        query.count = true;
        let (output, trace) = self.run_traced(viewer, &query)?;
        let empty = Table::default();
        let table = self.tables.get(&query.object).unwrap_or(&empty);
        Ok(explain::explain(table, &query, &trace, &output))
    }

    fn run(&self, viewer: &Viewer, query: &Query) -> Result<QueryOutput, DomainError> {
        self.run_traced(viewer, query).map(|(output, _)| output)
    }

    /// Runs a checked and secured query, saying how it found its rows.
    fn run_traced(&self, viewer: &Viewer, query: &Query) -> Result<(QueryOutput, Trace), DomainError> {
        let definition = self.catalog.require(&query.object)?;
        let resolver = Resolver { catalog: &self.catalog, tables: &self.tables };
        let matcher = query.filter.as_ref().map(Matcher::compile).transpose()?;
        let empty = Table::default();
        let table = self.tables.get(&definition.name).unwrap_or(&empty);
        let candidates = plan::candidates(table, query.filter.as_ref());
        let mut trace = Trace { exact: candidates.exact, candidates: candidates.len(table), how: "every row checked, in id order" };
        let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
        let wanted = query.offset.saturating_add(limit);
        let plain = query.group_by.is_empty() && query.aggregations.is_empty();
        if plain && candidates.exact {
            let slots = match query.order_by.as_slice() {
                [] => Some(page::by_id(table, &candidates, wanted)),
                [sort] => page::by_field(table, &candidates, &sort.field, sort.order, query.filter.as_ref(), wanted),
                _ => None,
            };
            if let Some(found) = slots {
                trace.how = found.how;
                let page: Vec<&Arc<Record>> =
                    found.slots.into_iter().skip(query.offset as usize).filter_map(|slot| table.rows.row(slot)).map(|row| &row.record).collect();
                return Ok((self.finish_page(viewer, &resolver, definition, query, page, trace.candidates, wanted)?, trace));
            }
        }
        let keep = |row: &&Row| candidates.exact || matcher.as_ref().is_none_or(|m| m.matches(&resolver, definition, &row.record));
        // Rows in id order when every row is looked at; in slot order from the indexes.
        let (mut matches, in_id_order): (Vec<&Row>, bool) = match &candidates.slots {
            None => (table.rows.slots_by_id().filter_map(|slot| table.rows.row(slot)).filter(keep).collect(), true),
            Some(slots) => (slots.iter().filter_map(|slot| table.rows.row(slot)).filter(keep).collect(), false),
        };
        let total = matches.len() as u64;
        if !plain {
            if !in_id_order {
                matches.sort_unstable_by(|a, b| a.id.cmp(&b.id));
            }
            let plain: Vec<&Record> = matches.iter().map(|r| r.record.as_ref()).collect();
            let rows = aggregate::aggregate(&resolver, definition, &plain, query)?;
            trace.how = "the matches grouped and aggregated";
            return Ok((page(rows, query), trace));
        }
        let wanted_rows = usize::try_from(wanted).unwrap_or(usize::MAX);
        if !query.order_by.is_empty() {
            trace.how = "the matches sorted, only as far as the page";
            let keys: Vec<Vec<std::borrow::Cow<Value>>> =
                matches.iter().map(|r| query.order_by.iter().map(|s| resolver.value_cow(definition, &r.record, &s.field)).collect()).collect();
            let compare = |a: &usize, b: &usize| {
                for (i, sort) in query.order_by.iter().enumerate() {
                    let ord = compare_for_sort(&keys[*a][i], &keys[*b][i], sort.order);
                    if ord != std::cmp::Ordering::Equal {
                        return ord;
                    }
                }
                matches[*a].id.cmp(&matches[*b].id)
            };
            let mut order: Vec<usize> = (0..matches.len()).collect();
            if wanted_rows < order.len() {
                // Only the first `wanted` rows are returned: select them, then sort those.
                order.select_nth_unstable_by(wanted_rows, compare);
                order.truncate(wanted_rows);
            }
            order.sort_by(compare);
            matches = order.into_iter().map(|i| matches[i]).collect();
        } else if !in_id_order {
            trace.how = "the matches gathered and the first ones by id selected";
            let by_id = |a: &&Row, b: &&Row| a.id.cmp(&b.id);
            if wanted_rows < matches.len() {
                matches.select_nth_unstable_by(wanted_rows, by_id);
                matches.truncate(wanted_rows);
            }
            matches.sort_unstable_by(by_id);
        }
        let page: Vec<&Arc<Record>> = matches.into_iter().skip(query.offset as usize).take(limit as usize).map(|row| &row.record).collect();
        Ok((self.finish_page(viewer, &resolver, definition, query, page, total, wanted)?, trace))
    }

    /// Computes formulas on a page of rows, expands and selects.
    #[allow(clippy::too_many_arguments)]
    fn finish_page(
        &self,
        viewer: &Viewer,
        resolver: &Resolver,
        definition: &ObjectDef,
        query: &Query,
        page: Vec<&Arc<Record>>,
        total: u64,
        wanted: u64,
    ) -> Result<QueryOutput, DomainError> {
        let mut records: Vec<Arc<Record>> = page.into_iter().map(|r| resolver.shared_with_formulas(definition, r)).collect();
        for (relation, sub) in &query.expand {
            self.expand(viewer, resolver, relation, sub, &mut records)?;
        }
        if let Some(fields) = &query.fields {
            for record in records.iter_mut() {
                select(Arc::make_mut(record), fields, query.expand.keys());
            }
        }
        Ok(QueryOutput { records, total: query.count.then_some(total), has_more: wanted < total })
    }

    /// Replaces each lookup id of the page by the related record, one batched
    /// look-up per relation (never one query per row).
    fn expand(&self, viewer: &Viewer, resolver: &Resolver, relation: &str, sub: &Query, records: &mut [Arc<Record>]) -> Result<(), DomainError> {
        let target = self.catalog.require(&sub.object)?;
        let table = self.tables.get(&target.name);
        // The sub-query's filter holds the viewer's row rules on the target: a related record they hide is null.
        let visible = sub.filter.as_ref().map(Matcher::compile).transpose()?;
        let mut related: HashMap<String, Option<Record>> = HashMap::new();
        let mut hidden: std::collections::HashSet<String> = Default::default();
        for record in records.iter() {
            for id in ids_of(record.get(relation)) {
                if related.contains_key(&id) || hidden.contains(&id) {
                    continue;
                }
                match table.and_then(|t| t.get(&id)) {
                    Some(r) if visible.as_ref().is_some_and(|m| !m.matches(resolver, target, r)) => {
                        hidden.insert(id);
                    }
                    found => {
                        related.insert(id, found.map(|r| resolver.with_formulas(target, r)));
                    }
                }
            }
        }
        let _ = viewer;
        for loaded in related.values_mut().flatten() {
            if let Some(fields) = &sub.fields {
                select(loaded, fields, sub.expand.keys());
            }
        }
        for record in records.iter_mut() {
            let replaced = match record.get(relation) {
                Some(Value::Text(id)) if hidden.contains(id) => Some(Value::Null),
                Some(Value::Text(id)) => related.get(id).cloned().flatten().map(Value::Map),
                Some(Value::List(items)) => {
                    Some(Value::List(items.iter().filter_map(Value::as_str).filter_map(|id| related.get(id).cloned().flatten().map(Value::Map)).collect()))
                }
                _ => None,
            };
            if let Some(value) = replaced {
                Arc::make_mut(record).insert(relation.to_string(), value);
            }
        }
        Ok(())
    }
}

pub(crate) fn ids_of(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Text(id)) => vec![id.clone()],
        Some(Value::List(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

/// Keeps `id`, the selected fields and expanded relations.
pub(crate) fn select<'a>(record: &mut Record, fields: &[String], expanded: impl Iterator<Item = &'a String>) {
    let mut keep: Vec<&str> = fields.iter().map(|f| f.split('.').next().unwrap_or(f)).collect();
    keep.push("id");
    let expanded: Vec<&String> = expanded.collect();
    record.retain(|k, _| keep.contains(&k.as_str()) || expanded.iter().any(|e| e.as_str() == k.as_str()));
}

/// How texts sort: case-insensitively, ties broken by the exact bytes
/// (ASCII texts compared byte by byte, without lowercased copies).
pub(crate) fn text_order(x: &str, y: &str) -> std::cmp::Ordering {
    let folded = if x.is_ascii() && y.is_ascii() {
        x.bytes().map(|b| b.to_ascii_lowercase()).cmp(y.bytes().map(|b| b.to_ascii_lowercase()))
    } else {
        x.to_lowercase().cmp(&y.to_lowercase())
    };
    folded.then_with(|| x.cmp(y))
}

/// Nulls sort last ascending and first descending (as PostgreSQL does).
fn compare_for_sort(a: &Value, b: &Value, order: SortOrder) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    let ord = match (a.is_null(), b.is_null()) {
        (true, true) => Equal,
        (true, false) => Greater,
        (false, true) => Less,
        _ => match (a, b) {
            (Value::Text(x), Value::Text(y)) => text_order(x, y),
            _ => a.total_cmp(b),
        },
    };
    match order {
        SortOrder::Asc => ord,
        SortOrder::Desc => ord.reverse(),
    }
}

pub(crate) fn page(rows: Vec<Record>, query: &Query) -> QueryOutput {
    let rows: Vec<Arc<Record>> = rows.into_iter().map(Arc::new).collect();
    let total = rows.len() as u64;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT) as usize;
    let start = (query.offset as usize).min(rows.len());
    let end = start.saturating_add(limit).min(rows.len());
    QueryOutput { records: rows[start..end].to_vec(), total: query.count.then_some(total), has_more: end < rows.len() }
}

#[cfg(test)]
mod planner_tests;
#[cfg(test)]
mod tests;
