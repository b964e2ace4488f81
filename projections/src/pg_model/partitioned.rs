//! The query read model kept by projector nodes, one Kafka partition at a
//! time.
//!
//! The relay puts every event of a stream on one partition
//! (`commands::kafka::message::partition_of`), in log order. A consumer
//! group gives each projector node some partitions; [`PartitionedModel::advance`]
//! applies the events of the partitions a node took a round of messages for,
//! each up to its own position, in one transaction with those partitions'
//! rows of `rm_partitions` (per partition: the position every event of the
//! partition at or below which is applied, the last message's offset, and
//! counters). The rows are locked first, in partition order, so two nodes
//! that both believe they hold a partition during a rebalance apply each
//! event once: the second finds the row moved and passes by what it already
//! holds.
//!
//! The log decides what a partition holds: the index of the log (positions
//! and streams, no payloads) between the row's position and the target is
//! read, and every event of this partition in it is applied, its payload
//! taken from the topic's message when one came and from the log otherwise.
//! So a broker that lost messages, a topic whose retention dropped old ones,
//! or a relay that is down means more reads of the log, never a skipped event.
//!
//! Metadata events are applied in log order across partitions (a record's
//! table must exist before its rows do), from the log, under their own
//! checkpoint `query-metadata`, before any partition applies events past
//! them. A record event of an object that was since removed (absent from the
//! catalog, or older than the definition the object now has: `since`) is
//! passed by, as its table was dropped with the removal.
//!
//! The model's position for readers (`rm_checkpoints.query`, which gateways'
//! read barriers wait on) is the lowest position over all partitions: every
//! event at or below it is applied, whichever partition it is on.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use commands::kafka::message::partition_of;
use commands::store::PostgresStore;
use deadpool_postgres::{Pool, Transaction};
use domain::event::codec::decode_envelope_payload;
use domain::event::{EventEnvelope, EventPayload};
use domain::metadata::Catalog;

use super::apply::{apply_one, Creates};
use super::{db_error, store_error};
use crate::dead_letter::DeadLetter;
use crate::runner::ProjectionError;

const NAME: &str = "query";
const METADATA: &str = "query-metadata";
const METADATA_TYPES: [&str; 3] = ["object.defined", "object.altered", "object.removed"];
/// Log index entries read (and events applied) per transaction.
const CHUNK: usize = 5_000;

/// What one call of [`PartitionedModel::advance`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Advanced {
    /// The partition's position after it.
    pub position: u64,
    /// Events of the partition applied, with their payloads from the topic.
    pub from_topic: u64,
    /// Events of the partition applied from the log (the topic had not brought them).
    pub from_log: u64,
    /// Messages passed by because the partition already held them.
    pub repeats: u64,
}

/// One partition's part of a call of [`PartitionedModel::advance`].
#[derive(Debug, Clone, Copy)]
pub struct Target<'m> {
    pub partition: i32,
    /// The position to bring the partition up to.
    pub through: u64,
    /// The topic's messages of this partition, by position.
    pub messages: &'m BTreeMap<u64, EventEnvelope>,
    /// The last message's offset (-1: none), kept with the position.
    pub offset: i64,
}

/// One projector node's handle on the partitioned query model.
pub struct PartitionedModel {
    store: Arc<PostgresStore>,
    pool: Pool,
    topic: String,
    partitions: i32,
    /// The catalog as of `metadata_at`, and where each object's current definition began.
    catalog: Catalog,
    since: HashMap<String, u64>,
    metadata_at: u64,
    /// Whether `catalog` was read from `rm_objects` yet.
    loaded: bool,
}

impl PartitionedModel {
    /// Opens the model in the store's database for a topic of `partitions` partitions.
    pub async fn open(store: Arc<PostgresStore>, topic: &str, partitions: i32) -> Result<PartitionedModel, ProjectionError> {
        let pool = store.pool().clone();
        let client = pool.get().await.map_err(store_error)?;
        client
            .execute("INSERT INTO rm_checkpoints (projection, position) VALUES ($1, 0) ON CONFLICT (projection) DO NOTHING", &[&NAME])
            .await
            .map_err(db_error)?;
        // Metadata is as far as the model is (it was applied with everything else before projector nodes took over).
        client
            .execute(
                "INSERT INTO rm_checkpoints (projection, position) SELECT $1, position FROM rm_checkpoints WHERE projection = $2 ON CONFLICT (projection) DO NOTHING",
                &[&METADATA, &NAME],
            )
            .await
            .map_err(db_error)?;
        drop(client);
        Ok(PartitionedModel {
            store,
            pool,
            topic: topic.to_string(),
            partitions,
            catalog: Catalog::default(),
            since: HashMap::new(),
            metadata_at: 0,
            loaded: false,
        })
    }

    pub fn partitions(&self) -> i32 {
        self.partitions
    }

    /// Applies the metadata events up to `through` (from the log), unless
    /// another node already has.
    async fn metadata_through(&mut self, through: u64) -> Result<(), ProjectionError> {
        let mut client = self.pool.get().await.map_err(store_error)?;
        if self.loaded && self.metadata_at >= through {
            // A live rebuild's swap may have moved the metadata back to its copy's position.
            let at: i64 = client.query_one("SELECT position FROM rm_checkpoints WHERE projection = $1", &[&METADATA]).await.map_err(db_error)?.get(0);
            if at as u64 == self.metadata_at {
                return Ok(());
            }
        }
        let tx = client.transaction().await.map_err(db_error)?;
        let at =
            tx.query_one("SELECT position FROM rm_checkpoints WHERE projection = $1 FOR UPDATE", &[&METADATA]).await.map_err(db_error)?.get::<_, i64>(0) as u64;
        if !self.loaded || at != self.metadata_at {
            self.load_catalog(&tx).await?;
            self.loaded = true;
        }
        if at < through {
            let mut catalog = self.catalog.clone();
            let mut since = self.since.clone();
            for envelope in self.store.read_types_between(at, through, &METADATA_TYPES).await.map_err(store_error)? {
                let payload = decode_envelope_payload(&envelope, domain::event::registry()).map_err(|e| ProjectionError::Rejected(e.to_string()))?;
                let (name, new) = match &payload {
                    EventPayload::ObjectDefined(e) | EventPayload::ObjectAltered(e) => (e.name.clone(), catalog.get(&e.name).is_none()),
                    EventPayload::ObjectRemoved(e) => (e.name.clone(), false),
                    _ => continue,
                };
                apply_one(&tx, &mut catalog, &payload).await?;
                if new {
                    tx.execute("UPDATE rm_objects SET since = $2 WHERE name = $1", &[&name, &(envelope.position as i64)]).await.map_err(db_error)?;
                    since.insert(name, envelope.position);
                } else if matches!(payload, EventPayload::ObjectRemoved(_)) {
                    since.remove(&name);
                }
            }
            tx.execute("UPDATE rm_checkpoints SET position = $2 WHERE projection = $1", &[&METADATA, &(through as i64)]).await.map_err(db_error)?;
            tx.commit().await.map_err(db_error)?;
            (self.catalog, self.since, self.metadata_at) = (catalog, since, through);
        } else {
            tx.commit().await.map_err(db_error)?;
            self.metadata_at = at;
        }
        Ok(())
    }

    async fn load_catalog(&mut self, tx: &Transaction<'_>) -> Result<(), ProjectionError> {
        let rows = tx.query("SELECT name, namespace, definition::text, since FROM rm_objects ORDER BY name", &[]).await.map_err(db_error)?;
        let mut catalog = Catalog::default();
        let mut since = HashMap::new();
        for row in rows {
            let payload = EventPayload::ObjectDefined(domain::event::ObjectDefined { name: row.get(0), namespace: row.get(1), definition: row.get(2) });
            domain::metadata::evolve_catalog(&mut catalog, &payload).map_err(store_error)?;
            since.insert(row.get::<_, String>(0), row.get::<_, i64>(3) as u64);
        }
        (self.catalog, self.since) = (catalog, since);
        Ok(())
    }

    /// Applies each target partition's events after its position up to its
    /// `through`, all in one transaction per chunk of the log's index (so a
    /// round costs one index read and one commit, whatever the number of
    /// partitions): payloads from the target's `messages` (the topic's, by
    /// position) where present, from the log for events at or below
    /// `fill_before`; a partition stops short of a later event the topic has
    /// not brought yet (it is on its way). One target per partition.
    /// Answers what each target did.
    pub async fn advance(&mut self, targets: &[Target<'_>], fill_before: u64) -> Result<BTreeMap<i32, Advanced>, ProjectionError> {
        let mut done: BTreeMap<i32, Advanced> = targets.iter().map(|t| (t.partition, Advanced::default())).collect();
        let Some(highest) = targets.iter().map(|t| t.through).max() else { return Ok(done) };
        self.metadata_through(highest).await?;
        let ids: Vec<i32> = done.keys().copied().collect();
        let by_partition: HashMap<i32, &Target<'_>> = targets.iter().map(|t| (t.partition, t)).collect();
        // Partitions that stopped before an event the topic has not brought.
        let mut stopped: Vec<i32> = Vec::new();
        let mut first = true;
        let mut one_by_one = false;
        loop {
            let mut client = self.pool.get().await.map_err(store_error)?;
            let tx = client.transaction().await.map_err(db_error)?;
            // Derived data: a crash may lose the last commits (rows and partition rows together), which are applied again.
            tx.batch_execute("SET LOCAL synchronous_commit = off").await.map_err(db_error)?;
            tx.execute(
                "INSERT INTO rm_partitions (projection, topic, partition, partitions) SELECT $1, $2, p, $4 FROM unnest($3::int[]) AS p ON CONFLICT DO NOTHING",
                &[&NAME, &self.topic, &ids, &self.partitions],
            )
            .await
            .map_err(db_error)?;
            // In partition order: nodes whose rounds overlap (a rebalance) wait on each other, never deadlock.
            let rows = tx
                .query(
                    "SELECT partition, position FROM rm_partitions WHERE projection = $1 AND topic = $2 AND partition = ANY($3) ORDER BY partition FOR UPDATE",
                    &[&NAME, &self.topic, &ids],
                )
                .await
                .map_err(db_error)?;
            // The metadata cannot move while this commits (its applier takes
            // the row for update), and this node's view of it is the row's:
            // else a record could land in a table that another node just
            // dropped and made again for a new object of the same name.
            let metadata: i64 =
                tx.query_one("SELECT position FROM rm_checkpoints WHERE projection = $1 FOR SHARE", &[&METADATA]).await.map_err(db_error)?.get(0);
            if metadata as u64 != self.metadata_at {
                self.load_catalog(&tx).await?;
                self.metadata_at = metadata as u64;
            }
            let floor: i64 = tx.query_one("SELECT position FROM rm_checkpoints WHERE projection = $1", &[&NAME]).await.map_err(db_error)?.get(0);
            // Where each partition is, and the ones still to move.
            let mut from: BTreeMap<i32, u64> = BTreeMap::new();
            for row in &rows {
                let partition: i32 = row.get(0);
                let at = (row.get::<_, i64>(1) as u64).max(floor as u64);
                let target = by_partition[&partition];
                let entry = done.get_mut(&partition).expect("a target's row");
                if first {
                    entry.repeats = target.messages.range(..=at).count() as u64;
                }
                entry.position = at;
                if at < target.through && !stopped.contains(&partition) {
                    from.insert(partition, at);
                }
            }
            first = false;
            let (Some(low), Some(high)) = (from.values().min().copied(), from.keys().map(|p| by_partition[p].through).max()) else {
                tx.commit().await.map_err(db_error)?;
                return Ok(done);
            };
            let index = self.store.index_between(low, high, CHUNK).await.map_err(store_error)?;
            let full = index.len() >= CHUNK;
            let end = if full { index.last().map_or(high, |(p, _)| *p) } else { high };
            let mut mine: BTreeMap<i32, Vec<u64>> = from.keys().map(|p| (*p, Vec::new())).collect();
            for (position, stream) in &index {
                let partition = partition_of(stream, self.partitions);
                if let (Some(list), Some(at)) = (mine.get_mut(&partition), from.get(&partition)) {
                    if *position > *at && *position <= by_partition[&partition].through {
                        list.push(*position);
                    }
                }
            }
            // Each partition's end in this chunk, and what it applies.
            let mut moves: Vec<(i32, u64, Vec<u64>)> = Vec::new();
            let mut cut_here = Vec::new();
            for (partition, mut positions) in mine {
                let target = by_partition[&partition];
                let mut until = end.min(target.through);
                if let Some(cut) = positions.iter().position(|p| *p > fill_before && !target.messages.contains_key(p)) {
                    until = positions[cut] - 1;
                    positions.truncate(cut);
                    cut_here.push(partition);
                }
                if until > from[&partition] {
                    moves.push((partition, until, positions));
                }
            }
            let missing: Vec<u64> = moves
                .iter()
                .flat_map(|(partition, _, positions)| positions.iter().filter(|p| !by_partition[partition].messages.contains_key(p)))
                .copied()
                .collect();
            let from_log: BTreeMap<u64, EventEnvelope> =
                self.store.read_positions(&missing).await.map_err(store_error)?.into_iter().map(|e| (e.position, e)).collect();
            let mut events: Vec<&EventEnvelope> = Vec::new();
            for (partition, _, positions) in &moves {
                for position in positions {
                    match by_partition[partition].messages.get(position).or_else(|| from_log.get(position)) {
                        Some(event) => events.push(event),
                        None => return Err(ProjectionError::Store(format!("the log did not return the event at {position} (partition {partition})"))),
                    }
                }
            }
            // Log order across partitions: consecutive creates of one object go in one statement.
            events.sort_by_key(|e| e.position);
            let payloads = self.decoded(&tx, &events).await?;
            match self.apply_all(&tx, &payloads, one_by_one).await {
                Err(ProjectionError::Rejected(_)) if !one_by_one => {
                    // One event refuses: this chunk again, from the rows as they
                    // are then (another node may have moved them), one event at
                    // a time, parking what refuses.
                    drop(tx);
                    one_by_one = true;
                    continue;
                }
                Err(error) => return Err(error),
                Ok(()) => self.finish(tx, &moves, &by_partition).await?,
            }
            one_by_one = false;
            stopped.extend(cut_here);
            for (partition, until, positions) in &moves {
                let entry = done.get_mut(partition).expect("a target's entry");
                let logged = positions.iter().filter(|p| from_log.contains_key(p)).count() as u64;
                entry.position = *until;
                entry.from_log += logged;
                entry.from_topic += positions.len() as u64 - logged;
            }
            if !full {
                return Ok(done);
            }
        }
    }

    /// The events' payloads; one that cannot be decoded is parked.
    async fn decoded<'e>(&self, tx: &Transaction<'_>, events: &[&'e EventEnvelope]) -> Result<Vec<(&'e EventEnvelope, EventPayload)>, ProjectionError> {
        let mut out = Vec::with_capacity(events.len());
        for event in events {
            match decode_envelope_payload(event, domain::event::registry()) {
                Ok(payload) => out.push((*event, payload)),
                Err(error) => park(tx, event, &error.to_string()).await?,
            }
        }
        Ok(out)
    }

    /// Applies decoded events (metadata excepted: [`Self::metadata_through`]
    /// did). `one_by_one`: each in a savepoint, parking the ones refused.
    async fn apply_all(&self, tx: &Transaction<'_>, events: &[(&EventEnvelope, EventPayload)], one_by_one: bool) -> Result<(), ProjectionError> {
        let mut catalog = self.catalog.clone();
        let mut creates = Creates::default();
        for (envelope, payload) in events {
            let object = match payload {
                EventPayload::ObjectDefined(_) | EventPayload::ObjectAltered(_) | EventPayload::ObjectRemoved(_) => continue,
                EventPayload::RecordCreated(e) => Some(&e.object),
                EventPayload::RecordUpdated(e) => Some(&e.object),
                EventPayload::RecordDeleted(e) => Some(&e.object),
                _ => None,
            };
            if let Some(object) = object {
                // Removed since (or removed and defined again): its table went with it.
                if self.since.get(object.as_str()).is_none_or(|since| envelope.position < *since) {
                    continue;
                }
            }
            if one_by_one {
                tx.batch_execute("SAVEPOINT event").await.map_err(db_error)?;
                match apply_one(tx, &mut catalog, payload).await {
                    Ok(()) => tx.batch_execute("RELEASE SAVEPOINT event").await.map_err(db_error)?,
                    Err(ProjectionError::Rejected(reason)) => {
                        tx.batch_execute("ROLLBACK TO SAVEPOINT event").await.map_err(db_error)?;
                        park(tx, envelope, &reason).await?;
                    }
                    Err(error) => return Err(error),
                }
                continue;
            }
            if let EventPayload::RecordCreated(e) = payload {
                creates.add(tx, e).await?;
                continue;
            }
            creates.flush(tx).await?;
            apply_one(tx, &mut catalog, payload).await?;
        }
        creates.flush(tx).await
    }

    /// Moves the partitions' rows to their ends in this chunk, and commits.
    async fn finish(&self, tx: Transaction<'_>, moves: &[(i32, u64, Vec<u64>)], targets: &HashMap<i32, &Target<'_>>) -> Result<(), ProjectionError> {
        let partitions: Vec<i32> = moves.iter().map(|(p, _, _)| *p).collect();
        let ends: Vec<i64> = moves.iter().map(|(_, until, _)| *until as i64).collect();
        let offsets: Vec<i64> = moves.iter().map(|(p, _, _)| targets[p].offset).collect();
        let applied: Vec<i64> = moves.iter().map(|(_, _, positions)| positions.len() as i64).collect();
        tx.execute(
            "UPDATE rm_partitions AS r SET position = greatest(r.position, u.position), message_offset = greatest(r.message_offset, u.message_offset), \
             applied = r.applied + u.applied FROM unnest($3::int[], $4::bigint[], $5::bigint[], $6::bigint[]) AS u(partition, position, message_offset, applied) \
             WHERE r.projection = $1 AND r.topic = $2 AND r.partition = u.partition",
            &[&NAME, &self.topic, &partitions, &ends, &offsets, &applied],
        )
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    /// Moves the model's position for readers to the lowest partition
    /// position, once every partition has a row; answers it.
    pub async fn publish_position(&self) -> Result<u64, ProjectionError> {
        let client = self.pool.get().await.map_err(store_error)?;
        let row = client
            .query_one(
                "UPDATE rm_checkpoints SET position = greatest(position, coalesce((SELECT CASE WHEN count(*) = $2 THEN min(position) END \
                 FROM rm_partitions WHERE projection = $3 AND topic = $1), 0)) WHERE projection = $3 RETURNING position",
                &[&self.topic, &(self.partitions as i64), &NAME],
            )
            .await
            .map_err(db_error)?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    /// Every partition's row: (partition, position, message offset, events applied).
    pub async fn partition_rows(&self) -> Result<Vec<(i32, u64, i64, u64)>, ProjectionError> {
        let client = self.pool.get().await.map_err(store_error)?;
        let rows = client
            .query(
                "SELECT partition, position, message_offset, applied FROM rm_partitions WHERE projection = $1 AND topic = $2 ORDER BY partition",
                &[&NAME, &self.topic],
            )
            .await
            .map_err(db_error)?;
        Ok(rows.iter().map(|r| (r.get(0), r.get::<_, i64>(1) as u64, r.get(2), r.get::<_, i64>(3) as u64)).collect())
    }
}

/// Parks an event the model cannot take (listed with the query projection's dead letters).
async fn park(tx: &Transaction<'_>, event: &EventEnvelope, error: &str) -> Result<(), ProjectionError> {
    tracing::warn!(position = event.position, event_type = event.event_type, %error, "the query model refused an event; parked");
    super::letters::insert(tx, NAME, &DeadLetter::of(event, error)).await
}
