//! The in-process query read model: one table per object, answering the
//! whole query AST (filters, sort, paging with true totals, select, expand,
//! count, group-by aggregates). Formula fields are computed on read.
//!
//! Reads go through [`QueryModel::execute`] and [`QueryModel::get`] with a
//! [`Viewer`]: the one place where row- and field-level security will filter.

pub(crate) mod aggregate;
mod index_build;
mod matcher;
mod plan;
mod record_filter;
mod rows;
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

use self::matcher::Matcher;
pub use self::record_filter::RecordFilter;
use self::table::{KeyKind, Table};
use self::values::Resolver;
use crate::hashing::Map;

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
    pub fn signed_in(access: Access, session: Option<&str>) -> Viewer {
        Viewer { access: Arc::new(access), session: session.map(Arc::from) }
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
    pub fn begin_bulk(&mut self) {
        self.deferred = true;
        self.tables.values_mut().for_each(Table::defer_indexes);
    }

    /// Ends a bulk load: builds every index in one sort per field.
    pub fn end_bulk(&mut self) {
        self.deferred = false;
        self.tables.values_mut().for_each(Table::build_indexes);
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
            }
            other => self.apply(envelope, &other),
        }
    }

    /// Applies one event (the caller skips events at or below the checkpoint).
    pub fn apply(&mut self, envelope: &EventEnvelope, payload: &EventPayload) {
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
            EventPayload::EventSkipped(_) => {}
        }
    }
}

impl QueryModel {
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

    fn run(&self, viewer: &Viewer, query: &Query) -> Result<QueryOutput, DomainError> {
        let definition = self.catalog.require(&query.object)?;
        let resolver = Resolver { catalog: &self.catalog, tables: &self.tables };
        let matcher = query.filter.as_ref().map(Matcher::compile).transpose()?;
        let empty = Table::default();
        let table = self.tables.get(&definition.name).unwrap_or(&empty);
        let candidates = plan::candidates(table, query.filter.as_ref());
        let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
        let plain = query.group_by.is_empty() && query.aggregations.is_empty();
        if plain && candidates.exact {
            if let Some(page) = self.page_by_index(viewer, &resolver, definition, table, query, &candidates, matcher.as_ref(), limit)? {
                return Ok(page);
            }
        }
        let mut matches: Vec<&Arc<Record>> = if candidates.exact {
            candidates.rows(table)
        } else {
            candidates.rows(table).into_iter().filter(|r| matcher.as_ref().is_none_or(|m| m.matches(&resolver, definition, r))).collect()
        };

        if !query.group_by.is_empty() || !query.aggregations.is_empty() {
            let plain: Vec<&Record> = matches.iter().map(|r| r.as_ref()).collect();
            let rows = aggregate::aggregate(&resolver, definition, &plain, query)?;
            return Ok(page(rows, query));
        }
        if !query.order_by.is_empty() {
            let keys: Vec<Vec<std::borrow::Cow<Value>>> =
                matches.iter().map(|r| query.order_by.iter().map(|s| resolver.value_cow(definition, r, &s.field)).collect()).collect();
            let compare = |a: &usize, b: &usize| {
                for (i, sort) in query.order_by.iter().enumerate() {
                    let ord = compare_for_sort(&keys[*a][i], &keys[*b][i], sort.order);
                    if ord != std::cmp::Ordering::Equal {
                        return ord;
                    }
                }
                // Rows come in id order: the position breaks ties, as a stable sort would.
                a.cmp(b)
            };
            let mut order: Vec<usize> = (0..matches.len()).collect();
            let wanted = (query.offset as usize).saturating_add(limit as usize);
            if wanted < order.len() {
                // Only the first `wanted` rows are returned: select them, then sort those.
                order.select_nth_unstable_by(wanted, compare);
                order.truncate(wanted);
            }
            order.sort_by(compare);
            let total_matches = matches.len();
            matches = order.into_iter().map(|i| matches[i]).collect();
            return self.finish_page(viewer, &resolver, definition, query, matches, total_matches as u64, limit);
        }
        let total = matches.len() as u64;
        self.finish_page(viewer, &resolver, definition, query, matches, total, limit)
    }

    /// The fast path when the matches are known exactly without looking at rows
    /// (no filter, or one indexed condition): the total is the candidate count,
    /// and the page comes from the candidates in id order (no sort), or from
    /// walking the sort field's index (one number or boolean sort key with no nulls).
    #[allow(clippy::too_many_arguments)]
    fn page_by_index(
        &self,
        viewer: &Viewer,
        resolver: &Resolver,
        definition: &ObjectDef,
        table: &Table,
        query: &Query,
        candidates: &plan::Candidates,
        matcher: Option<&Matcher>,
        limit: u64,
    ) -> Result<Option<QueryOutput>, DomainError> {
        let total = candidates.len(table);
        let wanted = (query.offset as usize).saturating_add(limit as usize);
        let page: Vec<&Arc<Record>> = match query.order_by.as_slice() {
            [] => match &candidates.ids {
                Some(ids) => ids.iter().skip(query.offset as usize).take(limit as usize).filter_map(|id| table.get(id)).collect(),
                None => table.rows().skip(query.offset as usize).take(limit as usize).collect(),
            },
            [sort] if matches!(table.kind_of(&sort.field), Some(KeyKind::Number | KeyKind::Bool)) => {
                let Some(ordered) = table.ordered_ids(&sort.field, sort.order == SortOrder::Desc) else { return Ok(None) };
                ordered
                    .filter_map(|id| table.get(id))
                    .filter(|r| matcher.is_none_or(|m| m.matches(resolver, definition, r)))
                    .take(wanted)
                    .skip(query.offset as usize)
                    .collect()
            }
            _ => return Ok(None),
        };
        let mut records: Vec<Arc<Record>> = page.iter().map(|r| resolver.shared_with_formulas(definition, r)).collect();
        for (relation, sub) in &query.expand {
            self.expand(viewer, resolver, relation, sub, &mut records)?;
        }
        if let Some(fields) = &query.fields {
            for record in records.iter_mut() {
                select(Arc::make_mut(record), fields, query.expand.keys());
            }
        }
        let has_more = (wanted as u64) < total as u64;
        Ok(Some(QueryOutput { records, total: query.count.then_some(total as u64), has_more }))
    }

    /// Pages the (sorted) matches, computes formulas, expands and selects.
    #[allow(clippy::too_many_arguments)]
    fn finish_page(
        &self,
        viewer: &Viewer,
        resolver: &Resolver,
        definition: &ObjectDef,
        query: &Query,
        matches: Vec<&Arc<Record>>,
        total: u64,
        limit: u64,
    ) -> Result<QueryOutput, DomainError> {
        let start = (query.offset as usize).min(matches.len());
        let end = start.saturating_add(limit as usize).min(matches.len());
        let mut records: Vec<Arc<Record>> = matches[start..end].iter().map(|r| resolver.shared_with_formulas(definition, r)).collect();
        for (relation, sub) in &query.expand {
            self.expand(viewer, resolver, relation, sub, &mut records)?;
        }
        if let Some(fields) = &query.fields {
            for record in records.iter_mut() {
                select(Arc::make_mut(record), fields, query.expand.keys());
            }
        }
        Ok(QueryOutput { records, total: query.count.then_some(total), has_more: (end as u64) < total })
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

/// Nulls sort last ascending and first descending (as PostgreSQL does).
fn compare_for_sort(a: &Value, b: &Value, order: SortOrder) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    let ord = match (a.is_null(), b.is_null()) {
        (true, true) => Equal,
        (true, false) => Greater,
        (false, true) => Less,
        _ => match (a, b) {
            // Text sorts case-insensitively, ties broken by the exact bytes.
            (Value::Text(x), Value::Text(y)) => x.to_lowercase().cmp(&y.to_lowercase()).then_with(|| x.cmp(y)),
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
mod tests;
