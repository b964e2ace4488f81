//! The formula language of script rules, conditions, formula fields and
//! formula defaults: an Excel/Salesforce-like expression language
//! (`status = "closed" AND ISBLANK(resolution)`, `IF(a > 0, b / a, 0)`).
//!
//! Formulas are parsed once, when metadata is loaded, so that a definition
//! naming an unknown function or field is rejected up front; evaluation is a
//! pure function of the record, the previous record and `now`.

mod eval;
mod lexer;
mod parser;

pub use eval::{eval, truthy, FormulaContext, RecordContext};
pub use parser::{parse, BinaryOp, Expr, Func, UnaryOp};

/// A parse error, with the byte offset where it was found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} at offset {offset}")]
pub struct FormulaError {
    pub message: String,
    pub offset: usize,
}

#[cfg(test)]
mod tests;
