//! Records: commands, the per-stream state, and the pure `decide` / `evolve` pair.
//!
//! `decide(object, state, command, ctx) -> events` holds every rule of a write;
//! `evolve(state, event) -> state` only applies what happened.
//! Lookups of other records (uniqueness, references, autonumber sequences) are
//! done by the caller and passed in through [`Lookups`].

mod autonumber;
mod command;
mod decide;
mod lookups;
mod state;

pub use autonumber::format_autonumber;
pub use command::{DecideContext, Decision, RecordCommand};
pub use decide::decide;
pub use lookups::{Lookups, NoLookups, Referrer};
pub use state::{evolve, RecordState};

#[cfg(test)]
mod tests;
