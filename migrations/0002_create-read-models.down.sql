DROP TABLE IF EXISTS rm_objects;
DROP TABLE IF EXISTS rm_checkpoints;
