//! The example apps of the protocol (todo, CRM), bundled as data.
//! `objectstack serve` loads the todo app when no `--app` is given.

pub const TODO_APP: &str = include_str!("../../apps/todo.json");
pub const CRM_APP: &str = include_str!("../../apps/crm.json");
