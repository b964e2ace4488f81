//! Server-side logic an app declares: workflow rules (`workflows`), webhooks
//! (`webhooks`), flows (`flows`) and scheduled jobs (`jobs`). Parsed and checked against the
//! catalog once, when the app loads, so a bad definition is refused naming
//! itself and its action; what runs them (the process runtime) lives in
//! `commands::process`.

mod check;
pub mod flow;
pub mod job;
pub mod webhook;
pub mod workflow;

#[cfg(test)]
mod tests;

use serde_json::Value as Json;

pub use flow::{Flow, FlowStart, NodeKind};
pub use job::{Job, JobHandler, Schedule};
pub use webhook::{Backoff, RetryPolicy, Webhook, WebhookTrigger};
pub use workflow::{Change, FieldUpdate, Trigger, UpdateValue, WorkflowRule};

use crate::error::DomainError;
use crate::metadata::Catalog;

/// Everything an app automates.
#[derive(Debug, Clone, Default)]
pub struct Automation {
    /// Ordered by `executionOrder`, then name.
    pub workflows: Vec<WorkflowRule>,
    pub webhooks: Vec<Webhook>,
    pub flows: Vec<Flow>,
    pub jobs: Vec<Job>,
}

impl Automation {
    /// The app's `workflows`, `webhooks` and `jobs` (each optional), checked
    /// against the objects in `catalog`.
    pub fn from_app(app: &Json, catalog: &Catalog) -> Result<Automation, DomainError> {
        let list = |key: &str| -> Result<&[Json], DomainError> {
            match app.get(key) {
                None | Some(Json::Null) => Ok(&[]),
                Some(Json::Array(items)) => Ok(items),
                Some(_) => Err(DomainError::InvalidDefinition(format!("'{key}' must be a list"))),
            }
        };
        let mut workflows = Vec::new();
        for item in list("workflows")? {
            let rule = WorkflowRule::parse(item, catalog)?;
            if workflows.iter().any(|w: &WorkflowRule| w.name == rule.name) {
                return Err(DomainError::InvalidDefinition(format!("workflow '{}' is defined twice", rule.name)));
            }
            workflows.push(rule);
        }
        workflows.sort_by(|a, b| (a.order, &a.name).cmp(&(b.order, &b.name)));
        let mut webhooks = Vec::new();
        for item in list("webhooks")? {
            let hook = Webhook::parse(item, catalog)?;
            if webhooks.iter().any(|w: &Webhook| w.name == hook.name) {
                return Err(DomainError::InvalidDefinition(format!("webhook '{}' is defined twice", hook.name)));
            }
            webhooks.push(hook);
        }
        let mut flows = Vec::new();
        for item in list("flows")? {
            let flow = Flow::parse(item, catalog)?;
            if flows.iter().any(|f: &Flow| f.name == flow.name) {
                return Err(DomainError::InvalidDefinition(format!("flow '{}' is defined twice", flow.name)));
            }
            flows.push(flow);
        }
        let mut jobs = Vec::new();
        for item in list("jobs")? {
            let job = Job::parse(item, &workflows, &flows)?;
            if jobs.iter().any(|j: &Job| j.name == job.name) {
                return Err(DomainError::InvalidDefinition(format!("job '{}' is defined twice", job.name)));
            }
            jobs.push(job);
        }
        Ok(Automation { workflows, webhooks, flows, jobs })
    }

    pub fn is_empty(&self) -> bool {
        self.workflows.is_empty() && self.webhooks.is_empty() && self.flows.is_empty() && self.jobs.is_empty()
    }

    pub fn flow(&self, name: &str) -> Option<&Flow> {
        self.flows.iter().find(|f| f.name == name)
    }

    pub fn workflow(&self, name: &str) -> Option<&WorkflowRule> {
        self.workflows.iter().find(|w| w.name == name)
    }
}
