//! The service layer's security half: who the caller is ([`caller::Caller`],
//! the extractor every data surface takes), authentication ([`auth`]: users,
//! passwords, sessions, sign-in limits), and what a write carries for the
//! command service ([`writes`]: the actor, the caller's write guard, hashed
//! passwords, the owner).
//!
//! The rules themselves are pure (`domain::security`) and enforced below every
//! surface: reads by the read models through the caller's `Viewer`, writes by
//! the command service through the caller's `WriteGuard`.

pub mod api_keys;
pub mod auth;
pub mod caller;
pub mod writes;

pub use caller::Caller;
