DROP TABLE IF EXISTS rm_dead_letters;
-- The obj_ tables are left to the read model: reset it to fold it again.
