//! A page of exact matches straight from the indexes: the first rows in id
//! order, or in the order of an indexed sort field, found without sorting
//! every match.
//!
//! Both choose between walking and gathering by what each would touch: a
//! walk (rows in id order, or a sort field's keys in order) stops after
//! `offset + limit` matches and touches about `wanted * rows / matches`
//! entries; gathering takes every match and selects the first ones. The
//! walk wins when matches are many, gathering when they are few.

use std::cmp::Ordering;
use std::ops::Bound;

use domain::query::{Filter, SortOrder};
use roaring::RoaringBitmap;

use super::plan::{bounds_of, Candidates};
use super::rows::Rows;
use super::slots::{Slot, SlotSet};
use super::table::{FieldIndex, IndexKey, KeyKind, Table};

/// A key with more matches than this may be walked in id order instead of
/// gathered (tests walk small keys too, so that their tables take this path).
const GATHER_AT_MOST: u64 = if cfg!(test) { 4 } else { 4096 };

/// Whether walking `walked` entries to find `wanted` of `matches` beats gathering the matches.
fn walk_pays(wanted: u64, walked: u64, matches: u64) -> bool {
    // A walk visits about wanted * walked / matches entries, gathering every match once: each step costs about the same.
    wanted.saturating_mul(walked) <= matches.saturating_mul(matches)
}

/// The first `need` slots in id order, from slots in any order. Slots below
/// the rows' order bound are in id order and before every other row, so they
/// are taken by number; only the rest are ordered by their ids.
fn first_by_id(rows: &Rows, slots: Vec<Slot>, need: usize) -> Vec<Slot> {
    if need == 0 || slots.is_empty() {
        return Vec::new();
    }
    let bound = rows.ordered();
    let (mut ordered, rest): (Vec<Slot>, Vec<Slot>) = slots.into_iter().partition(|slot| *slot < bound);
    if need < ordered.len() {
        ordered.select_nth_unstable(need);
        ordered.truncate(need);
    }
    ordered.sort_unstable();
    if ordered.len() < need && !rest.is_empty() {
        // Ids looked up once, not twice per comparison.
        let mut keyed: Vec<(&str, Slot)> = rest.into_iter().filter_map(|slot| rows.row(slot).map(|row| (&*row.id, slot))).collect();
        let more = need - ordered.len();
        if more < keyed.len() {
            keyed.select_nth_unstable_by(more, |a, b| a.0.cmp(b.0));
            keyed.truncate(more);
        }
        keyed.sort_unstable_by(|a, b| a.0.cmp(b.0));
        ordered.extend(keyed.into_iter().map(|(_, slot)| slot));
    }
    ordered
}

/// A page's slots and how they were found (for explanations).
pub(crate) struct Page {
    pub slots: Vec<Slot>,
    pub how: &'static str,
}

/// The first `wanted` matches in id order.
pub(crate) fn by_id(table: &Table, candidates: &Candidates, wanted: u64) -> Page {
    let rows = &table.rows;
    let Some(slots) = &candidates.slots else {
        return Page { slots: rows.slots_by_id().take(wanted as usize).collect(), how: "the first rows in id order" };
    };
    if walk_pays(wanted, rows.len() as u64, slots.len()) {
        let slots = rows.slots_by_id().filter(|slot| slots.contains(*slot)).take(wanted as usize).collect();
        return Page { slots, how: "rows walked in id order until the page was full" };
    }
    Page { slots: first_by_id(rows, slots.iter().collect(), wanted as usize), how: "the matches gathered and the first ones by id selected" }
}

/// The bounds a filter puts on one field at its top level (conditions ANDed
/// with the rest), to walk only that part of the field's index.
fn bounds_on(filter: Option<&Filter>, field: &str, kind: KeyKind) -> (Bound<IndexKey>, Bound<IndexKey>) {
    let mut low = Bound::Unbounded;
    let mut high = Bound::Unbounded;
    let parts: &[Filter] = match filter {
        Some(Filter::And(parts)) => parts,
        Some(single @ Filter::Cond(_)) => std::slice::from_ref(single),
        _ => &[],
    };
    // Keeps the tighter of two bounds on the same side.
    fn tighter(current: Bound<IndexKey>, new: Bound<IndexKey>, is_low: bool) -> Bound<IndexKey> {
        let key = |b: &Bound<IndexKey>| match b {
            Bound::Included(k) | Bound::Excluded(k) => Some(k.clone()),
            Bound::Unbounded => None,
        };
        match (key(&current), key(&new)) {
            (None, _) => new,
            (_, None) => current,
            (Some(a), Some(b)) => match (a.cmp(&b), is_low) {
                (Ordering::Less, true) | (Ordering::Greater, false) => new,
                (Ordering::Equal, _) if matches!(new, Bound::Excluded(_)) => new,
                _ => current,
            },
        }
    }
    for part in parts {
        let Filter::Cond(c) = part else { continue };
        if c.field != field {
            continue;
        }
        if let Some((from, to)) = bounds_of(c, kind) {
            low = tighter(low, from, true);
            high = tighter(high, to, false);
        }
    }
    (low, high)
}

/// The matches as one bitmap, when they are one already (every row, a built set, a key's large set).
fn bitmap_of<'a>(table: &'a Table, candidates: &'a Candidates) -> Option<&'a RoaringBitmap> {
    match &candidates.slots {
        None => Some(table.rows.live()),
        Some(slots) => slots.bitmap(),
    }
}

/// The members of one key's set that are matches, in slot order.
fn matching(set: &SlotSet, candidates: &Candidates, universe: Option<&RoaringBitmap>) -> Vec<Slot> {
    match (&candidates.slots, universe, set) {
        (None, _, set) => set.iter().collect(),
        (_, Some(bits), SlotSet::Many(many)) => (many & bits).iter().collect(),
        (Some(slots), _, set) => set.iter().filter(|slot| slots.contains(*slot)).collect(),
    }
}

/// The first `wanted` matches in the order of one indexed field (ties by id,
/// rows without a value last ascending and first descending), or `None`
/// when sorting the matches would touch less.
pub(crate) fn by_field(table: &Table, candidates: &Candidates, field: &str, order: SortOrder, filter: Option<&Filter>, wanted: u64) -> Option<Page> {
    let index: &FieldIndex = table.index_of(field).filter(|index| index.sorts_like_values())?;
    let rows = &table.rows;
    let matches = candidates.len(table);
    // Sorting the matches reads each row's value; a walk step only tests a slot: about sixteen times cheaper.
    if !walk_pays(wanted, index.present().len(), matches.saturating_mul(4)) {
        return None;
    }
    let (low, high) = bounds_on(filter, field, index.kind());
    let descending = order == SortOrder::Desc;
    let universe = bitmap_of(table, candidates);
    let nulls = || -> Vec<Slot> {
        if index.present().len() == rows.len() as u64 {
            return Vec::new();
        }
        match (universe, &candidates.slots) {
            (Some(bits), _) => (bits - index.present()).iter().collect(),
            (None, Some(slots)) => slots.iter().filter(|slot| !index.present().contains(*slot)).collect(),
            (None, None) => Vec::new(),
        }
    };
    let wanted = wanted as usize;
    let mut out: Vec<Slot> = Vec::with_capacity(wanted.min(10_000));
    if descending {
        out = first_by_id(rows, nulls(), wanted);
    }
    let bound = rows.ordered();
    let keys = index.range(low, high);
    let keys: Box<dyn Iterator<Item = &SlotSet>> = if descending { Box::new(keys.rev()) } else { Box::new(keys) };
    for set in keys {
        let need = wanted - out.len();
        if need == 0 {
            break;
        }
        // One row under this key (most keys of a number or time field): nothing to order.
        if let SlotSet::One(slot) = set {
            if candidates.contains(*slot) {
                out.push(*slot);
            }
            continue;
        }
        // A key's matches in slot order: those below the order bound come first, in id order.
        let members = matching(set, candidates, universe);
        let ordered = members.partition_point(|slot| *slot < bound);
        if ordered >= need {
            out.extend_from_slice(&members[..need]);
            break;
        }
        out.extend_from_slice(&members[..ordered]);
        let rest = &members[ordered..];
        let more = need - ordered;
        // Many more rows than wanted out of order: walk the ids instead of ordering them all.
        if rest.len() as u64 > GATHER_AT_MOST && walk_pays(more as u64, rows.len() as u64, rest.len() as u64) {
            out.extend(rows.slots_by_id().filter(|slot| *slot >= bound && set.contains(*slot) && candidates.contains(*slot)).take(more));
        } else {
            out.extend(first_by_id(rows, rest.to_vec(), more));
        }
    }
    if !descending && out.len() < wanted {
        let need = wanted - out.len();
        out.extend(first_by_id(rows, nulls(), need));
    }
    Some(Page { slots: out, how: "the sort field's index walked in order until the page was full" })
}
