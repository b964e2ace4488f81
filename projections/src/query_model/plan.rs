//! Choosing rows through indexes: the primary key and the field indexes
//! answer `=`, `in` and ranges on top-level conditions; the rest of the filter
//! is then checked row by row.

use std::collections::BTreeSet;
use std::ops::Bound;

use domain::query::{Condition, Filter, Op, Operand};
use std::sync::Arc;

use domain::value::{Record, Value};

use super::table::{IdSet, Table};

/// Ids an index gave: one key's set (already in id order), or a list.
pub(crate) enum Ids<'a> {
    Set(Option<&'a IdSet>),
    List(Vec<&'a str>),
}

impl<'a> Ids<'a> {
    fn len(&self) -> usize {
        match self {
            Ids::Set(set) => set.map_or(0, IdSet::len),
            Ids::List(list) => list.len(),
        }
    }

    /// The ids in id order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = &'a str> + '_> {
        match self {
            Ids::Set(set) => Box::new(set.iter().flat_map(|s| s.iter())),
            Ids::List(list) => Box::new(list.iter().copied()),
        }
    }
}

/// Rows to consider: every row, or the ids an index gave (in id order).
/// `exact` says the rows are exactly the matches (no row check needed).
pub(crate) struct Candidates<'a> {
    pub ids: Option<Ids<'a>>,
    pub exact: bool,
}

impl<'a> Candidates<'a> {
    /// How many rows, without touching them.
    pub fn len(&self, table: &Table) -> usize {
        self.ids.as_ref().map_or(table.row_count(), Ids::len)
    }

    /// The rows, in id order.
    pub fn rows(&self, table: &'a Table) -> Vec<&'a Arc<Record>> {
        match &self.ids {
            Some(ids) => ids.iter().filter_map(|id| table.get(id)).collect(),
            None => table.rows().collect(),
        }
    }
}

fn top_level(filter: &Filter) -> Vec<&Condition> {
    match filter {
        Filter::Cond(c) => vec![c],
        Filter::And(list) => list.iter().filter_map(|f| if let Filter::Cond(c) = f { Some(c) } else { None }).collect(),
        _ => Vec::new(),
    }
}

fn is_single(filter: &Filter) -> bool {
    match filter {
        Filter::Cond(_) => true,
        Filter::And(list) => list.len() == 1 && matches!(list[0], Filter::Cond(_)),
        _ => false,
    }
}

/// Ids the index gives for one condition, or `None` when it cannot answer it.
fn ids_for<'a>(table: &'a Table, c: &Condition) -> Option<Ids<'a>> {
    let Operand::Value(value) = &c.value else { return None };
    if c.field == "id" {
        let wanted: Vec<&Value> = match (c.op, value) {
            (Op::Eq, v) => vec![v],
            (Op::In, Value::List(items)) => items.iter().collect(),
            _ => return None,
        };
        let mut ids: Vec<&str> = Vec::new();
        for v in wanted {
            let Value::Text(id) = v else { return None };
            if let Some(record) = table.get(id) {
                if let Some(Value::Text(own)) = record.get("id") {
                    ids.push(own);
                }
            }
        }
        ids.sort();
        ids.dedup();
        return Some(Ids::List(ids));
    }
    let kind = table.kind_of(&c.field)?;
    let key = |v: &Value| kind.key(v);
    match (c.op, value) {
        (Op::Eq, Value::Null) => None,
        // A value of another kind compares loosely (text "5" equals 5): leave it to the row check.
        (Op::Eq, v) => key(v).map(|k| Ids::Set(table.equal(&c.field, &k))),
        (Op::In, Value::List(items)) => {
            if items.iter().any(Value::is_null) {
                return None;
            }
            let mut set: BTreeSet<&str> = BTreeSet::new();
            for item in items {
                set.extend(table.equal(&c.field, &key(item)?).into_iter().flat_map(IdSet::iter));
            }
            Some(Ids::List(set.into_iter().collect()))
        }
        (Op::Gt | Op::Gte | Op::Lt | Op::Lte, v) => {
            let k = key(v)?;
            let (low, high) = match c.op {
                Op::Gt => (Bound::Excluded(k), Bound::Unbounded),
                Op::Gte => (Bound::Included(k), Bound::Unbounded),
                Op::Lt => (Bound::Unbounded, Bound::Excluded(k)),
                _ => (Bound::Unbounded, Bound::Included(k)),
            };
            Some(sorted(table.range(&c.field, low, high)))
        }
        (Op::Between, Value::List(bounds)) if bounds.len() == 2 => match (key(&bounds[0]), key(&bounds[1])) {
            (Some(a), Some(b)) => Some(sorted(table.range(&c.field, Bound::Included(a), Bound::Included(b)))),
            _ => None,
        },
        _ => None,
    }
}

/// Range results come in key order; candidates go in id order.
fn sorted(mut ids: Vec<&str>) -> Ids<'_> {
    ids.sort();
    Ids::List(ids)
}

/// The rows a filter needs looked at: through the most selective index, or all rows.
pub(crate) fn candidates<'a>(table: &'a Table, filter: Option<&Filter>) -> Candidates<'a> {
    let Some(filter) = filter else {
        return Candidates { ids: None, exact: true };
    };
    let mut best: Option<Ids> = None;
    for condition in top_level(filter) {
        if let Some(ids) = ids_for(table, condition) {
            if best.as_ref().is_none_or(|b| ids.len() < b.len()) {
                best = Some(ids);
            }
        }
    }
    match best {
        Some(ids) => Candidates { ids: Some(ids), exact: is_single(filter) },
        None => Candidates { ids: None, exact: false },
    }
}
