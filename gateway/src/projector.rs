//! The `projector` command: a projector node keeping the PostgreSQL query
//! model from the Kafka topic, sharing the topic's partitions with the other
//! nodes of its consumer group (`projections::pg_model::partitioned`).
//!
//! Each round takes what the consumer brought (at most [`ROUND`] messages),
//! applies every partition's events up to its last message in one transaction
//! with those partitions' rows, then publishes the model's position for the
//! gateways' read barriers. A partition of this node that brought nothing for
//! [`FILL_AFTER`] is brought up to where the log was then, from the log, so a
//! relay that is down or a quiet partition never holds the position back.
//! Offsets are committed to the group after PostgreSQL commits, only as a
//! hint of where to start: the partition rows decide what is applied. A
//! partition of another node that stands still behind the log for
//! [`ORPHAN_AFTER`] (its node killed, and the group not yet, or never, giving
//! it to another) is filled from the log by this one.
//!
//! Where asked to listen: `/live` (200 while running), `/health` (200 once
//! a round went through since the last failure) and `/metrics`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use commands::kafka::{message, KafkaSettings};
use commands::store::{EventStore, PostgresSettings};
use domain::event::EventEnvelope;
use projections::pg_model::partitioned::{PartitionedModel, Target};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;

/// Messages taken per round at most.
const ROUND: usize = 5_000;
/// How long a partition may bring nothing before the log fills it.
const FILL_AFTER: Duration = Duration::from_millis(300);
/// How long another node's partition may stand still behind the log before this node fills it.
const ORPHAN_AFTER: Duration = Duration::from_secs(2);
/// How often the partitions of other nodes are looked at.
const CHECK_ORPHANS: Duration = Duration::from_millis(100);

/// A projector node's settings.
#[derive(Debug, Clone)]
pub struct ProjectorSettings {
    pub postgres: PostgresSettings,
    pub kafka: KafkaSettings,
    /// The consumer group: its nodes share the partitions.
    pub group: String,
}

/// What a projector node did (for `/metrics`).
#[derive(Debug, Default)]
pub struct ProjectorStatus {
    pub healthy: AtomicBool,
    pub from_topic: AtomicU64,
    pub from_log: AtomicU64,
    pub repeats: AtomicU64,
    pub undecodable: AtomicU64,
    pub assigned: AtomicU64,
    pub position: AtomicU64,
    /// Times this node began filling a partition no node moved.
    pub orphans: AtomicU64,
}

/// Runs a projector node until `shutdown` completes.
pub async fn run(
    settings: ProjectorSettings,
    listen: Option<SocketAddr>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let status = Arc::new(ProjectorStatus::default());
    let (stop_tx, mut stop) = watch::channel(false);
    if let Some(address) = listen {
        crate::status::serve(address, "projector", status.clone(), health, metrics, stop.clone()).await?;
    }
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let store = Arc::new(commands::store::open_postgres(&settings.postgres).await.context("opening the event store")?);
    let consumer: Arc<StreamConsumer> = Arc::new(
        settings
            .kafka
            .client(&[
                ("group.id", settings.group.as_str()),
                ("enable.auto.commit", "false"),
                ("auto.offset.reset", "earliest"),
                ("session.timeout.ms", "6000"),
                ("heartbeat.interval.ms", "1000"),
                // Brokers that answer a fetch only when its wait ends (tansu) would add that wait to every read barrier.
                ("fetch.wait.max.ms", "10"),
            ])
            .create()
            .context("creating the Kafka consumer")?,
    );
    let topic = settings.kafka.topic.clone();
    let partitions = loop {
        match partition_count(&consumer, &topic).await {
            Ok(count) => break count,
            Err(error) => {
                tracing::info!(%error, topic, "waiting for the relay to create the event topic");
                if tokio::time::timeout(Duration::from_secs(1), stop.wait_for(|s| *s)).await.is_ok() {
                    return Ok(());
                }
            }
        }
    };
    let mut model = PartitionedModel::open(store.clone(), &topic, partitions).await.map_err(|e| anyhow::anyhow!("opening the query model: {e}"))?;
    consumer.subscribe(&[&topic]).context("joining the consumer group")?;
    tracing::info!(topic, partitions, group = settings.group, "projector node running");

    let mut heads: VecDeque<(Instant, u64)> = VecDeque::new();
    let mut seen = Seen::default();
    let mut backoff = Duration::from_millis(100);
    let mut head = store.head();
    while !*stop.borrow() {
        let round = take_round(&consumer, &status, &mut head, &mut stop).await;
        head.mark_unchanged();
        // The database's head, not only the notified one: a partition with
        // nothing new learns it from the log, so it must see the log's end.
        let last = match store.last_position().await {
            Ok(last) => last,
            Err(error) => {
                tracing::warn!(%error, "the projector cannot read the log's head; retrying");
                let _ = tokio::time::timeout(backoff, stop.wait_for(|s| *s)).await;
                continue;
            }
        };
        let now = Instant::now();
        heads.push_back((now, last.max(*head.borrow())));
        while heads.len() > 1 && heads[1].0 + FILL_AFTER <= now {
            heads.pop_front();
        }
        let head_now = heads.back().map_or(0, |(_, h)| *h);
        let fill_before = heads.front().filter(|(at, _)| *at + FILL_AFTER <= now).map_or(0, |(_, h)| *h);
        let result = apply_round(&mut model, &consumer, &topic, round, (head_now, fill_before), &mut seen, &status).await;
        match result {
            Ok(()) => {
                status.healthy.store(true, Relaxed);
                backoff = Duration::from_millis(100);
            }
            Err(error) => {
                status.healthy.store(false, Relaxed);
                tracing::warn!(%error, "the projector could not apply a round; retrying (the log fills what was taken)");
                let _ = tokio::time::timeout(backoff, stop.wait_for(|s| *s)).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    consumer.unsubscribe();
    tracing::info!("projector stopped");
    Ok(())
}

/// Messages by partition: events by position, and the last offset.
type Round = BTreeMap<i32, (BTreeMap<u64, EventEnvelope>, i64)>;

/// What the consumer brings within a short wait (more while it keeps bringing).
/// The first wait also ends when the log's head moves (this node's
/// partitions may have nothing new, which it then learns from the log's index).
async fn take_round(consumer: &StreamConsumer, status: &ProjectorStatus, head: &mut watch::Receiver<u64>, stop: &mut watch::Receiver<bool>) -> Round {
    let mut round = Round::new();
    let mut taken = 0;
    let mut wait = Duration::from_millis(100);
    while taken < ROUND {
        let received = tokio::select! {
            received = tokio::time::timeout(wait, consumer.recv()) => received,
            _ = head.changed(), if taken == 0 => break,
            _ = stop.wait_for(|s| *s) => break,
        };
        let Ok(received) = received else { break };
        wait = Duration::from_millis(5);
        match received {
            Ok(received) => {
                taken += 1;
                let entry = round.entry(received.partition()).or_insert_with(|| (BTreeMap::new(), -1));
                entry.1 = entry.1.max(received.offset());
                match message::decode(&received) {
                    Ok(event) => {
                        entry.0.insert(event.position, event);
                    }
                    Err(error) => {
                        // Its position is read from the log like any the topic did not bring.
                        status.undecodable.fetch_add(1, Relaxed);
                        tracing::warn!(%error, partition = received.partition(), offset = received.offset(), "a message on the topic is not an event; passed by");
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "the Kafka consumer failed; the log fills what it misses");
                let _ = tokio::time::timeout(Duration::from_millis(200), stop.wait_for(|s| *s)).await;
                break;
            }
        }
    }
    round
}

/// Brings every partition of this node (and any the round has messages of)
/// up to the log's head now, or its last message if later; events the topic
/// has not brought are read from the log if they are older than `fill_before`.
async fn apply_round(
    model: &mut PartitionedModel,
    consumer: &StreamConsumer,
    topic: &str,
    mut round: Round,
    (head, fill_before): (u64, u64),
    seen: &mut Seen,
    status: &ProjectorStatus,
) -> anyhow::Result<()> {
    let Seen { known, orphans } = seen;
    let map_err = |e: projections::ProjectionError| anyhow::anyhow!("{e}");
    let assigned: Vec<i32> = consumer.assignment().map(|a| a.elements_for_topic(topic).iter().map(|e| e.partition()).collect()).unwrap_or_default();
    if status.assigned.swap(assigned.len() as u64, Relaxed) != assigned.len() as u64 {
        tracing::info!(?assigned, "the group gave this node its partitions");
    }
    for partition in &assigned {
        round.entry(*partition).or_insert_with(|| (BTreeMap::new(), -1));
    }
    let mut offsets = TopicPartitionList::new();
    let mut targets = Vec::new();
    for (partition, (events, offset)) in &round {
        let through = events.keys().next_back().copied().unwrap_or(0).max(head);
        if events.is_empty() && known.get(partition).is_some_and(|at| *at >= through) {
            continue;
        }
        targets.push(Target { partition: *partition, through, messages: events, offset: *offset });
        if *offset >= 0 {
            offsets.add_partition_offset(topic, *partition, Offset::Offset(offset + 1)).context("an offset to commit")?;
        }
    }
    let mut moved = false;
    for (partition, done) in model.advance(&targets, fill_before).await.map_err(map_err)? {
        tracing::debug!(partition, fill_before, ?done, "partition advanced");
        status.from_topic.fetch_add(done.from_topic, Relaxed);
        status.from_log.fetch_add(done.from_log, Relaxed);
        status.repeats.fetch_add(done.repeats, Relaxed);
        moved |= known.insert(partition, done.position) != Some(done.position);
    }
    if offsets.count() > 0 {
        if let Err(error) = consumer.commit(&offsets, CommitMode::Async) {
            tracing::debug!(%error, "committing offsets to the group (a hint only)");
        }
    }
    moved |= fill_orphans(model, &assigned, (head, fill_before), orphans, status).await.map_err(map_err)?;
    if moved {
        status.position.store(model.publish_position().await.map_err(map_err)?, Relaxed);
    }
    Ok(())
}

/// What this node knows of the partitions between rounds.
#[derive(Default)]
struct Seen {
    /// Its own partitions' positions after its last advance of each.
    known: HashMap<i32, u64>,
    orphans: Orphans,
}

/// Partitions of other nodes that stand still, as this node has seen them.
#[derive(Default)]
struct Orphans {
    /// Each partition's position when this node first saw it there, and
    /// whether this node put it there (then it goes on filling it at once).
    seen: HashMap<i32, (u64, Instant, bool)>,
    checked: Option<Instant>,
}

/// Fills from the log the partitions no node of the group moves: one that
/// stood still for [`ORPHAN_AFTER`] below what the log held then. A node
/// killed without leaving the group keeps its partitions until the broker
/// notices (the session timeout, or longer on some brokers), and a group that
/// cannot form holds them all; meanwhile readers would wait. Its row's lock
/// keeps this safe if the owner is alive after all. Answers whether a
/// partition moved.
async fn fill_orphans(
    model: &mut PartitionedModel,
    assigned: &[i32],
    (head, fill_before): (u64, u64),
    orphans: &mut Orphans,
    status: &ProjectorStatus,
) -> Result<bool, projections::ProjectionError> {
    let now = Instant::now();
    if orphans.checked.is_some_and(|at| at + CHECK_ORPHANS > now) {
        return Ok(false);
    }
    orphans.checked = Some(now);
    let rows: HashMap<i32, u64> = model.partition_rows().await?.into_iter().map(|(p, position, _, _)| (p, position)).collect();
    let none = BTreeMap::new();
    let mut targets = Vec::new();
    for partition in (0..model.partitions()).filter(|p| !assigned.contains(p)) {
        let position = rows.get(&partition).copied().unwrap_or(0);
        let seen = orphans.seen.entry(partition).or_insert((position, now, false));
        if seen.0 != position {
            // Another node moves it.
            *seen = (position, now, false);
            continue;
        }
        // Once adopted, up to the log's head: no message of it comes to this node.
        let through = if seen.2 { head } else { fill_before };
        if (!seen.2 && seen.1 + ORPHAN_AFTER > now) || position >= through {
            continue;
        }
        if !seen.2 {
            tracing::info!(partition, from = position, "filling a partition no node moved, from the log");
            status.orphans.fetch_add(1, Relaxed);
        }
        targets.push(Target { partition, through, messages: &none, offset: -1 });
    }
    // Every event of these comes from the log.
    let everything = targets.iter().map(|t| t.through).max().unwrap_or(0);
    let done = model.advance(&targets, everything).await?;
    for (partition, done) in &done {
        status.from_log.fetch_add(done.from_log, Relaxed);
        orphans.seen.insert(*partition, (done.position, now, true));
    }
    Ok(!done.is_empty())
}

/// The topic's partition count, once it exists.
async fn partition_count(consumer: &Arc<StreamConsumer>, topic: &str) -> anyhow::Result<i32> {
    let (consumer, name) = (consumer.clone(), topic.to_string());
    let metadata = tokio::task::spawn_blocking(move || consumer.fetch_metadata(Some(&name), Duration::from_secs(5))).await??;
    match metadata.topics().iter().find(|t| t.name() == topic).map(|t| t.partitions().len()) {
        Some(count) if count > 0 => Ok(count as i32),
        _ => anyhow::bail!("the topic {topic} does not exist yet"),
    }
}

async fn health(State(status): State<Arc<ProjectorStatus>>) -> (StatusCode, &'static str) {
    if status.healthy.load(Relaxed) {
        (StatusCode::OK, "applying\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not applying\n")
    }
}

async fn metrics(State(status): State<Arc<ProjectorStatus>>) -> String {
    format!(
        "# HELP objectstack_projector_events_total Events this node applied to the query model, by where their payload came from.\n\
         # TYPE objectstack_projector_events_total counter\n\
         objectstack_projector_events_total{{source=\"topic\"}} {}\nobjectstack_projector_events_total{{source=\"log\"}} {}\n\
         # HELP objectstack_projector_repeats_total Messages passed by because their partition already held them.\n\
         # TYPE objectstack_projector_repeats_total counter\nobjectstack_projector_repeats_total {}\n\
         # HELP objectstack_projector_undecodable_total Messages that carried no event.\n\
         # TYPE objectstack_projector_undecodable_total counter\nobjectstack_projector_undecodable_total {}\n\
         # HELP objectstack_projector_partitions Partitions the group gave this node.\n\
         # TYPE objectstack_projector_partitions gauge\nobjectstack_projector_partitions {}\n\
         # HELP objectstack_projector_position The query model's position: every event at or below it is applied.\n\
         # TYPE objectstack_projector_position gauge\nobjectstack_projector_position {}\n\
         # HELP objectstack_projector_orphans_total Times this node began filling from the log a partition no node of the group moved.\n\
         # TYPE objectstack_projector_orphans_total counter\nobjectstack_projector_orphans_total {}\n",
        status.from_topic.load(Relaxed),
        status.from_log.load(Relaxed),
        status.repeats.load(Relaxed),
        status.undecodable.load(Relaxed),
        status.assigned.load(Relaxed),
        status.position.load(Relaxed),
        status.orphans.load(Relaxed),
    )
}
