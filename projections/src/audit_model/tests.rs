//! The audit model's queries against a plain filter of every entry, over a
//! random history, before and after a snapshot's round trip.

use domain::event::{EventPayload, ObjectDefined, RecordCreated, RecordDeleted, RecordUpdated};

use super::{AuditEntry, AuditModel, AuditQuery};
use crate::snapshot::Snapshot;
use crate::test_support::{envelope, Rng};

/// A random history of changes to a few records of two objects and to their definitions.
fn history(rng: &mut Rng, events: u64) -> (AuditModel, Vec<AuditEntry>) {
    let (mut model, mut all) = (AuditModel::default(), Vec::new());
    for position in 1..=events {
        let (object, id) = (rng.pick(&["task", "note"]).to_string(), format!("r{}", rng.below(12)));
        let payload = match rng.below(5) {
            0 => EventPayload::RecordCreated(RecordCreated { object, id, record: Default::default(), automated: Vec::new() }),
            1 | 2 => EventPayload::RecordUpdated(RecordUpdated { object, id, changes: Vec::new(), automated: Vec::new() }),
            3 => EventPayload::RecordDeleted(RecordDeleted { object, id, previous: Default::default(), cause: None }),
            _ => EventPayload::ObjectDefined(ObjectDefined { name: object, namespace: None, definition: "{}".into() }),
        };
        let mut event = envelope(position);
        event.actor = rng.pick(&["ann", "bob", "system"]).to_string();
        event.tenant = rng.pick(&["default", "other"]).to_string();
        event.occurred_at = position as i64 * 10;
        model.apply(&event, &payload);
        let (event_type, target_type, target_id) = match payload {
            EventPayload::RecordCreated(e) => ("data.create", e.object, e.id),
            EventPayload::RecordUpdated(e) => ("data.update", e.object, e.id),
            EventPayload::RecordDeleted(e) => ("data.delete", e.object, e.id),
            EventPayload::ObjectDefined(e) => ("system.config_changed", "object".to_string(), e.name),
            _ => unreachable!("only these are made"),
        };
        all.push(AuditEntry { position, event_type, occurred_at: event.occurred_at, actor: event.actor, tenant: event.tenant, target_type, target_id });
    }
    (model, all)
}

/// A random query, now and then naming what no entry has.
fn random_query(rng: &mut Rng, events: u64) -> AuditQuery {
    let maybe = |rng: &mut Rng, items: &[&str]| (rng.below(2) == 0).then(|| rng.pick(items).to_string());
    let (from, to) = (rng.below(events * 10 + 20) as i64, rng.below(events * 10 + 20) as i64);
    AuditQuery {
        object: maybe(rng, &["task", "note", "object", "nothing"]),
        record_id: maybe(rng, &["r0", "r3", "r11", "task", "gone"]),
        actor: maybe(rng, &["ann", "bob", "system", "eve"]),
        event_type: maybe(rng, &["data.create", "data.update", "data.delete", "system.config_changed", "data.other"]),
        from: (rng.below(3) == 0).then_some(from),
        to: (rng.below(3) == 0).then_some(to),
        limit: rng.below(20) as usize,
        offset: rng.below(10) as usize,
    }
}

/// What a query should give: a filter of every entry, newest first.
fn expected(all: &[AuditEntry], q: &AuditQuery) -> (Vec<String>, usize) {
    let is = |wanted: &Option<String>, value: &str| wanted.as_deref().is_none_or(|w| w == value);
    let matching: Vec<&AuditEntry> = all
        .iter()
        .rev()
        .filter(|e| is(&q.object, &e.target_type) && is(&q.record_id, &e.target_id) && is(&q.actor, &e.actor))
        .filter(|e| is(&q.event_type, e.event_type))
        .filter(|e| q.from.is_none_or(|f| e.occurred_at >= f) && q.to.is_none_or(|t| e.occurred_at <= t))
        .collect();
    (matching.iter().skip(q.offset).take(q.limit).map(|e| format!("{e:?}")).collect(), matching.len())
}

fn answer(model: &AuditModel, q: &AuditQuery) -> (Vec<String>, usize) {
    let (page, total) = model.query(q);
    (page.iter().map(|e| format!("{e:?}")).collect(), total)
}

#[test]
fn queries_give_what_a_filter_of_every_entry_gives_before_and_after_a_snapshot() {
    for seed in 1..=20u64 {
        let mut rng = Rng(seed * 7919);
        let events = 1 + rng.below(300);
        let (model, all) = history(&mut rng, events);
        assert_eq!(model.len(), all.len());
        let saved = model.body();
        let loaded = AuditModel::decode(AuditModel::default(), model.checkpoint(), &saved).expect("decodes");
        assert_eq!(loaded.checkpoint(), events);
        for _ in 0..200 {
            let q = random_query(&mut rng, events);
            let want = expected(&all, &q);
            assert_eq!(answer(&model, &q), want, "seed {seed}, {q:?}");
            assert_eq!(answer(&loaded, &q), want, "seed {seed}, after a snapshot, {q:?}");
        }
    }
}

#[test]
fn a_damaged_snapshot_is_refused_not_loaded() {
    let (model, _) = history(&mut Rng(42), 200);
    let saved = model.body();
    // Every truncation fails to decode (the file's checksum catches flipped bytes before this).
    for cut in [0, 1, saved.len() / 3, saved.len() / 2, saved.len() - 1] {
        assert!(AuditModel::decode(AuditModel::default(), 1, &saved[..cut]).is_err(), "cut at {cut}");
    }
    let mut longer = saved.clone();
    longer.push(0);
    assert!(AuditModel::decode(AuditModel::default(), 1, &longer).is_err(), "trailing bytes");
}
