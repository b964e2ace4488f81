//! The reference page of the app format (`domain/schemas/app-format.md`),
//! generated from the same JSON Schemas the app files are checked against,
//! so the page cannot drift from the checks: a test renders it and compares
//! it with the committed file (`OBJECTSTACK_UPDATE_REFERENCE=1` rewrites it).

use serde_json::Value as Json;

use super::schema::{OBJECT_SECTIONS, SECTIONS, UNSERVED};

/// The whole page, in Markdown.
pub fn reference() -> String {
    let mut out = String::from(
        "# The app format\n\n\
         Generated from the protocol's JSON Schemas in this folder (`@objectstack/spec` 3.0.6 for data, 4.0.4 for automation, \
         security and identity) by `domain/src/metadata/schema_reference.rs`; `objectstack validate --app PATH` and `serve` \
         check app files against the same schemas. Do not edit by hand: `OBJECTSTACK_UPDATE_REFERENCE=1 cargo test -p domain reference` \
         rewrites it.\n\n\
         An app is one JSON file, or a folder of JSON files whose lists are joined (a file may also hold one object definition). \
         A property with a default may be left out. Keys beginning with `_`, and `$schema`, are comments.\n\n\
         ## Top-level keys\n\n| key | holds |\n|---|---|\n",
    );
    for (key, kind) in SECTIONS {
        let holds = match kind {
            Some(kind) => format!("a list of [{0}](#{1})", kind.schema_name(), kind.schema_name().to_lowercase()),
            None => "a list (hooks: see the objects digest)".into(),
        };
        out.push_str(&format!("| `{key}` | {holds} |\n"));
    }
    for key in OBJECT_SECTIONS {
        let holds = match *key {
            "manifest" => "the app's `id`, `namespace`, `version`, `name`",
            "auth" => "sign-up and password settings (see the README's Identity section)",
            "migrations" => "a server extension: how records are migrated when a definition change needs it, `{object: {field: {backfill, remap}}}` (see the README's Changing definitions)",
            _ => "`cubes`: a list of [Cube](#cube) (the older place of `analyticsCubes`)",
        };
        out.push_str(&format!("| `{key}` | {holds} |\n"));
    }
    out.push_str(&format!(
        "\nPart of the protocol, accepted with a warning and not served: {}.\n",
        UNSERVED.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
    ));
    for kind in super::schema::KINDS {
        let schema = super::schema::served(kind);
        out.push_str(&format!("\n## {}\n", kind.schema_name()));
        table(&mut out, schema, schema);
        for (name, child) in children(schema, schema) {
            out.push_str(&format!("\n### {}: `{name}`\n", kind.schema_name()));
            table(&mut out, schema, child);
        }
    }
    out
}

/// A schema with `properties` as a table of them.
fn table(out: &mut String, root: &Json, schema: &Json) {
    let Some(properties) = schema.get("properties").and_then(Json::as_object) else { return };
    let required: Vec<&str> = schema.get("required").and_then(Json::as_array).into_iter().flatten().filter_map(Json::as_str).collect();
    out.push_str("\n| property | type | required | default | description |\n|---|---|---|---|---|\n");
    for (name, property) in properties {
        let property = resolve(root, property);
        let default = property.get("default").map(|d| format!("`{}`", cell(&d.to_string()))).unwrap_or_default();
        let must = if required.contains(&name.as_str()) && property.get("default").is_none() { "yes" } else { "" };
        let description = property.get("description").and_then(Json::as_str).unwrap_or_default();
        out.push_str(&format!("| `{name}` | {} | {must} | {default} | {} |\n", cell(&type_of(root, property, 0)), cell(description)));
    }
}

/// The properties whose values are objects with properties of their own
/// (directly, as list items or as map values), named `name`, `name[]` or `name.*`.
fn children<'a>(root: &'a Json, schema: &'a Json) -> Vec<(String, &'a Json)> {
    let mut found = Vec::new();
    for (name, property) in schema.get("properties").and_then(Json::as_object).into_iter().flatten() {
        let property = resolve(root, property);
        let candidates = [
            (name.clone(), Some(property)),
            (format!("{name}[]"), property.get("items").map(|i| resolve(root, i))),
            (format!("{name}.*"), property.get("additionalProperties").filter(|a| a.is_object()).map(|a| resolve(root, a))),
        ];
        for (label, candidate) in candidates {
            if let Some(candidate) = candidate.filter(|c| c.get("properties").and_then(Json::as_object).is_some_and(|p| !p.is_empty())) {
                found.push((label, candidate));
            }
        }
    }
    found
}

fn resolve<'a>(root: &'a Json, schema: &'a Json) -> &'a Json {
    match schema.get("$ref").and_then(Json::as_str).and_then(|r| r.strip_prefix('#')) {
        Some(pointer) => root.pointer(pointer).unwrap_or(schema),
        None => schema,
    }
}

/// A short description of a schema's type.
fn type_of(root: &Json, schema: &Json, depth: usize) -> String {
    let schema = resolve(root, schema);
    if depth > 2 {
        return "...".into();
    }
    if let Some(values) = schema.get("enum").and_then(Json::as_array) {
        let shown: Vec<String> = values.iter().take(12).map(|v| format!("`{}`", v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))).collect();
        let more = if values.len() > 12 { format!(" and {} more", values.len() - 12) } else { String::new() };
        return format!("one of {}{more}", shown.join(", "));
    }
    if let Some(value) = schema.get("const") {
        return format!("`{value}`");
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alternatives) = schema.get(key).and_then(Json::as_array) {
            let mut kinds: Vec<String> = Vec::new();
            for alternative in alternatives {
                let kind = type_of(root, alternative, depth + 1);
                if !kinds.contains(&kind) {
                    kinds.push(kind);
                }
            }
            return kinds.join(" or ");
        }
    }
    match schema.get("type") {
        Some(Json::String(t)) if t == "array" => match schema.get("items") {
            Some(items) => format!("list of {}", type_of(root, items, depth + 1)),
            None => "list".into(),
        },
        Some(Json::String(t)) if t == "object" => match schema.get("additionalProperties") {
            Some(values @ Json::Object(map)) if !map.is_empty() && schema.get("properties").is_none() => format!("map of {}", type_of(root, values, depth + 1)),
            _ => "object".into(),
        },
        Some(Json::String(t)) => t.clone(),
        Some(Json::Array(types)) => types.iter().filter_map(Json::as_str).collect::<Vec<_>>().join(" or "),
        _ => "any".into(),
    }
}

/// Text safe inside a Markdown table cell, on one line.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_reference_page_matches_the_schemas() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/app-format.md");
        let page = super::reference();
        if std::env::var_os("OBJECTSTACK_UPDATE_REFERENCE").is_some() {
            std::fs::write(path, &page).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(committed == page, "{path} is not what the schemas give: run OBJECTSTACK_UPDATE_REFERENCE=1 cargo test -p domain reference");
        assert!(!page.contains("| `requird`") && page.contains("| `required` | boolean |"), "field properties are listed");
    }
}
