//! The schema generated from the catalog: per object a type with typed
//! fields (lookups resolve to the related object), get / list (connection
//! with filter, sort, limit/offset and cursor paging, true total) /
//! aggregate queries, create / update / delete mutations, and change and
//! live-query subscriptions.

use std::sync::Arc;

use crate::service::realtime::{Change, Delivery, EventKind, LiveOp, Message};
use async_graphql::dynamic::{
    Enum, Field, FieldFuture, FieldValue, InputObject, InputValue, Object, Scalar, Schema, SchemaError, Subscription, SubscriptionField,
    SubscriptionFieldFuture, TypeRef,
};
use async_graphql::Value as Gql;
use domain::metadata::{Catalog, FieldType, ObjectDef};
use domain::value::{Record, Value};

use super::cost;
use super::resolve::{self, Result};
use super::subscribe;
use super::types::{enum_name, kind_of, type_name, Kind, SYSTEM};
use super::values::{cursor, gql_from_json, to_gql, Deleted, Group, Numbers, Page, Row, Written};

/// Most nested selections a query may have.
pub const MAX_DEPTH: usize = 16;
/// Most fields (weighted) a query may select.
pub const MAX_COMPLEXITY: usize = 5_000;

/// A field whose value comes from its parent without waiting.
fn sync_field<F>(name: impl Into<String>, ty: TypeRef, read: F) -> Field
where
    F: Fn(&FieldValue<'_>) -> Result<Option<FieldValue<'static>>> + Send + Sync + 'static,
{
    Field::new(name, ty, move |ctx| match read(ctx.parent_value).and_then(|value| charged(&ctx, value)) {
        Ok(value) => FieldFuture::Value(value),
        Err(error) => FieldFuture::new(async move { Err::<Option<FieldValue<'static>>, _>(error) }),
    })
}

/// A leaf's value, charged to the request's answer budget ([`cost::ResponseBudget`]);
/// subscriptions' events are not charged.
fn charged(ctx: &async_graphql::dynamic::ResolverContext<'_>, value: Option<FieldValue<'static>>) -> Result<Option<FieldValue<'static>>> {
    let (Some(leaf), Ok(budget)) = (value.as_ref().and_then(FieldValue::as_value), ctx.data::<Arc<cost::ResponseBudget>>()) else { return Ok(value) };
    if ctx.query_env.operation.node.ty == async_graphql::parser::types::OperationType::Subscription {
        return Ok(value);
    }
    match budget.charge(ctx.field().name(), leaf, cost::MAX_RESPONSE_BYTES) {
        cost::Charge::Fits => Ok(value),
        cost::Charge::Crossed => Err(resolve::gql(crate::error::ApiError::new(domain::ErrorCode::MaxRecordsExceeded, cost::too_large()))),
        cost::Charge::Over => Ok(None),
    }
}

fn value(v: Option<Gql>) -> Option<FieldValue<'static>> {
    v.map(FieldValue::value)
}

fn text(s: impl Into<String>) -> Option<FieldValue<'static>> {
    Some(FieldValue::value(Gql::String(s.into())))
}

fn number(n: u64) -> Option<FieldValue<'static>> {
    Some(FieldValue::value(Gql::from(n)))
}

fn row(record: &Arc<Record>) -> FieldValue<'static> {
    FieldValue::owned_any(Row(record.clone()))
}

/// Types shared by every object.
fn shared_types(builder: async_graphql::dynamic::SchemaBuilder) -> async_graphql::dynamic::SchemaBuilder {
    let scalars = [
        Scalar::new("Date").description("A calendar date, ISO 8601 (YYYY-MM-DD)."),
        Scalar::new("DateTime").description("A moment, ISO 8601 with a time zone (UTC on output)."),
        Scalar::new("Time").description("A time of day, HH:MM[:SS]."),
        Scalar::new("JSON").description("Any JSON value."),
        Scalar::new("BigInt").description("A whole number up to 2^64 (log positions, versions)."),
    ];
    let mut builder = builder;
    for scalar in scalars {
        builder = builder.register(scalar);
    }
    let string_filter = ["eq", "ne", "gt", "gte", "lt", "lte", "contains", "notContains", "startsWith", "endsWith", "like", "regex"]
        .into_iter()
        .fold(InputObject::new("StringFilter").description("Conditions on a text, date or choice field (REST filter semantics)."), |o, op| {
            o.field(InputValue::new(op, TypeRef::named(TypeRef::STRING)))
        })
        .field(InputValue::new("in", TypeRef::named_nn_list(TypeRef::STRING)))
        .field(InputValue::new("nin", TypeRef::named_nn_list(TypeRef::STRING)))
        .field(InputValue::new("between", TypeRef::named_nn_list(TypeRef::STRING)))
        .field(InputValue::new("null", TypeRef::named(TypeRef::BOOLEAN)));
    let float_filter = ["eq", "ne", "gt", "gte", "lt", "lte"]
        .into_iter()
        .fold(InputObject::new("FloatFilter").description("Conditions on a number field."), |o, op| {
            o.field(InputValue::new(op, TypeRef::named(TypeRef::FLOAT)))
        })
        .field(InputValue::new("in", TypeRef::named_nn_list(TypeRef::FLOAT)))
        .field(InputValue::new("nin", TypeRef::named_nn_list(TypeRef::FLOAT)))
        .field(InputValue::new("between", TypeRef::named_nn_list(TypeRef::FLOAT)))
        .field(InputValue::new("null", TypeRef::named(TypeRef::BOOLEAN)));
    let boolean_filter = InputObject::new("BooleanFilter")
        .field(InputValue::new("eq", TypeRef::named(TypeRef::BOOLEAN)))
        .field(InputValue::new("ne", TypeRef::named(TypeRef::BOOLEAN)))
        .field(InputValue::new("null", TypeRef::named(TypeRef::BOOLEAN)));
    let id_filter = InputObject::new("IDFilter")
        .field(InputValue::new("eq", TypeRef::named(TypeRef::ID)))
        .field(InputValue::new("ne", TypeRef::named(TypeRef::ID)))
        .field(InputValue::new("in", TypeRef::named_nn_list(TypeRef::ID)))
        .field(InputValue::new("nin", TypeRef::named_nn_list(TypeRef::ID)))
        .field(InputValue::new("null", TypeRef::named(TypeRef::BOOLEAN)));
    let page_info = Object::new("PageInfo")
        .field(sync_field("hasNextPage", TypeRef::named_nn(TypeRef::BOOLEAN), |p| Ok(value(Some(Gql::Boolean(p.try_downcast_ref::<Page>()?.has_more))))))
        .field(sync_field("hasPreviousPage", TypeRef::named_nn(TypeRef::BOOLEAN), |p| Ok(value(Some(Gql::Boolean(p.try_downcast_ref::<Page>()?.offset > 0))))))
        .field(sync_field("startCursor", TypeRef::named(TypeRef::STRING), |p| {
            let page = p.try_downcast_ref::<Page>()?;
            Ok((!page.records.is_empty()).then(|| text(cursor(page.offset))).flatten())
        }))
        .field(sync_field("endCursor", TypeRef::named(TypeRef::STRING), |p| {
            let page = p.try_downcast_ref::<Page>()?;
            Ok((!page.records.is_empty()).then(|| text(cursor(page.offset + page.records.len() as u64 - 1))).flatten())
        }));
    let field_change = Object::new("FieldChange")
        .field(sync_field("field", TypeRef::named_nn(TypeRef::STRING), |p| Ok(text(p.try_downcast_ref::<FieldChangeValue>()?.field.clone()))))
        .field(sync_field("oldValue", TypeRef::named("JSON"), |p| Ok(value(p.try_downcast_ref::<FieldChangeValue>()?.old.clone()))))
        .field(sync_field("newValue", TypeRef::named("JSON"), |p| Ok(value(p.try_downcast_ref::<FieldChangeValue>()?.new.clone()))));
    let json_field =
        |name: &'static str, ty: TypeRef| sync_field(name, ty, move |p| Ok(value(Some(gql_from_json(&p.try_downcast_ref::<serde_json::Value>()?[name])))));
    let audit_page = Object::new("AuditPage")
        .description("Audit entries in the spec's shape (eventType, actor, target, changes, timestamp), newest first.")
        .field(json_field("entries", TypeRef::named_nn_list_nn("JSON")))
        .field(json_field("total", TypeRef::named_nn(TypeRef::INT)))
        .field(json_field("hasMore", TypeRef::named_nn(TypeRef::BOOLEAN)));
    let delete_payload = Object::new("DeletePayload")
        .field(sync_field("id", TypeRef::named_nn(TypeRef::ID), |p| Ok(text(p.try_downcast_ref::<Deleted>()?.id.clone()))))
        .field(sync_field("success", TypeRef::named_nn(TypeRef::BOOLEAN), |_| Ok(value(Some(Gql::Boolean(true))))))
        .field(sync_field("position", TypeRef::named_nn("BigInt"), |p| Ok(number(p.try_downcast_ref::<Deleted>()?.position))));
    builder
        .register(string_filter)
        .register(float_filter)
        .register(boolean_filter)
        .register(id_filter)
        .register(Enum::new("SortOrder").item("ASC").item("DESC"))
        .register(Enum::new("ChangeType").item("CREATED").item("UPDATED").item("DELETED").item("FIELD_CHANGED"))
        .register(page_info)
        .register(field_change)
        .register(delete_payload)
        .register(audit_page)
}

/// One changed field of a change event.
struct FieldChangeValue {
    field: String,
    old: Option<Gql>,
    new: Option<Gql>,
}

/// A page row with its cursor.
struct Edge {
    cursor: String,
    row: Arc<Record>,
}

/// A field of an object as the generator sees it.
struct Plan {
    name: String,
    kind: Kind,
    list: bool,
    writable: bool,
    readable: bool,
}

/// Names every generated schema shares (scalars, inputs, shared objects).
const SHARED: [&str; 23] = [
    "Query",
    "Mutation",
    "Subscription",
    "String",
    "Int",
    "Float",
    "Boolean",
    "ID",
    "Date",
    "DateTime",
    "Time",
    "JSON",
    "BigInt",
    "StringFilter",
    "FloatFilter",
    "BooleanFilter",
    "IDFilter",
    "SortOrder",
    "ChangeType",
    "PageInfo",
    "FieldChange",
    "DeletePayload",
    "AuditPage",
];

/// The type names generated for an object.
fn generated_names(object: &ObjectDef) -> Vec<String> {
    let ty = type_name(&object.name);
    let mut names: Vec<String> = ["", "Field", "Filter", "Sort", "Input", "Edge", "Connection", "Numbers", "Group", "Payload", "Change", "LiveOp", "Live"]
        .iter()
        .map(|suffix| format!("{ty}{suffix}"))
        .collect();
    names.extend(object.fields.iter().filter_map(|f| enum_name(object, f)));
    names
}

/// The objects the schema exposes: API-enabled, with a usable name, and
/// whose generated type names clash with nothing before them (a clashing
/// object is left out with a warning rather than breaking the whole schema).
fn exposed(catalog: &Catalog) -> Vec<Arc<ObjectDef>> {
    let mut objects: Vec<Arc<ObjectDef>> = catalog
        .objects()
        .filter(|o| o.api_enabled && super::types::is_name(&o.name) && !domain::security::INTERNAL_OBJECTS.contains(&o.name.as_str()))
        .cloned()
        .collect();
    objects.sort_by(|a, b| a.name.cmp(&b.name));
    let mut used: std::collections::HashSet<String> = SHARED.iter().map(|s| s.to_string()).collect();
    objects.retain(|object| {
        let names = generated_names(object);
        let unique: std::collections::HashSet<&String> = names.iter().collect();
        if unique.len() != names.len() || names.iter().any(|n| used.contains(n)) {
            tracing::warn!(object = %object.name, "left out of the GraphQL schema: its type names clash with another object's or a built-in type");
            return false;
        }
        used.extend(names);
        true
    });
    objects
}

fn plan(object: &ObjectDef, exposed: &std::collections::HashSet<String>) -> Vec<Plan> {
    let mut out: Vec<Plan> = object
        .fields
        .iter()
        .filter(|f| super::types::is_name(&f.name) && f.name != "id")
        .map(|f| {
            let (kind, list) = match kind_of(object, f) {
                // A reference to an object the schema leaves out reads as its id.
                (Kind::Reference(target), list) if !exposed.contains(&target) => (Kind::String, list),
                other => other,
            };
            Plan { name: f.name.clone(), kind, list, writable: !f.field_type.is_read_only(), readable: f.field_type != FieldType::Password }
        })
        .collect();
    for (name, kind) in SYSTEM {
        if object.field(name).is_none() {
            out.push(Plan { name: name.to_string(), kind, list: false, writable: false, readable: true });
        }
    }
    out
}

fn wrap(name: String, list: bool) -> TypeRef {
    if list {
        TypeRef::named_nn_list(name)
    } else {
        TypeRef::named(name)
    }
}

/// Everything generated for one object.
fn object_types(
    builder: async_graphql::dynamic::SchemaBuilder,
    object: &ObjectDef,
    catalog: &Arc<Catalog>,
    exposed: &std::collections::HashSet<String>,
) -> async_graphql::dynamic::SchemaBuilder {
    let ty = type_name(&object.name);
    let fields = plan(object, exposed);
    let mut builder = builder;
    // Enums of select-like fields.
    for field in &object.fields {
        if let Some(name) = enum_name(object, field) {
            builder = builder.register(field.options.iter().fold(Enum::new(name), |e, o| e.item(o.value.as_str())));
        }
    }
    // The record type.
    let mut record = Object::new(&ty)
        .description(format!("A record of '{}'.", object.name))
        .field(sync_field("id", TypeRef::named_nn(TypeRef::ID), |p| Ok(value(to_gql(p.try_downcast_ref::<Row>()?.0.get("id"), &Kind::String, false)))));
    for field in fields.iter().filter(|f| f.readable) {
        let name = field.name.clone();
        let (kind, list) = (field.kind.clone(), field.list);
        record = match &field.kind {
            Kind::Reference(target) => {
                let (target, catalog) = (target.clone(), catalog.clone());
                record.field(Field::new(name.clone(), wrap(type_name(&target), list), move |ctx| {
                    let (name, target, catalog) = (name.clone(), target.clone(), catalog.clone());
                    FieldFuture::new(async move { resolve::related(&ctx, &name, &target, &catalog).await })
                }))
            }
            _ => record.field(sync_field(name.clone(), wrap(kind.type_ref_name(), list), move |p| {
                Ok(value(to_gql(p.try_downcast_ref::<Row>()?.0.get(&name), &kind, list)))
            })),
        };
    }
    builder = builder.register(record);

    // Field names for sorting and grouping; the typed filter; sort; input.
    let sortable: Vec<&Plan> = fields.iter().filter(|f| f.readable && !f.list && f.kind != Kind::Json).collect();
    builder = builder.register(sortable.iter().fold(Enum::new(format!("{ty}Field")).item("id"), |e, f| e.item(f.name.as_str())));
    let mut filter = InputObject::new(format!("{ty}Filter"))
        .description(format!("Conditions on '{}' records; all given conditions apply.", object.name))
        .field(InputValue::new("AND", TypeRef::named_nn_list(format!("{ty}Filter"))))
        .field(InputValue::new("OR", TypeRef::named_nn_list(format!("{ty}Filter"))))
        .field(InputValue::new("NOT", TypeRef::named(format!("{ty}Filter"))))
        .field(InputValue::new("id", TypeRef::named("IDFilter")));
    for field in fields.iter().filter(|f| f.readable) {
        if let Some(input) = field.kind.filter_input() {
            filter = filter.field(InputValue::new(field.name.as_str(), TypeRef::named(input)));
        }
    }
    builder = builder.register(filter);
    builder = builder.register(
        InputObject::new(format!("{ty}Sort"))
            .field(InputValue::new("field", TypeRef::named_nn(format!("{ty}Field"))))
            .field(InputValue::new("order", TypeRef::named("SortOrder")).default_value(Gql::Enum(async_graphql::Name::new("ASC")))),
    );
    let writable: Vec<&Plan> = fields.iter().filter(|f| f.writable && !SYSTEM.iter().any(|(s, _)| *s == f.name)).collect();
    if !writable.is_empty() {
        builder = builder.register(
            writable.iter().fold(InputObject::new(format!("{ty}Input")), |o, f| o.field(InputValue::new(f.name.as_str(), wrap(f.kind.input_name(), f.list)))),
        );
    }

    // The list connection.
    builder = builder.register(
        Object::new(format!("{ty}Edge"))
            .field(sync_field("cursor", TypeRef::named_nn(TypeRef::STRING), |p| Ok(text(p.try_downcast_ref::<Edge>()?.cursor.clone()))))
            .field(sync_field("node", TypeRef::named_nn(&ty), |p| Ok(Some(row(&p.try_downcast_ref::<Edge>()?.row))))),
    );
    builder = builder.register(
        Object::new(format!("{ty}Connection"))
            .field(sync_field("records", TypeRef::named_nn_list_nn(&ty), |p| {
                Ok(Some(FieldValue::list(p.try_downcast_ref::<Page>()?.records.iter().map(row).collect::<Vec<_>>())))
            }))
            .field(sync_field("edges", TypeRef::named_nn_list_nn(format!("{ty}Edge")), |p| {
                let page = p.try_downcast_ref::<Page>()?;
                let edges =
                    page.records.iter().enumerate().map(|(i, r)| FieldValue::owned_any(Edge { cursor: cursor(page.offset + i as u64), row: r.clone() }));
                Ok(Some(FieldValue::list(edges.collect::<Vec<_>>())))
            }))
            .field(sync_field("total", TypeRef::named(TypeRef::INT), |p| Ok(p.try_downcast_ref::<Page>()?.total.and_then(number))))
            .field(sync_field("hasMore", TypeRef::named_nn(TypeRef::BOOLEAN), |p| Ok(value(Some(Gql::Boolean(p.try_downcast_ref::<Page>()?.has_more))))))
            .field(sync_field("pageInfo", TypeRef::named_nn("PageInfo"), |p| {
                let page = p.try_downcast_ref::<Page>()?;
                Ok(Some(FieldValue::owned_any(Page { records: page.records.clone(), total: page.total, has_more: page.has_more, offset: page.offset })))
            })),
    );

    // Aggregates.
    let numeric: Vec<String> = fields.iter().filter(|f| f.kind == Kind::Float && !f.list && f.readable).map(|f| f.name.clone()).collect();
    let mut group = Object::new(format!("{ty}Group"))
        .field(sync_field("key", TypeRef::named("JSON"), |p| {
            let group = p.try_downcast_ref::<Group>()?;
            let key: serde_json::Map<String, serde_json::Value> =
                group.keys.iter().map(|k| (k.clone(), group.row.get(k).map(Value::to_json).unwrap_or_default())).collect();
            Ok(value(Some(gql_from_json(&serde_json::Value::Object(key)))))
        }))
        .field(sync_field("count", TypeRef::named_nn(TypeRef::INT), |p| {
            let count = match p.try_downcast_ref::<Group>()?.row.get("count") {
                Some(Value::Int(n)) => *n,
                Some(Value::Float(f)) => *f as i64,
                _ => 0,
            };
            Ok(value(Some(Gql::from(count))))
        }));
    if !numeric.is_empty() {
        let numbers = numeric.iter().fold(Object::new(format!("{ty}Numbers")), |o, f| {
            let f = f.clone();
            o.field(sync_field(f.clone(), TypeRef::named(TypeRef::FLOAT), move |p| {
                let numbers = p.try_downcast_ref::<Numbers>()?;
                Ok(value(to_gql(numbers.row.get(&format!("{}__{f}", numbers.function)), &Kind::Float, false)))
            }))
        });
        builder = builder.register(numbers);
        for (function, _) in resolve::MEASURES {
            group = group.field(sync_field(function, TypeRef::named(format!("{ty}Numbers")), move |p| {
                Ok(Some(FieldValue::owned_any(Numbers { row: p.try_downcast_ref::<Group>()?.row.clone(), function })))
            }));
        }
    }
    builder = builder.register(group);

    // Mutation answers, change events and live results.
    builder = builder.register(
        Object::new(format!("{ty}Payload"))
            .field(sync_field("id", TypeRef::named_nn(TypeRef::ID), |p| Ok(text(p.try_downcast_ref::<Written>()?.id.clone()))))
            .field(sync_field("position", TypeRef::named_nn("BigInt"), |p| Ok(number(p.try_downcast_ref::<Written>()?.position))))
            .field(sync_field("version", TypeRef::named_nn("BigInt"), |p| Ok(number(p.try_downcast_ref::<Written>()?.version))))
            .field(sync_field("record", TypeRef::named(&ty), |p| Ok(p.try_downcast_ref::<Written>()?.record.as_ref().map(row)))),
    );
    builder = builder.register(change_type(&ty));
    builder = builder.register(
        Object::new(format!("{ty}LiveOp"))
            .field(sync_field("op", TypeRef::named_nn(TypeRef::STRING), |p| {
                Ok(text(match p.try_downcast_ref::<LiveOp>()? {
                    LiveOp::Remove { .. } => "remove",
                    LiveOp::Insert { .. } => "insert",
                    LiveOp::Update { .. } => "update",
                    LiveOp::Move { .. } => "move",
                }))
            }))
            .field(sync_field("id", TypeRef::named_nn(TypeRef::ID), |p| {
                Ok(text(match p.try_downcast_ref::<LiveOp>()? {
                    LiveOp::Remove { id } | LiveOp::Insert { id, .. } | LiveOp::Update { id, .. } | LiveOp::Move { id, .. } => id.clone(),
                }))
            }))
            .field(sync_field("index", TypeRef::named(TypeRef::INT), |p| {
                Ok(match p.try_downcast_ref::<LiveOp>()? {
                    LiveOp::Insert { index, .. } | LiveOp::Update { index, .. } | LiveOp::Move { index, .. } => number(*index as u64),
                    LiveOp::Remove { .. } => None,
                })
            }))
            .field(sync_field("record", TypeRef::named(&ty), |p| {
                Ok(match p.try_downcast_ref::<LiveOp>()? {
                    LiveOp::Insert { record, .. } | LiveOp::Update { record, .. } => Some(row(record)),
                    _ => None,
                })
            })),
    );
    builder.register(live_type(&ty))
}

fn delivery<'a>(p: &'a FieldValue<'_>) -> Result<&'a Delivery> {
    p.try_downcast_ref::<Delivery>()
}

fn change_type(ty: &str) -> Object {
    let change = |p: &FieldValue<'_>| -> Result<(EventKind, Arc<Change>)> {
        match &delivery(p)?.message {
            Message::Event { kind, change } => Ok((*kind, change.clone())),
            _ => Err("not a change event".into()),
        }
    };
    Object::new(format!("{ty}Change"))
        .description("A committed change of a record.")
        .field(sync_field("type", TypeRef::named_nn(TypeRef::STRING), move |p| Ok(text(change(p)?.0.name()))))
        .field(sync_field("subscriptionId", TypeRef::named_nn(TypeRef::STRING), |p| Ok(text(&*delivery(p)?.subscription))))
        .field(sync_field("position", TypeRef::named_nn("BigInt"), move |p| Ok(number(change(p)?.1.position))))
        .field(sync_field("id", TypeRef::named_nn(TypeRef::ID), move |p| Ok(text(change(p)?.1.id.clone()))))
        .field(sync_field("eventId", TypeRef::named_nn(TypeRef::STRING), move |p| Ok(text(change(p)?.1.event_uuid()))))
        .field(sync_field("action", TypeRef::named_nn(TypeRef::STRING), move |p| Ok(text(change(p)?.1.kind.action()))))
        .field(sync_field("record", TypeRef::named(ty), move |p| Ok(change(p)?.1.record.as_ref().map(row))))
        .field(sync_field("previous", TypeRef::named(ty), move |p| Ok(change(p)?.1.previous.as_ref().map(row))))
        .field(sync_field("changes", TypeRef::named_nn_list_nn("FieldChange"), move |p| {
            let (_, change) = change(p)?;
            let read = |r: &Option<Arc<Record>>, f: &str| r.as_ref().and_then(|r| r.get(f)).filter(|v| **v != Value::Null).map(|v| gql_from_json(&v.to_json()));
            let items = change
                .changed
                .iter()
                .map(|f| FieldValue::owned_any(FieldChangeValue { field: f.clone(), old: read(&change.previous, f), new: read(&change.record, f) }));
            Ok(Some(FieldValue::list(items.collect::<Vec<_>>())))
        }))
        .field(sync_field("timestamp", TypeRef::named_nn("DateTime"), move |p| Ok(text(change(p)?.1.timestamp()))))
        .field(sync_field("userId", TypeRef::named(TypeRef::STRING), move |p| Ok(text(change(p)?.1.actor.clone()))))
}

fn live_type(ty: &str) -> Object {
    Object::new(format!("{ty}Live"))
        .description("A live query: first `snapshot` (the whole result), then `ops` (only the changes).")
        .field(sync_field("type", TypeRef::named_nn(TypeRef::STRING), |p| {
            Ok(text(match &delivery(p)?.message {
                Message::Snapshot(_) => "snapshot",
                Message::Ops(_) => "ops",
                Message::Event { .. } => "event",
            }))
        }))
        .field(sync_field("subscriptionId", TypeRef::named_nn(TypeRef::STRING), |p| Ok(text(&*delivery(p)?.subscription))))
        .field(sync_field("position", TypeRef::named_nn("BigInt"), |p| Ok(number(delivery(p)?.message.position()))))
        .field(sync_field("records", TypeRef::named_nn_list(ty), |p| {
            Ok(match &delivery(p)?.message {
                Message::Snapshot(s) => Some(FieldValue::list(s.records.iter().map(row).collect::<Vec<_>>())),
                _ => None,
            })
        }))
        .field(sync_field("ops", TypeRef::named_nn_list(format!("{ty}LiveOp")), |p| {
            Ok(match &delivery(p)?.message {
                Message::Ops(o) => Some(FieldValue::list(o.ops.iter().cloned().map(FieldValue::owned_any).collect::<Vec<_>>())),
                _ => None,
            })
        }))
        .field(sync_field("total", TypeRef::named(TypeRef::INT), |p| {
            Ok(match &delivery(p)?.message {
                Message::Snapshot(s) => s.total.and_then(number),
                Message::Ops(o) => o.total.and_then(number),
                _ => None,
            })
        }))
        .field(sync_field("hasMore", TypeRef::named_nn(TypeRef::BOOLEAN), |p| {
            Ok(value(Some(Gql::Boolean(match &delivery(p)?.message {
                Message::Snapshot(s) => s.has_more,
                Message::Ops(o) => o.has_more,
                _ => false,
            }))))
        }))
}

fn list_arguments(field: Field, ty: &str) -> Field {
    field
        .argument(InputValue::new("filter", TypeRef::named(format!("{ty}Filter"))))
        .argument(InputValue::new("where", TypeRef::named("JSON")).description("A filter in any REST form (object, array or AST)."))
        .argument(InputValue::new("sort", TypeRef::named_nn_list(format!("{ty}Sort"))))
        .argument(InputValue::new("limit", TypeRef::named(TypeRef::INT)))
        .argument(InputValue::new("offset", TypeRef::named(TypeRef::INT)))
}

/// Builds the schema for the objects of a catalog that are exposed through the API.
pub fn build(catalog: &Catalog) -> std::result::Result<Schema, SchemaError> {
    let catalog = Arc::new(catalog.clone());
    let objects = exposed(&catalog);
    let names: std::collections::HashSet<String> = objects.iter().map(|o| o.name.clone()).collect();
    let mut query = Object::new("Query").field(Field::new("_position", TypeRef::named_nn("BigInt"), |ctx| {
        FieldFuture::new(async move {
            let (system, _) = resolve::context(&ctx)?;
            Ok(number(crate::service::barrier::reached(system)))
        })
    }));
    query = query.field(
        ["object", "recordId", "actor", "eventType", "from", "to"]
            .into_iter()
            .fold(
                Field::new("audit", TypeRef::named_nn("AuditPage"), |ctx| FieldFuture::new(async move { resolve::audit(&ctx).await }))
                    .description("The audit trail, filtered by object, record, actor, event type and time range (ISO 8601)."),
                |f, arg| f.argument(InputValue::new(arg, TypeRef::named(TypeRef::STRING))),
            )
            .argument(InputValue::new("limit", TypeRef::named(TypeRef::INT)))
            .argument(InputValue::new("offset", TypeRef::named(TypeRef::INT))),
    );
    query = query.field(
        Field::new("search", TypeRef::named_nn("JSON"), |ctx| FieldFuture::new(async move { resolve::search(&ctx).await }))
            .description("Full-text search (the REST /search result: hits with scores, documents and highlights, totalHits, facets).")
            .argument(InputValue::new("q", TypeRef::named_nn(TypeRef::STRING)))
            .argument(InputValue::new("objects", TypeRef::named_nn_list(TypeRef::STRING)))
            .argument(InputValue::new("fields", TypeRef::named_nn_list(TypeRef::STRING)))
            .argument(InputValue::new("facets", TypeRef::named_nn_list(TypeRef::STRING)))
            .argument(InputValue::new("filter", TypeRef::named("JSON")))
            .argument(InputValue::new("operator", TypeRef::named(TypeRef::STRING)))
            .argument(InputValue::new("fuzzy", TypeRef::named(TypeRef::BOOLEAN)))
            .argument(InputValue::new("highlight", TypeRef::named(TypeRef::BOOLEAN)))
            .argument(InputValue::new("limit", TypeRef::named(TypeRef::INT)))
            .argument(InputValue::new("offset", TypeRef::named(TypeRef::INT))),
    );
    let mut mutation = Object::new("Mutation");
    let mut subscription = Subscription::new("Subscription");
    let mut builder = shared_types(Schema::build("Query", (!objects.is_empty()).then_some("Mutation"), (!objects.is_empty()).then_some("Subscription")));
    for object in &objects {
        let ty = type_name(&object.name);
        let name = object.name.clone();
        builder = object_types(builder, object, &catalog, &names);
        let has_input = plan(object, &names).iter().any(|f| f.writable && !SYSTEM.iter().any(|(s, _)| *s == f.name));
        let numeric: Vec<String> = plan(object, &names).into_iter().filter(|f| f.kind == Kind::Float && !f.list && f.readable).map(|f| f.name).collect();

        let (n, c) = (name.clone(), catalog.clone());
        query = query.field(
            Field::new(name.clone(), TypeRef::named(&ty), move |ctx| {
                let (n, c) = (n.clone(), c.clone());
                FieldFuture::new(async move { resolve::get_one(&ctx, &c, &n).await })
            })
            .description(format!("One '{name}' record by id (optionally as of a log position or time)."))
            .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
            .argument(InputValue::new("asOf", TypeRef::named(TypeRef::STRING))),
        );
        let (n, c) = (name.clone(), catalog.clone());
        query = query.field(
            list_arguments(
                Field::new(format!("{name}List"), TypeRef::named_nn(format!("{ty}Connection")), move |ctx| {
                    let (n, c) = (n.clone(), c.clone());
                    FieldFuture::new(async move { resolve::list(&ctx, &c, &n).await })
                }),
                &ty,
            )
            .argument(InputValue::new("first", TypeRef::named(TypeRef::INT)))
            .argument(InputValue::new("after", TypeRef::named(TypeRef::STRING)))
            .description(format!("'{name}' records: filter, sort, limit/offset or first/after cursors, the true total.")),
        );
        let n = name.clone();
        query = query.field(
            Field::new(format!("{name}Aggregate"), TypeRef::named_nn_list_nn(format!("{ty}Group")), move |ctx| {
                let (n, numeric) = (n.clone(), numeric.clone());
                FieldFuture::new(async move { resolve::aggregate(&ctx, &numeric, &n).await })
            })
            .description(format!("Count, and sum/avg/min/max of every number field of '{name}', per group."))
            .argument(InputValue::new("filter", TypeRef::named(format!("{ty}Filter"))))
            .argument(InputValue::new("where", TypeRef::named("JSON")))
            .argument(InputValue::new("groupBy", TypeRef::named_nn_list(format!("{ty}Field"))))
            .argument(InputValue::new("limit", TypeRef::named(TypeRef::INT)))
            .argument(InputValue::new("offset", TypeRef::named(TypeRef::INT))),
        );

        if has_input {
            let n = name.clone();
            mutation = mutation.field(
                Field::new(format!("create{ty}"), TypeRef::named_nn(format!("{ty}Payload")), move |ctx| {
                    let n = n.clone();
                    FieldFuture::new(async move { resolve::create(&ctx, &n).await })
                })
                .argument(InputValue::new("input", TypeRef::named_nn(format!("{ty}Input"))))
                .argument(InputValue::new("id", TypeRef::named(TypeRef::ID)))
                .argument(InputValue::new("idempotencyKey", TypeRef::named(TypeRef::STRING))),
            );
            let n = name.clone();
            mutation = mutation.field(
                Field::new(format!("update{ty}"), TypeRef::named_nn(format!("{ty}Payload")), move |ctx| {
                    let n = n.clone();
                    FieldFuture::new(async move { resolve::update(&ctx, &n).await })
                })
                .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
                .argument(InputValue::new("input", TypeRef::named_nn(format!("{ty}Input"))))
                .argument(InputValue::new("expectedVersion", TypeRef::named("BigInt")))
                .argument(InputValue::new("idempotencyKey", TypeRef::named(TypeRef::STRING))),
            );
        }
        let n = name.clone();
        mutation = mutation.field(
            Field::new(format!("delete{ty}"), TypeRef::named_nn("DeletePayload"), move |ctx| {
                let n = n.clone();
                FieldFuture::new(async move { resolve::delete(&ctx, &n).await })
            })
            .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
            .argument(InputValue::new("expectedVersion", TypeRef::named("BigInt")))
            .argument(InputValue::new("idempotencyKey", TypeRef::named(TypeRef::STRING))),
        );

        let n = name.clone();
        subscription = subscription.field(
            SubscriptionField::new(format!("{name}Changed"), TypeRef::named_nn(format!("{ty}Change")), move |ctx| {
                let n = n.clone();
                SubscriptionFieldFuture::new(async move { subscribe::changes(&ctx, &n).await })
            })
            .description(format!("Committed changes of '{name}' records, in order; `after` + `resumeId` resume without a gap."))
            .argument(InputValue::new("filter", TypeRef::named(format!("{ty}Filter"))))
            .argument(InputValue::new("where", TypeRef::named("JSON")))
            .argument(InputValue::new("events", TypeRef::named_nn_list("ChangeType")))
            .argument(InputValue::new("fields", TypeRef::named_nn_list(format!("{ty}Field"))))
            .argument(InputValue::new("after", TypeRef::named("BigInt")))
            .argument(InputValue::new("resumeId", TypeRef::named(TypeRef::STRING))),
        );
        let n = name.clone();
        subscription = subscription.field(
            SubscriptionField::new(format!("{name}Live"), TypeRef::named_nn(format!("{ty}Live")), move |ctx| {
                let n = n.clone();
                SubscriptionFieldFuture::new(async move { subscribe::live(&ctx, &n).await })
            })
            .description(format!("A live '{name}' list: the result, then only its changes; `after` + `resumeId` resume without a gap."))
            .argument(InputValue::new("filter", TypeRef::named(format!("{ty}Filter"))))
            .argument(InputValue::new("where", TypeRef::named("JSON")))
            .argument(InputValue::new("sort", TypeRef::named_nn_list(format!("{ty}Sort"))))
            .argument(InputValue::new("limit", TypeRef::named(TypeRef::INT)))
            .argument(InputValue::new("offset", TypeRef::named(TypeRef::INT)))
            .argument(InputValue::new("after", TypeRef::named("BigInt")))
            .argument(InputValue::new("resumeId", TypeRef::named(TypeRef::STRING))),
        );
    }
    builder = builder.register(query);
    if !objects.is_empty() {
        builder = builder.register(mutation).register(subscription);
    }
    builder.limit_depth(MAX_DEPTH).limit_complexity(MAX_COMPLEXITY).extension(super::cost::CostLimit).finish()
}
