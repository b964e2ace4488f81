//! The OpenAPI 3.1 document of the REST API, generated from the metadata as
//! the caller may see it (objects it may not use and fields it may not read
//! are left out, as in the GraphQL schema): every object's record, input and
//! patch schemas and its data routes, the routes shared by every object, the
//! error envelope with every error code. Rebuilt on each request, so it
//! follows definition changes at once.

use domain::metadata::{FieldDef, FieldType, ObjectDef};
use domain::security::ObjectGrant;
use domain::ErrorCode;
use serde_json::{json, Map, Value as Json};

use super::caller::Caller;
use super::meta::api_catalog;
use crate::app::System;

/// The document for `caller`.
pub fn document(system: &System, caller: &Caller) -> Json {
    let (version, catalog) = api_catalog(system, caller);
    let mut paths = Map::new();
    let mut schemas = Map::new();
    schemas.insert("Error".into(), error_schema());
    schemas.insert("Query".into(), json!({"type": "object", "description": "A QueryAST: where, fields, orderBy, limit, offset, expand, search, groupBy, aggregations (see the protocol's query reference)."}));
    let access = caller.access();
    for object in catalog.objects().filter(|o| o.api_enabled) {
        let grant = access.grant(&catalog, object);
        let may = Rights {
            create: grant.permission.create,
            edit: grant.permission.edit || grant.permission.modify_all,
            delete: grant.permission.delete || grant.permission.modify_all,
        };
        schemas.insert(format!("{}_record", object.name), record_schema(object));
        if may.create {
            schemas.insert(format!("{}_input", object.name), input_schema(object, &grant, true));
        }
        if may.edit {
            schemas.insert(format!("{}_patch", object.name), input_schema(object, &grant, false));
        }
        object_paths(&mut paths, &object.name, may);
    }
    shared_paths(&mut paths);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "objectstack",
            "version": format!("metadata {version}"),
            "description": "The REST API of this server, as the caller who asked may use it. Every error answers the Error envelope.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "A session token from sign-in, or an API key."}},
            "responses": {"Error": {"description": "An error, in the protocol's envelope.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
        },
    })
}

fn error_schema() -> Json {
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    let error = json!({
        "type": "object",
        "required": ["code", "message", "category", "httpStatus", "retryable"],
        "properties": {
            "code": {"type": "string", "enum": codes},
            "message": {"type": "string"},
            "category": {"type": "string"},
            "httpStatus": {"type": "integer"},
            "retryable": {"type": "boolean"},
            "fieldErrors": {"type": "array", "items": {"type": "object", "required": ["field", "code", "message"],
                "properties": {"field": {"type": "string"}, "code": {"type": "string"}, "message": {"type": "string"}}}},
            "details": {},
        },
    });
    json!({
        "type": "object",
        "required": ["success", "error", "code", "message"],
        "properties": {"success": {"const": false}, "error": error, "code": {"type": "string", "enum": codes}, "message": {"type": "string"}},
    })
}

/// A value of the field as the API answers it (`null` when unset).
fn value_schema(field: &FieldDef) -> Json {
    let one = match field.field_type {
        t if t.is_numeric() => json!({"type": "number"}),
        FieldType::Boolean | FieldType::Toggle => json!({"type": "boolean"}),
        FieldType::Multiselect | FieldType::Checkboxes | FieldType::Tags => json!({"type": "array", "items": {"type": "string"}}),
        FieldType::Vector => json!({"type": "array", "items": {"type": "number"}}),
        FieldType::Date => json!({"type": "string", "format": "date"}),
        FieldType::Datetime => json!({"type": "string", "format": "date-time"}),
        // References may be expanded into the record; files, places, formulas and JSON take several forms.
        FieldType::Lookup | FieldType::MasterDetail | FieldType::Tree => json!({}),
        FieldType::Image | FieldType::File | FieldType::Avatar | FieldType::Video | FieldType::Audio => json!({}),
        FieldType::Location | FieldType::Address | FieldType::Json | FieldType::Formula | FieldType::Summary => json!({}),
        FieldType::Select | FieldType::Radio if field.multiple => json!({"type": "array", "items": {"type": "string"}}),
        _ => json!({"type": "string"}),
    };
    let mut schema = match one.get("type").and_then(Json::as_str) {
        Some(kind) => {
            let mut nullable = one.clone();
            nullable["type"] = json!([kind, "null"]);
            nullable
        }
        None => one,
    };
    if let Some(label) = &field.label {
        schema["title"] = json!(label);
    }
    schema
}

/// The field's own bounds, so a generated value is one the server may take.
fn limits(schema: &mut Json, field: &FieldDef) {
    if let Some(max) = field.max_length {
        schema["maxLength"] = json!(max);
    }
    if let Some(min) = field.min_length {
        schema["minLength"] = json!(min);
    }
    if field.field_type.is_numeric() {
        if let Some(min) = field.min {
            schema["minimum"] = json!(min);
        }
        if let Some(max) = field.max {
            schema["maximum"] = json!(max);
        }
    }
}

fn record_schema(object: &ObjectDef) -> Json {
    let mut properties = Map::new();
    properties.insert("id".into(), json!({"type": "string"}));
    for name in ["created_at", "updated_at"] {
        properties.insert(name.into(), json!({"type": ["string", "null"], "format": "date-time"}));
    }
    for name in ["created_by", "modified_by", "owner"] {
        properties.insert(name.into(), json!({"type": ["string", "null"]}));
    }
    for field in object.fields.iter().filter(|f| f.field_type != FieldType::Password) {
        properties.insert(field.name.clone(), value_schema(field));
    }
    json!({"type": "object", "title": object.label, "required": ["id"], "properties": properties})
}

/// The writes a caller may make on an object (its routes are documented only for them).
#[derive(Debug, Clone, Copy)]
struct Rights {
    create: bool,
    edit: bool,
    delete: bool,
}

/// What a create (`create`) or an update takes: the fields the caller may set.
fn input_schema(object: &ObjectDef, grant: &ObjectGrant, create: bool) -> Json {
    let mut properties = Map::new();
    let mut required = Vec::new();
    let settable = |f: &&FieldDef| !f.readonly && !f.field_type.is_read_only() && (!grant.readonly.contains(&f.name) || grant.passwords.contains(&f.name));
    for field in object.fields.iter().filter(settable) {
        let mut schema = value_schema(field);
        limits(&mut schema, field);
        if let (FieldType::Select | FieldType::Radio, false) = (field.field_type, field.multiple) {
            if !field.options.is_empty() {
                let mut values: Vec<Json> = field.options.iter().map(|o| json!(o.value)).collect();
                values.push(Json::Null);
                schema["enum"] = Json::Array(values);
            }
        }
        if field.field_type == FieldType::Password {
            schema["writeOnly"] = json!(true);
        }
        if create && field.required && field.default_value.is_none() {
            required.push(field.name.clone());
        }
        properties.insert(field.name.clone(), schema);
    }
    let mut schema = json!({"type": "object", "properties": properties, "additionalProperties": false});
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

fn reference(name: &str) -> Json {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn envelope(data: Json) -> Json {
    json!({"type": "object", "required": ["success", "data"], "properties": {"success": {"const": true}, "data": data}})
}

fn answer(status: &str, description: &str, data: Json) -> Json {
    let mut responses = Map::new();
    responses.insert(status.into(), json!({"description": description, "content": {"application/json": {"schema": envelope(data)}}}));
    responses.insert("default".into(), json!({"$ref": "#/components/responses/Error"}));
    Json::Object(responses)
}

fn body(schema: Json) -> Json {
    json!({"required": true, "content": {"application/json": {"schema": schema}}})
}

fn query(name: &str, description: &str) -> Json {
    json!({"name": name, "in": "query", "required": false, "schema": {"type": "string"}, "description": description})
}

fn path_param(name: &str) -> Json {
    json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
}

/// Where a created record's id leads (so a fuzzer's stateful phase reaches real records).
fn links(object: &str, may: Rights) -> Json {
    let id = json!({"id": "$response.body#/data/id"});
    let mut links =
        json!({"get": {"operationId": format!("get_{object}"), "parameters": id}, "history": {"operationId": format!("history_{object}"), "parameters": id}});
    if may.edit {
        links["update"] = json!({"operationId": format!("update_{object}"), "parameters": id});
    }
    if may.delete {
        links["delete"] = json!({"operationId": format!("delete_{object}"), "parameters": id});
    }
    links
}

fn object_paths(paths: &mut Map<String, Json>, object: &str, may: Rights) {
    let record = reference(&format!("{object}_record"));
    let one = json!({"type": "object", "required": ["object", "id", "record"], "properties": {"object": {"const": object}, "id": {"type": "string"}, "record": record}});
    let list = json!({"type": "object", "required": ["records"], "properties": {"object": {"const": object}, "records": {"type": "array", "items": record},
        "total": {"type": "integer"}, "hasMore": {"type": "boolean"}}});
    let tag = json!([object]);
    let list_params = json!([
        query("filter", "A filter: [field, op, value], or conditions joined by \"and\"/\"or\", as JSON"),
        query("sort", "Fields to sort by, comma-separated; a leading - sorts descending"),
        query("top", "How many records (at most 10,000)"),
        query("skip", "How many to skip"),
        query("select", "Fields to answer, comma-separated"),
        query("expand", "References to expand, comma-separated"),
        query("search", "Full-text search within the object"),
        query("asOf", "A log position or an ISO time: the list as it was then"),
        query("minPosition", "Wait until this log position is applied (read-your-writes)"),
    ]);
    let mut collection = json!({
        "get": {"operationId": format!("list_{object}"), "tags": tag, "summary": format!("List {object} records"), "parameters": list_params, "responses": answer("200", "A page of records", list.clone())},
    });
    if may.create {
        let mut created = answer("201", "The record created", one.clone());
        created["201"]["links"] = links(object, may);
        collection["post"] = json!({"operationId": format!("create_{object}"), "tags": tag, "summary": format!("Create a {object} record"),
            "parameters": [{"name": "Idempotency-Key", "in": "header", "required": false, "schema": {"type": "string"}}],
            "requestBody": body(reference(&format!("{object}_input"))), "responses": created});
    }
    paths.insert(format!("/api/v1/data/{object}"), collection);
    let if_match = json!({"name": "If-Match", "in": "header", "required": false, "schema": {"type": "string"}, "description": "The version the change was made on (409 when the record has moved)"});
    let mut item = json!({
        "parameters": [path_param("id")],
        "get": {"operationId": format!("get_{object}"), "tags": tag, "parameters": [query("asOf", "A log position or an ISO time"), query("select", "Fields to answer"), query("expand", "References to expand")],
            "responses": answer("200", "The record", one.clone())},
    });
    if may.edit {
        item["patch"] = json!({"operationId": format!("update_{object}"), "tags": tag, "parameters": [if_match.clone()],
            "requestBody": body(reference(&format!("{object}_patch"))), "responses": answer("200", "The record updated", one)});
    }
    if may.delete {
        item["delete"] = json!({"operationId": format!("delete_{object}"), "tags": tag, "parameters": [if_match],
            "responses": answer("200", "Deleted", json!({"type": "object", "properties": {"object": {"const": object}, "id": {"type": "string"}, "deleted": {"const": true}}}))});
    }
    paths.insert(format!("/api/v1/data/{object}/{{id}}"), item);
    paths.insert(
        format!("/api/v1/data/{object}/query"),
        json!({"post": {"operationId": format!("query_{object}"), "tags": tag, "requestBody": body(reference("Query")), "responses": answer("200", "The matching records", list)}}),
    );
    paths.insert(
        format!("/api/v1/data/{object}/{{id}}/history"),
        json!({"parameters": [path_param("id")], "get": {"operationId": format!("history_{object}"), "tags": tag,
            "responses": answer("200", "The record's audit entries, newest first", json!({"type": "object", "properties": {"entries": {"type": "array", "items": {"type": "object"}}}}))}}),
    );
    let results = json!({"type": "object"});
    if !may.create && !may.edit && !may.delete {
        return;
    }
    if may.create {
        paths.insert(
        format!("/api/v1/data/{object}/createMany"),
        json!({"post": {"operationId": format!("create_many_{object}"), "tags": tag, "requestBody": body(json!({"type": "array", "items": reference(&format!("{object}_input")), "maxItems": 200})),
            "responses": answer("201", "The records created, all or none", results.clone())}}),
    );
    }
    paths.insert(
        format!("/api/v1/data/{object}/batch"),
        json!({"post": {"operationId": format!("batch_{object}"), "tags": tag,
            "requestBody": body(json!({"type": "object", "required": ["operation", "records"], "properties": {
                "operation": {"enum": ["create", "update", "upsert", "delete"]}, "records": {"type": "array", "maxItems": 200, "items": {"type": "object"}},
                "options": {"type": "object"}}})),
            "responses": answer("200", "Each record's result", results)}}),
    );
}

fn generic(operation: &str, summary: &str, params: Json, request: Option<Json>) -> Json {
    let mut op = json!({"operationId": operation, "summary": summary, "parameters": params, "responses": answer("200", summary, json!({}))});
    if let Some(schema) = request {
        op["requestBody"] = body(schema);
    }
    op
}

fn shared_paths(paths: &mut Map<String, Json>) {
    let object_body = Some(json!({"type": "object"}));
    let entries = [
        ("/api/v1/discovery", "get", generic("discovery", "What this server offers", json!([]), None)),
        ("/api/v1/health", "get", generic("health", "Whether the server is up", json!([]), None)),
        ("/api/v1/meta/{kind}", "get", generic("meta_items", "Definitions of one kind (object, workflow, flow, ...)", json!([]), None)),
        ("/api/v1/meta/{kind}/{name}", "get", generic("meta_item", "One definition", json!([]), None)),
        (
            "/api/v1/search",
            "get",
            generic(
                "search",
                "Full-text search",
                json!([
                    query("q", "The words"),
                    query("object", "Objects, comma-separated"),
                    query("limit", "How many hits"),
                    query("offset", "How many to skip")
                ]),
                None,
            ),
        ),
        (
            "/api/v1/audit",
            "get",
            generic(
                "audit",
                "The audit trail, newest first",
                json!([
                    query("object", "Object"),
                    query("recordId", "Record"),
                    query("actor", "Actor id"),
                    query("eventType", "Event type"),
                    query("from", "From (ISO time)"),
                    query("to", "To (ISO time)"),
                    query("limit", "How many"),
                    query("offset", "How many to skip")
                ]),
                None,
            ),
        ),
        ("/api/v1/analytics/query", "post", generic("analytics_query", "A Cube.js-style analytics query", json!([]), object_body.clone())),
        ("/api/v1/analytics/meta", "get", generic("analytics_meta", "The cubes", json!([]), None)),
        ("/api/v1/auth/get-session", "get", generic("get_session", "The caller's session", json!([]), None)),
        (
            "/api/v1/auth/sign-in/email",
            "post",
            generic(
                "sign_in",
                "Sign in: a session token",
                json!([]),
                Some(json!({"type": "object", "required": ["email", "password"], "properties": {"email": {"type": "string"}, "password": {"type": "string"}}})),
            ),
        ),
        (
            "/api/v1/auth/sign-up/email",
            "post",
            generic(
                "sign_up",
                "Create an account (when the app allows it)",
                json!([]),
                Some(
                    json!({"type": "object", "required": ["email", "password"], "properties": {"email": {"type": "string"}, "password": {"type": "string"}, "name": {"type": "string"}}}),
                ),
            ),
        ),
        ("/api/v1/auth/permissions/effective", "get", generic("effective_permissions", "What the caller may do", json!([]), None)),
        ("/api/v1/auth/check", "post", generic("check_permission", "Whether the caller may do something", json!([]), object_body.clone())),
        ("/api/v1/projections", "get", generic("projections", "Projections and processes", json!([]), None)),
        ("/api/v1/realtime/connect", "post", generic("realtime_connect", "A realtime session for the socket to claim", json!([]), object_body.clone())),
        ("/api/v1/realtime/subscribe", "post", generic("realtime_subscribe", "Subscribe a realtime session", json!([]), object_body)),
    ];
    for (path, method, operation) in entries {
        let item = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        item[method] = operation;
        if path.contains('{') {
            let params: Vec<Json> = path.split('{').skip(1).filter_map(|p| p.split_once('}')).map(|(name, _)| path_param(name)).collect();
            item["parameters"] = Json::Array(params);
        }
    }
}
