//! Reading the audit trail, whichever model holds it: in process on the
//! embedded store ([`AuditModel`]), in PostgreSQL tables on PostgreSQL
//! ([`PgAuditReader`]). Both answer the same query the same way: matching
//! entries newest first, and how many match in all.

use std::sync::{Arc, RwLock};

use crate::audit_model::{AuditEntry, AuditModel, AuditQuery};
use crate::pg_audit::PgAuditReader;
use crate::reader::ReadError;

#[derive(Clone)]
pub enum AuditReader {
    Memory(Arc<RwLock<AuditModel>>),
    Postgres(PgAuditReader),
}

impl AuditReader {
    pub async fn query(&self, query: &AuditQuery) -> Result<(Vec<AuditEntry>, usize), ReadError> {
        match self {
            AuditReader::Memory(model) => Ok(model.read().expect("audit lock").query(query)),
            AuditReader::Postgres(reader) => reader.query(query).await,
        }
    }

    /// The in-process model, when it is the one (to save, load or rebuild it).
    pub fn memory_model(&self) -> Option<Arc<RwLock<AuditModel>>> {
        match self {
            AuditReader::Memory(model) => Some(model.clone()),
            AuditReader::Postgres(_) => None,
        }
    }
}
