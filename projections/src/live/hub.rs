//! The hub: the realtime projection, its connections and subscriptions.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use domain::event::{EventEnvelope, EventPayload};
use domain::value::Record;
use domain::DomainError;
use tokio::sync::mpsc;

use super::change::{Change, ChangeKind};
use super::diff::diff;
use super::spec::{Delivery, EventKind, Message, OpsMessage, Snapshot, Spec};
use crate::query_model::{QueryModel, RecordFilter, Viewer};
use crate::runner::{Projection, ProjectionError};

/// Recent changes kept so that a reconnecting client can resume.
pub const RING: usize = 65_536;
/// Ops messages kept per live query for resumes.
pub const HISTORY: usize = 1_024;
/// Most subscriptions one connection may hold.
pub const MAX_SUBSCRIPTIONS: usize = 1_000;
/// Rows the live queries of one connection may hold, counted by their page
/// size (a live query keeps its last result to diff the next against): 4
/// connections of 1,000 live queries of 10,000 rows took 2 GB before.
pub const MAX_LIVE_ROWS: u64 = 50_000;
/// How long a subscription outlives its connection.
pub const RETAIN: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The subscription is wrong (unknown object or field, bad filter...).
    #[error(transparent)]
    Rejected(#[from] DomainError),
    #[error("cannot resume after position {after}: changes are kept from position {oldest} on; read again and subscribe without a position")]
    ResumeGap { after: u64, oldest: u64 },
    #[error("the connection is closed")]
    Closed,
    #[error("a connection holds at most {MAX_SUBSCRIPTIONS} subscriptions")]
    TooMany,
    #[error("the live queries of a connection hold at most {MAX_LIVE_ROWS} rows (each counts its limit); this one would make {0}")]
    TooManyRows(u64),
    #[error("no subscription '{0}' is kept (they are kept {RETAIN:?} after their connection ends); subscribe again")]
    Unknown(String),
}

/// Resuming: the subscription id the client had (or wants), and the last position it saw.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    pub id: Option<String>,
    pub after: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Subscribed {
    pub id: Arc<str>,
    /// The hub's position when the subscription started (or resumed).
    pub position: u64,
}

pub struct Hub {
    /// The query model the hub reads and applies events to: its own, or (on
    /// the embedded store) the query read model itself, so rows are not kept twice.
    model: Arc<RwLock<QueryModel>>,
    inner: Mutex<Inner>,
    /// Moves on every metadata event (generated schemas compare it).
    metadata_version: std::sync::atomic::AtomicU64,
    /// Moves on every change to a session, an API key or a user, before the
    /// batch's position is published (caches of signed-in callers compare it).
    auth_generation: std::sync::atomic::AtomicU64,
}

struct Connection {
    tx: mpsc::Sender<Delivery>,
    capacity: usize,
    subs: Vec<Arc<str>>,
}

struct Sub {
    id: Arc<str>,
    connection: Option<u64>,
    viewer: Viewer,
    /// What the viewer may see of each object, compiled on first use (cleared when metadata changes).
    grants: Mutex<HashMap<String, Arc<SubGrant>>>,
    spec: Spec,
    filter: Option<RecordFilter>,
    live: Option<LiveState>,
    detached_at: Option<Instant>,
}

/// A subscriber's rights on one object.
struct SubGrant {
    readable: bool,
    /// The rows it sees (`None`: all).
    rows: Option<RecordFilter>,
    mask: domain::security::Mask,
}

impl Sub {
    fn grant(&self, model: &QueryModel, object: &str) -> Arc<SubGrant> {
        let mut grants = self.grants.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(grant) = grants.get(object) {
            return grant.clone();
        }
        let access = &self.viewer.access;
        let grant = match model.catalog().get(object) {
            _ if access.is_system() => SubGrant { readable: true, rows: None, mask: Default::default() },
            None => SubGrant { readable: false, rows: None, mask: Default::default() },
            Some(definition) => {
                let grant = access.grant(model.catalog(), definition);
                let mask = domain::security::Mask { hidden: grant.hidden.clone(), relations: Default::default() };
                match grant.read_rows.clone().map(|f| model.compile_filter(object, f)).transpose() {
                    Ok(rows) => SubGrant { readable: grant.permission.can_read(), rows, mask },
                    // Rows the hub cannot tell apart are not shown at all (never all of them).
                    Err(error) => {
                        tracing::warn!(subscription = %self.id, object, %error, "a row rule does not compile for realtime; the object is withheld");
                        SubGrant { readable: false, rows: None, mask }
                    }
                }
            }
        };
        let grant = Arc::new(grant);
        grants.insert(object.to_string(), grant.clone());
        grant
    }
}

struct LiveState {
    result: Vec<Arc<Record>>,
    total: Option<u64>,
    has_more: bool,
    history: VecDeque<Message>,
    /// Every ops message after this position is in `history`.
    history_from: u64,
}

#[derive(Default)]
struct Inner {
    ring: VecDeque<Arc<Change>>,
    /// Every change after this position is in `ring`.
    ring_from: u64,
    connections: HashMap<u64, Connection>,
    closed: HashMap<u64, String>,
    subs: HashMap<Arc<str>, Sub>,
    next_connection: u64,
    /// Messages queued for connections, ever.
    delivered: u64,
    /// Connections the hub closed because their buffer filled.
    dropped_slow: u64,
    /// Connections the hub closed because a session ended or rights changed.
    dropped_revoked: u64,
}

/// What the hub has done, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HubStats {
    /// Connections open now.
    pub connections: usize,
    /// Subscriptions kept now (attached to a connection or waiting for a resume).
    pub subscriptions: usize,
    /// Connections opened, ever (the next connection's id less one).
    pub opened: u64,
    /// Messages queued for connections, ever.
    pub delivered: u64,
    /// Connections closed because they could not keep up.
    pub dropped_slow: u64,
    /// Connections closed because their session ended or their rights changed.
    pub dropped_revoked: u64,
}

impl Hub {
    /// A hub with a query model of its own.
    pub fn new() -> Arc<Hub> {
        Hub::over(Arc::new(RwLock::new(QueryModel::default())))
    }

    /// A hub over a query model that it keeps up to date (as the query projection).
    pub fn over(model: Arc<RwLock<QueryModel>>) -> Arc<Hub> {
        Arc::new(Hub { model, inner: Mutex::new(Inner::default()), metadata_version: Default::default(), auth_generation: Default::default() })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, QueryModel> {
        self.model.read().unwrap_or_else(|p| p.into_inner())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The position of the last event applied.
    pub fn checkpoint(&self) -> u64 {
        self.read().checkpoint()
    }

    /// A number that changes whenever an object definition does.
    pub fn metadata_version(&self) -> u64 {
        self.metadata_version.load(std::sync::atomic::Ordering::Acquire)
    }

    /// A number that changes whenever a session, an API key or a user does.
    pub fn auth_generation(&self) -> u64 {
        self.auth_generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The metadata as of the hub's position, with its [`Hub::metadata_version`].
    pub fn catalog(&self) -> (u64, domain::metadata::Catalog) {
        let model = self.read();
        (self.metadata_version(), model.catalog().clone())
    }

    /// Counts for `/metrics`.
    pub fn stats(&self) -> HubStats {
        let inner = self.lock();
        HubStats {
            connections: inner.connections.len(),
            subscriptions: inner.subs.len(),
            opened: inner.next_connection,
            delivered: inner.delivered,
            dropped_slow: inner.dropped_slow,
            dropped_revoked: inner.dropped_revoked,
        }
    }

    /// A new connection with a buffer of `capacity` messages; deliveries arrive on the receiver.
    pub fn connect(&self, capacity: usize) -> (u64, mpsc::Receiver<Delivery>) {
        let capacity = capacity.max(1);
        let (tx, rx) = mpsc::channel(capacity);
        let mut inner = self.lock();
        inner.next_connection += 1;
        let id = inner.next_connection;
        inner.connections.insert(id, Connection { tx, capacity, subs: Vec::new() });
        (id, rx)
    }

    /// Ends a connection; its subscriptions are kept for [`RETAIN`] so a client can resume them.
    pub fn disconnect(&self, connection: u64) {
        let mut inner = self.lock();
        inner.closed.remove(&connection);
        inner.close(connection, None);
    }

    /// Why the hub closed a connection (a slow consumer), if it did.
    pub fn close_reason(&self, connection: u64) -> Option<String> {
        self.lock().closed.get(&connection).cloned()
    }

    pub fn unsubscribe(&self, id: &str) -> bool {
        let mut inner = self.lock();
        let Some(sub) = inner.subs.remove(id) else { return false };
        if let Some(conn) = sub.connection.and_then(|c| inner.connections.get_mut(&c)) {
            conn.subs.retain(|s| **s != *id);
        }
        true
    }

    /// Starts a subscription on a connection (or parked, with `None`, for a
    /// later resume), or resumes one: with `resume.id` naming a kept
    /// subscription it is moved to this connection and sent what it missed
    /// after `resume.after`. A new live query gets its current result first.
    pub fn subscribe(&self, connection: Option<u64>, viewer: Viewer, spec: Spec, resume: Resume) -> Result<Subscribed, LiveError> {
        self.subscribe_or_resume(connection, viewer, spec, resume, true)
    }

    fn subscribe_or_resume(&self, connection: Option<u64>, viewer: Viewer, spec: Spec, resume: Resume, create: bool) -> Result<Subscribed, LiveError> {
        // Lock order everywhere: the model, then the hub.
        let model = self.read();
        let model = &*model;
        let mut guard = self.lock();
        let inner = &mut *guard;
        if let Some(c) = connection {
            let Some(conn) = inner.connections.get(&c) else {
                return Err(LiveError::Closed);
            };
            let resuming_here = resume.id.as_deref().is_some_and(|id| conn.subs.iter().any(|s| **s == *id));
            if conn.subs.len() >= MAX_SUBSCRIPTIONS && !resuming_here {
                return Err(LiveError::TooMany);
            }
        }
        inner.purge();
        let position = model.checkpoint();
        if let Some(existing) = resume.id.as_deref().filter(|id| inner.subs.contains_key(*id)) {
            let id: Arc<str> = inner.subs.get_key_value(existing).map(|(k, _)| k.clone()).expect("checked above");
            let initial = inner.replay(model, &id, resume.after)?;
            inner.attach(&id, connection);
            inner.send_initial(connection, &id, initial);
            return Ok(Subscribed { id, position });
        }
        if !create {
            return Err(LiveError::Unknown(resume.id.unwrap_or_default()));
        }
        let id: Arc<str> = resume.id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string()).into();
        let mut sub =
            Sub { id: id.clone(), connection: None, viewer, grants: Default::default(), spec, filter: None, live: None, detached_at: Some(Instant::now()) };
        let mut initial = Vec::new();
        match &mut sub.spec {
            Spec::Changes { object, filter, .. } => {
                if let Some(name) = object.as_mut() {
                    *name = model.catalog().require(name)?.name.clone();
                }
                if let Some(name) = object.as_deref() {
                    // The same refusals as a query: an object the viewer may not read, a hidden field in the filter.
                    let mut probe = domain::query::Query::new(name);
                    probe.filter = filter.clone();
                    domain::query::check_query(&mut probe, model.catalog())?;
                    domain::security::secure_query(&sub.viewer.access, model.catalog(), &mut probe)?;
                }
                if let Some(filter) = filter.take() {
                    let Some(name) = object.as_deref() else {
                        return Err(DomainError::InvalidFilter("a filter needs an object to subscribe to".into()).into());
                    };
                    sub.filter = Some(model.compile_filter(name, filter)?);
                }
                if let Some(after) = resume.after {
                    initial = inner.changes_after(model, &sub, after)?;
                }
            }
            Spec::Live { query } => {
                if let Some(c) = connection {
                    let rows = |q: &domain::query::Query| q.limit.unwrap_or(crate::query_model::DEFAULT_LIMIT);
                    let held: u64 = inner.connections[&c]
                        .subs
                        .iter()
                        .filter_map(|id| match &inner.subs.get(id)?.spec {
                            Spec::Live { query } => Some(rows(query)),
                            Spec::Changes { .. } => None,
                        })
                        .sum();
                    if held + rows(query) > MAX_LIVE_ROWS {
                        return Err(LiveError::TooManyRows(held + rows(query)));
                    }
                }
                let output = model.execute(&sub.viewer, (**query).clone())?;
                // Keep the checked query (canonical names) for the re-runs.
                domain::query::check_query(query, model.catalog())?;
                let snapshot = Snapshot { position, records: output.records.clone(), total: output.total, has_more: output.has_more };
                initial.push(Message::Snapshot(Arc::new(snapshot)));
                sub.live = Some(LiveState {
                    result: output.records,
                    total: output.total,
                    has_more: output.has_more,
                    history: VecDeque::new(),
                    history_from: position,
                });
            }
        }
        inner.subs.insert(id.clone(), sub);
        inner.attach(&id, connection);
        inner.send_initial(connection, &id, initial);
        Ok(Subscribed { id, position })
    }

    /// Moves a kept subscription to a connection and sends what it missed
    /// after `after`; unlike [`Hub::subscribe`], never creates one.
    pub fn claim(&self, connection: u64, id: &str, after: Option<u64>) -> Result<Subscribed, LiveError> {
        // The spec and viewer are the kept subscription's own; these are never used.
        let unused = Spec::Changes { object: None, kinds: Vec::new(), filter: None, fields: Vec::new() };
        self.subscribe_or_resume(Some(connection), Viewer::system(), unused, Resume { id: Some(id.to_string()), after }, false)
    }

    /// Applies a batch of events to the model and fans the changes out.
    pub fn apply(&self, batch: &[(EventEnvelope, EventPayload)], up_to: u64) {
        let mut model_guard = self.model.write().unwrap_or_else(|p| p.into_inner());
        let model = &mut *model_guard;
        let mut guard = self.lock();
        let inner = &mut *guard;
        let watched = !inner.subs.is_empty();
        // Which objects the batch touched matters only to live queries (this is the
        // query projection's path on the embedded store: no work for nobody).
        let live_queries = inner.subs.values().any(|s| s.live.is_some());
        let mut touched: HashSet<String> = HashSet::new();
        // Sessions and keys revoked, users whose rights may have changed: their subscriptions end.
        let mut revoked: Vec<(bool, String)> = Vec::new();
        for (envelope, payload) in batch {
            if envelope.position <= model.checkpoint() {
                continue;
            }
            if let Some(change) = auth_change(payload) {
                self.auth_generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                if watched {
                    revoked.extend(change);
                }
            }
            let record_event = match payload {
                EventPayload::RecordCreated(e) => Some((ChangeKind::Created, &e.object, &e.id, e.record.keys().map(|k| k.to_string()).collect::<Vec<_>>())),
                EventPayload::RecordUpdated(e) => Some((ChangeKind::Updated, &e.object, &e.id, e.changes.iter().map(|c| c.field.clone()).collect())),
                EventPayload::RecordDeleted(e) => Some((ChangeKind::Deleted, &e.object, &e.id, e.previous.keys().map(|k| k.to_string()).collect())),
                _ => None,
            };
            let Some((kind, object, id, changed)) = record_event.filter(|_| watched) else {
                model.apply(envelope, payload);
                if matches!(payload, EventPayload::ObjectDefined(_) | EventPayload::ObjectAltered(_) | EventPayload::ObjectRemoved(_)) {
                    self.metadata_version.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                    for sub in inner.subs.values() {
                        sub.grants.lock().unwrap_or_else(|p| p.into_inner()).clear();
                    }
                }
                if live_queries {
                    touched.insert(payload.object().to_string());
                }
                continue;
            };
            let previous = current(model, object, id);
            model.apply(envelope, payload);
            let record = current(model, object, id);
            let change = Arc::new(Change::new(
                envelope.position,
                envelope.event_id,
                object.clone(),
                id.clone(),
                kind,
                record,
                previous,
                changed,
                envelope.actor.clone(),
                envelope.occurred_at,
            ));
            if live_queries {
                touched.insert(object.clone());
            }
            inner.fan_out(model, &change);
            inner.ring.push_back(change);
            if inner.ring.len() > RING {
                if let Some(old) = inner.ring.pop_front() {
                    inner.ring_from = old.position;
                }
            }
        }
        model.advance(up_to);
        if !revoked.is_empty() {
            inner.revoke(&revoked);
        }
        if !watched {
            inner.ring.clear();
            inner.ring_from = model.checkpoint();
        }
        drop(guard);
        drop(model_guard);
        if live_queries && !touched.is_empty() {
            // Re-running live queries only reads the model: readers are not held up meanwhile.
            // Only this runner applies events, so the model cannot move past the batch here.
            let model = self.read();
            let mut inner = self.lock();
            inner.refresh_live(&model, &touched);
        }
        self.lock().purge();
        // A snapshot for as-of reads, when one is due: readers go on meanwhile.
        self.read().keep_history();
    }
}

/// Whether an event changes who a caller is (a session, an API key or a
/// user); and, when it may end subscriptions, whose: `(true, session)` for a
/// revoked session or key, `(false, user)` for a changed or removed user.
fn auth_change(payload: &EventPayload) -> Option<Option<(bool, String)>> {
    match payload {
        EventPayload::RecordDeleted(e) if e.object == "session" || e.object == "api_key" => Some(Some((true, e.id.clone()))),
        EventPayload::RecordUpdated(e) if e.object == "user" => Some(Some((false, e.id.clone()))),
        EventPayload::RecordDeleted(e) if e.object == "user" => Some(Some((false, e.id.clone()))),
        EventPayload::RecordCreated(e) if matches!(e.object.as_str(), "session" | "api_key" | "user") => Some(None),
        EventPayload::RecordUpdated(e) if e.object == "session" || e.object == "api_key" => Some(None),
        _ => None,
    }
}

/// The record now, formula fields computed.
fn current(model: &QueryModel, object: &str, id: &str) -> Option<Arc<Record>> {
    model.get(&Viewer::system(), object, id).ok().flatten().map(Arc::new)
}

impl Inner {
    fn attach(&mut self, id: &Arc<str>, connection: Option<u64>) {
        let Some(sub) = self.subs.get_mut(id) else { return };
        if let Some(old) = sub.connection.and_then(|c| self.connections.get_mut(&c)) {
            old.subs.retain(|s| s != id);
        }
        sub.connection = connection.filter(|c| self.connections.contains_key(c));
        sub.detached_at = if sub.connection.is_some() { None } else { Some(Instant::now()) };
        if let Some(conn) = sub.connection.and_then(|c| self.connections.get_mut(&c)) {
            conn.subs.push(id.clone());
        }
    }

    fn send_initial(&mut self, connection: Option<u64>, id: &Arc<str>, messages: Vec<Message>) {
        let Some(c) = connection else { return };
        for message in messages {
            if !self.deliver(c, Delivery { subscription: id.clone(), message }) {
                return;
            }
        }
    }

    /// What a kept subscription missed after `after`.
    fn replay(&self, model: &QueryModel, id: &str, after: Option<u64>) -> Result<Vec<Message>, LiveError> {
        let sub = &self.subs[id];
        let Some(after) = after else { return Ok(Vec::new()) };
        match &sub.live {
            Some(live) if after >= live.history_from => Ok(live.history.iter().filter(|m| m.position() > after).cloned().collect()),
            Some(live) => {
                // Too far behind to replay: the whole result again.
                let snapshot = Snapshot { position: model.checkpoint(), records: live.result.clone(), total: live.total, has_more: live.has_more };
                Ok(vec![Message::Snapshot(Arc::new(snapshot))])
            }
            None => self.changes_after(model, sub, after),
        }
    }

    /// The kept changes after `after` that a subscription wants.
    fn changes_after(&self, model: &QueryModel, sub: &Sub, after: u64) -> Result<Vec<Message>, LiveError> {
        if after < self.ring_from && after < model.checkpoint() {
            return Err(LiveError::ResumeGap { after, oldest: self.ring_from + 1 });
        }
        let start = self.ring.partition_point(|c| c.position <= after);
        let mut out = Vec::new();
        for change in self.ring.range(start..) {
            if let Some((kinds, seen)) = self.wanted(model, sub, change) {
                for kind in kinds {
                    out.push(Message::Event { kind, change: seen.clone() });
                }
            }
        }
        Ok(out)
    }

    /// The event kinds under which a subscription wants a change, and the
    /// change as its viewer may see it (row rules and hidden fields applied).
    fn wanted(&self, model: &QueryModel, sub: &Sub, change: &Arc<Change>) -> Option<(Vec<EventKind>, Arc<Change>)> {
        let Spec::Changes { object, kinds, fields, .. } = &sub.spec else { return None };
        if object.as_deref().is_some_and(|o| o != change.object) {
            return None;
        }
        let grant = sub.grant(model, &change.object);
        if !grant.readable {
            return None;
        }
        let seen = |r: &Option<Arc<Record>>| r.as_ref().is_some_and(|r| grant.rows.as_ref().is_none_or(|rows| model.record_matches(rows, r)));
        let (before, after) = (seen(&change.previous), seen(&change.record));
        // The subscriber's filter, on the sides it may see (it names no hidden field: refused at subscribe).
        if let Some(filter) = &sub.filter {
            let passes = |r: &Option<Arc<Record>>| r.as_ref().is_some_and(|r| model.record_matches(filter, r));
            if !(before && passes(&change.previous) || after && passes(&change.record)) {
                return None;
            }
        }
        let change = change.for_viewer(before, after, &grant.mask)?;
        if !fields.is_empty() && change.kind == ChangeKind::Updated && !change.changed.iter().any(|f| fields.contains(f)) {
            return None;
        }
        let own = EventKind::of(change.kind);
        let mut out = Vec::new();
        if kinds.is_empty() || kinds.contains(&own) {
            out.push(own);
        }
        if own == EventKind::Updated && kinds.contains(&EventKind::FieldChanged) {
            out.push(EventKind::FieldChanged);
        }
        (!out.is_empty()).then_some((out, change))
    }

    fn fan_out(&mut self, model: &QueryModel, change: &Arc<Change>) {
        let mut deliveries: Vec<(u64, Delivery)> = Vec::new();
        for sub in self.subs.values() {
            let Some(connection) = sub.connection else { continue };
            let Some((kinds, seen)) = self.wanted(model, sub, change) else { continue };
            for kind in kinds {
                deliveries.push((connection, Delivery { subscription: sub.id.clone(), message: Message::Event { kind, change: seen.clone() } }));
            }
        }
        for (connection, delivery) in deliveries {
            self.deliver(connection, delivery);
        }
    }

    /// Re-runs the live queries on the touched objects and sends what changed.
    fn refresh_live(&mut self, model: &QueryModel, touched: &HashSet<String>) {
        let position = model.checkpoint();
        let mut deliveries: Vec<(u64, Delivery)> = Vec::new();
        for sub in self.subs.values_mut() {
            let (Some(live), Spec::Live { query }) = (sub.live.as_mut(), &sub.spec) else { continue };
            if !touched.contains(&query.object) {
                continue;
            }
            let output = match model.execute(&sub.viewer, (**query).clone()) {
                Ok(output) => output,
                Err(error) => {
                    tracing::warn!(subscription = %sub.id, %error, "a live query no longer runs");
                    continue;
                }
            };
            let ops = diff(&live.result, &output.records);
            if ops.is_empty() && output.total == live.total && output.has_more == live.has_more {
                continue;
            }
            let message = Message::Ops(Arc::new(OpsMessage { position, ops, total: output.total, has_more: output.has_more }));
            live.result = output.records;
            live.total = output.total;
            live.has_more = output.has_more;
            live.history.push_back(message.clone());
            if live.history.len() > HISTORY {
                if let Some(old) = live.history.pop_front() {
                    live.history_from = old.position();
                }
            }
            if let Some(connection) = sub.connection {
                deliveries.push((connection, Delivery { subscription: sub.id.clone(), message }));
            }
        }
        for (connection, delivery) in deliveries {
            self.deliver(connection, delivery);
        }
    }

    /// Queues a message without waiting; a full buffer closes the connection.
    fn deliver(&mut self, connection: u64, delivery: Delivery) -> bool {
        let Some(conn) = self.connections.get(&connection) else { return false };
        match conn.tx.try_send(delivery) {
            Ok(()) => {
                self.delivered += 1;
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                let reason = format!("slow consumer: {} messages were waiting; resume from the last position received", conn.capacity);
                self.dropped_slow += 1;
                self.close(connection, Some(reason));
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.close(connection, None);
                false
            }
        }
    }

    fn close(&mut self, connection: u64, reason: Option<String>) {
        let Some(conn) = self.connections.remove(&connection) else { return };
        if let Some(reason) = reason {
            tracing::info!(connection, %reason, "realtime connection closed");
            self.closed.insert(connection, reason);
        }
        let now = Instant::now();
        for id in conn.subs {
            if let Some(sub) = self.subs.get_mut(&id) {
                sub.connection = None;
                sub.detached_at = Some(now);
            }
        }
    }

    /// Ends the subscriptions of revoked sessions (`(true, session)`) and of
    /// users whose record changed (`(false, user)`: their rights may differ
    /// now), closing their connections with the reason; nothing is resumable.
    fn revoke(&mut self, revoked: &[(bool, String)]) {
        let hit = |sub: &Sub| {
            revoked.iter().any(|(session, id)| {
                if *session {
                    sub.viewer.session.as_deref() == Some(id.as_str())
                } else {
                    !sub.viewer.access.is_system() && sub.viewer.access.principal().user_id == *id
                }
            })
        };
        let ended: Vec<Arc<str>> = self.subs.values().filter(|s| hit(s)).map(|s| s.id.clone()).collect();
        let connections: HashSet<u64> = ended.iter().filter_map(|id| self.subs.get(id).and_then(|s| s.connection)).collect();
        for id in &ended {
            self.subs.remove(id);
        }
        for connection in connections {
            self.dropped_revoked += 1;
            self.close(connection, Some("signed out, or your rights changed: sign in and subscribe again".into()));
        }
    }

    /// Forgets subscriptions detached for longer than [`RETAIN`].
    fn purge(&mut self) {
        self.subs.retain(|_, sub| sub.detached_at.is_none_or(|at| at.elapsed() < RETAIN));
        if self.closed.len() > 10_000 {
            self.closed.clear();
        }
    }
}

/// The hub as a projection: `realtime` with a model of its own, or `query`
/// when its model is the in-process query read model.
pub struct LiveProjection {
    pub hub: Arc<Hub>,
    pub name: &'static str,
}

#[async_trait]
impl Projection for LiveProjection {
    fn name(&self) -> &str {
        self.name
    }

    async fn checkpoint(&mut self) -> Result<u64, ProjectionError> {
        Ok(self.hub.checkpoint())
    }

    async fn apply(&mut self, batch: &[(EventEnvelope, EventPayload)], up_to: u64) -> Result<(), ProjectionError> {
        self.hub.apply(batch, up_to);
        Ok(())
    }
}
