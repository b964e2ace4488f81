//! Analytics (the IAnalyticsService contract): cubes over objects, answered
//! from a columnar read model that the projector keeps up to date event by
//! event (never by scanning the log per query).
//!
//! - [`columns`]: per object, one column per field (numbers, dictionary-coded
//!   text, booleans, times), updated in place by each record event; a
//!   column's values and nulls are [`cells`], a text column's distinct texts
//!   a [`dictionary`], which the `id` column's also finds rows by.
//! - [`cube`]: cube metadata: generated per object (count; sum/avg/min/max of
//!   number fields; string, number, boolean and time dimensions) or declared
//!   by the app.
//! - [`query`]: the Cube.js-style query (measures, dimensions, filters, time
//!   dimensions with granularities and date ranges, order, limit) and its
//!   evaluation.
//! - `condition`, `plan`: what both models share around their scans (a filter
//!   decided for a field's kind; a query resolved on its cube, and its answer
//!   ordered and paged).
//! - [`pg`]: the same query answered by SQL on the PostgreSQL query model's
//!   tables (and the statement, for `/analytics/sql`).
//! - [`time`]: granularities and relative date ranges ("Last 7 days").
//! - `snapshot`: the model saved with its position and loaded again (see [`crate::snapshot`]).

pub mod cells;
pub mod columns;
mod condition;
pub mod cube;
pub mod dictionary;
pub mod pg;
mod plan;
pub mod query;
mod snapshot;
pub mod time;

pub use columns::AnalyticsModel;
pub use cube::{Cube, CubeMeta, Dimension, DimensionType, Measure};
pub use query::{parse_query, AnalyticsQuery, AnalyticsResult};
