//! Row slots and the sets of them an index keeps per key.
//!
//! Every row of a table has a slot: a small dense number (a freed slot is
//! reused), so that the rows an index gives for a key are a set of numbers,
//! and sets combine as compressed bitmaps (roaring) instead of as sets of ids.
//! A key held by one row (every key of a unique field) keeps its slot inline,
//! a key held by a few keeps a sorted vector, and only a key held by many
//! becomes a bitmap: most keys of most fields are rare, and a bitmap costs a
//! few allocations however small it is.

use roaring::RoaringBitmap;

/// A row's number in its table.
pub(crate) type Slot = u32;

/// Above this many slots, a key's set becomes a bitmap.
const FEW: usize = 32;

/// The slots that share one key.
#[derive(Debug, Clone)]
pub(crate) enum SlotSet {
    One(Slot),
    /// Sorted, at most [`FEW`].
    Few(Vec<Slot>),
    Many(RoaringBitmap),
}

impl Default for SlotSet {
    fn default() -> Self {
        SlotSet::Few(Vec::new())
    }
}

impl SlotSet {
    /// A set from slots in any order, without duplicates.
    pub fn from_unsorted(mut slots: Vec<Slot>) -> SlotSet {
        slots.sort_unstable();
        SlotSet::from_sorted(slots)
    }

    /// A set from slots in strictly increasing order (the caller checked it).
    pub fn from_sorted(slots: Vec<Slot>) -> SlotSet {
        debug_assert!(slots.windows(2).all(|pair| pair[0] < pair[1]), "slots in strictly increasing order");
        match slots.len() {
            1 => SlotSet::One(slots[0]),
            n if n <= FEW => SlotSet::Few(slots),
            _ => SlotSet::Many(RoaringBitmap::from_sorted_iter(slots).expect("sorted slots")),
        }
    }

    /// Adds a slot; false when it was there.
    pub fn insert(&mut self, slot: Slot) -> bool {
        match self {
            SlotSet::One(own) if *own == slot => false,
            SlotSet::One(own) => {
                let own = *own;
                *self = SlotSet::Few(if own < slot { vec![own, slot] } else { vec![slot, own] });
                true
            }
            SlotSet::Few(slots) if slots.is_empty() => {
                *self = SlotSet::One(slot);
                true
            }
            SlotSet::Few(slots) => match slots.binary_search(&slot) {
                Ok(_) => false,
                Err(at) => {
                    slots.insert(at, slot);
                    if slots.len() > FEW {
                        *self = SlotSet::Many(RoaringBitmap::from_sorted_iter(slots.iter().copied()).expect("sorted slots"));
                    }
                    true
                }
            },
            SlotSet::Many(bits) => bits.insert(slot),
        }
    }

    /// Removes a slot; false when it was not there.
    pub fn remove(&mut self, slot: Slot) -> bool {
        match self {
            SlotSet::One(own) if *own == slot => {
                *self = SlotSet::default();
                true
            }
            SlotSet::One(_) => false,
            SlotSet::Few(slots) => match slots.binary_search(&slot) {
                Ok(at) => {
                    slots.remove(at);
                    true
                }
                Err(_) => false,
            },
            SlotSet::Many(bits) => bits.remove(slot),
        }
    }

    pub fn len(&self) -> u64 {
        match self {
            SlotSet::One(_) => 1,
            SlotSet::Few(slots) => slots.len() as u64,
            SlotSet::Many(bits) => bits.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, slot: Slot) -> bool {
        match self {
            SlotSet::One(own) => *own == slot,
            SlotSet::Few(slots) => slots.binary_search(&slot).is_ok(),
            SlotSet::Many(bits) => bits.contains(slot),
        }
    }

    /// The slots in ascending order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = Slot> + '_> {
        match self {
            SlotSet::One(slot) => Box::new(std::iter::once(*slot)),
            SlotSet::Few(slots) => Box::new(slots.iter().copied()),
            SlotSet::Many(bits) => Box::new(bits.iter()),
        }
    }

    /// Adds every slot of this set to a bitmap.
    pub fn add_to(&self, bits: &mut RoaringBitmap) {
        match self {
            SlotSet::One(slot) => {
                bits.insert(*slot);
            }
            SlotSet::Few(slots) => slots.iter().for_each(|s| {
                bits.insert(*s);
            }),
            SlotSet::Many(many) => *bits |= many,
        }
    }

    /// The set as a bitmap of its own.
    pub fn to_bitmap(&self) -> RoaringBitmap {
        match self {
            SlotSet::Many(bits) => bits.clone(),
            other => RoaringBitmap::from_sorted_iter(other.iter()).expect("sorted slots"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inserts and removes in any order keep the set equal to a plain ordered set, across every form.
    #[test]
    fn a_slot_set_behaves_like_an_ordered_set() {
        let mut set = SlotSet::default();
        let mut plain = std::collections::BTreeSet::new();
        let mut n: u32 = 7;
        for step in 0..2_000u32 {
            n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let slot = (n >> 16) % 90;
            if step % 3 == 2 {
                assert_eq!(set.remove(slot), plain.remove(&slot));
            } else {
                assert_eq!(set.insert(slot), plain.insert(slot));
            }
            assert_eq!(set.len(), plain.len() as u64);
            assert!(set.iter().eq(plain.iter().copied()));
        }
        assert!(matches!(set, SlotSet::Many(_)), "grew into a bitmap");
        let rebuilt = SlotSet::from_unsorted(plain.iter().rev().copied().collect());
        assert!(rebuilt.iter().eq(plain.iter().copied()));
    }
}
