-- Projector nodes keep the query read model from the Kafka topic, each
-- partition by whichever node the consumer group gave it. A partition's row
-- moves in the same transaction as the rows its events changed: every event
-- of that partition at or below `position` is applied, `message_offset` is
-- the last message taken from the topic, `applied` counts the events applied
-- (from the topic, or from the log where the topic had not brought them).
CREATE TABLE IF NOT EXISTS rm_partitions (
    projection     text   NOT NULL,
    topic          text   NOT NULL,
    partition      int    NOT NULL,
    partitions     int    NOT NULL,
    position       bigint NOT NULL DEFAULT 0,
    message_offset bigint NOT NULL DEFAULT -1,
    applied        bigint NOT NULL DEFAULT 0,
    from_topic     bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (projection, topic, partition)
);
-- Where the current definition of an object began (its first definition
-- after it was absent): a record event older than that belongs to an
-- earlier object of the same name, which was removed.
ALTER TABLE rm_objects ADD COLUMN IF NOT EXISTS since bigint NOT NULL DEFAULT 0;
