-- How many entries the audit model holds per object (the `object` column:
-- an object's name, or `object` / `projection` for configuration), moved
-- in the transaction that inserts them, so the whole trail's total and one
-- object's are read from a few rows instead of counted. `model` is the
-- model's checkpoint name: `audit` for the live table, `audit-rebuild` for
-- a rebuild's copy, renamed at the swap.
CREATE TABLE IF NOT EXISTS rm_audit_counts (
    model   text   NOT NULL,
    object  text   NOT NULL,
    entries bigint NOT NULL,
    PRIMARY KEY (model, object)
);
INSERT INTO rm_audit_counts (model, object, entries)
SELECT 'audit', object, count(*) FROM rm_audit GROUP BY object
ON CONFLICT (model, object) DO UPDATE SET entries = excluded.entries;
