//! The relay: publishes the committed log to the Kafka topic, in position
//! order, with rdkafka's idempotent producer.
//!
//! One relay is active per store and name: it holds a session-level advisory
//! lock on a connection of its own (a standby waits for it, and takes over
//! when the active relay's connection ends, as it does when its process
//! dies). How far it got is a row of `relay_checkpoints`, moved only after
//! the broker acknowledged every event up to that position, through the
//! connection that holds the lock (a relay that lost it cannot move the
//! checkpoint) and never backwards. So a crash, a takeover or a broker
//! restart sends some events again, never leaves one out; consumers drop the
//! repeats by position.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use domain::event::EventEnvelope;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use tokio::sync::watch;
use tokio_postgres::{Client, NoTls};

use super::{message, KafkaSettings};
use crate::error::StoreError;
use crate::store::{pg_error, session_config, EventStore, PostgresSettings, PostgresStore};

/// Why a relay stopped leading (it waits, then tries to lead again).
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("kafka: {0}")]
    Kafka(String),
}

impl From<KafkaError> for RelayError {
    fn from(e: KafkaError) -> Self {
        RelayError::Kafka(e.to_string())
    }
}

/// What a relay is doing (logged, and shown by `/metrics` of the gateways).
#[derive(Debug, Default)]
pub struct RelayStatus {
    /// Whether this relay holds the lock.
    pub active: AtomicBool,
    /// The last position the broker acknowledged.
    pub position: AtomicU64,
    /// The log's head as this relay last saw it.
    pub head: AtomicU64,
    /// Events published (repeats after a failure included).
    pub published: AtomicU64,
}

/// A relay's settings.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    pub postgres: PostgresSettings,
    pub kafka: KafkaSettings,
    /// Relays of one name share one checkpoint and one lock.
    pub name: String,
    /// Events read from the log and published per round.
    pub batch: usize,
}

/// Runs until `stop` turns true: waits to be the active relay, then
/// publishes; after a failure (broker, database, lost lock) it lets the lock
/// go, waits, and competes for it again.
pub async fn run(settings: RelaySettings, status: Arc<RelayStatus>, mut stop: watch::Receiver<bool>) -> Result<(), RelayError> {
    let mut backoff = Duration::from_millis(250);
    let store = loop {
        match crate::store::open_postgres(&settings.postgres).await {
            Ok(store) => break store,
            Err(error) => {
                tracing::warn!(%error, "the relay cannot open the event store; retrying");
                sleep_or_stop(backoff, &mut stop).await;
                if *stop.borrow() {
                    return Ok(());
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    };
    backoff = Duration::from_millis(250);
    while !*stop.borrow() {
        if let Err(error) = ensure_topic(&settings.kafka).await {
            tracing::warn!(%error, topic = settings.kafka.topic, "the event topic is not ready; retrying");
            sleep_or_stop(backoff, &mut stop).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
            continue;
        }
        let Some(lease) = Lease::acquire(&settings, &mut stop).await? else { break };
        status.active.store(true, Ordering::Relaxed);
        tracing::info!(name = settings.name, "this relay is active");
        let result = lead(&store, &lease, &settings, &status, &mut stop).await;
        status.active.store(false, Ordering::Relaxed);
        drop(lease);
        match result {
            Ok(()) => break,
            Err(error) => {
                tracing::warn!(%error, name = settings.name, "the relay stopped publishing; it will compete for the lock again");
                sleep_or_stop(backoff, &mut stop).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    Ok(())
}

async fn sleep_or_stop(duration: Duration, stop: &mut watch::Receiver<bool>) {
    let _ = tokio::time::timeout(duration, stop.wait_for(|s| *s)).await;
}

/// Creates the topic when it does not exist (a cluster's operators may
/// create it themselves, with their own partitions and replication).
pub async fn ensure_topic(kafka: &KafkaSettings) -> Result<(), RelayError> {
    let admin: AdminClient<DefaultClientContext> = kafka.client(&[]).create()?;
    let topic = NewTopic::new(&kafka.topic, kafka.partitions, TopicReplication::Fixed(kafka.replication));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))).request_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics([&topic], &options).await? {
        match result {
            Ok(_) => tracing::info!(topic = kafka.topic, partitions = kafka.partitions, "created the event topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(RelayError::Kafka(format!("creating topic {name}: {code}"))),
        }
    }
    Ok(())
}

/// The connection holding the relay's lock.
struct Lease {
    client: Client,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Ending the connection lets the lock go at once.
        self.driver.abort();
    }
}

impl Lease {
    /// Waits until this relay holds the lock (`None`: asked to stop first).
    async fn acquire(settings: &RelaySettings, stop: &mut watch::Receiver<bool>) -> Result<Option<Lease>, RelayError> {
        let config = session_config(&settings.postgres)?;
        let schema = settings.postgres.schema.as_deref().unwrap_or("public");
        let key = domain::hash::fnv64(format!("objectstack-relay:{schema}:{}", settings.name).as_bytes()) as i64;
        let mut waiting = false;
        while !*stop.borrow() {
            let (client, connection) = match config.connect(NoTls).await {
                Ok(pair) => pair,
                Err(error) => {
                    tracing::warn!(error = %pg_error(error), "the relay cannot reach PostgreSQL; retrying");
                    sleep_or_stop(Duration::from_secs(1), stop).await;
                    continue;
                }
            };
            let driver = tokio::spawn(async move {
                let _ = connection.await;
            });
            let lease = Lease { client, driver };
            loop {
                match lease.client.query_one("SELECT pg_try_advisory_lock($1)", &[&key]).await {
                    Ok(row) if row.get::<_, bool>(0) => return Ok(Some(lease)),
                    Ok(_) => {
                        if !waiting {
                            tracing::info!(name = settings.name, "another relay is active; this one stands by");
                            waiting = true;
                        }
                        sleep_or_stop(Duration::from_millis(500), stop).await;
                        if *stop.borrow() {
                            return Ok(None);
                        }
                    }
                    Err(error) => {
                        tracing::warn!(error = %pg_error(error), "the relay's lock connection failed; reconnecting");
                        break;
                    }
                }
            }
        }
        Ok(None)
    }

    async fn checkpoint(&self, name: &str) -> Result<u64, StoreError> {
        let row = self.client.query_opt("SELECT position FROM relay_checkpoints WHERE name = $1", &[&name]).await.map_err(pg_error)?;
        Ok(row.map(|r| r.get::<_, i64>(0) as u64).unwrap_or(0))
    }

    async fn save(&self, name: &str, position: u64) -> Result<(), StoreError> {
        self.client
            .execute(
                "INSERT INTO relay_checkpoints (name, position) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET position = greatest(relay_checkpoints.position, excluded.position), updated_at = now()",
                &[&name, &(position as i64)],
            )
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    async fn alive(&self) -> Result<(), StoreError> {
        self.client.simple_query("SELECT 1").await.map_err(pg_error)?;
        Ok(())
    }
}

fn producer(kafka: &KafkaSettings) -> Result<FutureProducer, RelayError> {
    Ok(kafka
        .client(&[
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("linger.ms", "5"),
            ("batch.num.messages", "10000"),
            ("queue.buffering.max.messages", "1000000"),
            ("message.timeout.ms", "30000"),
        ])
        .create()?)
}

/// Publishes from the checkpoint on, while this relay holds the lock.
async fn lead(
    store: &PostgresStore,
    lease: &Lease,
    settings: &RelaySettings,
    status: &RelayStatus,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), RelayError> {
    let producer = producer(&settings.kafka)?;
    let partitions = partition_count(&producer, &settings.kafka.topic).await?;
    let mut position = lease.checkpoint(&settings.name).await?;
    status.position.store(position, Ordering::Relaxed);
    tracing::info!(name = settings.name, from = position + 1, "publishing the log");
    let mut head = store.head();
    while !*stop.borrow() {
        status.head.store(*head.borrow(), Ordering::Relaxed);
        let events = store.read_all(position, settings.batch).await?;
        if events.is_empty() {
            tokio::select! {
                _ = head.changed() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => lease.alive().await?,
                _ = stop.wait_for(|s| *s) => {}
            }
            continue;
        }
        publish(&producer, &settings.kafka.topic, partitions, &events).await?;
        let last = events.last().map(|e| e.position).unwrap_or(position);
        lease.save(&settings.name, last).await?;
        position = last;
        status.position.store(position, Ordering::Relaxed);
        status.published.fetch_add(events.len() as u64, Ordering::Relaxed);
    }
    let _ = producer.flush(Duration::from_secs(5));
    Ok(())
}

/// How many partitions the topic has (a consumer maps streams to them the same way).
pub(crate) async fn partition_count(producer: &FutureProducer, topic: &str) -> Result<i32, RelayError> {
    let (producer, topic) = (producer.clone(), topic.to_string());
    let metadata = tokio::task::spawn_blocking(move || producer.client().fetch_metadata(Some(&topic), Duration::from_secs(10)).map(|m| (m, topic)))
        .await
        .map_err(|e| RelayError::Kafka(e.to_string()))??;
    let (metadata, topic) = metadata;
    match metadata.topics().iter().find(|t| t.name() == topic).map(|t| t.partitions().len()) {
        Some(count) if count > 0 => Ok(count as i32),
        _ => Err(RelayError::Kafka(format!("the topic {topic} has no partitions yet"))),
    }
}

/// Sends every event and waits until the broker acknowledged them all.
async fn publish(producer: &FutureProducer, topic: &str, partitions: i32, events: &[EventEnvelope]) -> Result<(), RelayError> {
    let mut pending: Vec<DeliveryFuture> = Vec::with_capacity(events.len());
    for event in events {
        let value = message::value(event);
        loop {
            let record = FutureRecord::to(topic)
                .partition(message::partition_of(&event.stream, partitions))
                .key(event.stream.as_bytes())
                .payload(&value)
                .headers(message::headers(event));
            match producer.send_result(record) {
                Ok(delivery) => {
                    pending.push(delivery);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    await_all(std::mem::take(&mut pending)).await?;
                }
                Err((error, _)) => return Err(error.into()),
            }
        }
    }
    await_all(pending).await
}

async fn await_all(pending: Vec<DeliveryFuture>) -> Result<(), RelayError> {
    for delivery in pending {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((error, _))) => return Err(error.into()),
            Err(_) => return Err(RelayError::Kafka("the producer dropped a delivery".into())),
        }
    }
    Ok(())
}
