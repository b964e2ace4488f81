//! Identity and access rules, pure: who the caller is ([`Principal`]), what
//! the app grants ([`SecurityPolicy`]: permission sets and profiles, row-level
//! security, sharing models and sharing rules), and what that means for one
//! caller on one object ([`Access`]).
//!
//! Reads are secured by rewriting the query ([`secure_query`]): the caller's
//! row rules are ANDed into the filter, so both read models count, page and
//! sort over visible rows only; fields the caller may not read cannot be
//! filtered, sorted, grouped or searched on (no oracle), and are masked out of
//! what comes back ([`Mask`]). Writes are checked against the state before and
//! after the change ([`WriteGuard`]), under the write model's lock.
//!
//! Fields of type `password` are never readable by anyone but the server itself.

mod access;
mod eval;
mod permission_set;
mod policy;
mod predicate;
mod principal;
mod secure;
#[cfg(test)]
mod tests;

pub use access::{Access, ObjectGrant, RoleMembers, SystemPermission};
pub use eval::matches;
pub use permission_set::{FieldPermission, ObjectPermission, PermissionSet, RlsOperation, RlsPolicy};
pub use policy::{SecurityPolicy, SharingModel, SharingRule};
pub use predicate::{parse_predicate, Predicate};
pub use principal::{Principal, PrincipalKind};
pub use secure::{secure_query, Mask, WriteGuard, WriteOp};

/// Objects that only the server reads and writes (sessions, API keys, failed
/// sign-ins): no permission set can grant them; they appear only in the audit
/// trail, without their [`SECRET_FIELDS`].
pub const INTERNAL_OBJECTS: [&str; 3] = ["session", "api_key", "auth_event"];

/// Fields of internal objects that no surface shows, the audit trail included.
pub const SECRET_FIELDS: [&str; 2] = ["token_hash", "key_hash"];
