//! Callers recently resolved from their tokens, so a request does not read
//! the session and the user again (and the users of each role, for owner
//! sharing rules by role). An entry keeps the caller's rights (an
//! [`Access`]), so the grants its requests compile are compiled once per
//! definition, not once per request. An entry is good only while no session,
//! API key or user has changed since it was made (the realtime hub's
//! `auth_generation`, which moves before the change's position is published),
//! so a revocation is seen as soon as the read barrier passes its position.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use domain::security::{Access, RoleMembers};

/// Most tokens kept (the cache is emptied when it is full).
const MAX_ENTRIES: usize = 100_000;

#[derive(Clone)]
pub struct Entry {
    pub generation: u64,
    /// The caller's rights (its principal inside).
    pub access: Arc<Access>,
    pub id: String,
    pub api_key: bool,
    /// Microseconds since the epoch; `i64::MAX` for keys without an expiry.
    pub expires: i64,
}

#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<String, Entry>>,
    /// Role name to its users, and the generation it was read at (owner sharing rules by role).
    role_members: Mutex<Option<(u64, Arc<RoleMembers>)>>,
    /// A guest's rights, and the generation they were made at.
    guest: Mutex<Option<(u64, Arc<Access>)>>,
}

impl TokenCache {
    /// The entry for a token hash, if it was made at `generation`.
    pub fn get(&self, hash: &str, generation: u64) -> Option<Entry> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.get(hash).filter(|e| e.generation == generation).cloned()
    }

    /// The role members read at `generation`, if kept.
    pub fn role_members(&self, generation: u64) -> Option<Arc<RoleMembers>> {
        let kept = self.role_members.lock().unwrap_or_else(|p| p.into_inner());
        kept.as_ref().filter(|(at, _)| *at == generation).map(|(_, members)| members.clone())
    }

    pub fn put_role_members(&self, generation: u64, members: Arc<RoleMembers>) {
        *self.role_members.lock().unwrap_or_else(|p| p.into_inner()) = Some((generation, members));
    }

    /// A guest's rights made at `generation`, if kept.
    pub fn guest(&self, generation: u64) -> Option<Arc<Access>> {
        let kept = self.guest.lock().unwrap_or_else(|p| p.into_inner());
        kept.as_ref().filter(|(at, _)| *at == generation).map(|(_, access)| access.clone())
    }

    pub fn put_guest(&self, generation: u64, access: Arc<Access>) {
        *self.guest.lock().unwrap_or_else(|p| p.into_inner()) = Some((generation, access));
    }

    pub fn put(&self, hash: String, entry: Entry) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(hash, entry);
    }
}
