-- The event log. Positions are assigned by the writer under an advisory
-- transaction lock, so they are dense and follow commit order (see ARCHITECTURE.md).
CREATE TABLE IF NOT EXISTS events (
    position        bigint   PRIMARY KEY,
    stream          text     NOT NULL,
    stream_version  bigint   NOT NULL,
    event_id        bytea    NOT NULL,
    event_type      text     NOT NULL,
    schema_version  smallint NOT NULL,
    occurred_at     bigint   NOT NULL, -- microseconds since the epoch
    actor           text     NOT NULL,
    tenant          text     NOT NULL,
    correlation_id  bytea    NOT NULL,
    causation_id    bytea,
    idempotency_key text,
    payload         bytea    NOT NULL,
    CONSTRAINT events_stream_version UNIQUE (stream, stream_version)
);

-- One row per idempotency key: the positions its append wrote.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key            text   PRIMARY KEY,
    first_position bigint NOT NULL,
    last_position  bigint NOT NULL
);
