//! The search model: the tantivy index (in memory, or on disk where a start
//! opens it at its committed position: `on_disk`), the field layout per
//! object, and each record's texts stored in its document (so an update or a
//! changed definition re-indexes the whole document).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use domain::event::{EventEnvelope, EventPayload};
use domain::metadata::{evolve_catalog, Catalog, FieldType, ObjectDef};
use domain::DomainError;
use tantivy::collector::{Count, DocSetCollector, TopDocs};
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Schema, Value as _, STORED, STRING, TEXT};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use super::on_disk::{self, Committed, Place};
use super::query::{object_query, terms_of, Searched};
use super::texts::{text_of, RecordTexts};
use crate::hashing::Map;
use crate::names::Names;

/// Text fields per document; an object's searchable fields beyond the last
/// slot share it.
pub const SLOTS: usize = 16;
/// Separates the object and the id in a document key.
const KEY_SEPARATOR: char = '\u{1f}';
/// Longest time applied changes wait for a commit when nobody searches (a
/// search commits what is pending first, so this costs no visibility). Each
/// commit makes a segment (term dictionaries built, arenas allocated afresh,
/// merges later): under a write burst, 2 s rather than 500 ms took 6% off the
/// server CPU per create and a quarter off its p99; the price is the first
/// search after a burst committing up to 2 s of writes.
pub const COMMIT_EVERY: std::time::Duration = std::time::Duration::from_millis(2000);
/// Memory the index writer may buffer before it flushes a segment.
const WRITER_BUDGET: usize = 32 << 20;

/// Runs blocking work (a commit writes segments: tens of milliseconds under
/// a write burst) so that it does not hold up the tasks queued on this
/// worker: on the multi-threaded runtime the worker's queue moves to another
/// thread meanwhile (`block_in_place`); elsewhere (a current-thread runtime,
/// a blocking thread, no runtime) it simply runs.
fn off_the_workers<R>(work: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// What to search for.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    pub query: String,
    /// Objects to search (empty: every object).
    pub objects: Vec<String>,
    /// Fields to search (empty: every searchable field).
    pub fields: Vec<String>,
    pub boost: BTreeMap<String, f64>,
    pub fuzzy: bool,
    pub match_all: bool,
    /// Most hits to return, best first.
    pub limit: usize,
    pub min_score: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    pub object: String,
    pub id: String,
    pub score: f32,
}

#[derive(Debug, Clone, Default)]
pub struct SearchHits {
    pub hits: Vec<SearchHit>,
    /// Every matching document (the hits are the best `limit` of them).
    pub total: usize,
}

/// The fields of an object that full-text search covers: those marked
/// `searchable`, and the object's `search.fields` and `displayFields`; when it
/// names none, every free-text field. `enable.searchable: false` turns search off.
pub fn searchable_fields(object: &ObjectDef) -> Vec<String> {
    // Sessions and keys are never searched; passwords are never indexed, even when declared searchable.
    if object.raw.pointer("/enable/searchable") == Some(&serde_json::Value::Bool(false)) || domain::security::INTERNAL_OBJECTS.contains(&object.name.as_str()) {
        return Vec::new();
    }
    let mut fields: Vec<String> = object.fields.iter().filter(|f| f.searchable && f.field_type != FieldType::Password).map(|f| f.name.clone()).collect();
    for pointer in ["/search/fields", "/displayFields"] {
        if let Some(serde_json::Value::Array(names)) = object.raw.pointer(pointer) {
            for name in names.iter().filter_map(|n| n.as_str()) {
                if object.field(name).is_some_and(|f| f.field_type != FieldType::Password) && !fields.iter().any(|f| f == name) {
                    fields.push(name.to_string());
                }
            }
        }
    }
    if fields.is_empty() {
        fields = object.fields.iter().filter(|f| f.field_type.is_text() && f.field_type != FieldType::Password).map(|f| f.name.clone()).collect();
    }
    fields
}

/// The index's fields: the object, the key (`object` + separator + id), the
/// text slots, and the record's texts, stored (see `texts.rs`).
struct Fields {
    object: Field,
    key: Field,
    texts: Field,
    slots: Vec<Field>,
}

/// The index's schema.
fn schema() -> Schema {
    let mut builder = Schema::builder();
    builder.add_text_field("object", STRING);
    builder.add_text_field("key", STRING | STORED);
    builder.add_bytes_field("texts", STORED);
    for i in 0..SLOTS {
        builder.add_text_field(&format!("f{i}"), TEXT);
    }
    builder.build()
}

impl Fields {
    fn of(schema: &Schema) -> tantivy::Result<Fields> {
        let slots = (0..SLOTS).map(|i| schema.get_field(&format!("f{i}"))).collect::<Result<_, _>>()?;
        Ok(Fields { object: schema.get_field("object")?, key: schema.get_field("key")?, texts: schema.get_field("texts")?, slots })
    }
}

/// Changes waiting for a commit past which a bulk load commits anyway (what
/// they hold in memory stays bounded while a large log is folded).
const PENDING_MAX: usize = 100_000;

pub struct SearchModel {
    writer: IndexWriter,
    reader: IndexReader,
    fields: Fields,
    catalog: Catalog,
    /// object -> (searchable field, slot).
    layout: HashMap<String, Vec<(String, usize)>>,
    /// The texts of records changed since the last commit (`None`: deleted);
    /// every other record's are read from its document.
    pending: Map<Box<str>, Option<RecordTexts>>,
    /// Documents per object.
    counts: HashMap<String, usize>,
    /// Field names shared by the texts.
    names: Names,
    dirty: bool,
    /// A bulk load (a copy nobody searches yet): no periodic commits, one at the end.
    bulk: bool,
    /// When the index was last committed (a commit makes a segment: not per batch under load).
    committed_at: std::time::Instant,
    checkpoint: u64,
    /// The last event applied: its position and id (a commit on disk records it).
    last_event: Option<(u64, String)>,
    /// The directory the index lives in (`None`: in memory).
    place: Option<Place>,
}

impl Default for SearchModel {
    fn default() -> Self {
        SearchModel::over(Index::create_in_ram(schema()), None, None).expect("an in-memory index")
    }
}

fn key(object: &str, id: &str) -> String {
    format!("{object}{KEY_SEPARATOR}{id}")
}

/// The searchable fields of an object and their slots.
fn layout_of(definition: &ObjectDef) -> Vec<(String, usize)> {
    searchable_fields(definition).into_iter().enumerate().map(|(i, f)| (f, i.min(SLOTS - 1))).collect()
}

/// Whether an object's records are kept at all: sessions and keys never are.
fn kept(object: &str) -> bool {
    !domain::security::INTERNAL_OBJECTS.contains(&object)
}

impl SearchModel {
    /// The model whose index lives under `root`: the newest generation there
    /// committed whole, at the position it was committed at (its runner goes
    /// on from there), or an empty one. See `on_disk`.
    pub fn open(root: &Path) -> tantivy::Result<SearchModel> {
        let opened = on_disk::open(root, schema())?;
        SearchModel::over(opened.index, Some(opened.place), opened.committed)
    }

    fn over(index: Index, place: Option<Place>, committed: Option<Committed>) -> tantivy::Result<SearchModel> {
        let fields = Fields::of(&index.schema())?;
        let writer = index.writer_with_num_threads(1, WRITER_BUDGET)?;
        let reader: IndexReader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        let mut model = SearchModel {
            writer,
            reader,
            fields,
            catalog: Catalog::default(),
            layout: HashMap::new(),
            pending: Map::default(),
            counts: HashMap::new(),
            names: Names::default(),
            dirty: false,
            bulk: false,
            committed_at: std::time::Instant::now(),
            checkpoint: 0,
            last_event: None,
            place,
        };
        if let Some(committed) = committed {
            let searcher = model.reader.searcher();
            for object in committed.catalog.objects() {
                model.layout.insert(object.name.clone(), layout_of(object));
                let query = TermQuery::new(Term::from_field_text(model.fields.object, &object.name), IndexRecordOption::Basic);
                model.counts.insert(object.name.clone(), searcher.search(&query, &Count)?);
            }
            model.catalog = committed.catalog;
            model.checkpoint = committed.position;
            model.last_event = committed.event;
        }
        Ok(model)
    }

    /// An empty copy to fold the log into (a rebuild): on disk, a new
    /// generation beside this one; in memory, in memory.
    pub fn fresh(&self) -> SearchModel {
        let Some(place) = &self.place else { return SearchModel::default() };
        match place.next(schema()).and_then(|opened| SearchModel::over(opened.index, Some(opened.place), None)) {
            Ok(model) => model,
            Err(error) => {
                tracing::error!(%error, "search index: cannot make a new generation on disk; the copy is kept in memory");
                SearchModel::default()
            }
        }
    }

    /// The last event applied (position and id), when the model was opened
    /// at a position from disk: the start checks the log still holds it.
    pub fn resumes_from(&self) -> Option<(u64, String)> {
        self.place.as_ref().and(self.last_event.clone())
    }

    /// The directory of the index (`None` in memory).
    pub fn dir(&self) -> Option<std::path::PathBuf> {
        self.place.as_ref().map(Place::dir)
    }

    pub fn checkpoint(&self) -> u64 {
        self.checkpoint
    }

    /// Records indexed.
    pub fn len(&self) -> usize {
        self.counts.values().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The searchable fields of an object, as indexed.
    pub fn fields_of(&self, object: &str) -> Vec<String> {
        self.layout.get(object).map(|l| l.iter().map(|(f, _)| f.clone()).collect()).unwrap_or_default()
    }

    /// A record's texts: those waiting for a commit, else its document's.
    fn texts_of(&mut self, key: &str) -> Option<RecordTexts> {
        if let Some(pending) = self.pending.get(key) {
            return pending.clone();
        }
        let searcher = self.reader.searcher();
        let query = TermQuery::new(Term::from_field_text(self.fields.key, key), IndexRecordOption::Basic);
        let found = searcher.search(&query, &DocSetCollector).and_then(|docs| match docs.into_iter().next() {
            Some(address) => searcher.doc::<TantivyDocument>(address).map(Some),
            None => Ok(None),
        });
        match found {
            Ok(doc) => doc.and_then(|doc| self.stored_texts(&doc)),
            Err(error) => {
                tracing::error!(%error, "search index: cannot read a record's texts");
                None
            }
        }
    }

    /// The texts a document stored.
    fn stored_texts(&mut self, doc: &TantivyDocument) -> Option<RecordTexts> {
        doc.get_first(self.fields.texts).and_then(|v| v.as_bytes()).and_then(|bytes| RecordTexts::from_bytes(bytes, &mut self.names))
    }

    /// Every record of an object with its texts (a changed definition re-indexes them).
    fn records_of(&mut self, object: &str) -> Vec<(String, RecordTexts)> {
        let prefix = format!("{object}{KEY_SEPARATOR}");
        let mut records: Vec<(String, RecordTexts)> =
            self.pending.iter().filter(|(k, _)| k.starts_with(&prefix)).filter_map(|(k, t)| t.clone().map(|t| (k.to_string(), t))).collect();
        let searcher = self.reader.searcher();
        let query = TermQuery::new(Term::from_field_text(self.fields.object, object), IndexRecordOption::Basic);
        let stored = searcher
            .search(&query, &DocSetCollector)
            .and_then(|docs| docs.into_iter().map(|a| searcher.doc::<TantivyDocument>(a)).collect::<Result<Vec<_>, _>>());
        match stored {
            Ok(docs) => {
                for doc in docs {
                    let Some(key) = doc.get_first(self.fields.key).and_then(|v| v.as_str()) else { continue };
                    if self.pending.contains_key(key) {
                        continue;
                    }
                    if let Some(texts) = self.stored_texts(&doc) {
                        records.push((key.to_string(), texts));
                    }
                }
            }
            Err(error) => tracing::error!(%error, object, "search index: cannot read an object's records"),
        }
        records
    }

    /// Drops the texts of an object's password fields (never indexed, never stored).
    fn without_secrets(&self, object: &str, mut texts: RecordTexts) -> RecordTexts {
        if let Some(definition) = self.catalog.get(object) {
            texts.retain(|field| definition.field(field).is_none_or(|f| f.field_type != FieldType::Password));
        }
        texts
    }

    /// Indexes a record's document (replacing none: the caller deleted the old one).
    fn put(&mut self, object: &str, key: String, texts: RecordTexts) {
        let mut doc = TantivyDocument::new();
        doc.add_text(self.fields.object, object);
        doc.add_text(self.fields.key, &key);
        doc.add_bytes(self.fields.texts, &texts.to_bytes());
        for (field, slot) in self.layout.get(object).map(Vec::as_slice).unwrap_or_default() {
            if let Some(text) = texts.get(field) {
                doc.add_text(self.fields.slots[*slot], text);
            }
        }
        if let Err(error) = self.writer.add_document(doc) {
            tracing::error!(%error, "search index: cannot add a document");
        }
        self.pending.insert(key.into_boxed_str(), Some(texts));
    }

    fn lay_out(&mut self, object: &str) {
        let Some(definition) = self.catalog.get(object) else {
            self.layout.remove(object);
            return;
        };
        let layout = layout_of(definition);
        self.layout.insert(object.to_string(), layout);
        // Re-index the object's records with the new layout.
        let records = self.records_of(object);
        self.writer.delete_term(Term::from_field_text(self.fields.object, object));
        for (key, texts) in records {
            let texts = self.without_secrets(object, texts);
            self.put(object, key, texts);
        }
    }

    /// Applies one event (the caller skips events at or below the checkpoint).
    pub fn apply(&mut self, envelope: &EventEnvelope, payload: &EventPayload) {
        self.checkpoint = envelope.position;
        self.last_event = Some((envelope.position, domain::hex::encode(&envelope.event_id)));
        self.dirty = true;
        match payload {
            EventPayload::RecordCreated(e) if kept(&e.object) => {
                let texts = RecordTexts::of(&e.record, &mut self.names);
                let texts = self.without_secrets(&e.object, texts);
                *self.counts.entry(e.object.clone()).or_default() += 1;
                self.put(&e.object, key(&e.object, &e.id), texts);
            }
            EventPayload::RecordUpdated(e) if kept(&e.object) => {
                let key = key(&e.object, &e.id);
                let before = self.texts_of(&key);
                let mut texts = before.clone().unwrap_or_default();
                for change in &e.changes {
                    texts.set(&change.field, text_of(&change.new), &mut self.names);
                }
                let texts = self.without_secrets(&e.object, texts);
                if before.as_ref() == Some(&texts) {
                    return;
                }
                if before.is_none() {
                    *self.counts.entry(e.object.clone()).or_default() += 1;
                }
                self.writer.delete_term(Term::from_field_text(self.fields.key, &key));
                self.put(&e.object, key, texts);
            }
            EventPayload::RecordDeleted(e) if kept(&e.object) => {
                let key = key(&e.object, &e.id);
                if self.texts_of(&key).is_some() {
                    self.counts.entry(e.object.clone()).and_modify(|n| *n = n.saturating_sub(1));
                }
                self.writer.delete_term(Term::from_field_text(self.fields.key, &key));
                self.pending.insert(key.into_boxed_str(), None);
            }
            EventPayload::ObjectDefined(e) | EventPayload::ObjectAltered(e) => {
                if let Err(error) = evolve_catalog(&mut self.catalog, payload) {
                    tracing::error!(%error, "search model cannot apply a definition");
                }
                self.lay_out(&e.name);
            }
            EventPayload::ObjectRemoved(e) => {
                let _ = evolve_catalog(&mut self.catalog, payload);
                self.lay_out(&e.name);
                self.writer.delete_term(Term::from_field_text(self.fields.object, &e.name));
                self.counts.remove(&e.name);
                let prefix = format!("{}{KEY_SEPARATOR}", e.name);
                self.pending.retain(|k, _| !k.starts_with(&prefix));
            }
            _ => {}
        }
        if self.bulk && self.pending.len() >= PENDING_MAX {
            self.commit();
        }
    }

    /// Moves the checkpoint. What was applied is committed (made searchable)
    /// here at most every [`COMMIT_EVERY`]; a search commits whatever is still
    /// pending first ([`SearchModel::make_visible`]), so reads see every applied
    /// event while a write burst costs a segment per interval, not per batch.
    pub fn advance_to(&mut self, position: u64) {
        self.checkpoint = self.checkpoint.max(position);
        if self.dirty && !self.bulk && self.committed_at.elapsed() >= COMMIT_EVERY {
            self.commit();
        }
    }

    /// Starts a bulk load: applied changes wait for [`SearchModel::end_bulk`]
    /// instead of being committed every [`COMMIT_EVERY`] (each commit makes a
    /// segment that merges then have to undo).
    pub fn begin_bulk(&mut self) {
        self.bulk = true;
    }

    /// Ends a bulk load: commits what it applied.
    pub fn end_bulk(&mut self) {
        self.bulk = false;
        self.make_visible();
    }

    /// Whether applied changes wait for a commit.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Commits pending changes so that searches see them.
    pub fn make_visible(&mut self) {
        if self.dirty {
            self.commit();
        }
    }

    /// Commits what was applied, with the position it is current as of and
    /// what a start needs to go on from there (on disk: atomically with the segments).
    fn commit(&mut self) {
        self.dirty = false;
        self.committed_at = std::time::Instant::now();
        let payload = Committed { position: self.checkpoint, event: self.last_event.clone(), catalog: self.catalog.clone() }.to_payload();
        let (writer, reader) = (&mut self.writer, &self.reader);
        let committed = off_the_workers(|| {
            let mut prepared = writer.prepare_commit()?;
            prepared.set_payload(&payload);
            prepared.commit()?;
            reader.reload()
        });
        match committed {
            Ok(()) => self.pending.clear(),
            Err(error) => tracing::error!(%error, "search index: cannot commit"),
        }
    }

    /// The best hits for a request, and how many documents match.
    pub fn search(&self, request: &SearchRequest) -> Result<SearchHits, DomainError> {
        let terms = terms_of(&request.query);
        if terms.is_empty() {
            return Ok(SearchHits::default());
        }
        let objects: Vec<String> = if request.objects.is_empty() {
            let mut all: Vec<String> = self.layout.iter().filter(|(_, l)| !l.is_empty()).map(|(o, _)| o.clone()).collect();
            all.sort();
            all
        } else {
            request.objects.iter().map(|o| self.catalog.require(o).map(|d| d.name.clone())).collect::<Result<_, _>>()?
        };
        let mut per_object: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for object in &objects {
            let layout = self.layout.get(object).map(Vec::as_slice).unwrap_or_default();
            for field in &request.fields {
                if request.objects.len() == 1 && !layout.iter().any(|(f, _)| f == field) {
                    // Not which fields are: the model does not know which the caller may read.
                    return Err(DomainError::InvalidQuery(format!("field '{field}' of '{object}' is not searchable")));
                }
            }
            let searched: Vec<Searched> = layout
                .iter()
                .filter(|(f, _)| request.fields.is_empty() || request.fields.contains(f))
                .map(|(f, slot)| Searched { slot: self.fields.slots[*slot], boost: request.boost.get(f).copied().unwrap_or(1.0).max(0.0) as f32 })
                .collect();
            if !searched.is_empty() {
                per_object.push((Occur::Should, object_query(self.fields.object, object, &searched, &terms, request.fuzzy, request.match_all)));
            }
        }
        if per_object.is_empty() {
            return Ok(SearchHits::default());
        }
        let query = BooleanQuery::new(per_object);
        let searcher = self.reader.searcher();
        let search_error = |e: tantivy::TantivyError| DomainError::InvalidQuery(format!("search failed: {e}"));
        let (top, total) = searcher.search(&query, &(TopDocs::with_limit(request.limit.max(1)), Count)).map_err(search_error)?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            if request.min_score.is_some_and(|min| (score as f64) < min) {
                continue;
            }
            let doc: TantivyDocument = searcher.doc(address).map_err(search_error)?;
            let Some(key) = doc.get_first(self.fields.key).and_then(|v| v.as_str()) else { continue };
            if let Some((object, id)) = key.split_once(KEY_SEPARATOR) {
                hits.push(SearchHit { object: object.to_string(), id: id.to_string(), score });
            }
        }
        Ok(SearchHits { hits, total })
    }
}
