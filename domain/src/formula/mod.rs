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

use crate::metadata::{FieldType, ObjectDef};
use crate::time::Timestamp;
use crate::value::Record;

/// The record with its formula fields computed from its own fields (formulas
/// are never stored: events carry only what was written).
pub fn with_formula_fields(object: &ObjectDef, record: &Record, now: Timestamp) -> Record {
    let mut out = record.clone();
    for field in object.fields.iter().filter(|f| f.field_type == FieldType::Formula) {
        if let Some(expr) = &field.compiled_expression {
            let value = eval(expr, &RecordContext { record, previous: None, now });
            if !value.is_null() {
                out.insert(field.name.clone(), value);
            }
        }
    }
    out
}
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
