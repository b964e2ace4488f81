//! The search model: the tantivy index, the field layout per object, and the
//! text of every record (so a changed definition re-indexes from memory).

use std::collections::{BTreeMap, HashMap};

use domain::event::{EventEnvelope, EventPayload};
use domain::metadata::{evolve_catalog, Catalog, FieldType, ObjectDef};
use domain::DomainError;
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{BooleanQuery, Occur, Query};
use tantivy::schema::{Field, Schema, Value as _, STORED, STRING, TEXT};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

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

pub struct SearchModel {
    writer: IndexWriter,
    reader: IndexReader,
    object_field: Field,
    key_field: Field,
    slots: Vec<Field>,
    catalog: Catalog,
    /// object -> (searchable field, slot).
    layout: HashMap<String, Vec<(String, usize)>>,
    /// key -> the record's text values.
    texts: Map<Box<str>, RecordTexts>,
    /// Field names shared by the texts.
    names: Names,
    dirty: bool,
    /// A bulk load (a copy nobody searches yet): no periodic commits, one at the end.
    bulk: bool,
    /// When the index was last committed (a commit makes a segment: not per batch under load).
    committed_at: std::time::Instant,
    checkpoint: u64,
}

impl Default for SearchModel {
    fn default() -> Self {
        let mut builder = Schema::builder();
        let object_field = builder.add_text_field("object", STRING);
        let key_field = builder.add_text_field("key", STRING | STORED);
        let slots: Vec<Field> = (0..SLOTS).map(|i| builder.add_text_field(&format!("f{i}"), TEXT)).collect();
        let index = Index::create_in_ram(builder.build());
        let writer = index.writer_with_num_threads(1, WRITER_BUDGET).expect("an in-memory index writer");
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into().expect("an in-memory index reader");
        SearchModel {
            writer,
            reader,
            object_field,
            key_field,
            slots,
            catalog: Catalog::default(),
            layout: HashMap::new(),
            texts: Map::default(),
            names: Names::default(),
            dirty: false,
            bulk: false,
            committed_at: std::time::Instant::now(),
            checkpoint: 0,
        }
    }
}

fn key(object: &str, id: &str) -> String {
    format!("{object}{KEY_SEPARATOR}{id}")
}

impl SearchModel {
    pub fn checkpoint(&self) -> u64 {
        self.checkpoint
    }

    /// Records indexed.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// The searchable fields of an object, as indexed.
    pub fn fields_of(&self, object: &str) -> Vec<String> {
        self.layout.get(object).map(|l| l.iter().map(|(f, _)| f.clone()).collect()).unwrap_or_default()
    }

    fn index_doc(&mut self, object: &str, key: &str) {
        let (Some(layout), Some(texts)) = (self.layout.get(object), self.texts.get(key)) else { return };
        let mut doc = TantivyDocument::new();
        doc.add_text(self.object_field, object);
        doc.add_text(self.key_field, key);
        for (field, slot) in layout {
            if let Some(text) = texts.get(field) {
                doc.add_text(self.slots[*slot], text);
            }
        }
        if let Err(error) = self.writer.add_document(doc) {
            tracing::error!(%error, "search index: cannot add a document");
        }
    }

    fn lay_out(&mut self, object: &str) {
        let Some(definition) = self.catalog.get(object) else {
            self.layout.remove(object);
            return;
        };
        let layout = searchable_fields(definition).into_iter().enumerate().map(|(i, f)| (f, i.min(SLOTS - 1))).collect();
        self.layout.insert(object.to_string(), layout);
        // Re-index the object's records with the new layout.
        self.writer.delete_term(Term::from_field_text(self.object_field, object));
        let prefix = format!("{object}{KEY_SEPARATOR}");
        let keys: Vec<String> = self.texts.keys().filter(|k| k.starts_with(&prefix)).map(|k| k.to_string()).collect();
        for key in keys {
            self.index_doc(object, &key);
        }
    }

    /// Applies one event (the caller skips events at or below the checkpoint).
    pub fn apply(&mut self, envelope: &EventEnvelope, payload: &EventPayload) {
        self.checkpoint = envelope.position;
        self.dirty = true;
        match payload {
            EventPayload::RecordCreated(e) => {
                let key = key(&e.object, &e.id);
                let texts = RecordTexts::of(&e.record, &mut self.names);
                self.texts.insert(key.as_str().into(), texts);
                self.index_doc(&e.object, &key);
            }
            EventPayload::RecordUpdated(e) => {
                let key = key(&e.object, &e.id);
                if !self.texts.contains_key(key.as_str()) {
                    self.texts.insert(key.as_str().into(), RecordTexts::default());
                }
                let texts = self.texts.get_mut(key.as_str()).expect("inserted above");
                for change in &e.changes {
                    texts.set(&change.field, text_of(&change.new), &mut self.names);
                }
                self.writer.delete_term(Term::from_field_text(self.key_field, &key));
                self.index_doc(&e.object, &key);
            }
            EventPayload::RecordDeleted(e) => {
                let key = key(&e.object, &e.id);
                self.texts.remove(key.as_str());
                self.writer.delete_term(Term::from_field_text(self.key_field, &key));
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
                let prefix = format!("{}{KEY_SEPARATOR}", e.name);
                self.texts.retain(|k, _| !k.starts_with(&prefix));
            }
            EventPayload::EventSkipped(_) | EventPayload::Process(_) => {}
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

    fn commit(&mut self) {
        self.dirty = false;
        self.committed_at = std::time::Instant::now();
        let (writer, reader) = (&mut self.writer, &self.reader);
        if let Err(error) = off_the_workers(|| writer.commit().and_then(|_| reader.reload())) {
            tracing::error!(%error, "search index: cannot commit");
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
                .map(|(f, slot)| Searched { slot: self.slots[*slot], boost: request.boost.get(f).copied().unwrap_or(1.0).max(0.0) as f32 })
                .collect();
            if !searched.is_empty() {
                per_object.push((Occur::Should, object_query(self.object_field, object, &searched, &terms, request.fuzzy, request.match_all)));
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
            let Some(key) = doc.get_first(self.key_field).and_then(|v| v.as_str()) else { continue };
            if let Some((object, id)) = key.split_once(KEY_SEPARATOR) {
                hits.push(SearchHit { object: object.to_string(), id: id.to_string(), score });
            }
        }
        Ok(SearchHits { hits, total })
    }
}
