DROP TABLE IF EXISTS rm_audit_counts;
