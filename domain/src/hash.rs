//! A small, stable, non-cryptographic hash (FNV-1a, 64 bit) for derived names
//! and tags: ETags, idempotency keys of seed data, index names, lock keys.
//! Stable across builds and platforms, unlike `std`'s randomised hasher.

/// FNV-1a over `bytes`.
pub fn fnv64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= *byte as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_values() {
        assert_eq!(super::fnv64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(super::fnv64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
