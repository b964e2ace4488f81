//! The search read model: full text over the searchable fields of every
//! object, in a tantivy index kept in memory and fed by the log like any
//! projection (so it serves both stores and is rebuilt like the others).
//!
//! One index holds every object: a document per record with its object, its
//! key (`object/id`, to replace or delete it), and up to [`SLOTS`] text
//! fields; each searchable field of an object gets a slot. Relevance is
//! tantivy's BM25 with per-field boosts; an exact term scores above a typo
//! match ([`query`]). Filters, facets and documents come from the query read
//! model (the gateway joins them), so filters keep the query semantics.

mod highlight;
mod model;
mod query;
mod texts;

pub use highlight::highlight;
pub use model::{searchable_fields, SearchHit, SearchHits, SearchModel, SearchRequest, SLOTS};
