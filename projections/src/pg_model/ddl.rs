//! Tables and indexes generated from an object definition.

use domain::metadata::{FieldType, ObjectDef};

use super::sql::{kind_of, Kind};
use super::{naming, table};

/// The SQL expression of a top-level field over a row aliased `t`, typed so
/// that indexes and queries agree: numbers as numeric, booleans as boolean,
/// lists and composites as jsonb, the rest as text.
/// An empty alias leaves columns unqualified (index definitions).
pub(crate) fn field_expr(object: &ObjectDef, field: &str, alias: &str) -> String {
    let alias = if alias.is_empty() { String::new() } else { format!("{alias}.") };
    if field == "id" {
        return format!("{alias}id");
    }
    match kind_of(object.field(field)) {
        Kind::Number => format!("(({alias}data->>'{field}')::numeric)"),
        Kind::Bool => format!("(({alias}data->>'{field}')::boolean)"),
        Kind::Json => format!("({alias}data->'{field}')"),
        Kind::Text => format!("({alias}data->>'{field}')"),
    }
}

/// A field as an index expression: its typed form, text under the `C`
/// collation that every text comparison of `sql.rs` uses (an index serves a
/// comparison only under the same collation).
fn index_expr(object: &ObjectDef, field: &str) -> String {
    let expr = field_expr(object, field, "");
    if field != "id" && kind_of(object.field(field)) == Kind::Text {
        format!("({expr} COLLATE \"C\")")
    } else {
        expr
    }
}

/// `CREATE TABLE` and `CREATE INDEX` statements for an object (idempotent).
pub(crate) fn statements(object: &ObjectDef) -> Vec<String> {
    let table = table(&object.name);
    let mut out = vec![format!("CREATE TABLE IF NOT EXISTS {table} (id text PRIMARY KEY, data jsonb NOT NULL)")];
    let mut sets: Vec<Vec<String>> = object.indexes.iter().map(|i| i.fields.clone()).collect();
    for field in &object.fields {
        if field.unique || field.field_type.is_reference() || field.raw_index() {
            sets.push(vec![field.name.clone()]);
        }
    }
    sets.sort();
    sets.dedup();
    for fields in sets {
        let known =
            fields.iter().all(|f| object.field(f).is_some_and(|d| d.field_type != FieldType::Formula) || domain::metadata::SYSTEM_FIELDS.contains(&f.as_str()));
        if !known || fields.is_empty() {
            continue;
        }
        let exprs: Vec<String> = fields.iter().map(|f| index_expr(object, f)).collect();
        // Indexes of earlier versions (text under the database's collation, which text comparisons do not use).
        out.push(format!("DROP INDEX IF EXISTS {}", naming::index_v1(&object.name, &fields)));
        out.push(format!("CREATE INDEX IF NOT EXISTS {} ON {table} ({})", naming::index(&object.name, &fields), exprs.join(", ")));
    }
    out
}
