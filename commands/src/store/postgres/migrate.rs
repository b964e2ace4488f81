//! Applies the SQL files of `migrations/` in order, once each, under a lock.

use deadpool_postgres::Object;

use super::pg_error;
use crate::error::StoreError;

/// `(version, name, up SQL)` of every migration, compiled in.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "create-events", include_str!("../../../../migrations/0001_create-events.up.sql")),
    (2, "create-read-models", include_str!("../../../../migrations/0002_create-read-models.up.sql")),
    (3, "rename-object-tables", include_str!("../../../../migrations/0003_rename-object-tables.up.sql")),
    (4, "create-relay-checkpoints", include_str!("../../../../migrations/0004_create-relay-checkpoints.up.sql")),
    (5, "create-unique-claims", include_str!("../../../../migrations/0005_create-unique-claims.up.sql")),
    (6, "create-projector-partitions", include_str!("../../../../migrations/0006_create-projector-partitions.up.sql")),
    (7, "create-audit", include_str!("../../../../migrations/0007_create-audit.up.sql")),
    (8, "create-audit-counts", include_str!("../../../../migrations/0008_create-audit-counts.up.sql")),
];

pub(crate) async fn apply(client: &mut Object, lock_key: i64) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(pg_error)?;
    // The lock comes first: two processes starting together on a new
    // database (a relay and a gateway) would otherwise race to create the
    // table itself.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key]).await.map_err(pg_error)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await
    .map_err(pg_error)?;
    let applied: Vec<i32> = tx.query("SELECT version FROM schema_migrations", &[]).await.map_err(pg_error)?.iter().map(|r| r.get(0)).collect();
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tx.batch_execute(sql).await.map_err(|e| StoreError::Postgres(format!("migration {version} {name}: {e}")))?;
        tx.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", &[version, name]).await.map_err(pg_error)?;
        tracing::info!(version, name, "applied migration");
    }
    tx.commit().await.map_err(pg_error)
}
