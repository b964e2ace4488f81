//! The search read model: full text over the searchable fields of every
//! object, in a tantivy index fed by the log like any projection (so it
//! serves both stores and is rebuilt like the others). The index lives in
//! memory, or in a directory (`on_disk`) where each commit records the
//! position it is current as of, so a start opens it there instead of
//! indexing the log again.
//!
//! One index holds every object: a document per record with its object, its
//! key (`object/id`, to replace or delete it), and up to [`SLOTS`] text
//! fields; each searchable field of an object gets a slot. Relevance is
//! tantivy's BM25 with per-field boosts; an exact term scores above a typo
//! match ([`query`]). Filters, facets and documents come from the query read
//! model (the gateway joins them), so filters keep the query semantics.

mod highlight;
mod model;
mod on_disk;
mod query;
mod texts;

pub use highlight::highlight;
pub use model::{searchable_fields, SearchHit, SearchHits, SearchModel, SearchRequest, SLOTS};
pub use on_disk::Place;

#[cfg(test)]
mod tests;
