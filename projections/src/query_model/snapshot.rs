//! The query model as a snapshot: the catalog, the latest event time, and
//! each table's rows (ids and records) in id order, in chunks of a fixed
//! number of rows, each chunk's bytes behind its length, so a load reads the
//! file a batch of chunks at a time and decodes each batch on every core at
//! once (it never holds the whole file). Indexes are not saved: they are built
//! once, in one sort per field, when the load ends.
//!
//! A load also hashes each record's stored bytes as it decodes them (the
//! [`Digest`] the write model's snapshot saves a shared record as), and keeps
//! the digests beside the loaded model ([`QueryModel::take_loaded_digests`])
//! when each table's rows came in strictly increasing id order, which makes
//! the table's id order the file's and so lines the digests up with the
//! rows: the write model's start then compares digests without encoding
//! any record again.

use std::sync::Arc;

use commands::service::sharing::{digest_of_encoding, Digest};
use domain::event::ObjectDefined;
use domain::fields::KeptRecord;
use domain::value::Record;

use super::index_file;
use super::slots::Slot;
use super::table::{indexed_fields, FieldIndex, KeyKind};
use super::QueryModel;
use crate::history::ModelSnapshot;
use crate::snapshot::catalog::{definitions, from_definitions};
use crate::snapshot::codec::{take_from_slice, Stream, Writer};
use crate::snapshot::on_every_core::{cores, map_in_order};
use crate::snapshot::Snapshot;

/// Rows per chunk: enough that a chunk's own cost is nothing, few enough
/// that the cores share a table's work evenly.
/// (The tests' small tables make several chunks too.)
const CHUNK_ROWS: usize = if cfg!(test) { 64 } else { 16_384 };

/// Chunks read before they are decoded, in bytes at most (past one chunk):
/// what a load holds of its file at a time.
const BATCH_BYTES: usize = if cfg!(test) { 2048 } else { 16 << 20 };

/// Index blobs read before they are decoded, in bytes at most (past one
/// blob): a table's large indexes decode side by side.
const INDEX_BATCH_BYTES: usize = 4 * BATCH_BYTES;

/// Chunks of a table's rows: each chunk's number of rows and its bytes.
type Chunks = Vec<(usize, Vec<u8>)>;

/// One chunk's rows, decoded, each with the digest of its record's bytes.
type Rows = Vec<(Arc<str>, Arc<Record>, Digest)>;

/// Each table's digests, in its rows' id order (see the module's doc).
pub type LoadedDigests = Vec<(String, Vec<Digest>)>;

const WHAT: &str = "the query model's snapshot";

/// One chunk's rows, decoded.
fn decode_chunk((rows, bytes): &(usize, Vec<u8>)) -> Result<Rows, String> {
    let mut at = 0;
    let mut out = Vec::with_capacity((*rows).min(CHUNK_ROWS));
    for _ in 0..*rows {
        let (id, length): (String, usize) = take_from_slice(&bytes[at..], WHAT)?;
        at += length;
        let (KeptRecord(record), length) = take_from_slice(&bytes[at..], WHAT)?;
        let digest = digest_of_encoding(&bytes[at..at + length]);
        at += length;
        out.push((Arc::from(id), Arc::new(record), digest));
    }
    if at != bytes.len() {
        return Err(format!("{WHAT}: trailing bytes"));
    }
    Ok(out)
}

/// A table's saved indexes, read (and decoded on every core, a batch of
/// fields at a time) when they are of use: when the rows came in id order
/// and the fields are the ones the table indexes (`wanted`, in order).
/// Otherwise they are read past, and the load builds the indexes.
fn read_indexes(input: &mut Stream, wanted: &[(String, KeyKind)], rows: usize, in_order: bool) -> Result<Option<Vec<(String, FieldIndex)>>, String> {
    let count = input.count()?;
    let mut of_use = in_order && count == wanted.len();
    let mut decoded = Vec::with_capacity(count);
    let mut batch = Vec::new();
    let mut batched = 0;
    for at in 0..count {
        let field: String = input.take()?;
        let blob = input.bytes()?;
        let kind = match wanted.get(at) {
            Some((name, kind)) if of_use && *name == field => *kind,
            _ => {
                of_use = false;
                continue;
            }
        };
        batched += blob.len();
        batch.push((kind, blob));
        if batched >= INDEX_BATCH_BYTES || at + 1 == count {
            // The largest first: fields differ in size by far, and the
            // cores each take the next one, so they end about together.
            let mut largest_first: Vec<usize> = (0..batch.len()).collect();
            largest_first.sort_by_key(|at| std::cmp::Reverse(batch[*at].1.len()));
            let read = map_in_order(&largest_first, |at| index_file::read(batch[*at].0, &batch[*at].1, rows));
            let mut read: Vec<(usize, Result<FieldIndex, String>)> = largest_first.into_iter().zip(read).collect();
            read.sort_by_key(|(at, _)| *at);
            for (_, index) in read {
                decoded.push(index?);
            }
            batch.clear();
            batched = 0;
        }
    }
    Ok(of_use.then(|| wanted.iter().map(|(field, _)| field.clone()).zip(decoded).collect()))
}

impl Snapshot for QueryModel {
    const NAME: &'static str = "query";
    /// 3: each table's indexes after its rows (2: rows in chunks behind
    /// their lengths; 1: one run of rows per table).
    const FORMAT: u32 = 3;
    /// The rows, shared with the model (a record changed later is copied by the model).
    type Captured = ModelSnapshot;

    fn capture(&self, _out: &mut Writer) -> Option<ModelSnapshot> {
        Some(self.snapshot())
    }

    fn encode(captured: ModelSnapshot, out: &mut Writer) {
        out.put(&captured.max_occurred_at);
        out.put(&definitions(&captured.catalog));
        out.put(&(captured.tables.len() as u64));
        let mut chunk = Writer::default();
        for (object, rows) in &captured.tables {
            out.put(object);
            let all: Vec<_> = rows.iter().collect();
            out.put(&(all.len().div_ceil(CHUNK_ROWS) as u64));
            for rows in all.chunks(CHUNK_ROWS) {
                chunk.bytes.clear();
                for (id, record) in rows {
                    chunk.put(&(&**id, &**record));
                }
                out.put(&(rows.len() as u64));
                out.put(&chunk.bytes.as_slice());
            }
            // Slots as a load gives them: the rows' places in the file.
            let fields = captured.catalog.get(object).map(|object| indexed_fields(object)).unwrap_or_default();
            let slots: Vec<(Slot, &Record)> = all.iter().enumerate().map(|(slot, (_, record))| (slot as Slot, &**record)).collect();
            index_file::write(&fields, &slots, out);
        }
    }

    fn decode(template: QueryModel, position: u64, body: &[u8]) -> Result<QueryModel, String> {
        let mut input = Stream::new(std::io::Cursor::new(body.to_vec()), body.len() as u64, "the query model's snapshot");
        let model = Self::decode_stream(template, position, &mut input)?;
        input.finish()?;
        Ok(model)
    }

    fn decode_stream(template: QueryModel, position: u64, input: &mut Stream) -> Result<QueryModel, String> {
        let max_occurred_at: i64 = input.take()?;
        let catalog = from_definitions(input.take::<Vec<ObjectDefined>>()?)?;
        let mut model = QueryModel { catalog, deferred: true, history: template.history, max_occurred_at, ..QueryModel::default() };
        // `None` once a table's rows came out of order (or twice): the digests would not line up.
        let mut digests: Option<LoadedDigests> = Some(Vec::new());
        for _ in 0..input.count()? {
            let object: String = input.take()?;
            let table = model.table(&object);
            let fresh = table.row_count() == 0;
            // Whether this table's rows came in strictly increasing id order.
            let mut in_order = fresh;
            let mut last: Option<Arc<str>> = None;
            let mut table_digests = Vec::new();
            // The chunks read a batch at a time, each batch decoded on every
            // core at once, then put in their order.
            let mut batch: Chunks = Vec::new();
            let mut batched = 0;
            let chunks = input.count()?;
            for at in 0..chunks {
                let rows = input.count()?;
                let bytes = input.bytes()?;
                batched += bytes.len();
                batch.push((rows, bytes));
                // A batch of as many chunks as there are cores (or a multiple):
                // chunks cost about the same, so each core ends with the others.
                if (batched >= BATCH_BYTES && batch.len().is_multiple_of(cores())) || at + 1 == chunks {
                    for rows in map_in_order(&batch, decode_chunk) {
                        for (id, record, digest) in rows? {
                            in_order = in_order && last.as_ref().is_none_or(|last| *last < id);
                            if in_order {
                                last = Some(id.clone());
                            }
                            if digests.is_some() {
                                if in_order {
                                    table_digests.push(digest);
                                } else {
                                    digests = None;
                                }
                            }
                            table.put_shared(id, record);
                        }
                    }
                    batch.clear();
                    batched = 0;
                }
            }
            let saved = read_indexes(input, table.indexed(), table.row_count(), in_order)?;
            if let Some(saved) = saved {
                if !table.adopt_saved(saved) {
                    tracing::debug!(object = %object, "the saved indexes are not the ones this table keeps; they are built after the load");
                }
            }
            if let Some(digests) = &mut digests {
                digests.push((object, table_digests));
            }
        }
        model.checkpoint = position;
        model.loaded_digests = digests;
        // As-of reads of moments from here on fold from this state, not from the beginning.
        if let Some(history) = &model.history {
            history.keep(model.snapshot());
        }
        Ok(model)
    }
}
