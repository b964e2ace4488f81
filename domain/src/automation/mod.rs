//! Server-side logic an app declares: workflow rules (`workflows`), webhooks
//! (`webhooks`), flows (`flows`) and scheduled jobs (`jobs`). Parsed and checked against the
//! catalog once, when the app loads, so a bad definition is refused naming
//! itself and its action. Workflow rules' field updates join the write that
//! fires them (`before_save`, called by the command service); what runs the
//! rest (the process runtime) lives in `commands::process`.

pub mod approval;
pub mod before_save;
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

    /// The app's definitions with those stored through the metadata API
    /// (`(kind, name, definition or None when removed)`) in place of the
    /// app's of the same kind and name.
    pub fn from_app_and_stored(app: &Json, stored: &[(String, String, Option<Json>)], catalog: &Catalog) -> Result<Automation, DomainError> {
        let mut merged = app.clone();
        for (kind, name, definition) in stored {
            let key = list_key(kind).ok_or_else(|| DomainError::InvalidDefinition(format!("unknown automation kind '{kind}'")))?;
            let list = merged.as_object_mut().and_then(|m| {
                let entry = m.entry(key).or_insert_with(|| Json::Array(Vec::new()));
                entry.as_array_mut()
            });
            let Some(list) = list else { continue };
            list.retain(|item| item.get("name").and_then(Json::as_str) != Some(name));
            if let Some(definition) = definition {
                list.push(definition.clone());
            }
        }
        Automation::from_app(&merged, catalog)
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

/// An `http://` or `https://` URL with something after the scheme: what
/// webhooks and `http_request` nodes may call.
pub fn is_http_url(url: &str) -> bool {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
}

/// The app file's key of a kind of definition (`workflow` -> `workflows`).
pub fn list_key(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "workflow" | "workflows" => "workflows",
        "flow" | "flows" => "flows",
        "webhook" | "webhooks" => "webhooks",
        "job" | "jobs" => "jobs",
        "approval" | "approvals" => "approvals",
        _ => return None,
    })
}
