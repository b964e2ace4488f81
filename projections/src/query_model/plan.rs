//! Choosing rows through indexes. Each indexed condition (`=`, `in`, ranges,
//! `between`, and `=`/`in` on the id) names a set of row slots; conditions
//! under AND are intersected and under OR united, so a filter made only of
//! indexed conditions (a caller's query AND its row rules) is answered
//! exactly without looking at rows, and its total is the size of one bitmap.
//!
//! Sets are not built blindly: each part of an AND first says how many slots
//! it holds at most (an index knows its keys' counts), the smallest is built,
//! and each larger part either intersects it as a bitmap or, when it is far
//! larger (a wide range), is checked per remaining slot against the row's
//! own value, which costs one look-up instead of a union of many keys. Wide
//! ranges, once built, are kept by their index ([`super::range_cache`]).
//! A part whose set is the whole table (a row rule such as `owner = me`
//! when the caller owns every row) narrows nothing and is dropped before
//! any set is built, so a rule that hides nothing costs nothing.

use std::ops::Bound;
use std::sync::Arc;

use domain::query::{Condition, Filter, Op, Operand};
use domain::value::Value;
use roaring::RoaringBitmap;

use super::range_cache::KEEP_FROM;
use super::slots::{Slot, SlotSet};
use super::table::{in_bounds, FieldIndex, IndexKey, KeyKind, Table};

/// A set of slots: one key's set in an index, or one built for the query.
pub(crate) enum Slots<'a> {
    Index(&'a SlotSet),
    Built(RoaringBitmap),
    /// A range an index keeps built ([`super::range_cache`]).
    Kept(Arc<RoaringBitmap>),
}

impl Slots<'_> {
    pub fn len(&self) -> u64 {
        match self {
            Slots::Index(set) => set.len(),
            Slots::Built(bits) => bits.len(),
            Slots::Kept(bits) => bits.len(),
        }
    }

    pub fn contains(&self, slot: Slot) -> bool {
        match self {
            Slots::Index(set) => set.contains(slot),
            Slots::Built(bits) => bits.contains(slot),
            Slots::Kept(bits) => bits.contains(slot),
        }
    }

    /// The slots in ascending order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = Slot> + '_> {
        match self {
            Slots::Index(set) => set.iter(),
            Slots::Built(bits) => Box::new(bits.iter()),
            Slots::Kept(bits) => Box::new(bits.iter()),
        }
    }

    /// The set as a bitmap, when it is one.
    pub fn bitmap(&self) -> Option<&RoaringBitmap> {
        match self {
            Slots::Index(SlotSet::Many(bits)) | Slots::Built(bits) => Some(bits),
            Slots::Kept(bits) => Some(bits),
            Slots::Index(_) => None,
        }
    }

    fn into_bitmap(self) -> RoaringBitmap {
        match self {
            Slots::Index(set) => set.to_bitmap(),
            Slots::Built(bits) => bits,
            Slots::Kept(bits) => Arc::unwrap_or_clone(bits),
        }
    }
}

/// Rows to consider: every row (`None`), or the slots the indexes gave.
/// `exact` says the rows are exactly the matches (no row check needed).
pub(crate) struct Candidates<'a> {
    pub slots: Option<Slots<'a>>,
    pub exact: bool,
}

impl Candidates<'_> {
    /// How many rows, without touching them.
    pub fn len(&self, table: &Table) -> u64 {
        self.slots.as_ref().map_or(table.row_count() as u64, Slots::len)
    }

    pub fn contains(&self, slot: Slot) -> bool {
        self.slots.as_ref().is_none_or(|s| s.contains(slot))
    }
}

/// A range over one field's index, not yet built.
struct Range<'a> {
    field: &'a str,
    index: &'a FieldIndex,
    low: Bound<IndexKey>,
    high: Bound<IndexKey>,
    /// At most this many slots.
    estimate: u64,
}

/// Keys a range's estimate adds up one by one; a wider range counts as the whole index.
const ESTIMATE_KEYS: usize = 1024;

impl<'a> Range<'a> {
    fn new(field: &'a str, index: &'a FieldIndex, low: Bound<IndexKey>, high: Bound<IndexKey>) -> Range<'a> {
        let mut estimate = 0;
        let mut sets = index.range(low.clone(), high.clone());
        for set in sets.by_ref().take(ESTIMATE_KEYS) {
            estimate += set.len();
        }
        if sets.next().is_some() {
            estimate = index.present().len();
        }
        Range { field, index, low, high, estimate }
    }

    /// Whether a row's own value falls in the range.
    fn holds(&self, table: &Table, slot: Slot) -> bool {
        let value = table.rows.row(slot).and_then(|row| row.record.get(self.field));
        value.and_then(|v| self.index.kind().key_ref(v)).is_some_and(|key| in_bounds(key, &self.low, &self.high))
    }

    /// The range's slots: kept from an earlier query, or built (and kept when wide).
    fn build(&self) -> Slots<'a> {
        if self.estimate < KEEP_FROM {
            return Slots::Built(self.union());
        }
        if let Some(kept) = self.index.kept_ranges().get(&self.low, &self.high) {
            return Slots::Kept(kept);
        }
        let bits = Arc::new(self.union());
        self.index.kept_ranges().put(self.low.clone(), self.high.clone(), bits.clone());
        Slots::Kept(bits)
    }

    /// The union of the range's keys: large sets merged as bitmaps, small ones gathered and sorted once.
    fn union(&self) -> RoaringBitmap {
        let mut bits = RoaringBitmap::new();
        let mut loose: Vec<Slot> = Vec::new();
        for set in self.index.range(self.low.clone(), self.high.clone()) {
            match set {
                SlotSet::Many(many) => bits |= many,
                small => loose.extend(small.iter()),
            }
        }
        if !loose.is_empty() {
            loose.sort_unstable();
            bits |= RoaringBitmap::from_sorted_iter(loose).expect("sorted slots");
        }
        bits
    }
}

/// What indexes can say about a filter, before any set is built.
enum Plan<'a> {
    Slots(Slots<'a>),
    Range(Range<'a>),
    /// Every part must hold.
    All(Vec<Plan<'a>>),
    /// Some part must hold.
    Any(Vec<Plan<'a>>),
    /// Every row holds (a part whose set is the whole table, such as a row
    /// rule the caller's rows all pass): it narrows nothing, so it costs nothing.
    Every,
}

/// A part this many times larger than the slots left is checked per slot instead of built.
const PROBE_RATIO: u64 = 16;

impl<'a> Plan<'a> {
    /// At most how many slots.
    fn estimate(&self) -> u64 {
        match self {
            Plan::Slots(slots) => slots.len(),
            Plan::Range(range) => range.estimate,
            Plan::All(parts) => parts.iter().map(Plan::estimate).min().unwrap_or(0),
            Plan::Any(parts) => parts.iter().map(Plan::estimate).sum(),
            Plan::Every => u64::MAX,
        }
    }

    /// [`Plan::Every`] for a set that holds every row of the table (indexes hold live rows only).
    fn or_every(self, table: &Table) -> Plan<'a> {
        match &self {
            Plan::Slots(slots) if slots.len() == table.row_count() as u64 => Plan::Every,
            _ => self,
        }
    }

    fn contains(&self, table: &Table, slot: Slot) -> bool {
        match self {
            Plan::Slots(slots) => slots.contains(slot),
            Plan::Range(range) => range.holds(table, slot),
            Plan::All(parts) => parts.iter().all(|p| p.contains(table, slot)),
            Plan::Any(parts) => parts.iter().any(|p| p.contains(table, slot)),
            Plan::Every => true,
        }
    }

    /// The slots; `None` for every row.
    fn build(self, table: &Table) -> Option<Slots<'a>> {
        Some(match self {
            Plan::Slots(slots) => slots,
            Plan::Range(range) => range.build(),
            Plan::All(mut parts) => {
                parts.sort_by_key(Plan::estimate);
                let mut parts = parts.into_iter();
                // A part that is every row narrows nothing: the first that narrows starts the set.
                let first = parts.by_ref().find_map(|part| part.build(table))?;
                let rest: Vec<Plan> = parts.collect();
                if rest.is_empty() {
                    return Some(first);
                }
                let mut bits = first.into_bitmap();
                for part in rest {
                    if bits.is_empty() {
                        break;
                    }
                    if part.estimate() > bits.len().saturating_mul(PROBE_RATIO) {
                        bits.retain(|slot| part.contains(table, slot));
                        continue;
                    }
                    match part.build(table) {
                        Some(Slots::Index(SlotSet::Many(many))) => bits &= many,
                        Some(Slots::Index(small)) => bits.retain(|slot| small.contains(slot)),
                        Some(Slots::Built(built)) => bits &= built,
                        Some(Slots::Kept(kept)) => bits &= &*kept,
                        None => {}
                    }
                }
                Slots::Built(bits)
            }
            Plan::Any(parts) => {
                let mut bits = RoaringBitmap::new();
                for part in parts {
                    match part.build(table)? {
                        Slots::Index(set) => set.add_to(&mut bits),
                        Slots::Built(built) => bits |= built,
                        Slots::Kept(kept) => bits |= &*kept,
                    }
                }
                Slots::Built(bits)
            }
            Plan::Every => return None,
        })
    }
}

/// The plan for one condition, or `None` when no index can answer it.
fn plan_condition<'a>(table: &'a Table, c: &'a Condition) -> Option<Plan<'a>> {
    let Operand::Value(value) = &c.value else { return None };
    if c.field == "id" {
        let wanted: Vec<&Value> = match (c.op, value) {
            (Op::Eq, v) => vec![v],
            (Op::In, Value::List(items)) => items.iter().collect(),
            _ => return None,
        };
        let mut bits = RoaringBitmap::new();
        for v in wanted {
            let Value::Text(id) = v else { return None };
            if let Some(slot) = table.rows.slot_of(id) {
                bits.insert(slot);
            }
        }
        return Some(Plan::Slots(Slots::Built(bits)));
    }
    let index = table.index_of(&c.field)?;
    let kind: KeyKind = index.kind();
    let key = |v: &Value| kind.key(v);
    match (c.op, value) {
        (Op::Eq, Value::Null) => None,
        // A value of another kind compares loosely (text "5" equals 5): leave it to the row check.
        (Op::Eq, v) => {
            let k = key(v)?;
            Some(Plan::Slots(match index.equal(&k) {
                Some(set) => Slots::Index(set),
                None => Slots::Built(RoaringBitmap::new()),
            }))
        }
        (Op::In, Value::List(items)) => {
            if items.iter().any(Value::is_null) {
                return None;
            }
            let keys: Vec<IndexKey> = items.iter().map(key).collect::<Option<_>>()?;
            let parts = keys.iter().map(|k| Plan::Slots(index.equal(k).map_or_else(|| Slots::Built(RoaringBitmap::new()), Slots::Index))).collect();
            Some(Plan::Any(parts))
        }
        _ => {
            let (low, high) = bounds_of(c, kind)?;
            Some(Plan::Range(Range::new(&c.field, index, low, high)))
        }
    }
}

/// The key bounds of a range condition (`>`, `>=`, `<`, `<=`, `between`) on a field keyed as `kind`.
pub(crate) fn bounds_of(c: &Condition, kind: KeyKind) -> Option<(Bound<IndexKey>, Bound<IndexKey>)> {
    let Operand::Value(value) = &c.value else { return None };
    let key = |v: &Value| kind.key(v);
    Some(match (c.op, value) {
        (Op::Gt, v) => (Bound::Excluded(key(v)?), Bound::Unbounded),
        (Op::Gte, v) => (Bound::Included(key(v)?), Bound::Unbounded),
        (Op::Lt, v) => (Bound::Unbounded, Bound::Excluded(key(v)?)),
        (Op::Lte, v) => (Bound::Unbounded, Bound::Included(key(v)?)),
        (Op::Between, Value::List(bounds)) if bounds.len() == 2 => (Bound::Included(key(&bounds[0])?), Bound::Included(key(&bounds[1])?)),
        _ => return None,
    })
}

/// What the indexes say about one condition, for an explanation: at most how
/// many rows, and how they are found; `None` when each row must be checked.
pub(crate) fn condition_plan(table: &Table, c: &Condition) -> Option<(u64, &'static str)> {
    let plan = plan_condition(table, c)?;
    let how = match &plan {
        Plan::Range(range) if range.index.kept_ranges().has(&range.low, &range.high) => "a range the index keeps built",
        Plan::Range(_) => "the keys of an index range",
        _ if c.field == "id" => "the primary key",
        Plan::Any(_) => "the keys of an index",
        _ => "an index key",
    };
    Some((plan.estimate(), how))
}

/// The plan for a filter and whether it is exact (no row check needed); `None` when indexes cannot narrow it.
fn plan_of<'a>(table: &'a Table, filter: &'a Filter) -> Option<(Plan<'a>, bool)> {
    match filter {
        Filter::Cond(c) => plan_condition(table, c).map(|plan| (plan.or_every(table), true)),
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
            // A part that holds every row narrows nothing; when no other part narrows, every row is a candidate.
            let planned = parts.len();
            parts.retain(|p| !matches!(p, Plan::Every));
            match parts.len() {
                0 if planned > 0 => Some((Plan::Every, exact)),
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
            let every = parts.iter().any(|p| matches!(p, Plan::Every));
            Some((if every { Plan::Every } else { Plan::Any(parts) }, exact))
        }
        _ => None,
    }
}

/// The rows a filter needs looked at: through its indexes, or all rows.
pub(crate) fn candidates<'a>(table: &'a Table, filter: Option<&'a Filter>) -> Candidates<'a> {
    let Some(filter) = filter else {
        return Candidates { slots: None, exact: true };
    };
    match plan_of(table, filter) {
        Some((plan, exact)) => Candidates { slots: plan.build(table), exact },
        None => Candidates { slots: None, exact: false },
    }
}
