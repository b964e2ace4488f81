DROP TABLE IF EXISTS rm_audit_rebuild;
DROP TABLE IF EXISTS rm_audit;
DELETE FROM rm_checkpoints WHERE projection IN ('audit', 'audit-rebuild');
DELETE FROM rm_dead_letters WHERE projection IN ('audit', 'audit-rebuild');
