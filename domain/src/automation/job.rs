//! Scheduled jobs (`Job`, IJobService): a `cron` expression (in UTC or a fixed
//! offset), an interval, or one moment, and a handler. A handler here is a
//! workflow rule with `triggerType: schedule` (`workflow:<rule>`), run over
//! every record of its object, or an autolaunched flow (`flow:<name>`);
//! JavaScript handlers (`path:fn`) cannot run in this server. Ticks are pure functions of the schedule and a time, so every
//! node computes the same ones and claims each in the log.

use std::str::FromStr;

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use serde_json::Value as Json;

use super::check::{boolean, invalid, name, number, properties, text};
use super::flow::{Flow, FlowStart};
use super::workflow::{Trigger, WorkflowRule};
use crate::error::DomainError;
use crate::time::Timestamp;

#[derive(Debug, Clone)]
pub enum Schedule {
    Cron {
        expression: String,
        schedule: Box<cron::Schedule>,
        offset: FixedOffset,
    },
    /// Ticks at whole multiples of the interval since the epoch.
    Interval {
        ms: u64,
    },
    Once {
        at: Timestamp,
    },
}

impl Schedule {
    /// The first tick strictly after `after`.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        match self {
            Schedule::Cron { schedule, offset, .. } => {
                let micros = after.micros();
                let utc = Utc.timestamp_micros(micros).single()?;
                let local: DateTime<FixedOffset> = utc.with_timezone(offset);
                schedule.after(&local).next().map(|t| Timestamp::from_micros(t.timestamp_micros()))
            }
            Schedule::Interval { ms } => {
                let step = (*ms as i64).saturating_mul(1000);
                Some(Timestamp::from_micros((after.micros().div_euclid(step) + 1).saturating_mul(step)))
            }
            Schedule::Once { at } => (*at > after).then_some(*at),
        }
    }

    /// The last tick at or before `now` (the one a node that was down runs late).
    pub fn last_due(&self, now: Timestamp, since: Timestamp) -> Option<Timestamp> {
        match self {
            Schedule::Interval { ms } => {
                let step = (*ms as i64).saturating_mul(1000);
                let tick = Timestamp::from_micros(now.micros().div_euclid(step).saturating_mul(step));
                (tick > since).then_some(tick)
            }
            Schedule::Once { at } => (*at <= now && *at > since).then_some(*at),
            Schedule::Cron { .. } => {
                let mut last = None;
                let mut cursor = since;
                // A cron schedule has no reverse iterator: walk from `since`
                // (bounded: a node down for years runs the last tick it finds in 10,000).
                for _ in 0..10_000 {
                    match self.next_after(cursor) {
                        Some(tick) if tick <= now => {
                            last = Some(tick);
                            cursor = tick;
                        }
                        _ => break,
                    }
                }
                last
            }
        }
    }

    pub fn to_json(&self) -> Json {
        match self {
            Schedule::Cron { expression, offset, .. } => serde_json::json!({"type": "cron", "expression": expression, "timezone": offset_name(offset)}),
            Schedule::Interval { ms } => serde_json::json!({"type": "interval", "intervalMs": ms}),
            Schedule::Once { at } => serde_json::json!({"type": "once", "at": at.to_rfc3339()}),
        }
    }
}

fn offset_name(offset: &FixedOffset) -> String {
    let seconds = offset.local_minus_utc();
    if seconds == 0 {
        return "UTC".into();
    }
    let sign = if seconds < 0 { '-' } else { '+' };
    format!("{sign}{:02}:{:02}", seconds.abs() / 3600, seconds.abs() % 3600 / 60)
}

/// What a run does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobHandler {
    /// A schedule workflow rule, over every record of its object.
    Workflow(String),
    /// An autolaunched flow, run once per tick.
    Flow(String),
}

/// Retries of a failed run: after `backoff_ms`, times `multiplier` each retry.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRetry {
    pub max_retries: u32,
    pub backoff_ms: u64,
    pub multiplier: f64,
}

impl JobRetry {
    pub fn delay_ms(&self, retry: u32) -> u64 {
        (self.backoff_ms as f64 * self.multiplier.powi(retry.saturating_sub(1) as i32)).min(3_600_000.0) as u64
    }
}

#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    pub schedule: Schedule,
    pub handler: JobHandler,
    pub retry: JobRetry,
    pub timeout_ms: Option<u64>,
    pub enabled: bool,
}

const PROPERTIES: [&str; 7] = ["id", "name", "schedule", "handler", "retryPolicy", "timeout", "enabled"];

impl Job {
    pub fn parse(json: &Json, workflows: &[WorkflowRule], flows: &[Flow]) -> Result<Job, DomainError> {
        let map = properties("job", json, &PROPERTIES)?;
        let job_name = name("job", map)?;
        let what = format!("job '{job_name}'");
        let schedule = schedule(&what, map.get("schedule").ok_or_else(|| invalid(format!("{what}: 'schedule' is required")))?)?;
        let handler = text(&what, map, "handler")?.ok_or_else(|| invalid(format!("{what}: 'handler' is required")))?;
        let handler = match (handler.strip_prefix("workflow:"), handler.strip_prefix("flow:")) {
            (Some(rule), _) => match workflows.iter().find(|w| w.name == rule) {
                Some(w) if w.trigger == Trigger::Schedule => JobHandler::Workflow(rule.to_string()),
                Some(_) => return Err(invalid(format!("{what}: workflow '{rule}' is not a schedule rule (triggerType: schedule)"))),
                None => return Err(invalid(format!("{what}: handler names unknown workflow '{rule}'"))),
            },
            (_, Some(flow)) => match flows.iter().find(|f| f.name == flow) {
                Some(f) if matches!(f.start_kind, FlowStart::Autolaunched) => JobHandler::Flow(flow.to_string()),
                Some(_) => return Err(invalid(format!("{what}: flow '{flow}' is not an autolaunched flow"))),
                None => return Err(invalid(format!("{what}: handler names unknown flow '{flow}'"))),
            },
            _ => {
                return Err(invalid(format!(
                    "{what}: handler '{handler}' cannot run here: this server runs 'workflow:<rule>' and 'flow:<name>' handlers (JavaScript handlers need the TypeScript runtime)"
                )))
            }
        };
        let retry = match map.get("retryPolicy") {
            None => JobRetry { max_retries: 3, backoff_ms: 1000, multiplier: 2.0 },
            Some(policy) => {
                let what = format!("{what} retryPolicy");
                let policy = properties(&what, policy, &["maxRetries", "backoffMs", "backoffMultiplier"])?;
                let multiplier = policy.get("backoffMultiplier").map(|m| m.as_f64().filter(|m| *m > 0.0 && *m <= 100.0)).unwrap_or(Some(2.0));
                JobRetry {
                    max_retries: number(&what, policy, "maxRetries", 3, 0, 100)? as u32,
                    backoff_ms: number(&what, policy, "backoffMs", 1000, 1, 3_600_000)?,
                    multiplier: multiplier.ok_or_else(|| invalid(format!("{what}: 'backoffMultiplier' must be a number above 0, at most 100")))?,
                }
            }
        };
        let timeout_ms = match map.get("timeout") {
            None | Some(Json::Null) => None,
            Some(_) => Some(number(&what, map, "timeout", 0, 1, 86_400_000)?),
        };
        Ok(Job { name: job_name.to_string(), schedule, handler, retry, timeout_ms, enabled: boolean(&what, map, "enabled", true)? })
    }
}

fn schedule(what: &str, json: &Json) -> Result<Schedule, DomainError> {
    let what = format!("{what} schedule");
    let kind = json.get("type").and_then(Json::as_str).unwrap_or_default();
    match kind {
        "cron" => {
            let map = properties(&what, json, &["type", "expression", "timezone"])?;
            let expression = text(&what, map, "expression")?.ok_or_else(|| invalid(format!("{what}: 'expression' is required")))?;
            let offset = timezone(&what, text(&what, map, "timezone")?.unwrap_or("UTC"))?;
            let schedule =
                cron::Schedule::from_str(&with_seconds(expression)).map_err(|e| invalid(format!("{what}: '{expression}' is not a cron expression: {e}")))?;
            Ok(Schedule::Cron { expression: expression.to_string(), schedule: Box::new(schedule), offset })
        }
        "interval" => {
            let map = properties(&what, json, &["type", "intervalMs"])?;
            Ok(Schedule::Interval { ms: number(&what, map, "intervalMs", 0, 100, 1 << 53)? })
        }
        "once" => {
            let map = properties(&what, json, &["type", "at"])?;
            let at = text(&what, map, "at")?.ok_or_else(|| invalid(format!("{what}: 'at' is required")))?;
            Ok(Schedule::Once { at: Timestamp::parse(at).ok_or_else(|| invalid(format!("{what}: 'at' must be an ISO 8601 date-time")))? })
        }
        other => Err(invalid(format!("{what}: unknown type '{other}' (cron, interval, once)"))),
    }
}

/// `UTC`, `Z` or a fixed offset such as `+02:00`. Named zones (with daylight
/// saving) are not known to this server.
fn timezone(what: &str, zone: &str) -> Result<FixedOffset, DomainError> {
    if matches!(zone, "UTC" | "Z" | "Etc/UTC" | "GMT") {
        return Ok(FixedOffset::east_opt(0).expect("zero offset"));
    }
    let bad = || invalid(format!("{what}: timezone '{zone}' is not known here: use UTC or a fixed offset such as +02:00"));
    let (sign, rest) = match zone.as_bytes().first() {
        Some(b'+') => (1, &zone[1..]),
        Some(b'-') => (-1, &zone[1..]),
        _ => return Err(bad()),
    };
    let (hours, minutes) = rest.split_once(':').unwrap_or((rest, "0"));
    let (hours, minutes): (i32, i32) = (hours.parse().map_err(|_| bad())?, minutes.parse().map_err(|_| bad())?);
    if hours > 14 || minutes > 59 {
        return Err(bad());
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60)).ok_or_else(bad)
}

/// The usual five-field form (`minute hour day month weekday`, Sunday 0 or 7)
/// in the six-field form the cron crate reads (seconds first, weekdays by name).
fn with_seconds(expression: &str) -> String {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    if fields.len() != 5 {
        return expression.to_string();
    }
    let weekday: String = {
        let mut out = String::new();
        let mut number = String::new();
        let flush = |number: &mut String, out: &mut String, after_slash: bool| {
            if number.is_empty() {
                return;
            }
            if after_slash {
                out.push_str(number);
            } else {
                const NAMES: [&str; 8] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];
                match number.parse::<usize>().ok().and_then(|n| NAMES.get(n)) {
                    Some(name) => out.push_str(name),
                    None => out.push_str(number),
                }
            }
            number.clear();
        };
        let mut after_slash = false;
        for c in fields[4].chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            flush(&mut number, &mut out, after_slash);
            after_slash = c == '/';
            out.push(c);
        }
        flush(&mut number, &mut out, after_slash);
        out
    };
    format!("0 {} {} {} {} {}", fields[0], fields[1], fields[2], fields[3], weekday)
}

#[cfg(test)]
pub(super) fn five_fields(expression: &str) -> String {
    with_seconds(expression)
}
