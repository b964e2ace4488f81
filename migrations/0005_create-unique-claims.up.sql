-- Unique values held by record streams, kept in the append transaction so
-- that writer processes sharing this store cannot both take one value.
-- `key` is a SHA-256 (hex) of the object, the unique fields and the values.
CREATE TABLE IF NOT EXISTS unique_claims (
    key text PRIMARY KEY,
    stream text NOT NULL
);
