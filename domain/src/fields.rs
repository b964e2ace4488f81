//! [`Record`]: a record's fields, as one vector sorted by field name.
//!
//! A record has a handful to a few dozen fields, is built once and read many
//! times: a sorted vector answers lookups by binary search like a B-tree, in
//! one allocation the size of its fields (a B-tree node is sized for eleven
//! entries whatever the record holds, about 640 bytes), and is walked in
//! order without pointer chasing. Read models keep millions of records, so
//! this is most of their memory.
//!
//! Field names are [`Name`]s: decoded records share one interned copy of each
//! name (see [`crate::name`]).
//!
//! The API is the subset of `BTreeMap<String, Value>` the code base uses, with
//! the same semantics (one value per name, iteration in name order, a later
//! insert replaces), and the bincode encoding is the map's, byte for byte
//! (a length, then the pairs in name order): stored events are unchanged.

use std::collections::BTreeMap;

use bincode::de::Decoder;
use bincode::enc::Encoder;
use bincode::error::{DecodeError, EncodeError};
use bincode::{Decode, Encode};

use crate::name::Name;
use crate::value::Value;

/// A record: field name to value. System fields (`id`, `created_at`, ...) included.
#[derive(Clone, Default, PartialEq)]
pub struct Record {
    /// Sorted by name, names unique.
    fields: Vec<(Name, Value)>,
}

/// Iterates a record's fields in name order.
pub type Iter<'a> = std::iter::Map<std::slice::Iter<'a, (Name, Value)>, fn(&'a (Name, Value)) -> (&'a Name, &'a Value)>;

impl Record {
    pub fn new() -> Record {
        Record::default()
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        self.fields.binary_search_by(|(k, _)| k.as_str().cmp(name))
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.find(name).ok().map(|at| &self.fields[at].1)
    }

    /// [`Record::get`], looking at position `hint` first: where the field
    /// was in the last record read, so a pass over many records of one
    /// shape finds it in one compare. Returns where it was (or the hint).
    pub fn get_hinted(&self, name: &str, hint: usize) -> (Option<&Value>, usize) {
        match self.fields.get(hint) {
            Some((k, v)) if k.as_str() == name => (Some(v), hint),
            _ => match self.find(name) {
                Ok(at) => (Some(&self.fields[at].1), at),
                Err(_) => (None, hint),
            },
        }
    }

    /// The value of a field, to change in place (masks reach into expanded relations).
    pub fn get_mut_value(&mut self, name: &str) -> Option<&mut Value> {
        self.find(name).ok().map(|at| &mut self.fields[at].1)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.find(name).is_ok()
    }

    /// Sets a field; returns the value it replaced.
    pub fn insert(&mut self, name: impl Into<Name>, value: Value) -> Option<Value> {
        let name = name.into();
        match self.find(&name) {
            Ok(at) => Some(std::mem::replace(&mut self.fields[at].1, value)),
            Err(at) => {
                self.fields.insert(at, (name, value));
                None
            }
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<Value> {
        self.find(name).ok().map(|at| self.fields.remove(at).1)
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub fn iter(&self) -> Iter<'_> {
        self.fields.iter().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &Name> + ExactSizeIterator {
        self.fields.iter().map(|(k, _)| k)
    }

    /// Keeps the fields for which `keep` says so.
    pub fn retain(&mut self, mut keep: impl FnMut(&Name, &mut Value) -> bool) {
        self.fields.retain_mut(|(k, v)| keep(k, v));
    }

    /// Builds from pairs in any order; of repeated names the last one wins.
    fn from_pairs(mut fields: Vec<(Name, Value)>) -> Record {
        if !fields.windows(2).all(|w| w[0].0 < w[1].0) {
            // Stable: among equal names the last one given is last, and kept.
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            let mut unique: Vec<(Name, Value)> = Vec::with_capacity(fields.len());
            for pair in fields {
                match unique.last_mut() {
                    Some(last) if last.0 == pair.0 => *last = pair,
                    _ => unique.push(pair),
                }
            }
            fields = unique;
        }
        Record { fields }
    }
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Into<Name>> FromIterator<(K, Value)> for Record {
    fn from_iter<I: IntoIterator<Item = (K, Value)>>(pairs: I) -> Record {
        Record::from_pairs(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
}

impl<K: Into<Name>> Extend<(K, Value)> for Record {
    fn extend<I: IntoIterator<Item = (K, Value)>>(&mut self, pairs: I) {
        for (name, value) in pairs {
            self.insert(name, value);
        }
    }
}

impl IntoIterator for Record {
    type Item = (Name, Value);
    type IntoIter = std::vec::IntoIter<(Name, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.fields.into_iter()
    }
}

impl<'a> IntoIterator for &'a Record {
    type Item = (&'a Name, &'a Value);
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl From<BTreeMap<String, Value>> for Record {
    fn from(map: BTreeMap<String, Value>) -> Record {
        // Already in name order and unique.
        Record { fields: map.into_iter().map(|(k, v)| (Name::from(k), v)).collect() }
    }
}

impl std::ops::Index<&str> for Record {
    type Output = Value;
    fn index(&self, name: &str) -> &Value {
        self.get(name).expect("no such field in the record")
    }
}

/// Fields reserved up front when decoding (more grow the vector as they come).
const PREALLOCATE_AT_MOST: usize = 256;

/// The map's encoding: a length, then name and value of each field in name order.
impl Encode for Record {
    fn encode<E: Encoder>(&self, encoder: &mut E) -> Result<(), EncodeError> {
        (self.fields.len() as u64).encode(encoder)?;
        for (name, value) in &self.fields {
            name.as_str().encode(encoder)?;
            value.encode(encoder)?;
        }
        Ok(())
    }
}

impl<Context> Decode<Context> for Record {
    fn decode<D: Decoder<Context = Context>>(decoder: &mut D) -> Result<Record, DecodeError> {
        let len = u64::decode(decoder)?;
        let len = usize::try_from(len).map_err(|_| DecodeError::OutsideUsizeRange(len))?;
        decoder.claim_container_read::<(Name, Value)>(len)?;
        // The length is read, not trusted: a damaged one must fail on the
        // missing bytes, not reserve memory for them.
        let mut fields = Vec::with_capacity(len.min(PREALLOCATE_AT_MOST));
        // Only the record a payload carries interns its names (taken here, so
        // maps nested in its values, which are data, keep owned keys).
        let intern = INTERN_NEXT.replace(false);
        for _ in 0..len {
            decoder.unclaim_bytes_read(std::mem::size_of::<(Name, Value)>());
            let name = decode_name(decoder, intern)?;
            let value = Value::decode(decoder)?;
            fields.push((name, value));
        }
        // Encoded records are in name order; anything else is put in order as the map did.
        Ok(Record::from_pairs(fields))
    }
}

bincode::impl_borrow_decode!(Record);

/// A record a read model keeps (in a snapshot of it): encoded as a record,
/// decoded with its field names interned like a payload's record, so a model
/// loaded from a snapshot holds one copy of each name, as one folded from the log.
pub struct KeptRecord(pub Record);

impl Encode for KeptRecord {
    fn encode<E: Encoder>(&self, encoder: &mut E) -> Result<(), EncodeError> {
        self.0.encode(encoder)
    }
}

impl<Context> Decode<Context> for KeptRecord {
    fn decode<D: Decoder<Context = Context>>(decoder: &mut D) -> Result<KeptRecord, DecodeError> {
        with_interned_names(|| Record::decode(decoder)).map(KeptRecord)
    }
}

thread_local! {
    /// Whether the next record decoded on this thread is a payload's record,
    /// whose names are field names (see [`with_interned_names`]).
    static INTERN_NEXT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs a payload decode whose first record is the payload's record: its
/// field names are interned. Nothing else is: not maps nested in values (their
/// keys are data, which erasure must be able to remove), not records decoded
/// elsewhere.
pub(crate) fn with_interned_names<T>(decode: impl FnOnce() -> T) -> T {
    INTERN_NEXT.set(true);
    let decoded = decode();
    INTERN_NEXT.set(false);
    decoded
}

/// A field name as bincode encodes a `String` (a length, then the bytes),
/// read in place when the bytes are at hand (decoding from a slice, as the
/// stores do), so an interned name costs no allocation.
fn decode_name<D: Decoder>(decoder: &mut D, intern: bool) -> Result<Name, DecodeError> {
    use bincode::de::read::Reader;
    let name_of = |name: &str| if intern { Name::interned(name) } else { Name::from(name) };
    let len = u64::decode(decoder)?;
    let len = usize::try_from(len).map_err(|_| DecodeError::OutsideUsizeRange(len))?;
    decoder.claim_container_read::<u8>(len)?;
    if let Some(bytes) = decoder.reader().peek_read(len) {
        let name = name_of(std::str::from_utf8(bytes).map_err(|inner| DecodeError::Utf8 { inner })?);
        decoder.reader().consume(len);
        return Ok(name);
    }
    let mut bytes = vec![0u8; len];
    decoder.reader().read(&mut bytes)?;
    Ok(name_of(std::str::from_utf8(&bytes).map_err(|inner| DecodeError::Utf8 { inner })?))
}

impl serde::Serialize for Record {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn a_hinted_get_finds_what_get_finds_wherever_the_hint_points() {
        let mut record = Record::new();
        for (i, name) in ["a", "c", "e", "g"].iter().enumerate() {
            record.insert(*name, Value::Int(i as i64));
        }
        for name in ["a", "b", "c", "d", "e", "f", "g", "h"] {
            for hint in 0..6 {
                let (value, at) = record.get_hinted(name, hint);
                assert_eq!(value, record.get(name), "{name} from {hint}");
                match value {
                    Some(_) => assert_eq!(record.iter().nth(at).map(|(k, _)| k.as_str()), Some(name), "where {name} is"),
                    None => assert_eq!(at, hint, "an absent field leaves the hint"),
                }
            }
        }
    }

    #[test]
    fn behaves_like_the_map() {
        let mut record = Record::new();
        let mut map = BTreeMap::new();
        for (i, name) in ["b", "a", "c", "a", "d", "b"].iter().enumerate() {
            assert_eq!(record.insert(name.to_string(), Value::Int(i as i64)), map.insert(name.to_string(), Value::Int(i as i64)));
        }
        assert_eq!(record.remove("c"), map.remove("c"));
        assert_eq!(record.remove("zz"), map.remove("zz"));
        assert_eq!(record.iter().map(|(k, v)| (k.as_str(), v)).collect::<Vec<_>>(), map.iter().map(|(k, v)| (k.as_str(), v)).collect::<Vec<_>>());
        assert_eq!(record.get("a"), map.get("a"));
        assert!(!record.contains_key("c"));
        let collected: Record = vec![("x".to_string(), text("1")), ("a".to_string(), text("2")), ("x".to_string(), text("3"))].into_iter().collect();
        assert_eq!(collected.iter().map(|(k, v)| (k.as_str(), v.clone())).collect::<Vec<_>>(), vec![("a", text("2")), ("x", text("3"))]);
    }

    #[test]
    fn encodes_exactly_like_the_map() {
        let config = bincode::config::standard();
        let map: BTreeMap<String, Value> = [("title".to_string(), text("t")), ("amount".to_string(), Value::Int(3)), ("id".to_string(), text("r1"))].into();
        let record = Record::from(map.clone());
        let bytes = bincode::encode_to_vec(&record, config).unwrap();
        assert_eq!(bytes, bincode::encode_to_vec(&map, config).unwrap());
        let (back, _): (Record, usize) = bincode::decode_from_slice(&bytes, config).unwrap();
        assert_eq!(back, record);
        // Bytes whose names are out of order (not written by us) still decode into order.
        let unordered = bincode::encode_to_vec(vec![("b".to_string(), Value::Int(1)), ("a".to_string(), Value::Int(2))], config).unwrap();
        let (back, _): (Record, usize) = bincode::decode_from_slice(&unordered, config).unwrap();
        assert_eq!(back.keys().map(|k| k.as_str()).collect::<Vec<_>>(), vec!["a", "b"]);
        // A payload's record interns its names (one copy per distinct name);
        // any other record keeps owned names.
        assert!(matches!(back.keys().next(), Some(Name::Owned(_))));
        let decode = || bincode::decode_from_slice::<Record, _>(&unordered, config).unwrap().0;
        let (first, second) = (with_interned_names(decode), with_interned_names(decode));
        match (first.keys().next(), second.keys().next()) {
            (Some(Name::Interned(a)), Some(Name::Interned(b))) => assert!(std::ptr::eq(*a, *b)),
            other => panic!("a payload's names are interned: {other:?}"),
        }
        assert!(matches!(decode().keys().next(), Some(Name::Owned(_))), "the flag is spent by one record");
        // A damaged length fails on the missing bytes (no huge reservation, no panic).
        let damaged = bincode::encode_to_vec(1u64 << 50, config).unwrap();
        assert!(bincode::decode_from_slice::<Record, _>(&damaged, config).is_err());
    }
}
