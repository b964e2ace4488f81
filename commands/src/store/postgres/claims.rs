//! Unique values across writer processes: `unique_claims` (key, stream)
//! rows kept in the append transaction, under its advisory lock, so two
//! processes sharing the store cannot both take one value. An append whose
//! claim another stream holds is refused ([`StoreError::Claimed`]) while the
//! rest of its batch commits. Only values claimed since this table existed
//! are in it; older ones are in every process's write model, which refuses
//! them before an append is planned.

use std::collections::{HashMap, HashSet};

use tokio_postgres::Transaction;

use super::pg_error;
use crate::error::StoreError;
use crate::store::{AppendRequest, UniqueChanges};

/// The owners of the keys a batch touches, as the batch changes them.
#[derive(Default)]
pub(crate) struct Claims {
    /// `None`: released in this batch.
    owners: HashMap<String, Option<String>>,
    touched: HashSet<String>,
}

impl Claims {
    /// Reads the current owners of every key the batch names (nothing when
    /// it names none: objects without unique fields cost no query).
    pub(crate) async fn load(tx: &Transaction<'_>, requests: &[AppendRequest]) -> Result<Claims, StoreError> {
        let keys: Vec<&str> =
            requests.iter().flat_map(|r| r.unique.claims.iter().map(|c| c.key.as_str()).chain(r.unique.releases.iter().map(|(k, _)| k.as_str()))).collect();
        if keys.is_empty() {
            return Ok(Claims::default());
        }
        let rows = tx.query("SELECT key, stream FROM unique_claims WHERE key = ANY($1)", &[&keys]).await.map_err(pg_error)?;
        Ok(Claims { owners: rows.iter().map(|r| (r.get(0), Some(r.get(1)))).collect(), touched: HashSet::new() })
    }

    fn owner(&self, key: &str) -> Option<&str> {
        self.owners.get(key).and_then(|o| o.as_deref())
    }

    /// Refuses changes that claim a value another stream holds (and does not
    /// give up in the same append).
    pub(crate) fn check(&self, changes: &UniqueChanges) -> Result<(), StoreError> {
        for claim in &changes.claims {
            if let Some(owner) = self.owner(&claim.key) {
                let released = changes.releases.iter().any(|(key, stream)| key == &claim.key && stream == owner);
                if owner != claim.stream && !released {
                    return Err(StoreError::Claimed { object: claim.object.clone(), fields: claim.fields.clone() });
                }
            }
        }
        Ok(())
    }

    /// Applies the changes of an accepted append: releases, then claims.
    pub(crate) fn apply(&mut self, changes: UniqueChanges) {
        for (key, stream) in changes.releases {
            if self.owner(&key) == Some(stream.as_str()) {
                self.owners.insert(key.clone(), None);
                self.touched.insert(key);
            }
        }
        for claim in changes.claims {
            self.owners.insert(claim.key.clone(), Some(claim.stream));
            self.touched.insert(claim.key);
        }
    }

    /// Writes what the accepted appends changed.
    pub(crate) async fn save(&self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        let (mut held, mut streams, mut released) = (Vec::new(), Vec::new(), Vec::new());
        for key in &self.touched {
            match self.owner(key) {
                Some(stream) => {
                    held.push(key.as_str());
                    streams.push(stream);
                }
                None => released.push(key.as_str()),
            }
        }
        if !released.is_empty() {
            tx.execute("DELETE FROM unique_claims WHERE key = ANY($1)", &[&released]).await.map_err(pg_error)?;
        }
        if !held.is_empty() {
            tx.execute(
                "INSERT INTO unique_claims (key, stream) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT (key) DO UPDATE SET stream = excluded.stream",
                &[&held, &streams],
            )
            .await
            .map_err(pg_error)?;
        }
        Ok(())
    }
}
