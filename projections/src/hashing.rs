//! Hash maps for the maps a fold touches once or more per event (tables by
//! object, audit entries by record, shared names): foldhash, seeded per
//! process, instead of the standard SipHash, which showed up at about 4% of a
//! fold's samples.

/// A hash map with a fast, randomly seeded hasher.
pub(crate) type Map<K, V> = std::collections::HashMap<K, V, foldhash::quality::RandomState>;

/// A hash set with the same hasher.
pub(crate) type Set<K> = std::collections::HashSet<K, foldhash::quality::RandomState>;
