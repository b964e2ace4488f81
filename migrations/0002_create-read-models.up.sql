-- Read models in PostgreSQL: checkpoints committed with the data, and the
-- metadata the query read model was built with. Object tables (rm_{object})
-- are created by the projection from metadata events.
CREATE TABLE IF NOT EXISTS rm_checkpoints (
    projection text   PRIMARY KEY,
    position   bigint NOT NULL
);

CREATE TABLE IF NOT EXISTS rm_objects (
    name       text  PRIMARY KEY,
    namespace  text,
    definition jsonb NOT NULL
);
