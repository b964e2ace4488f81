//! What `decide` needs to know about other records, answered by the caller.

use crate::metadata::DeleteBehavior;
use crate::value::Value;

/// A record that references another through a lookup or master_detail field.
#[derive(Debug, Clone, PartialEq)]
pub struct Referrer {
    pub object: String,
    pub id: String,
    pub field: String,
    pub behavior: DeleteBehavior,
}

/// Facts about other records. Implementations are in-memory indexes kept by the
/// command side; the domain only asks.
pub trait Lookups {
    /// A live (not deleted) record exists.
    fn record_exists(&self, object: &str, id: &str) -> bool;
    /// The id of another live record whose `fields` hold `values`, if any.
    fn find_duplicate(&self, object: &str, fields: &[String], values: &[Value], case_sensitive: bool, except_id: &str) -> Option<String>;
    /// The sequence number the next autonumber of `object.field` gets (1-based count of creates).
    fn next_autonumber(&self, object: &str, field: &str) -> u64;
    /// Live records that reference `object/id`.
    fn referrers(&self, object: &str, id: &str) -> Vec<Referrer>;
}

/// No other records exist: for tests and for the first record of an empty store.
pub struct NoLookups;

impl Lookups for NoLookups {
    fn record_exists(&self, _: &str, _: &str) -> bool {
        false
    }
    fn find_duplicate(&self, _: &str, _: &[String], _: &[Value], _: bool, _: &str) -> Option<String> {
        None
    }
    fn next_autonumber(&self, _: &str, _: &str) -> u64 {
        1
    }
    fn referrers(&self, _: &str, _: &str) -> Vec<Referrer> {
        Vec::new()
    }
}
