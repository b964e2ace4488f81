//! Evaluation of a parsed formula against a record.

use chrono::Datelike;

use super::parser::{BinaryOp, Expr, Func, UnaryOp};
use crate::time::{parse_date, Timestamp};
use crate::value::{Record, Value};

/// What a formula can see: the record being written, the previous version, and now.
pub trait FormulaContext {
    fn field(&self, path: &str) -> Value;
    /// The value before this write; `None` when there is no previous version (insert).
    fn previous(&self, path: &str) -> Option<Value>;
    fn now(&self) -> Timestamp;
}

/// The usual context: a record, an optional previous record, and `now`.
pub struct RecordContext<'a> {
    pub record: &'a Record,
    pub previous: Option<&'a Record>,
    pub now: Timestamp,
}

fn lookup(record: &Record, path: &str) -> Value {
    let mut parts = path.split('.');
    let first = parts.next().unwrap_or_default();
    let mut current = record.get(first).cloned().unwrap_or(Value::Null);
    for part in parts {
        current = match current {
            Value::Map(map) => map.get(part).cloned().unwrap_or(Value::Null),
            _ => Value::Null,
        };
    }
    current
}

impl FormulaContext for RecordContext<'_> {
    fn field(&self, path: &str) -> Value {
        lookup(self.record, path)
    }
    fn previous(&self, path: &str) -> Option<Value> {
        self.previous.map(|p| lookup(p, path))
    }
    fn now(&self) -> Timestamp {
        self.now
    }
}

/// How a value counts as a condition.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Int(i) => *i != 0,
        Value::Float(f) => *f != 0.0,
        Value::Text(s) => !s.is_empty() && !s.eq_ignore_ascii_case("false"),
        Value::List(items) => !items.is_empty(),
        Value::Map(_) => true,
    }
}

fn number(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 9e15 {
        Value::Int(value as i64)
    } else {
        Value::Float(value)
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Text(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        other => other.to_json().to_string(),
    }
}

fn date_parts(value: &Value) -> Option<(i32, u32, u32)> {
    let text = value.as_str()?;
    let date = parse_date(text.get(..10)?)?;
    Some((date.year(), date.month(), date.day()))
}

fn days_of(value: &Value) -> Option<i64> {
    let text = value.as_str()?;
    Timestamp::parse(text).map(|t| t.micros().div_euclid(86_400_000_000))
}

/// Evaluates an expression. Never fails: type mismatches yield null, and
/// comparisons with null are false, so a rule over an absent value does not fire.
pub fn eval(expr: &Expr, ctx: &dyn FormulaContext) -> Value {
    match expr {
        Expr::Literal(v) => v.clone(),
        Expr::Field(path) => ctx.field(path),
        Expr::Unary(UnaryOp::Not, e) => Value::Bool(!truthy(&eval(e, ctx))),
        Expr::Unary(UnaryOp::Neg, e) => eval(e, ctx).as_f64().map(|n| number(-n)).unwrap_or(Value::Null),
        Expr::Binary(op, a, b) => binary(*op, a, b, ctx),
        Expr::Call(func, args) => call(*func, args, ctx),
    }
}

fn binary(op: BinaryOp, a: &Expr, b: &Expr, ctx: &dyn FormulaContext) -> Value {
    match op {
        BinaryOp::And => return Value::Bool(truthy(&eval(a, ctx)) && truthy(&eval(b, ctx))),
        BinaryOp::Or => return Value::Bool(truthy(&eval(a, ctx)) || truthy(&eval(b, ctx))),
        _ => {}
    }
    let left = eval(a, ctx);
    let right = eval(b, ctx);
    use std::cmp::Ordering::*;
    match op {
        BinaryOp::Eq => Value::Bool(equal(&left, &right)),
        BinaryOp::Ne => Value::Bool(!equal(&left, &right)),
        BinaryOp::Lt => Value::Bool(left.partial_compare(&right) == Some(Less)),
        BinaryOp::Le => Value::Bool(matches!(left.partial_compare(&right), Some(Less | Equal))),
        BinaryOp::Gt => Value::Bool(left.partial_compare(&right) == Some(Greater)),
        BinaryOp::Ge => Value::Bool(matches!(left.partial_compare(&right), Some(Greater | Equal))),
        BinaryOp::Concat => Value::Text(text_of(&left) + &text_of(&right)),
        BinaryOp::Add if matches!(left, Value::Text(_)) || matches!(right, Value::Text(_)) => Value::Text(text_of(&left) + &text_of(&right)),
        BinaryOp::Add => arithmetic(&left, &right, |x, y| Some(x + y)),
        BinaryOp::Sub => arithmetic(&left, &right, |x, y| Some(x - y)),
        BinaryOp::Mul => arithmetic(&left, &right, |x, y| Some(x * y)),
        BinaryOp::Div => arithmetic(&left, &right, |x, y| (y != 0.0).then(|| x / y)),
        BinaryOp::Mod => arithmetic(&left, &right, |x, y| (y != 0.0).then(|| x % y)),
        BinaryOp::And | BinaryOp::Or => unreachable!("handled above"),
    }
}

fn equal(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Null, other) | (other, Value::Null) => other.is_blank(),
        _ => left.loose_eq(right),
    }
}

fn arithmetic(left: &Value, right: &Value, f: impl Fn(f64, f64) -> Option<f64>) -> Value {
    match (left.as_f64(), right.as_f64()) {
        (Some(x), Some(y)) => f(x, y).map(number).unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

fn call(func: Func, args: &[Expr], ctx: &dyn FormulaContext) -> Value {
    let arg = |i: usize| args.get(i).map(|e| eval(e, ctx)).unwrap_or(Value::Null);
    let num = |i: usize| arg(i).as_f64();
    match func {
        Func::IsBlank => Value::Bool(arg(0).is_blank()),
        Func::IsNull => Value::Bool(arg(0).is_null()),
        Func::BlankValue => {
            let first = arg(0);
            if first.is_blank() {
                arg(1)
            } else {
                first
            }
        }
        Func::Not => Value::Bool(!truthy(&arg(0))),
        Func::And => Value::Bool(args.iter().all(|e| truthy(&eval(e, ctx)))),
        Func::Or => Value::Bool(args.iter().any(|e| truthy(&eval(e, ctx)))),
        Func::If => {
            if truthy(&arg(0)) {
                arg(1)
            } else {
                arg(2)
            }
        }
        Func::Concat => Value::Text(args.iter().map(|e| text_of(&eval(e, ctx))).collect()),
        Func::Len => Value::Int(text_of(&arg(0)).chars().count() as i64),
        Func::Upper => Value::Text(text_of(&arg(0)).to_uppercase()),
        Func::Lower => Value::Text(text_of(&arg(0)).to_lowercase()),
        Func::Trim => Value::Text(text_of(&arg(0)).trim().to_string()),
        Func::Left | Func::Right => {
            let text = text_of(&arg(0));
            let n = num(1).unwrap_or(0.0).max(0.0) as usize;
            let chars: Vec<char> = text.chars().collect();
            let n = n.min(chars.len());
            let slice = if func == Func::Left { &chars[..n] } else { &chars[chars.len() - n..] };
            Value::Text(slice.iter().collect())
        }
        Func::Contains => Value::Bool(text_of(&arg(0)).contains(&text_of(&arg(1)))),
        Func::Begins => Value::Bool(text_of(&arg(0)).starts_with(&text_of(&arg(1)))),
        Func::Text => Value::Text(text_of(&arg(0))),
        Func::Number => match arg(0) {
            Value::Text(s) => s.trim().parse::<f64>().map(number).unwrap_or(Value::Null),
            v @ (Value::Int(_) | Value::Float(_)) => v,
            _ => Value::Null,
        },
        Func::Today => Value::Text(ctx.now().to_date_string()),
        Func::Now => Value::Text(ctx.now().to_rfc3339()),
        Func::Year => date_parts(&arg(0)).map(|(y, _, _)| Value::Int(y as i64)).unwrap_or(Value::Null),
        Func::Month => date_parts(&arg(0)).map(|(_, m, _)| Value::Int(m as i64)).unwrap_or(Value::Null),
        Func::Day => date_parts(&arg(0)).map(|(_, _, d)| Value::Int(d as i64)).unwrap_or(Value::Null),
        Func::MonthDiff => match (date_parts(&arg(0)), date_parts(&arg(1))) {
            (Some((y1, m1, _)), Some((y2, m2, _))) => Value::Int((y1 as i64 * 12 + m1 as i64) - (y2 as i64 * 12 + m2 as i64)),
            _ => Value::Null,
        },
        Func::DayDiff => match (days_of(&arg(0)), days_of(&arg(1))) {
            (Some(a), Some(b)) => Value::Int(a - b),
            _ => Value::Null,
        },
        Func::AddDays => match (arg(0).as_str().and_then(Timestamp::parse), num(1)) {
            (Some(t), Some(days)) => Value::Text(t.plus_days(days as i64).to_date_string()),
            _ => Value::Null,
        },
        Func::Abs => num(0).map(|n| number(n.abs())).unwrap_or(Value::Null),
        Func::Round => match num(0) {
            Some(n) => {
                let places = num(1).unwrap_or(0.0) as i32;
                let factor = 10f64.powi(places);
                number((n * factor).round() / factor)
            }
            None => Value::Null,
        },
        Func::Floor => num(0).map(|n| number(n.floor())).unwrap_or(Value::Null),
        Func::Ceiling => num(0).map(|n| number(n.ceil())).unwrap_or(Value::Null),
        Func::Min | Func::Max => {
            let values: Vec<f64> = args.iter().filter_map(|e| eval(e, ctx).as_f64()).collect();
            let pick = if func == Func::Min { values.iter().cloned().reduce(f64::min) } else { values.iter().cloned().reduce(f64::max) };
            pick.map(number).unwrap_or(Value::Null)
        }
        Func::Mod => match (num(0), num(1)) {
            (Some(a), Some(b)) if b != 0.0 => number(a % b),
            _ => Value::Null,
        },
        Func::IsChanged => Value::Bool(args.iter().any(|e| match e {
            Expr::Field(path) => match ctx.previous(path) {
                Some(before) => !equal(&before, &ctx.field(path)) || before.is_null() != ctx.field(path).is_null(),
                None => false,
            },
            _ => false,
        })),
        Func::PriorValue => match &args[0] {
            Expr::Field(path) => ctx.previous(path).unwrap_or(Value::Null),
            _ => Value::Null,
        },
        Func::IsNew => Value::Bool(ctx.previous("id").is_none()),
        Func::Regex => match regex::Regex::new(&text_of(&arg(1))) {
            Ok(re) => Value::Bool(re.is_match(&text_of(&arg(0)))),
            Err(_) => Value::Null,
        },
    }
}
