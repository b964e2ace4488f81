//! Choosing rows through indexes: the primary key and the field indexes
//! answer `=`, `in` and ranges; conditions under AND are intersected (the
//! smallest set walked, the others probed) and under OR united, so a filter
//! made only of indexed conditions (a caller's query AND its row rules) is
//! answered exactly without looking at rows. The rest is checked row by row.

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

    fn contains(&self, id: &str) -> bool {
        match self {
            Ids::Set(set) => set.is_some_and(|s| s.contains(id)),
            Ids::List(list) => list.binary_search(&id).is_ok(),
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

/// Up to this size ratio two sets are intersected by merging them, beyond it
/// by probing the larger one per id of the smaller.
const MERGE_RATIO: usize = 8;

/// The ids two sorted walks share.
fn merge_intersection<'a>(left: impl Iterator<Item = &'a str>, right: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let (mut left, mut right) = (left.peekable(), right.peekable());
    let mut out = Vec::new();
    while let (Some(a), Some(b)) = (left.peek(), right.peek()) {
        match a.cmp(b) {
            std::cmp::Ordering::Less => {
                left.next();
            }
            std::cmp::Ordering::Greater => {
                right.next();
            }
            std::cmp::Ordering::Equal => {
                out.push(*a);
                left.next();
                right.next();
            }
        }
    }
    out
}

/// What indexes can say about a filter, before any set is built.
enum Plan<'a> {
    Ids(Ids<'a>),
    /// Every part must hold: walk the smallest, probe the others.
    All(Vec<Plan<'a>>),
    /// Some part must hold.
    Any(Vec<Plan<'a>>),
}

impl<'a> Plan<'a> {
    /// At most how many ids.
    fn estimate(&self) -> usize {
        match self {
            Plan::Ids(ids) => ids.len(),
            Plan::All(parts) => parts.iter().map(Plan::estimate).min().unwrap_or(0),
            Plan::Any(parts) => parts.iter().map(Plan::estimate).sum(),
        }
    }

    fn contains(&self, id: &str) -> bool {
        match self {
            Plan::Ids(ids) => ids.contains(id),
            Plan::All(parts) => parts.iter().all(|p| p.contains(id)),
            Plan::Any(parts) => parts.iter().any(|p| p.contains(id)),
        }
    }

    /// The ids, in id order.
    fn build(self) -> Ids<'a> {
        match self {
            Plan::Ids(ids) => ids,
            Plan::All(mut parts) => {
                let smallest = (0..parts.len()).min_by_key(|i| parts[*i].estimate()).expect("an AND plan has parts");
                let walked = parts.swap_remove(smallest).build();
                if parts.is_empty() {
                    return walked;
                }
                // Two sets of like size: one merge of both (sorted) walks beats a probe per id.
                if let [Plan::Ids(other)] = parts.as_slice() {
                    if other.len() <= walked.len().saturating_mul(MERGE_RATIO) {
                        return Ids::List(merge_intersection(walked.iter(), other.iter()));
                    }
                }
                Ids::List(walked.iter().filter(|id| parts.iter().all(|p| p.contains(id))).collect())
            }
            Plan::Any(parts) => {
                let mut all: Vec<&'a str> = Vec::new();
                for part in parts {
                    all.extend(part.build().iter());
                }
                all.sort_unstable();
                all.dedup();
                Ids::List(all)
            }
        }
    }
}

/// The plan for a filter and whether it is exact (no row check needed); `None` when indexes cannot narrow it.
fn plan_of<'a>(table: &'a Table, filter: &Filter) -> Option<(Plan<'a>, bool)> {
    match filter {
        Filter::Cond(c) => ids_for(table, c).map(|ids| (Plan::Ids(ids), true)),
        Filter::And(list) => {
            let mut parts = Vec::new();
            let mut exact = true;
            // Absorption: `A AND (A OR B)` is `A` (a query narrower than the caller's row rules).
            let implied = |part: &Filter| matches!(part, Filter::Or(branches) if branches.iter().any(|b| list.iter().any(|other| other == b)));
            for part in list.iter().filter(|part| !implied(part)) {
                match plan_of(table, part) {
                    Some((plan, part_exact)) => {
                        exact &= part_exact;
                        parts.push(plan);
                    }
                    None => exact = false,
                }
            }
            match parts.len() {
                0 => None,
                1 => parts.pop().map(|p| (p, exact)),
                _ => Some((Plan::All(parts), exact)),
            }
        }
        Filter::Or(list) if !list.is_empty() => {
            let mut parts = Vec::new();
            let mut exact = true;
            for part in list {
                let (plan, part_exact) = plan_of(table, part)?;
                exact &= part_exact;
                parts.push(plan);
            }
            Some((Plan::Any(parts), exact))
        }
        _ => None,
    }
}

/// The rows a filter needs looked at: through its indexes, or all rows.
pub(crate) fn candidates<'a>(table: &'a Table, filter: Option<&Filter>) -> Candidates<'a> {
    let Some(filter) = filter else {
        return Candidates { ids: None, exact: true };
    };
    match plan_of(table, filter) {
        Some((plan, exact)) => Candidates { ids: Some(plan.build()), exact },
        None => Candidates { ids: None, exact: false },
    }
}
