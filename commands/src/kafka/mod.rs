//! The cluster's transport on Kafka: the relay publishes the committed log to
//! a topic ([`relay`]), and nodes follow that topic instead of each querying
//! the log ([`feed`]). The log in PostgreSQL stays the one source of truth:
//! the topic carries copies of its events, in the envelope's own encoding
//! ([`message`]), and anything the topic misses is read from the log.

pub mod feed;
pub mod message;
pub mod relay;
pub mod ring;

/// Where the topic is. Options' values never print (`Debug` masks them: a
/// `sasl.password` is one).
#[derive(Clone)]
pub struct KafkaSettings {
    /// `host:port[,host:port...]`.
    pub brokers: String,
    pub topic: String,
    /// Partitions and replication factor of the topic when the relay creates it.
    pub partitions: i32,
    pub replication: i32,
    /// librdkafka properties for every client (producer, consumer, admin),
    /// set after this module's own: security (`security.protocol`,
    /// `sasl.*`, `ssl.*`), timeouts, or protocol versions a broker needs.
    pub options: Vec<(String, String)>,
}

impl KafkaSettings {
    pub fn new(brokers: impl Into<String>) -> KafkaSettings {
        KafkaSettings { brokers: brokers.into(), topic: "objectstack-events".into(), partitions: 6, replication: 1, options: Vec::new() }
    }

    /// A client configuration: the brokers, `own` (this module's settings for
    /// that client), then the operator's options, which win.
    pub fn client(&self, own: &[(&str, &str)]) -> rdkafka::ClientConfig {
        let mut config = rdkafka::ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers).set("log_level", "4");
        for (key, value) in own {
            config.set(*key, *value);
        }
        for (key, value) in &self.options {
            config.set(key, value);
        }
        config
    }
}

impl std::fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let options: Vec<String> = self.options.iter().map(|(key, _)| format!("{key}=<redacted>")).collect();
        f.debug_struct("KafkaSettings")
            .field("brokers", &self.brokers)
            .field("topic", &self.topic)
            .field("partitions", &self.partitions)
            .field("replication", &self.replication)
            .field("options", &options)
            .finish()
    }
}

/// Parses `KEY=VALUE` options (the CLI's `--kafka-option`).
pub fn parse_option(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_string(), value.trim().to_string())),
        _ => Err(format!("'{text}' is not KEY=VALUE (a librdkafka property)")),
    }
}
