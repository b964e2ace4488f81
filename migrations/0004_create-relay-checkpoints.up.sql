-- How far each relay has published the log to Kafka: moved only after the
-- broker acknowledged every event up to `position`, and never backwards.
CREATE TABLE IF NOT EXISTS relay_checkpoints (
    name text PRIMARY KEY,
    position bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
