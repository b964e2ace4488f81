//! Compiling the query AST to SQL over the objects' tables.
//!
//! Every value travels as a text parameter and is cast in SQL, so no Rust
//! type maps to numeric. Conditions under a NOT are wrapped in
//! `coalesce(..., false)` so that missing values behave as in the in-process
//! model; elsewhere (AND and OR only, where a NULL excludes a row exactly as
//! false does) they are left bare, so that PostgreSQL matches them to the
//! expression indexes the definitions produce (`ddl.rs`: the same
//! expressions, text under the `C` collation every text comparison uses).

use domain::metadata::{Catalog, FieldDef, FieldType, ObjectDef, SYSTEM_FIELDS};
use domain::query::{Condition, Filter, Op, Operand};
use domain::value::Value;
use domain::DomainError;
use tokio_postgres::types::ToSql;

use super::ddl::field_expr;
use super::table;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    Text,
    Number,
    Bool,
    Json,
}

/// A field path as SQL: its typed form, its text form and its jsonb form.
#[derive(Debug, Clone)]
pub(crate) struct Expr {
    pub typed: String,
    pub text: String,
    pub json: String,
    pub kind: Kind,
}

/// Parameters collected while compiling.
#[derive(Default)]
pub(crate) struct Params {
    texts: Vec<String>,
}

impl Params {
    /// A text parameter, as SQL.
    pub fn text(&mut self, value: String) -> String {
        self.texts.push(value);
        format!("(${}::text)", self.texts.len())
    }

    fn json(&mut self, value: &Value) -> String {
        let p = self.text(value.to_json().to_string());
        format!("({p}::jsonb)")
    }

    pub fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.texts.iter().map(|s| s as &(dyn ToSql + Sync)).collect()
    }
}

/// How a top-level field is stored and compared: numbers as numeric,
/// booleans as boolean, lists and composites as jsonb, the rest (system
/// fields, which have no definition, included) as text.
pub(crate) fn kind_of(field: Option<&FieldDef>) -> Kind {
    match field.map(|f| (f.field_type, f.is_list())) {
        Some((t, false)) if t.is_numeric() => Kind::Number,
        Some((FieldType::Boolean | FieldType::Toggle, false)) => Kind::Bool,
        Some((FieldType::Json | FieldType::Location | FieldType::Address | FieldType::File, _)) | Some((_, true)) => Kind::Json,
        _ => Kind::Text,
    }
}

fn unsupported(what: String) -> DomainError {
    DomainError::InvalidQuery(what)
}

fn sub_key_ok(key: &str) -> bool {
    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The SQL of a field path on `object`, rows aliased `alias` (nested look-ups use `r1`, `r2`, ...).
pub(crate) fn path(catalog: &Catalog, object: &ObjectDef, field_path: &str, alias: &str, depth: usize) -> Result<Expr, DomainError> {
    let (first, rest) = match field_path.split_once('.') {
        Some((first, rest)) => (first, Some(rest)),
        None => (field_path, None),
    };
    if first == "id" && rest.is_none() {
        return Ok(Expr { typed: format!("{alias}.id"), text: format!("{alias}.id"), json: format!("to_jsonb({alias}.id)"), kind: Kind::Text });
    }
    let text = format!("({alias}.data->>'{first}')");
    let json = format!("({alias}.data->'{first}')");
    if SYSTEM_FIELDS.contains(&first) {
        return Ok(Expr { typed: text.clone(), text, json, kind: Kind::Text });
    }
    let field = object.field(first).ok_or_else(|| unsupported(format!("unknown field '{first}' on '{}'", object.name)))?;
    if field.field_type == FieldType::Formula {
        return Err(unsupported(format!("formula field '{first}' cannot be filtered, sorted or grouped on with the PostgreSQL read model")));
    }
    let Some(rest) = rest else {
        return Ok(Expr { typed: field_expr(object, first, alias), text, json, kind: kind_of(Some(field)) });
    };
    if field.field_type.is_reference() {
        let target =
            catalog.get(field.reference.as_deref().unwrap_or_default()).ok_or_else(|| unsupported(format!("'{first}' references an unknown object")))?;
        let inner_alias = format!("r{}", depth + 1);
        let inner = path(catalog, target, rest, &inner_alias, depth + 1)?;
        let wrap = |sql: &str| format!("(SELECT {sql} FROM {} {inner_alias} WHERE {inner_alias}.id = {text})", table(&target.name));
        return Ok(Expr { typed: wrap(&inner.typed), text: wrap(&inner.text), json: wrap(&inner.json), kind: inner.kind });
    }
    let keys: Vec<&str> = rest.split('.').collect();
    if !keys.iter().all(|k| sub_key_ok(k)) {
        return Err(unsupported(format!("'{field_path}' is not a valid path")));
    }
    let pointer = format!("'{{{first},{}}}'", keys.join(","));
    let text = format!("({alias}.data #>> {pointer})");
    let json = format!("({alias}.data #> {pointer})");
    if field.field_type == FieldType::Location {
        return Ok(Expr { typed: format!("({text}::numeric)"), text, json, kind: Kind::Number });
    }
    Ok(Expr { typed: text.clone(), text, json, kind: Kind::Text })
}

fn number_text(value: &Value) -> Option<String> {
    match value {
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Text(s) => s.trim().parse::<f64>().ok().map(|f| f.to_string()),
        _ => None,
    }
}

fn like_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

fn is_null(e: &Expr) -> String {
    format!("({} IS NULL OR {} = 'null'::jsonb)", e.json, e.json)
}

fn eq(e: &Expr, value: &Value, params: &mut Params) -> String {
    if value.is_null() {
        return is_null(e);
    }
    match e.kind {
        Kind::Json => match value {
            Value::List(_) | Value::Map(_) => format!("{} = {}", e.json, params.json(value)),
            scalar => format!("{} @> {}", e.json, params.json(&Value::List(vec![scalar.clone()]))),
        },
        Kind::Number => match number_text(value) {
            Some(n) => format!("{} = ({}::numeric)", e.typed, params.text(n)),
            None => "FALSE".into(),
        },
        Kind::Bool => match value {
            Value::Bool(b) => format!("{} = ({}::boolean)", e.typed, params.text(b.to_string())),
            _ => "FALSE".into(),
        },
        Kind::Text => match value {
            Value::Text(s) => format!("{} COLLATE \"C\" = {}", e.text, params.text(s.clone())),
            Value::Int(_) | Value::Float(_) => format!("{} COLLATE \"C\" = {}", e.text, params.text(number_text(value).unwrap_or_default())),
            other => format!("{} = {}", e.json, params.json(other)),
        },
    }
}

fn compare(e: &Expr, value: &Value, op: &str, params: &mut Params) -> String {
    match (e.kind, value) {
        (Kind::Number, v) => match number_text(v) {
            Some(n) => format!("{} {op} ({}::numeric)", e.typed, params.text(n)),
            None => "FALSE".into(),
        },
        (Kind::Bool, Value::Bool(b)) => format!("{} {op} ({}::boolean)", e.typed, params.text(b.to_string())),
        (Kind::Text, Value::Text(s)) => format!("{} COLLATE \"C\" {op} {}", e.text, params.text(s.clone())),
        _ => "FALSE".into(),
    }
}

fn sql_op(op: Op) -> &'static str {
    match op {
        Op::Gt => ">",
        Op::Gte => ">=",
        Op::Lt => "<",
        Op::Lte => "<=",
        Op::Ne => "<>",
        _ => "=",
    }
}

/// Wraps a condition in `coalesce(..., false)` where a NULL must count as false (under a NOT).
fn guarded(sql: String, negated: bool) -> String {
    if negated {
        format!("coalesce(({sql}), false)")
    } else {
        format!("({sql})")
    }
}

fn condition(catalog: &Catalog, object: &ObjectDef, c: &Condition, params: &mut Params, negated: bool) -> Result<String, DomainError> {
    let e = path(catalog, object, &c.field, "t", 0)?;
    let value = match &c.value {
        Operand::Field(other) => {
            let o = path(catalog, object, other, "t", 0)?;
            if !matches!(c.op, Op::Eq | Op::Ne | Op::Gt | Op::Gte | Op::Lt | Op::Lte) {
                return Err(unsupported(format!("operator {:?} cannot compare two fields", c.op)));
            }
            let sql = if e.kind == Kind::Number && o.kind == Kind::Number {
                format!("{} {} {}", e.typed, sql_op(c.op), o.typed)
            } else {
                format!("{} COLLATE \"C\" {} {}", e.text, sql_op(c.op), o.text)
            };
            return Ok(guarded(sql, negated));
        }
        Operand::Value(v) => v,
    };
    let sql = match c.op {
        Op::Eq => eq(&e, value, params),
        Op::Ne => format!("NOT coalesce(({}), false)", eq(&e, value, params)),
        Op::Gt | Op::Gte | Op::Lt | Op::Lte => compare(&e, value, sql_op(c.op), params),
        Op::In | Op::Nin => {
            let items = match value {
                Value::List(items) => items.clone(),
                _ => Vec::new(),
            };
            let any: Vec<String> = items.iter().map(|item| guarded(eq(&e, item, params), negated || c.op == Op::Nin)).collect();
            let any = if any.is_empty() { "FALSE".to_string() } else { any.join(" OR ") };
            if c.op == Op::In {
                any
            } else {
                format!("NOT ({any})")
            }
        }
        Op::Between => match value {
            Value::List(bounds) if bounds.len() == 2 => {
                format!("{} AND {}", guarded(compare(&e, &bounds[0], ">=", params), negated), guarded(compare(&e, &bounds[1], "<=", params), negated))
            }
            _ => "FALSE".into(),
        },
        Op::Contains | Op::NotContains => {
            let found = if e.kind == Kind::Json {
                format!("{} @> {}", e.json, params.json(&Value::List(vec![value.clone()])))
            } else {
                let needle = match value {
                    Value::Text(s) => s.clone(),
                    other => other.to_json().to_string(),
                };
                format!("{} ILIKE {}", e.text, params.text(format!("%{}%", like_escape(&needle))))
            };
            if c.op == Op::Contains {
                found
            } else {
                format!("NOT coalesce(({found}), false)")
            }
        }
        Op::StartsWith | Op::EndsWith => {
            let needle = like_escape(value.as_str().unwrap_or_default());
            let pattern = if c.op == Op::StartsWith { format!("{needle}%") } else { format!("%{needle}") };
            format!("{} ILIKE {}", e.text, params.text(pattern))
        }
        Op::Like => format!("jsonb_typeof({}) = 'string' AND {} ILIKE {}", e.json, e.text, params.text(value.as_str().unwrap_or_default().to_string())),
        Op::Regex => format!("jsonb_typeof({}) = 'string' AND {} ~ {}", e.json, e.text, params.text(value.as_str().unwrap_or_default().to_string())),
        Op::Null => {
            if matches!(value, Value::Bool(true)) {
                is_null(&e)
            } else {
                format!("NOT {}", is_null(&e))
            }
        }
        Op::Exists => {
            if matches!(value, Value::Bool(true)) {
                format!("NOT {}", is_null(&e))
            } else {
                is_null(&e)
            }
        }
    };
    Ok(guarded(sql, negated))
}

/// A filter as a SQL boolean expression over rows aliased `t`, for a WHERE
/// or FILTER clause (where a NULL excludes a row).
pub(crate) fn filter(catalog: &Catalog, object: &ObjectDef, f: &Filter, params: &mut Params) -> Result<String, DomainError> {
    filter_in(catalog, object, f, params, false)
}

/// `negated`: under an odd number of NOTs, where a NULL must read as false.
/// Under an even number the whole filter grows with each condition, so a
/// NULL there decides the row exactly as false would.
fn filter_in(catalog: &Catalog, object: &ObjectDef, f: &Filter, params: &mut Params, negated: bool) -> Result<String, DomainError> {
    let parts = |list: &[Filter], params: &mut Params| -> Result<Vec<String>, DomainError> {
        list.iter().map(|x| filter_in(catalog, object, x, params, negated)).collect()
    };
    Ok(match f {
        Filter::And(list) if list.is_empty() => "TRUE".into(),
        Filter::Or(list) if list.is_empty() => "FALSE".into(),
        Filter::And(list) => format!("({})", parts(list, params)?.join(" AND ")),
        Filter::Or(list) => format!("({})", parts(list, params)?.join(" OR ")),
        Filter::Not(inner) => format!("(NOT {})", filter_in(catalog, object, inner, params, !negated)?),
        Filter::Cond(c) => condition(catalog, object, c, params, negated)?,
    })
}

/// ORDER BY terms for one sort key, matching the in-process model: nulls last
/// ascending, text case-insensitively with the exact bytes breaking ties.
pub(crate) fn order_terms(e: &Expr, descending: bool) -> Vec<String> {
    let (dir, nulls) = if descending { ("DESC", "NULLS FIRST") } else { ("ASC", "NULLS LAST") };
    match e.kind {
        Kind::Text => vec![format!("lower({}) COLLATE \"C\" {dir} {nulls}", e.text), format!("{} COLLATE \"C\" {dir} {nulls}", e.text)],
        Kind::Number | Kind::Bool => vec![format!("{} {dir} {nulls}", e.typed)],
        Kind::Json => vec![format!("{} {dir} {nulls}", e.json)],
    }
}
