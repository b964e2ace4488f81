//! The write model as a snapshot: the catalog, every record stream's
//! version and record, the counters, the approvals' locks and the stored
//! automation definitions. The unique indexes and the reverse references
//! are not saved: they are derived again from the records and the catalog.
//!
//! A snapshot may hold a few events past its position (this node's commands
//! apply their own events before the follower reaches them); the fold after
//! it passes those by, since every change the write model keeps is applied
//! only above its stream's version.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use domain::event::ObjectDefined;
use domain::fields::KeptRecord;

use super::{sets_of, Kept, WriteModel};
use crate::snapshot::catalog::{definitions, from_definitions};
use crate::snapshot::codec::{Reader, Writer};

/// The file's name and the body's format.
pub(crate) const NAME: &str = "write";
pub(crate) const FORMAT: u32 = 1;

type Automation = BTreeMap<(String, String), Option<String>>;

impl WriteModel {
    /// The body of its snapshot (under the write model's lock: records are copied as they are encoded).
    pub(crate) fn encode_snapshot(&self) -> Vec<u8> {
        let mut out = Writer::default();
        out.put(&definitions(&self.catalog));
        out.put(&self.meta_versions);
        out.put(&(self.records.len() as u64));
        for (object, records) in &self.records {
            out.put(object);
            out.put(&(records.len() as u64));
            for (id, state) in records {
                out.put(&(id.as_str(), state.version, state.record.as_deref()));
            }
        }
        out.put(&self.created);
        out.put(&self.numbers);
        out.put(&self.unreadable);
        out.put(&self.locked);
        out.put(&self.approval_versions);
        out.put(&self.automation);
        out.put(&self.automation_generation);
        out.put(&self.automation_versions);
        out.bytes
    }

    /// The model a snapshot's body holds, its indexes derived again.
    pub(crate) fn decode_snapshot(body: &[u8]) -> Result<WriteModel, String> {
        let mut input = Reader::new(body, "the write model's snapshot");
        let mut model = WriteModel { catalog: from_definitions(input.take::<Vec<ObjectDefined>>()?)?, meta_versions: input.take()?, ..WriteModel::default() };
        for _ in 0..input.count()? {
            let object: String = input.take()?;
            let count = input.count()?;
            let mut records = HashMap::with_capacity(count.min(1 << 24));
            for _ in 0..count {
                let (id, version, record): (String, u64, Option<KeptRecord>) = input.take()?;
                records.insert(id, Kept { version, record: record.map(|KeptRecord(r)| Arc::new(r)) });
            }
            model.records.insert(object, records);
        }
        model.created = input.take()?;
        model.numbers = input.take()?;
        model.unreadable = input.take::<HashSet<String>>()?;
        model.locked = input.take()?;
        model.approval_versions = input.take()?;
        model.automation = input.take::<Automation>()?;
        model.automation_generation = input.take()?;
        model.automation_versions = input.take()?;
        input.finish()?;
        // The unique sets of every defined object, then each live record's values and references.
        let sets: Vec<_> = model.catalog.objects().map(|object| (object.name.clone(), sets_of(object))).collect();
        model.unique_sets.extend(sets);
        // Only objects with unique values or references have anything to index.
        let indexed: HashSet<String> = model
            .catalog
            .objects()
            .filter(|object| {
                model.unique_sets.get(&object.name).is_some_and(|sets| !sets.is_empty()) || object.fields.iter().any(|f| f.field_type.is_reference())
            })
            .map(|object| object.name.clone())
            .collect();
        let records = std::mem::take(&mut model.records);
        for (object, states) in records.iter().filter(|(object, _)| indexed.contains(*object)) {
            for (id, state) in states {
                model.index_record(object, id, None, state.record.as_deref());
            }
        }
        model.records = records;
        Ok(model)
    }
}

#[cfg(test)]
mod tests {
    use domain::event::{EventPayload, FieldChange, ObjectDefined, RecordCreated, RecordDeleted, RecordUpdated};
    use domain::value::{Record, Value};
    use serde_json::json;

    use super::*;

    /// The derived indexes, in order.
    fn derived(model: &WriteModel) -> (Vec<String>, Vec<String>) {
        let mut unique: Vec<String> = model.unique.iter().flat_map(|(set, index)| index.iter().map(move |(k, id)| format!("{set:?} {k} {id}"))).collect();
        let mut referrers: Vec<String> = model.referrers.iter().flat_map(|(target, set)| set.iter().map(move |r| format!("{target:?} {r:?}"))).collect();
        unique.sort();
        referrers.sort();
        (unique, referrers)
    }

    fn record(fields: &[(&str, &str)]) -> Record {
        let mut record = Record::default();
        for (field, value) in fields {
            record.insert(*field, Value::Text(value.to_string()));
        }
        record
    }

    #[test]
    fn a_decoded_model_holds_what_the_fold_did_and_derives_the_same_indexes() {
        let mut model = WriteModel::default();
        let define = |name: &str, fields: serde_json::Value| {
            EventPayload::ObjectDefined(ObjectDefined { name: name.into(), namespace: None, definition: json!({"name": name, "fields": fields}).to_string() })
        };
        model.apply("$meta/account", 1, &define("account", json!({"code": {"type": "text", "unique": true}}))).unwrap();
        model
            .apply(
                "$meta/contact",
                1,
                &define("contact", json!({"account": {"type": "lookup", "reference": "account"}, "email": {"type": "email", "unique": true}})),
            )
            .unwrap();
        let created = |object: &str, id: &str, record: Record| {
            EventPayload::RecordCreated(RecordCreated { object: object.into(), id: id.into(), record, automated: Vec::new() })
        };
        for n in 0..50 {
            let account = format!("a{}", n % 7);
            if n < 7 {
                model.apply(&format!("account/{account}"), 1, &created("account", &account, record(&[("code", &format!("C{n}"))]))).unwrap();
            }
            let email = format!("p{n}@example.com");
            model.apply(&format!("contact/c{n}"), 1, &created("contact", &format!("c{n}"), record(&[("account", &account), ("email", &email)]))).unwrap();
        }
        for n in (0..50).step_by(3) {
            let changes = vec![FieldChange { field: "account".into(), old: Value::Null, new: Value::Text("a1".into()) }];
            model
                .apply(
                    &format!("contact/c{n}"),
                    2,
                    &EventPayload::RecordUpdated(RecordUpdated { object: "contact".into(), id: format!("c{n}"), changes, automated: Vec::new() }),
                )
                .unwrap();
        }
        for n in (0..50).step_by(5) {
            let deleted = RecordDeleted { object: "contact".into(), id: format!("c{n}"), previous: Record::default(), cause: None };
            model.apply(&format!("contact/c{n}"), 3, &EventPayload::RecordDeleted(deleted)).unwrap();
        }
        model.took_autonumber("contact");

        let decoded = WriteModel::decode_snapshot(&model.encode_snapshot()).unwrap();
        assert_eq!(derived(&decoded), derived(&model));
        assert!(!derived(&model).0.is_empty() && !derived(&model).1.is_empty());
        assert_eq!(decoded.records, model.records);
        assert_eq!(
            (decoded.created.clone(), decoded.numbers.clone(), decoded.meta_versions.clone()),
            (model.created.clone(), model.numbers.clone(), model.meta_versions.clone())
        );
        assert_eq!(decoded.catalog.objects().count(), 2);
        let mut body = model.encode_snapshot();
        body.push(0);
        assert!(WriteModel::decode_snapshot(&body).is_err(), "trailing bytes are refused");
    }
}
