//! Ranges kept built: the union of a wide range's keys (`estimate > 50`,
//! `due_date >= 2026-10-01`) is the costly part of a compound query, and list
//! views send the same ranges again and again. An index keeps the last few
//! wide ranges it built as bitmaps and keeps them right on every write (a
//! row whose key enters or leaves a kept range is added or removed there),
//! so a kept range is never stale and never needs invalidating; it is only
//! forgotten when newer ranges push it out. In the spirit of a search
//! engine's filter cache, but maintained instead of dropped on change.

use std::ops::Bound;
use std::sync::Arc;

use roaring::RoaringBitmap;

use super::slots::Slot;
use super::table::{in_bounds, IndexKey};

/// Ranges kept per index.
const KEPT: usize = 8;

/// Ranges with fewer rows than this are built each time (cheap enough);
/// tests keep small ones too, so that their small tables go through here.
pub(crate) const KEEP_FROM: u64 = if cfg!(test) { 8 } else { 4096 };

struct Kept {
    low: Bound<IndexKey>,
    high: Bound<IndexKey>,
    bits: Arc<RoaringBitmap>,
    used: u64,
}

#[derive(Default)]
pub(crate) struct RangeCache {
    kept: Vec<Kept>,
    clock: u64,
}

impl RangeCache {
    /// The kept bitmap of exactly this range.
    pub fn get(&mut self, low: &Bound<IndexKey>, high: &Bound<IndexKey>) -> Option<Arc<RoaringBitmap>> {
        self.clock += 1;
        let clock = self.clock;
        let kept = self.kept.iter_mut().find(|k| k.low == *low && k.high == *high)?;
        kept.used = clock;
        Some(kept.bits.clone())
    }

    /// Whether this range is kept (without counting as a use).
    pub fn has(&self, low: &Bound<IndexKey>, high: &Bound<IndexKey>) -> bool {
        self.kept.iter().any(|k| k.low == *low && k.high == *high)
    }

    /// Keeps a built range, forgetting the least recently used one beyond [`KEPT`].
    pub fn put(&mut self, low: Bound<IndexKey>, high: Bound<IndexKey>, bits: Arc<RoaringBitmap>) {
        if self.kept.iter().any(|k| k.low == low && k.high == high) {
            return;
        }
        if self.kept.len() >= KEPT {
            if let Some(oldest) = (0..self.kept.len()).min_by_key(|i| self.kept[*i].used) {
                self.kept.swap_remove(oldest);
            }
        }
        self.clock += 1;
        self.kept.push(Kept { low, high, bits, used: self.clock });
    }

    /// A row took this key: every kept range holding the key gains the slot.
    pub fn add(&mut self, slot: Slot, key: &IndexKey) {
        for kept in self.kept.iter_mut().filter(|k| in_bounds(key.borrowed(), &k.low, &k.high)) {
            Arc::make_mut(&mut kept.bits).insert(slot);
        }
    }

    /// A row left this key.
    pub fn remove(&mut self, slot: Slot, key: &IndexKey) {
        for kept in self.kept.iter_mut().filter(|k| in_bounds(key.borrowed(), &k.low, &k.high)) {
            Arc::make_mut(&mut kept.bits).remove(slot);
        }
    }
}
