//! Webhook dispatch: one task per webhook follows the log and sends every
//! change the webhook wants to its receiver, in log order (so a record's
//! changes arrive in their order), retrying with the webhook's backoff. A
//! dead receiver holds up only its own webhook: writers never wait for it.
//!
//! What was delivered is recorded in the log (`webhook.deliveries` on
//! `$webhooks/{name}`, with the position handled through), after the
//! attempts: a crash between a delivery and its record sends it again, with
//! the same delivery id (`X-ObjectStack-Delivery`), so receivers get every
//! change at least once and can keep exactly one.

use std::collections::VecDeque;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use domain::automation::{Webhook, WebhookTrigger};
use domain::event::process::{Delivery, WebhookDeliveries};
use domain::event::{registry, EventEnvelope, EventPayload, ProcessEvent, StreamId};
use domain::metadata::FieldType;
use domain::value::{record_to_json, Record};
use serde_json::{json, Value as Json};
use tokio::sync::watch;

use super::follow::Follower;
use super::http::{self, Outbound};
use super::pace::{pause, retrying};
use super::state_at::record_after;
use super::status::ProcessStatus;
use crate::service::{Command, CommandMeta, CommandService};
use crate::CommandError;

/// Deliveries kept in memory per webhook for the API (the log keeps them all).
const RECENT: usize = 1000;
/// A webhook that has nothing to send records how far it got this often.
const IDLE_SAVE: Duration = Duration::from_secs(10);

/// One webhook's deliveries, folded from its stream.
#[derive(Debug, Default)]
pub struct WebhookState {
    version: u64,
    pub through: u64,
    pub delivered: u64,
    pub failed: u64,
    /// Newest last.
    pub recent: VecDeque<Delivery>,
}

impl WebhookState {
    fn apply(&mut self, version: u64, recorded: &WebhookDeliveries) {
        self.version = version;
        self.through = self.through.max(recorded.through);
        for delivery in &recorded.deliveries {
            if delivery.delivered {
                self.delivered += 1;
            } else {
                self.failed += 1;
            }
            self.recent.push_back(delivery.clone());
            if self.recent.len() > RECENT {
                self.recent.pop_front();
            }
        }
    }
}

pub(crate) fn stream(name: &str) -> String {
    format!("$webhooks/{name}")
}

async fn load(commands: &CommandService, name: &str) -> Result<(WebhookState, bool), CommandError> {
    let (events, version) = super::read_process_stream(commands, &stream(name)).await?;
    let mut state = WebhookState::default();
    for (event, process) in &events {
        if let ProcessEvent::Deliveries(recorded) = process {
            state.apply(event.stream_version, recorded);
        }
    }
    state.version = version;
    Ok((state, version > 0))
}

pub(crate) async fn run(
    commands: Arc<CommandService>,
    hook: Webhook,
    shared: Arc<RwLock<WebhookState>>,
    status: Arc<ProcessStatus>,
    outbound: Outbound,
    mut stop: watch::Receiver<bool>,
) {
    let Some((state, seen_before)) = retrying(&mut stop, &status, "reading its deliveries", || load(&commands, &hook.name)).await else { return };
    *shared.write().expect("webhook state lock") = state;
    // A new webhook sends changes from now on, not the whole history: where
    // it starts is recorded before anything is sent.
    if !seen_before {
        let head = *commands.store().head().borrow();
        let first = WebhookDeliveries { webhook: hook.name.clone(), deliveries: Vec::new(), through: head };
        if record(&commands, &hook, &shared, &status, first, &mut stop).await.is_err() {
            return;
        }
    }
    let start = shared.read().expect("webhook state lock").through;
    let mut follower = Follower::new(commands.store().clone(), start);
    let mut recorded_through = start;
    let mut last_save = Instant::now();
    status.at(start, follower.head());
    loop {
        let Some(batch) = follower.next_or_stop(64, &status, &mut stop).await else { return };
        let mut done = Vec::new();
        for event in &batch {
            match deliver(&commands, &hook, &outbound, &status, event, &mut stop).await {
                Ok(Some(delivery)) => done.push(delivery),
                Ok(None) => {}
                Err(Stopped) => return,
            }
        }
        let through = follower.position;
        if done.is_empty() && through - recorded_through < 1000 && last_save.elapsed() < IDLE_SAVE {
            status.at(through, follower.head());
            continue;
        }
        let recorded = WebhookDeliveries { webhook: hook.name.clone(), deliveries: done, through };
        if record(&commands, &hook, &shared, &status, recorded, &mut stop).await.is_err() {
            return;
        }
        follower.position = follower.position.max(shared.read().expect("webhook state lock").through);
        recorded_through = through;
        last_save = Instant::now();
        status.at(through, follower.head());
    }
}

struct Stopped;

/// Appends what was delivered at the version this node last saw; when another
/// node recorded first (both sent: receivers deduplicate by id), takes its record.
async fn record(
    commands: &CommandService,
    hook: &Webhook,
    shared: &RwLock<WebhookState>,
    status: &ProcessStatus,
    recorded: WebhookDeliveries,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), Stopped> {
    loop {
        let version = shared.read().expect("webhook state lock").version;
        let command = Command::Process { stream: stream(&hook.name), expected_version: Some(version), event: ProcessEvent::Deliveries(recorded.clone()) };
        match commands.execute(command, CommandMeta::system()).await {
            Ok(outcome) => {
                shared.write().expect("webhook state lock").apply(outcome.version, &recorded);
                return Ok(());
            }
            Err(CommandError::Conflict { .. }) => match load(commands, &hook.name).await {
                Ok((state, _)) => {
                    *shared.write().expect("webhook state lock") = state;
                    return Ok(());
                }
                Err(error) => status.failed(format!("reading its deliveries: {error}")),
            },
            Err(error) => status.failed(format!("recording deliveries: {error}")),
        }
        if pause(stop, 1000).await {
            return Err(Stopped);
        }
    }
}

/// Sends one change if the webhook wants it, with its retries.
async fn deliver(
    commands: &CommandService,
    hook: &Webhook,
    outbound: &Outbound,
    status: &ProcessStatus,
    event: &EventEnvelope,
    stop: &mut watch::Receiver<bool>,
) -> Result<Option<Delivery>, Stopped> {
    let trigger = match event.event_type.as_str() {
        "record.created" => WebhookTrigger::Create,
        "record.updated" => WebhookTrigger::Update,
        "record.deleted" => WebhookTrigger::Delete,
        _ => return Ok(None),
    };
    let stream = StreamId(event.stream.clone());
    let Some((object, id)) = stream.record_parts() else { return Ok(None) };
    if !hook.wants(object, trigger) {
        return Ok(None);
    }
    let event_id: String = domain::hex::encode(&event.event_id);
    let delivery_id = format!("{event_id}.{}", hook.name);
    let mut wait = 100;
    let body = loop {
        match body(commands, hook, event, trigger, object, id, &delivery_id).await {
            Ok(body) => break body,
            Err(error) => {
                status.failed(format!("webhook '{}' position {}: {error}", hook.name, event.position));
                if pause(stop, wait).await {
                    return Err(Stopped);
                }
                wait = (wait * 2).min(10_000);
            }
        }
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let started = Instant::now();
    let mut attempts = 0;
    let attempt = loop {
        attempts += 1;
        let attempt = http::send(outbound, hook, &delivery_id, trigger.name(), &bytes, crate::clock::now().micros() / 1_000_000).await;
        if attempt.delivered() || !attempt.retryable() || attempts > hook.retry.max_retries {
            break attempt;
        }
        if pause(stop, hook.retry.delay_ms(attempts)).await {
            return Err(Stopped);
        }
    };
    if attempt.delivered() {
        status.step();
    } else {
        status.failed(format!(
            "webhook '{}': delivery {delivery_id} failed after {attempts} attempts: {}",
            hook.name,
            attempt.error.as_deref().unwrap_or("refused")
        ));
    }
    Ok(Some(Delivery {
        delivered: attempt.delivered(),
        delivery_id,
        position: event.position,
        trigger: trigger.name().to_string(),
        object: object.to_string(),
        record_id: id.to_string(),
        status: attempt.status,
        attempts,
        error: attempt.error,
        at: crate::clock::now().micros(),
        duration_ms: started.elapsed().as_millis() as u64,
    }))
}

/// The JSON sent: the webhook's own `body`, or the change (the record as
/// it is after it, the record before for a delete, the changed fields for an
/// update); password fields never, and only `payloadFields` when it names some.
async fn body(
    commands: &CommandService,
    hook: &Webhook,
    event: &EventEnvelope,
    trigger: WebhookTrigger,
    object: &str,
    id: &str,
    delivery_id: &str,
) -> Result<Json, CommandError> {
    let mut body = json!({
        "deliveryId": delivery_id,
        "webhook": hook.name,
        "trigger": trigger.name(),
        "object": object,
        "recordId": id,
        "position": event.position,
        "occurredAt": domain::time::Timestamp::from_micros(event.occurred_at).to_rfc3339(),
        "actor": event.actor,
    });
    if let Some(custom) = &hook.body {
        body["data"] = custom.clone();
        return Ok(body);
    }
    let definition = commands.object(object);
    let visible = |record: &Record| -> Json {
        let mut json = record_to_json(record);
        if let Some(map) = json.as_object_mut() {
            map.retain(|field, _| {
                let secret = definition.as_ref().and_then(|d| d.field(field)).is_some_and(|f| f.field_type == FieldType::Password);
                !secret && (hook.payload_fields.is_empty() || field == "id" || hook.payload_fields.iter().any(|p| p == field))
            });
        }
        json
    };
    let payload = domain::event::codec::decode_envelope_payload(event, registry())?;
    match &payload {
        EventPayload::RecordDeleted(deleted) => body["previous"] = visible(&deleted.previous),
        EventPayload::RecordUpdated(updated) => {
            let hidden = |field: &str| {
                definition.as_ref().and_then(|d| d.field(field)).is_some_and(|f| f.field_type == FieldType::Password)
                    || (!hook.payload_fields.is_empty() && !hook.payload_fields.iter().any(|p| p == field))
            };
            body["changes"] = updated
                .changes
                .iter()
                .filter(|c| !hidden(&c.field))
                .map(|c| json!({"field": c.field, "oldValue": c.old.to_json(), "newValue": c.new.to_json()}))
                .collect();
            body["record"] = record_after(commands, object, id, event).await?.as_ref().map(visible).unwrap_or(Json::Null);
        }
        EventPayload::RecordCreated(created) => body["record"] = visible(&created.record),
        _ => {}
    }
    Ok(body)
}
