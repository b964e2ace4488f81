//! The write model as a snapshot: the catalog, every record stream's
//! version and record, the counters, the approvals' locks and the stored
//! automation definitions. The unique indexes and the reverse references
//! are not saved: they are derived again from the records and the catalog.
//!
//! A record the in-process read model holds too (the two share one
//! allocation, see [`crate::service::sharing`]) may be saved as a digest of
//! its content instead of the record: a start that loads the read model
//! first takes the read model's record wherever its digest matches, so the
//! record is decoded once and held once. One whose digest does not match
//! (the read model moved on, or holds it differently) is folded from its own
//! stream up to the saved version ([`Opened::take_from`], then
//! [`Opened::put`]); with no read model to take records from, the snapshot
//! is not used.
//!
//! A snapshot may hold a few events past its position (this node's commands
//! apply their own events before the follower reaches them); the fold after
//! it passes those by, since every change the write model keeps is applied
//! only above its stream's version.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use domain::event::ObjectDefined;
use domain::fields::KeptRecord;
use domain::value::Record;

use super::{sets_of, Kept, WriteModel};
use crate::service::sharing::{digest, Digest, RecordSource};
use crate::snapshot::catalog::{definitions, from_definitions};
use crate::snapshot::codec::{Reader, Writer};

/// The file's name and the body's format.
pub(crate) const NAME: &str = "write";
pub(crate) const FORMAT: u32 = 2;

type Automation = BTreeMap<(String, String), Option<String>>;

/// How a record stream's record is saved: none (deleted), the record, or its digest.
const GONE: u8 = 0;
const HELD: u8 = 1;
const DIGEST: u8 = 2;

/// Records looked up in the source under one hold of its lock.
const CHUNK: usize = 4096;

/// A record stream as its snapshot holds it.
enum Saved {
    Gone,
    Held(Arc<Record>),
    Digest(Digest),
}

/// One object's record streams as saved: id, version, record.
type SavedTable = Vec<(String, u64, Saved)>;

/// A snapshot's model whose records saved as digests are not taken yet.
pub(crate) struct Opened {
    model: WriteModel,
    /// Per object, its record streams.
    tables: Vec<(String, SavedTable)>,
}

/// A record stream whose saved digest no record of the source matched
/// ([`Opened::stream_of`] names it): `put` its record, folded from the stream.
#[derive(Debug)]
pub(crate) struct Missing {
    table: usize,
    entry: usize,
}

/// The write model as a save takes it under the model's lock while writes
/// go on ([`WriteModel::capture`]): its record streams' ids and versions,
/// their records shared (not copied) with whether each is saved as a digest,
/// and the rest of the body already encoded; [`Captured::encode`] then
/// writes the body with the lock let go. Records are never changed in
/// place once shared (a change makes a new one), so what a capture holds
/// stays as it was when taken.
pub(crate) struct Captured {
    head: Vec<u8>,
    tables: Vec<(String, CapturedTable)>,
    tail: Vec<u8>,
}

/// One object's record streams as captured: id, version, record.
type CapturedTable = Vec<(String, u64, Capture)>;

/// A captured record stream's record, and how it is saved.
enum Capture {
    Gone,
    Whole(Arc<Record>),
    Digest(Arc<Record>),
}

/// How one record stream's record goes into the body.
enum Saving<'a> {
    Gone,
    Whole(&'a Record),
    Digest(&'a Record),
}

impl WriteModel {
    /// Writes the body of its snapshot into `out` under the write model's
    /// lock, records encoded as they are (no copy: for a save with nothing
    /// writing, as at a stop; while serving, [`WriteModel::capture`]). With
    /// `by_digest`, a record shared with another holder (the read model) is
    /// saved as its digest. Returns how many live records the body holds whole.
    pub(crate) fn encode_snapshot(&self, by_digest: bool, out: &mut Writer) -> usize {
        let mut buffer = Vec::new();
        let mut whole = 0;
        self.put_head(out);
        for (object, records) in &self.records {
            out.put(object);
            out.put(&(records.len() as u64));
            // In id order (the map's): a start's take then finds them by
            // walking the read model's rows, which are in id order too.
            for (id, state) in records {
                let saving = match &state.record {
                    None => Saving::Gone,
                    Some(record) if by_digest && Arc::strong_count(record) > 1 => Saving::Digest(record),
                    Some(record) => Saving::Whole(record),
                };
                whole += put_stream(out, id, state.version, saving, &mut buffer);
            }
        }
        self.put_tail(out);
        whole
    }

    /// What [`WriteModel::encode_snapshot`] writes, taken under the lock at
    /// the cost of a copy of each stream's id (the records shared), for
    /// [`Captured::encode`] to write after: a save while serving holds up
    /// writes for the copy, not for encoding and hashing every record.
    pub(crate) fn capture(&self, by_digest: bool) -> Captured {
        let mut head = Writer::default();
        self.put_head(&mut head);
        let tables = self
            .records
            .iter()
            .map(|(object, records)| {
                let streams = records
                    .iter()
                    .map(|(id, state)| {
                        let capture = match &state.record {
                            None => Capture::Gone,
                            Some(record) if by_digest && Arc::strong_count(record) > 1 => Capture::Digest(record.clone()),
                            Some(record) => Capture::Whole(record.clone()),
                        };
                        (id.clone(), state.version, capture)
                    })
                    .collect();
                (object.clone(), streams)
            })
            .collect();
        let mut tail = Writer::default();
        self.put_tail(&mut tail);
        Captured { head: head.bytes, tables, tail: tail.bytes }
    }

    /// The body's start: the definitions, the metadata streams' versions,
    /// how many objects' record streams follow.
    fn put_head(&self, out: &mut Writer) {
        out.put(&definitions(&self.catalog));
        out.put(&self.meta_versions);
        out.put(&(self.records.len() as u64));
    }

    /// The body's end, after the record streams.
    fn put_tail(&self, out: &mut Writer) {
        out.put(&self.created);
        out.put(&self.numbers);
        out.put(&self.unreadable);
        out.put(&self.locked);
        out.put(&self.approval_versions);
        out.put(&self.automation);
        out.put(&self.automation_generation);
        out.put(&self.automation_versions);
    }

    /// What a snapshot's body holds, its records saved as digests still to take.
    pub(crate) fn decode_snapshot(body: &[u8]) -> Result<Opened, String> {
        let mut input = Reader::new(body, "the write model's snapshot");
        let mut model = WriteModel { catalog: from_definitions(input.take::<Vec<ObjectDefined>>()?)?, meta_versions: input.take()?, ..WriteModel::default() };
        let mut tables = Vec::new();
        for _ in 0..input.count()? {
            let object: String = input.take()?;
            let count = input.count()?;
            let mut records = Vec::with_capacity(count.min(1 << 24));
            for _ in 0..count {
                let (id, version): (String, u64) = input.take()?;
                let saved = match input.take::<u8>()? {
                    GONE => Saved::Gone,
                    HELD => Saved::Held(Arc::new(input.take::<KeptRecord>()?.0)),
                    DIGEST => Saved::Digest(input.take()?),
                    other => return Err(format!("the write model's snapshot: a record saved as {other}")),
                };
                records.push((id, version, saved));
            }
            tables.push((object, records));
        }
        model.created = input.take()?;
        model.numbers = input.take()?;
        model.unreadable = input.take::<HashSet<String>>()?;
        model.locked = input.take()?;
        model.approval_versions = input.take()?;
        model.automation = input.take::<Automation>()?;
        model.automation_generation = input.take()?;
        model.automation_versions = input.take()?;
        input.finish()?;
        Ok(Opened { model, tables })
    }
}

impl Captured {
    /// Writes the body [`WriteModel::encode_snapshot`] would have written at
    /// the capture. Returns how many live records it holds whole.
    pub(crate) fn encode(self, out: &mut Writer) -> usize {
        let mut buffer = Vec::new();
        let mut whole = 0;
        out.put_raw(&self.head);
        for (object, streams) in &self.tables {
            out.put(object);
            out.put(&(streams.len() as u64));
            for (id, version, capture) in streams {
                let saving = match capture {
                    Capture::Gone => Saving::Gone,
                    Capture::Whole(record) => Saving::Whole(record),
                    Capture::Digest(record) => Saving::Digest(record),
                };
                whole += put_stream(out, id, *version, saving, &mut buffer);
            }
        }
        out.put_raw(&self.tail);
        whole
    }
}

/// One record stream of the body: id, version and its record as saved.
/// Returns 1 for a live record saved whole.
fn put_stream(out: &mut Writer, id: &str, version: u64, saving: Saving, buffer: &mut Vec<u8>) -> usize {
    out.put(&(id, version));
    match saving {
        Saving::Gone => {
            out.put(&GONE);
            0
        }
        Saving::Digest(record) => {
            out.put(&DIGEST);
            out.put(&digest(record, buffer));
            0
        }
        Saving::Whole(record) => {
            out.put(&HELD);
            out.put(record);
            1
        }
    }
}

impl Opened {
    /// How many records are saved as digests, not taken yet.
    pub(crate) fn by_digest(&self) -> usize {
        self.tables.iter().flat_map(|(_, records)| records).filter(|(_, _, saved)| matches!(saved, Saved::Digest(_))).count()
    }

    /// Takes the source's record for every record saved as a digest that it
    /// matches; returns the others.
    pub(crate) fn take_from(&mut self, source: &dyn RecordSource) -> Vec<Missing> {
        // Chunks of the records saved as digests, looked up and hashed on every core at once.
        let mut chunks: Vec<(usize, Vec<usize>)> = Vec::new();
        for (table, (_, records)) in self.tables.iter().enumerate() {
            let wanted: Vec<usize> = records.iter().enumerate().filter(|(_, (_, _, saved))| matches!(saved, Saved::Digest(_))).map(|(at, _)| at).collect();
            chunks.extend(wanted.chunks(CHUNK).map(|chunk| (table, chunk.to_vec())));
        }
        let tables = &self.tables;
        let match_chunk = |(table, chunk): &(usize, Vec<usize>)| -> Vec<Option<Arc<Record>>> {
            let (object, records) = &tables[*table];
            let keys: Vec<(&str, &str)> = chunk.iter().map(|&at| (object.as_str(), records[at].0.as_str())).collect();
            let mut buffer = Vec::new();
            let found = source.records_digested(&keys);
            chunk
                .iter()
                .zip(found)
                .map(|(&entry, theirs)| match (&records[entry].2, theirs) {
                    (Saved::Digest(wanted), Some((theirs, known))) if known.unwrap_or_else(|| digest(&theirs, &mut buffer)) == *wanted => Some(theirs),
                    _ => None,
                })
                .collect()
        };
        let matched = crate::snapshot::on_every_core::map_in_order(&chunks, match_chunk);
        let mut missing = Vec::new();
        for ((table, chunk), found) in chunks.iter().zip(matched) {
            for (&entry, theirs) in chunk.iter().zip(found) {
                match theirs {
                    Some(theirs) => self.tables[*table].1[entry].2 = Saved::Held(theirs),
                    None => missing.push(Missing { table: *table, entry }),
                }
            }
        }
        missing
    }

    /// The stream (`object/id`) and the saved version of a record the source did not match.
    pub(crate) fn stream_of(&self, missing: &Missing) -> (String, u64) {
        let (object, records) = &self.tables[missing.table];
        let (id, version, _) = &records[missing.entry];
        (format!("{object}/{id}"), *version)
    }

    /// Sets the record of a stream the source did not match.
    pub(crate) fn put(&mut self, missing: &Missing, record: Record) {
        self.tables[missing.table].1[missing.entry].2 = Saved::Held(Arc::new(record));
    }

    /// The model, its indexes derived again; fails while a record saved as a
    /// digest was not taken.
    pub(crate) fn finish(self) -> Result<WriteModel, String> {
        let Opened { mut model, tables } = self;
        for (object, saved) in tables {
            // Saved in id order, so the map is built in one pass (a file of
            // an older save, in any order, is sorted first).
            let records = saved
                .into_iter()
                .map(|(id, version, saved)| match saved {
                    Saved::Gone => Ok((id, Kept { version, record: None })),
                    Saved::Held(record) => Ok((id, Kept { version, record: Some(record) })),
                    Saved::Digest(_) => Err(format!("the write model's snapshot: the record of {object}/{id} was not found")),
                })
                .collect::<Result<_, String>>()?;
            model.records.insert(object, records);
        }
        // The unique sets of every defined object, then each live record's values and references.
        let sets: Vec<_> = model.catalog.objects().map(|object| (object.name.clone(), sets_of(object))).collect();
        model.unique_sets.extend(sets);
        // Only objects with unique values or references have anything to index.
        let indexed: HashSet<String> = model
            .catalog
            .objects()
            .filter(|object| {
                model.unique_sets.get(&object.name).is_some_and(|sets| !sets.is_empty()) || object.fields.iter().any(|f| f.field_type.is_reference())
            })
            .map(|object| object.name.clone())
            .collect();
        let records = std::mem::take(&mut model.records);
        for (object, states) in records.iter().filter(|(object, _)| indexed.contains(*object)) {
            for (id, state) in states {
                model.index_record(object, id, None, state.record.as_deref());
            }
        }
        model.records = records;
        Ok(model)
    }
}

#[cfg(test)]
mod tests {
    use domain::event::{EventPayload, FieldChange, ObjectDefined, RecordCreated, RecordDeleted, RecordUpdated};
    use domain::value::{Record, Value};
    use serde_json::json;

    use super::*;
    use crate::service::sharing::Digested;

    /// The model's snapshot body, in memory, and how many records it holds
    /// whole; the same, byte for byte, encoded under the lock and captured.
    fn body_of(model: &WriteModel, by_digest: bool) -> (Vec<u8>, usize) {
        let mut out = Writer::default();
        let whole = model.encode_snapshot(by_digest, &mut out);
        let mut captured = Writer::default();
        let captured_whole = model.capture(by_digest).encode(&mut captured);
        assert_eq!((&captured.bytes, captured_whole), (&out.bytes, whole), "a capture encodes what the model does");
        (out.bytes, whole)
    }

    #[test]
    fn a_capture_encodes_the_model_as_it_was_when_taken() {
        let mut model = WriteModel::default();
        let definition = json!({"name": "note", "fields": {"title": {"type": "text"}}}).to_string();
        model.apply("$meta/note", 1, &EventPayload::ObjectDefined(ObjectDefined { name: "note".into(), namespace: None, definition })).unwrap();
        let created =
            |id: &str| RecordCreated { object: "note".into(), id: id.into(), record: record(&[("id", id), ("title", "first")]), automated: Vec::new() };
        model.apply("note/a", 1, &EventPayload::RecordCreated(created("a"))).unwrap();
        model.apply("note/b", 1, &EventPayload::RecordCreated(created("b"))).unwrap();
        let shared = model.records["note"]["b"].record.clone().unwrap();
        let (before, whole) = body_of(&model, true);
        assert_eq!(whole, 1, "b is shared, so saved as its digest");
        let captured = model.capture(true);
        let changes = vec![FieldChange { field: "title".into(), old: Value::Text("first".into()), new: Value::Text("second".into()) }];
        for id in ["a", "b"] {
            let updated = RecordUpdated { object: "note".into(), id: id.into(), changes: changes.clone(), automated: Vec::new() };
            model.apply(&format!("note/{id}"), 2, &EventPayload::RecordUpdated(updated)).unwrap();
        }
        model.apply("note/c", 1, &EventPayload::RecordCreated(created("c"))).unwrap();
        drop(shared);
        let mut out = Writer::default();
        assert_eq!(captured.encode(&mut out), 1);
        assert_eq!(out.bytes, before, "changes after the capture are not in its body");
        assert_ne!(body_of(&model, true).0, before);
    }

    /// The derived indexes, in order.
    fn derived(model: &WriteModel) -> (Vec<String>, Vec<String>) {
        let mut unique: Vec<String> = model.unique.iter().flat_map(|(set, index)| index.iter().map(move |(k, id)| format!("{set:?} {k} {id}"))).collect();
        let mut referrers: Vec<String> = model.referrers.iter().flat_map(|(target, set)| set.iter().map(move |r| format!("{target:?} {r:?}"))).collect();
        unique.sort();
        referrers.sort();
        (unique, referrers)
    }

    fn record(fields: &[(&str, &str)]) -> Record {
        let mut record = Record::default();
        for (field, value) in fields {
            record.insert(*field, Value::Text(value.to_string()));
        }
        record
    }

    #[test]
    fn a_decoded_model_holds_what_the_fold_did_and_derives_the_same_indexes() {
        let mut model = WriteModel::default();
        let define = |name: &str, fields: serde_json::Value| {
            EventPayload::ObjectDefined(ObjectDefined { name: name.into(), namespace: None, definition: json!({"name": name, "fields": fields}).to_string() })
        };
        model.apply("$meta/account", 1, &define("account", json!({"code": {"type": "text", "unique": true}}))).unwrap();
        model
            .apply(
                "$meta/contact",
                1,
                &define("contact", json!({"account": {"type": "lookup", "reference": "account"}, "email": {"type": "email", "unique": true}})),
            )
            .unwrap();
        let created = |object: &str, id: &str, record: Record| {
            EventPayload::RecordCreated(RecordCreated { object: object.into(), id: id.into(), record, automated: Vec::new() })
        };
        for n in 0..50 {
            let account = format!("a{}", n % 7);
            if n < 7 {
                model.apply(&format!("account/{account}"), 1, &created("account", &account, record(&[("code", &format!("C{n}"))]))).unwrap();
            }
            let email = format!("p{n}@example.com");
            model.apply(&format!("contact/c{n}"), 1, &created("contact", &format!("c{n}"), record(&[("account", &account), ("email", &email)]))).unwrap();
        }
        for n in (0..50).step_by(3) {
            let changes = vec![FieldChange { field: "account".into(), old: Value::Null, new: Value::Text("a1".into()) }];
            model
                .apply(
                    &format!("contact/c{n}"),
                    2,
                    &EventPayload::RecordUpdated(RecordUpdated { object: "contact".into(), id: format!("c{n}"), changes, automated: Vec::new() }),
                )
                .unwrap();
        }
        for n in (0..50).step_by(5) {
            let deleted = RecordDeleted { object: "contact".into(), id: format!("c{n}"), previous: Record::default(), cause: None };
            model.apply(&format!("contact/c{n}"), 3, &EventPayload::RecordDeleted(deleted)).unwrap();
        }
        model.took_autonumber("contact");

        let decoded = WriteModel::decode_snapshot(&body_of(&model, false).0).unwrap().finish().unwrap();
        assert_eq!(derived(&decoded), derived(&model));
        assert!(!derived(&model).0.is_empty() && !derived(&model).1.is_empty());
        assert_eq!(decoded.records, model.records);
        assert_eq!(
            (decoded.created.clone(), decoded.numbers.clone(), decoded.meta_versions.clone()),
            (model.created.clone(), model.numbers.clone(), model.meta_versions.clone())
        );
        assert_eq!(decoded.catalog.objects().count(), 2);
        let (mut body, _) = body_of(&model, false);
        body.push(0);
        assert!(WriteModel::decode_snapshot(&body).is_err(), "trailing bytes are refused");
    }

    #[test]
    fn a_digest_is_the_sha256_of_the_records_stored_encoding() {
        // Snapshots saved by earlier builds hold digests of this definition:
        // the first 16 bytes of the SHA-256 of the record's bincode encoding.
        use sha2::Digest as _;
        let long = record(&[("id", "r1"), ("name", "Ünïcode and more than sixty-four bytes of text to cross a hash block")]);
        let encoded = bincode::encode_to_vec(&long, bincode::config::standard()).unwrap();
        let mut buffer = b"left from the last record".to_vec();
        assert_eq!(digest(&long, &mut buffer)[..], sha2::Sha256::digest(&encoded)[..16]);
        assert_ne!(digest(&long, &mut buffer), digest(&record(&[("id", "r1")]), &mut buffer));
    }

    /// A source that knows its records' digests, right or, for `wrong_for`, not.
    struct Knowing {
        records: Vec<(String, Arc<Record>)>,
        wrong_for: &'static str,
    }

    impl RecordSource for Knowing {
        fn position(&self) -> u64 {
            0
        }

        fn records(&self, keys: &[(&str, &str)]) -> Vec<Option<Arc<Record>>> {
            keys.iter().map(|(_, id)| self.records.iter().find(|(held, _)| held == id).map(|(_, record)| record.clone())).collect()
        }

        fn records_digested(&self, keys: &[(&str, &str)]) -> Vec<Digested> {
            let mut buffer = Vec::new();
            let known = |id: &str, record: &Record, buffer: &mut Vec<u8>| if id == self.wrong_for { [0; 16] } else { digest(record, buffer) };
            keys.iter()
                .map(|(_, id)| self.records.iter().find(|(held, _)| held == id).map(|(id, record)| (record.clone(), Some(known(id, record, &mut buffer)))))
                .collect()
        }
    }

    #[test]
    fn a_take_compares_the_digest_a_source_knows_without_hashing_again() {
        let mut model = WriteModel::default();
        let definition = json!({"name": "note", "fields": {"title": {"type": "text"}}}).to_string();
        model.apply("$meta/note", 1, &EventPayload::ObjectDefined(ObjectDefined { name: "note".into(), namespace: None, definition })).unwrap();
        let ids: Vec<String> = (0..40).map(|n| format!("n{n:02}")).collect();
        let mut held = Vec::new();
        for id in &ids {
            let created = RecordCreated { object: "note".into(), id: id.clone(), record: record(&[("id", id), ("title", id)]), automated: Vec::new() };
            model.apply(&format!("note/{id}"), 1, &EventPayload::RecordCreated(created)).unwrap();
            // Shared with a holder, so the snapshot saves its digest.
            held.push((id.clone(), model.records["note"][id].record.clone().unwrap()));
        }
        let (body, whole) = body_of(&model, true);
        assert_eq!(whole, 0);
        // Equal records in fresh allocations: taken only where the known digest says so.
        let fresh: Vec<(String, Arc<Record>)> = held.iter().map(|(id, record)| (id.clone(), Arc::new((**record).clone()))).collect();
        let mut opened = WriteModel::decode_snapshot(&body).unwrap();
        assert_eq!(opened.by_digest(), 40);
        let saved: Vec<&String> = opened.tables[0].1.iter().map(|(id, _, _)| id).collect();
        assert_eq!(saved, ids.iter().collect::<Vec<_>>(), "saved in id order");
        let missing = opened.take_from(&Knowing { records: fresh.clone(), wrong_for: "n02" });
        let missed: Vec<(String, u64)> = missing.iter().map(|m| opened.stream_of(m)).collect();
        assert_eq!(missed, vec![("note/n02".to_string(), 1)], "a known digest that does not match is not hashed again");
        opened.put(&missing[0], (*fresh[2].1).clone());
        let taken = opened.finish().unwrap();
        assert!(Arc::ptr_eq(taken.records["note"]["n01"].record.as_ref().unwrap(), &fresh[1].1), "the source's allocation is taken");
        assert_eq!(taken.records, model.records);
        // A source that knows no digest (the trait's default) is hashed here.
        struct Plain(Knowing);
        impl RecordSource for Plain {
            fn position(&self) -> u64 {
                0
            }
            fn records(&self, keys: &[(&str, &str)]) -> Vec<Option<Arc<Record>>> {
                self.0.records(keys)
            }
        }
        let mut opened = WriteModel::decode_snapshot(&body).unwrap();
        assert!(opened.take_from(&Plain(Knowing { records: fresh, wrong_for: "n02" })).is_empty());
    }
}
