//! A small deterministic generator (xorshift64), shared by this crate's unit
//! tests (a seed replays a randomised test) and its benchmarks (the same
//! data every run; they include this file).

/// Seeded: the same sequence for the same seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}
