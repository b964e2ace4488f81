//! A node that follows the topic: the event store its projections, processes
//! and write model read, fed by the relay's topic instead of by every node
//! querying the log.
//!
//! [`TopicFed`] wraps the PostgreSQL store. Appends go to the store (the log
//! stays the one source of truth); reads of the log's tail are answered from
//! a [`Ring`] filled by a consumer of every partition, which puts the events
//! back in log order. Its head is the ring's watermark: the highest position
//! below which the node holds every event, so followers never skip one and
//! read-your-writes across nodes holds (a read carrying a position another
//! node acknowledged waits until the watermark passes it).
//!
//! The log fills what the topic has not brought: when something above the
//! watermark is known (the store's notifications, this node's own appends,
//! events waiting above a gap) and the watermark has not moved for
//! `fill_after`, the missing events are read from the log. So a node never
//! stalls on a relay that is down or a broker that lost messages; it only
//! reads the log more. Older reads (catch-up from far behind, streams,
//! idempotency keys) go to the log as before.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use domain::event::EventEnvelope;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;

use super::ring::Ring;
use super::{message, KafkaSettings};
use crate::error::StoreError;
use crate::store::{AppendRequest, Committed, EventStore};

/// Counters of a feed (for `/metrics`).
#[derive(Debug, Default)]
pub struct FeedStats {
    /// Events first received from the topic.
    pub from_topic: AtomicU64,
    /// Events the log filled in because the topic had not brought them.
    pub from_log: AtomicU64,
    /// Events of this node's own appends (known at once, before the topic brings them).
    pub own: AtomicU64,
    /// Events received again (a relay's repeat, or already filled in).
    pub duplicates: AtomicU64,
    /// Messages that did not carry an event (logged and left out).
    pub undecodable: AtomicU64,
    /// Whether the consumer has its partitions assigned.
    pub connected: AtomicBool,
}

/// How a feed behaves.
#[derive(Debug, Clone)]
pub struct FeedSettings {
    /// Events kept for readers (and waiting above gaps) at most.
    pub capacity: usize,
    /// How long the watermark may stand still below a known event before the
    /// log fills the gap.
    pub fill_after: Duration,
}

impl Default for FeedSettings {
    fn default() -> Self {
        FeedSettings { capacity: 65_536, fill_after: Duration::from_millis(300) }
    }
}

/// Where events reached the ring from.
#[derive(Debug, Clone, Copy)]
enum Source {
    Topic,
    Log,
    Own,
}

struct Shared {
    ring: Mutex<Ring>,
    head_tx: watch::Sender<u64>,
    /// The last position this node's own appends reached.
    acknowledged: AtomicU64,
    stats: Arc<FeedStats>,
    stop: AtomicBool,
}

impl Shared {
    /// Inserts events and moves the head to the new watermark.
    fn insert(&self, events: Vec<EventEnvelope>, source: Source) {
        if events.is_empty() {
            return;
        }
        let (done, watermark) = {
            let mut ring = self.ring.lock().expect("feed ring");
            let done = ring.insert(events);
            (done, ring.watermark())
        };
        let counter = match source {
            Source::Topic => &self.stats.from_topic,
            Source::Log => &self.stats.from_log,
            Source::Own => &self.stats.own,
        };
        counter.fetch_add(done.added as u64, Ordering::Relaxed);
        self.stats.duplicates.fetch_add(done.duplicates as u64, Ordering::Relaxed);
        self.head_tx.send_if_modified(|h| {
            let moved = watermark > *h;
            *h = (*h).max(watermark);
            moved
        });
    }
}

/// The PostgreSQL store, its tail read from the topic.
pub struct TopicFed {
    inner: Arc<dyn EventStore>,
    shared: Arc<Shared>,
    head_rx: watch::Receiver<u64>,
}

impl TopicFed {
    /// Starts following the topic from now (the log fills what came before)
    /// and the log's notifications for gaps.
    pub fn start(inner: Arc<dyn EventStore>, kafka: &KafkaSettings, settings: FeedSettings) -> Result<Arc<TopicFed>, StoreError> {
        let start = *inner.head().borrow();
        let consumer = consumer(kafka)?;
        let (head_tx, head_rx) = watch::channel(start);
        let shared = Arc::new(Shared {
            ring: Mutex::new(Ring::new(start, settings.capacity)),
            head_tx,
            acknowledged: AtomicU64::new(start),
            stats: Arc::new(FeedStats::default()),
            stop: AtomicBool::new(false),
        });
        let topic = kafka.topic.clone();
        let consumed = shared.clone();
        std::thread::Builder::new()
            .name("kafka-feed".into())
            .spawn(move || consume(consumer, &topic, &consumed))
            .map_err(|e| StoreError::Unavailable(format!("starting the topic consumer: {e}")))?;
        tokio::spawn(fill_gaps(inner.clone(), shared.clone(), settings.fill_after));
        Ok(Arc::new(TopicFed { inner, shared, head_rx }))
    }

    pub fn stats(&self) -> Arc<FeedStats> {
        self.shared.stats.clone()
    }
}

impl Drop for TopicFed {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

/// A consumer that assigns itself every partition (every node needs every
/// event, so it never joins its group to share them) and commits nothing:
/// where it starts is where the node's models are, which the log knows.
fn consumer(kafka: &KafkaSettings) -> Result<BaseConsumer, StoreError> {
    kafka
        .client(&[
            ("group.id", "objectstack-feed"),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("enable.partition.eof", "false"),
            ("fetch.wait.max.ms", "10"),
        ])
        .create()
        .map_err(|e| StoreError::Unavailable(format!("creating the topic consumer: {e}")))
}

/// The consumer's loop, on a thread of its own (rdkafka's poll blocks): waits
/// for the topic to exist, assigns every partition at its end, and inserts
/// what arrives, a batch at a time.
fn consume(consumer: BaseConsumer, topic: &str, shared: &Shared) {
    let poll = Duration::from_millis(100);
    while !shared.stop.load(Ordering::Relaxed) {
        let partitions = match consumer.fetch_metadata(Some(topic), Duration::from_secs(2)) {
            Ok(metadata) => metadata.topics().iter().find(|t| t.name() == topic).map(|t| t.partitions().len()).unwrap_or(0),
            Err(error) => {
                tracing::warn!(%error, topic, "the topic's metadata is not available yet; the log fills in meanwhile");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        if partitions == 0 {
            std::thread::sleep(Duration::from_millis(500));
            continue;
        }
        let mut list = TopicPartitionList::new();
        for partition in 0..partitions as i32 {
            if list.add_partition_offset(topic, partition, Offset::End).is_err() {
                break;
            }
        }
        if let Err(error) = consumer.assign(&list) {
            tracing::warn!(%error, topic, "assigning the topic's partitions failed; retrying");
            std::thread::sleep(Duration::from_secs(1));
            continue;
        }
        shared.stats.connected.store(true, Ordering::Relaxed);
        tracing::info!(topic, partitions, "following the event topic");
        break;
    }
    let mut batch = Vec::new();
    while !shared.stop.load(Ordering::Relaxed) {
        let mut wait = poll;
        while batch.len() < 4096 {
            match consumer.poll(wait) {
                None => break,
                Some(Ok(m)) => match message::decode(&m) {
                    Ok(event) => batch.push(event),
                    Err(error) => {
                        shared.stats.undecodable.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%error, partition = m.partition(), offset = m.offset(), "a message on the event topic is not an event; the log fills its place");
                    }
                },
                Some(Err(error)) => {
                    tracing::warn!(%error, "reading the event topic");
                    break;
                }
            }
            wait = Duration::ZERO;
        }
        shared.insert(std::mem::take(&mut batch), Source::Topic);
    }
}

/// Fills gaps from the log: when a position above the watermark is known
/// and the watermark has stood still for `fill_after`.
async fn fill_gaps(inner: Arc<dyn EventStore>, shared: Arc<Shared>, fill_after: Duration) {
    let mut log_head = inner.head();
    let mut since: Option<(u64, Instant)> = None;
    let tick = (fill_after / 3).max(Duration::from_millis(10));
    while !shared.stop.load(Ordering::Relaxed) {
        let _ = tokio::time::timeout(tick, log_head.changed()).await;
        let (watermark, highest) = {
            let ring = shared.ring.lock().expect("feed ring");
            (ring.watermark(), ring.highest())
        };
        let known = highest.max(*log_head.borrow()).max(shared.acknowledged.load(Ordering::Relaxed));
        if known <= watermark {
            since = None;
            continue;
        }
        match since {
            Some((at, when)) if at == watermark => {
                if when.elapsed() < fill_after {
                    continue;
                }
            }
            _ => {
                since = Some((watermark, Instant::now()));
                continue;
            }
        }
        match inner.read_all(watermark, 10_000).await {
            Ok(events) => {
                tracing::debug!(from = watermark + 1, count = events.len(), "filled a gap in the topic from the log");
                shared.insert(events, Source::Log);
                since = None;
            }
            Err(error) => tracing::warn!(%error, "reading the log to fill a gap in the topic"),
        }
    }
}

#[async_trait]
impl EventStore for TopicFed {
    async fn append(&self, request: AppendRequest) -> Result<Committed, StoreError> {
        let committed = self.inner.append(request).await?;
        self.shared.acknowledged.fetch_max(committed.last_position(), Ordering::Relaxed);
        self.shared.insert(committed.events.clone(), Source::Own);
        Ok(committed)
    }

    async fn read_stream(&self, stream: &str, from_version: u64) -> Result<Vec<EventEnvelope>, StoreError> {
        self.inner.read_stream(stream, from_version).await
    }

    async fn read_stream_range(&self, stream: &str, from_version: u64, max: usize) -> Result<Vec<EventEnvelope>, StoreError> {
        self.inner.read_stream_range(stream, from_version, max).await
    }

    async fn read_all(&self, after: u64, max: usize) -> Result<Vec<EventEnvelope>, StoreError> {
        let older_than = {
            let ring = self.shared.ring.lock().expect("feed ring");
            if after >= ring.watermark() {
                return Ok(Vec::new());
            }
            match ring.read_after(after, max) {
                Some(events) => return Ok(events),
                None => ring.base(),
            }
        };
        let max = max.min((older_than - 1 - after) as usize);
        self.inner.read_all(after, max).await
    }

    /// From the log, in one read: positions a reader holds are committed there.
    async fn read_positions(&self, positions: &[u64]) -> Result<Vec<EventEnvelope>, StoreError> {
        self.inner.read_positions(positions).await
    }

    async fn read_idempotent(&self, key: &str) -> Result<Option<Vec<EventEnvelope>>, StoreError> {
        self.inner.read_idempotent(key).await
    }

    fn head(&self) -> watch::Receiver<u64> {
        self.head_rx.clone()
    }

    fn acknowledged(&self) -> u64 {
        self.shared.acknowledged.load(Ordering::Relaxed).max(*self.head_rx.borrow())
    }
}
