-- The audit read model on PostgreSQL: one row per audited change, what
-- queries filter on (the rest is the event's, read from the log by position
-- when an entry is shown). Its checkpoint is `rm_checkpoints.audit`,
-- committed with its rows. Index names are PostgreSQL's own defaults, so a
-- rebuilt copy (`rm_audit_rebuild`, made LIKE this table) gets the same
-- names once its prefix is renamed.
CREATE TABLE IF NOT EXISTS rm_audit (
    position    bigint   PRIMARY KEY,
    kind        smallint NOT NULL, -- 0 create, 1 update, 2 delete, 3 configuration
    occurred_at bigint   NOT NULL, -- microseconds since the epoch
    actor       text     NOT NULL,
    tenant      text     NOT NULL,
    object      text     NOT NULL, -- the object, or `object` / `projection` for configuration
    target      text     NOT NULL  -- the record id, or the object's or projection's name
);
CREATE INDEX IF NOT EXISTS rm_audit_object_target_position_idx ON rm_audit (object, target, position);
CREATE INDEX IF NOT EXISTS rm_audit_object_position_idx ON rm_audit (object, position);
CREATE INDEX IF NOT EXISTS rm_audit_actor_position_idx ON rm_audit (actor, position);
