//! Server-side logic an app declares: workflow rules (`workflows`), webhooks
//! (`webhooks`), flows (`flows`) and scheduled jobs (`jobs`). Parsed and checked against the
//! catalog once, when the app loads, so a bad definition is refused naming
//! itself and its action; what runs them (the process runtime) lives in
//! `commands::process`.

pub mod approval;
mod check;
pub mod flow;
pub mod job;
pub mod webhook;
pub mod workflow;

#[cfg(test)]
mod tests;

use serde_json::Value as Json;

pub use approval::ApprovalProcess;
pub use flow::{Flow, FlowStart, NodeKind};
pub use job::{Job, JobHandler, Schedule};
pub use webhook::{Backoff, RetryPolicy, Webhook, WebhookTrigger};
pub use workflow::{Change, FieldUpdate, OffsetFrom, TimeTrigger, Trigger, UpdateValue, WorkflowRule};

use crate::error::DomainError;
use crate::metadata::Catalog;

/// Everything an app automates.
#[derive(Debug, Clone, Default)]
pub struct Automation {
    /// Ordered by `executionOrder`, then name.
    pub workflows: Vec<WorkflowRule>,
    pub webhooks: Vec<Webhook>,
    pub flows: Vec<Flow>,
    pub approvals: Vec<ApprovalProcess>,
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
        let mut workflows = each("workflow", list("workflows")?, |item| WorkflowRule::parse(item, catalog), |w| &w.name)?;
        workflows.sort_by(|a, b| (a.order, &a.name).cmp(&(b.order, &b.name)));
        let webhooks = each("webhook", list("webhooks")?, |item| Webhook::parse(item, catalog), |w| &w.name)?;
        let flows = each("flow", list("flows")?, |item| Flow::parse(item, catalog), |f| &f.name)?;
        let approvals = each("approval process", list("approvals")?, |item| ApprovalProcess::parse(item, catalog), |a| &a.name)?;
        let jobs = each("job", list("jobs")?, |item| Job::parse(item, &workflows, &flows), |j| &j.name)?;
        Ok(Automation { workflows, webhooks, flows, approvals, jobs })
    }

    pub fn is_empty(&self) -> bool {
        self.workflows.is_empty() && self.webhooks.is_empty() && self.flows.is_empty() && self.approvals.is_empty() && self.jobs.is_empty()
    }

    pub fn flow(&self, name: &str) -> Option<&Flow> {
        self.flows.iter().find(|f| f.name == name)
    }

    pub fn workflow(&self, name: &str) -> Option<&WorkflowRule> {
        self.workflows.iter().find(|w| w.name == name)
    }
}

/// Every definition of a list parsed, names unique.
fn each<T>(kind: &str, items: &[Json], parse: impl Fn(&Json) -> Result<T, DomainError>, name: impl Fn(&T) -> &String) -> Result<Vec<T>, DomainError> {
    let mut out: Vec<T> = Vec::new();
    for item in items {
        let parsed = parse(item)?;
        if out.iter().any(|o| name(o) == name(&parsed)) {
            return Err(DomainError::InvalidDefinition(format!("{kind} '{}' is defined twice", name(&parsed))));
        }
        out.push(parsed);
    }
    Ok(out)
}
