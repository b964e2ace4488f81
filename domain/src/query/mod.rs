//! The query AST (spec `Query.json`) and the parsers of every accepted form.
//!
//! Every incoming filter form (object/Mongo style, prefix and infix arrays, bare
//! tuples, AST nodes, URL params) is normalised to one [`Filter`] tree; sorts,
//! paging, select, expand, group-by, aggregations and search likewise. Parsing
//! rejects unknown operators; [`check_query`] rejects unknown fields, naming them.

mod ast;
mod check;
pub mod compare;
mod filter;
mod operators;
mod params;
mod parse;
mod sort;

pub use ast::{AggFunction, Aggregation, Condition, Filter, Op, Operand, Query, Search, SortNode, SortOrder};
pub use check::{check_query, MAX_LIMIT};
pub use filter::parse_filter;
pub use params::parse_url_params;
pub use parse::parse_query;
pub use sort::parse_sort;

#[cfg(test)]
mod tests;
