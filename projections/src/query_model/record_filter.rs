//! A filter checked against one record at a time (realtime subscriptions),
//! with the same semantics as the filters of queries.

use domain::query::{check_query, Filter, Query};
use domain::value::Record;
use domain::DomainError;

use super::matcher::Matcher;
use super::values::Resolver;
use super::QueryModel;

/// A filter checked against the catalog and compiled once.
pub struct RecordFilter {
    object: String,
    matcher: Matcher,
}

impl RecordFilter {
    pub fn object(&self) -> &str {
        &self.object
    }
}

impl QueryModel {
    /// Checks `filter` against `object`'s metadata and compiles it.
    pub fn compile_filter(&self, object: &str, filter: Filter) -> Result<RecordFilter, DomainError> {
        let mut query = Query::new(object);
        query.filter = Some(filter);
        check_query(&mut query, self.catalog())?;
        let matcher = Matcher::compile(query.filter.as_ref().expect("set above"))?;
        Ok(RecordFilter { object: query.object, matcher })
    }

    /// Whether `record` (a row of the filter's object) passes the filter, lookups
    /// and formula fields resolved against this model.
    pub fn record_matches(&self, filter: &RecordFilter, record: &Record) -> bool {
        let Some(definition) = self.catalog().get(&filter.object) else { return false };
        let resolver = Resolver { catalog: self.catalog(), tables: &self.tables };
        filter.matcher.matches(&resolver, definition, record)
    }

    /// The stored row (no formulas computed), shared.
    pub fn row(&self, object: &str, id: &str) -> Option<std::sync::Arc<Record>> {
        self.tables.get(object).and_then(|t| t.get(id)).cloned()
    }
}
