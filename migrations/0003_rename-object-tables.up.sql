-- Object tables move from rm_{object} to obj_{object} (hashed when long), so
-- that no object name can reach the read model's own tables (an object named
-- `checkpoints` was rm_checkpoints) and long names no longer truncate into one
-- table. The query read model is derived from the log: its old tables are
-- dropped and the model is folded again from position 0 at the next start.
DO $$
DECLARE object_name text;
BEGIN
    FOR object_name IN SELECT name FROM rm_objects LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I', 'rm_' || object_name);
    END LOOP;
END $$;
DELETE FROM rm_objects;
UPDATE rm_checkpoints SET position = 0 WHERE projection = 'query';

-- Events a projection could not apply, parked so that it can go on; retried
-- or skipped by an operator. Committed with the projection's checkpoint.
CREATE TABLE IF NOT EXISTS rm_dead_letters (
    projection text        NOT NULL,
    position   bigint      NOT NULL,
    event_id   text        NOT NULL,
    stream     text        NOT NULL,
    event_type text        NOT NULL,
    error      text        NOT NULL,
    parked_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, position)
);
