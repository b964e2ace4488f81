//! A filter on one analysed field, checked and decided once (its values
//! parsed for the field's kind, its date range resolved) for either model:
//! the columnar model tests rows with [`Condition::on`], the PostgreSQL
//! model compiles it to SQL (`pg.rs`). What a missing value does is decided
//! here too, so both models agree on it.

use domain::{DomainError, Timestamp};
use serde_json::Value as Json;

use super::columns::{Column, Kind};
use super::query::{FilterOp, MemberFilter};
use super::time::date_range;

/// A row predicate over one column.
pub(super) type Predicate<'a> = Box<dyn Fn(usize) -> bool + 'a>;

/// How a text is compared with the wanted texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TextTest {
    Equals,
    NotEquals,
    /// Case-insensitive (`to_lowercase` of both).
    Contains,
    NotContains,
    StartsWith,
    EndsWith,
    /// Byte order, as Rust compares strings.
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NumberTest {
    Equals,
    NotEquals,
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Debug, Clone)]
pub(super) enum Condition {
    Set,
    NotSet,
    /// Any wanted text passes (`lowered`: the same, lower-cased).
    Text {
        test: TextTest,
        wanted: Vec<String>,
        lowered: Vec<String>,
    },
    /// `Equals`/`NotEquals` against any of `numbers`, the others against the first.
    Number {
        test: NumberTest,
        numbers: Vec<f64>,
    },
    Bool {
        negate: bool,
        wanted: Vec<bool>,
    },
    /// `[from, to)` in microseconds; `negate`: outside it (or no value).
    Time {
        from: i64,
        to: i64,
        negate: bool,
    },
}

fn invalid(message: impl Into<String>) -> DomainError {
    DomainError::InvalidQuery(message.into())
}

pub(super) fn as_f64(value: &Json) -> Option<f64> {
    match value {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub(super) fn as_text(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn as_time(value: &Json) -> Result<i64, DomainError> {
    let text = value.as_str().ok_or_else(|| invalid(format!("{value} is not an ISO date or datetime")))?;
    Timestamp::parse(text).map(Timestamp::micros).ok_or_else(|| invalid(format!("'{text}' is not an ISO date or datetime")))
}

impl Condition {
    /// The filter on a field of `kind`, or why it does not apply.
    pub(super) fn of(kind: Kind, filter: &MemberFilter, now: Timestamp) -> Result<Condition, DomainError> {
        use FilterOp::*;
        let values = &filter.values;
        let need = |n: usize| -> Result<(), DomainError> {
            if values.len() < n {
                Err(invalid(format!("filter '{}' {} needs {n} value(s)", filter.member, filter.op.name())))
            } else {
                Ok(())
            }
        };
        match (kind, filter.op) {
            (_, Set) => Ok(Condition::Set),
            (_, NotSet) => Ok(Condition::NotSet),
            (Kind::Text, op) => {
                need(1)?;
                let test = match op {
                    Equals => TextTest::Equals,
                    NotEquals => TextTest::NotEquals,
                    Contains => TextTest::Contains,
                    NotContains => TextTest::NotContains,
                    StartsWith => TextTest::StartsWith,
                    EndsWith => TextTest::EndsWith,
                    Gt => TextTest::Gt,
                    Gte => TextTest::Gte,
                    Lt => TextTest::Lt,
                    Lte => TextTest::Lte,
                    _ => return Err(invalid(format!("'{}' is not a time dimension", filter.member))),
                };
                let wanted: Vec<String> = values.iter().map(as_text).collect();
                let lowered = wanted.iter().map(|w| w.to_lowercase()).collect();
                Ok(Condition::Text { test, wanted, lowered })
            }
            (Kind::Number, op) => {
                need(1)?;
                let numbers: Vec<f64> = values
                    .iter()
                    .map(|v| as_f64(v).ok_or_else(|| invalid(format!("'{}' compares numbers, got {v}", filter.member))))
                    .collect::<Result<_, _>>()?;
                let test = match op {
                    Equals => NumberTest::Equals,
                    NotEquals => NumberTest::NotEquals,
                    Gt => NumberTest::Gt,
                    Gte => NumberTest::Gte,
                    Lt => NumberTest::Lt,
                    Lte => NumberTest::Lte,
                    other => return Err(invalid(format!("'{}' is a number: {} does not apply", filter.member, other.name()))),
                };
                Ok(Condition::Number { test, numbers })
            }
            (Kind::Bool, op) => {
                need(1)?;
                let wanted = values.iter().map(|v| matches!(v, Json::Bool(true)) || v.as_str() == Some("true")).collect();
                match op {
                    Equals => Ok(Condition::Bool { negate: false, wanted }),
                    NotEquals => Ok(Condition::Bool { negate: true, wanted }),
                    other => Err(invalid(format!("'{}' is a boolean: {} does not apply", filter.member, other.name()))),
                }
            }
            (Kind::Time, op) => {
                let first = || as_time(values.first().ok_or_else(|| invalid("a date is needed"))?);
                let (from, to) = match op {
                    InDateRange | NotInDateRange => {
                        let range = if values.len() == 1 { values[0].clone() } else { Json::Array(values.clone()) };
                        date_range(&range, now).map_err(invalid)?
                    }
                    BeforeDate | Lt => (i64::MIN, first()?),
                    Lte => (i64::MIN, first()? + 1),
                    AfterDate | Gt => (first()? + 1, i64::MAX),
                    Gte => (first()?, i64::MAX),
                    Equals | NotEquals => {
                        let t = first()?;
                        (t, t + 1)
                    }
                    other => return Err(invalid(format!("'{}' is a time: {} does not apply", filter.member, other.name()))),
                };
                Ok(Condition::Time { from, to, negate: matches!(op, NotInDateRange | NotEquals) })
            }
        }
    }

    /// Whether a row without a value passes.
    pub(super) fn null_passes(&self) -> bool {
        match self {
            Condition::Set => false,
            Condition::NotSet => true,
            Condition::Text { test, .. } => matches!(test, TextTest::NotEquals | TextTest::NotContains),
            Condition::Number { test, .. } => *test == NumberTest::NotEquals,
            Condition::Bool { negate, .. } | Condition::Time { negate, .. } => *negate,
        }
    }

    /// Whether a text passes (a `Text` condition).
    fn text_passes(&self, text: &str) -> bool {
        let Condition::Text { test, wanted, lowered } = self else { return false };
        let any_lowered = |passes: &dyn Fn(&str, &str) -> bool| {
            let lower = text.to_lowercase();
            lowered.iter().any(|w| passes(&lower, w))
        };
        match test {
            TextTest::Equals => wanted.iter().any(|w| w == text),
            TextTest::NotEquals => !wanted.iter().any(|w| w == text),
            TextTest::Contains => any_lowered(&|t, w| t.contains(w)),
            TextTest::NotContains => !any_lowered(&|t, w| t.contains(w)),
            TextTest::StartsWith => any_lowered(&|t, w| t.starts_with(w)),
            TextTest::EndsWith => any_lowered(&|t, w| t.ends_with(w)),
            TextTest::Gt => wanted.iter().any(|w| text > w.as_str()),
            TextTest::Gte => wanted.iter().any(|w| text >= w.as_str()),
            TextTest::Lt => wanted.iter().any(|w| text < w.as_str()),
            TextTest::Lte => wanted.iter().any(|w| text <= w.as_str()),
        }
    }

    /// The test of a row of `column` (of the kind the condition was made for).
    pub(super) fn on<'a>(&'a self, column: &'a Column) -> Predicate<'a> {
        let null_passes = self.null_passes();
        match (self, column) {
            (Condition::Set, _) => Box::new(move |r| column.is_set(r)),
            (Condition::NotSet, _) => Box::new(move |r| !column.is_set(r)),
            (Condition::Text { .. }, Column::Text { codes, dictionary }) => {
                // Decided per dictionary entry once, then per row by code.
                let verdict: Vec<bool> = dictionary.texts().map(|text| self.text_passes(text)).collect();
                Box::new(move |r| codes.get(r).map(|c| verdict[c as usize]).unwrap_or(null_passes))
            }
            (Condition::Number { test, numbers }, Column::Number(cells)) => {
                let first = numbers[0];
                let passes = move |x: f64| match test {
                    NumberTest::Equals => numbers.contains(&x),
                    NumberTest::NotEquals => !numbers.contains(&x),
                    NumberTest::Gt => x > first,
                    NumberTest::Gte => x >= first,
                    NumberTest::Lt => x < first,
                    NumberTest::Lte => x <= first,
                };
                Box::new(move |r| cells.get(r).map(passes).unwrap_or(null_passes))
            }
            (Condition::Bool { negate, wanted }, Column::Bool(cells)) => {
                Box::new(move |r| cells.get(r).map(|b| wanted.contains(&b) != *negate).unwrap_or(null_passes))
            }
            (Condition::Time { from, to, negate }, Column::Time(cells)) => {
                Box::new(move |r| cells.get(r).map(|t| (t >= *from && t < *to) != *negate).unwrap_or(null_passes))
            }
            // Made for another kind than the column's: no row passes.
            _ => Box::new(|_| false),
        }
    }
}
