DROP TABLE IF EXISTS relay_checkpoints;
