//! Tidy checks on the source tree: every Rust file opens with a `//!` doc;
//! the gateway's transports (REST, GraphQL, realtime) reach the data only
//! through the service layer; and the gateway's modules import each other
//! without a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_module_has_a_doc_comment() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut files = Vec::new();
    for crate_dir in ["domain", "commands", "projections", "gateway", "tests"] {
        rust_files(&root.join(crate_dir), &mut files);
    }
    assert!(files.len() > 40, "found only {} files", files.len());
    let missing: Vec<String> = files
        .iter()
        .filter(|f| !std::fs::read_to_string(f).unwrap().trim_start().starts_with("//!"))
        .map(|f| f.strip_prefix(root).unwrap().display().to_string())
        .collect();
    assert!(missing.is_empty(), "files without a //! module doc: {missing:?}");
}

fn gateway_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("gateway/src")
}

/// Code lines only (no comments), so docs may name what code may not use.
fn code_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap().lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// What a transport must never touch: the crates of the models and the
/// stores, the system's models, stores and projections, and the server's own
/// unrestricted viewer. Everything goes through `gateway::service`, whose
/// operations take the caller.
const FORBIDDEN_IN_TRANSPORTS: [&str; 16] = [
    "projections::",
    "commands::",
    ".reader",
    ".commands",
    ".hub",
    "_model",
    ".store()",
    "Viewer::system",
    "system.query",
    "system.audit",
    "system.search",
    "system.analytics",
    "system.snapshots",
    "system.realtime_handle",
    "system.rebuilds",
    "system.limiter",
];

#[test]
fn transports_reach_the_data_only_through_the_service_layer() {
    let mut files = Vec::new();
    for transport in ["routes", "graphql", "realtime"] {
        rust_files(&gateway_src().join(transport), &mut files);
    }
    assert!(files.len() >= 15, "found only {} transport files", files.len());
    let mut found = Vec::new();
    for file in &files {
        let code = code_of(file);
        for forbidden in FORBIDDEN_IN_TRANSPORTS {
            if code.contains(forbidden) {
                found.push(format!("{} uses {forbidden}", file.strip_prefix(gateway_src()).unwrap().display()));
            }
        }
    }
    assert!(found.is_empty(), "transports must call gateway::service instead: {found:#?}");
}

/// The module path of a gateway source file (`routes/data.rs` -> `routes::data`).
fn module_of(file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(gateway_src()).unwrap().with_extension("");
    let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().to_string()).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib" || p == "main") {
        parts.pop();
    }
    parts
}

/// The modules a file names (`crate::a::b`, `crate::{a, b::c}`, `super::x`, `super::{x, y}`).
fn references(code: &str, module: &[String], is_mod_file: bool) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let parent: Vec<String> = if is_mod_file { module.to_vec() } else { module[..module.len().saturating_sub(1)].to_vec() };
    let parent = if is_mod_file { parent[..parent.len().saturating_sub(1)].to_vec() } else { parent };
    for (prefix, base) in [("crate::", Vec::new()), ("super::", parent)] {
        let mut rest = code;
        while let Some(at) = rest.find(prefix) {
            rest = &rest[at + prefix.len()..];
            let paths: Vec<String> = if let Some(inner) = rest.strip_prefix('{') {
                let end = inner.find('}').unwrap_or(inner.len());
                inner[..end].split(',').map(|p| p.trim().to_string()).collect()
            } else {
                vec![rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect()]
            };
            for path in paths {
                let mut full = base.clone();
                full.extend(path.split("::").filter(|s| !s.is_empty() && *s != "self").map(str::to_string));
                out.push(full);
            }
        }
    }
    out
}

#[test]
fn the_gateway_imports_without_circles() {
    let mut files = Vec::new();
    rust_files(&gateway_src(), &mut files);
    let modules: BTreeMap<Vec<String>, PathBuf> = files.iter().map(|f| (module_of(f), f.clone())).filter(|(m, _)| !m.is_empty()).collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, file) in &modules {
        let is_mod_file = file.file_name().is_some_and(|n| n == "mod.rs");
        for reference in references(&code_of(file), module, is_mod_file) {
            // The longest module the path names (the rest are items in it).
            let target = (1..=reference.len()).rev().map(|n| reference[..n].to_vec()).find(|m| modules.contains_key(m));
            if let Some(target) = target.filter(|t| t != module) {
                edges.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    assert!(edges.values().map(BTreeSet::len).sum::<usize>() > 50, "the import graph looks empty: {edges:?}");
    // Depth-first search for a back edge.
    fn visit(
        node: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, u8>,
        path: &mut Vec<Vec<String>>,
    ) -> Option<Vec<String>> {
        state.insert(node.clone(), 1);
        path.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            match state.get(next) {
                Some(1) => {
                    let start = path.iter().position(|p| p == next).unwrap();
                    let mut circle: Vec<String> = path[start..].iter().map(|m| m.join("::")).collect();
                    circle.push(next.join("::"));
                    return Some(circle);
                }
                Some(_) => {}
                None => {
                    if let Some(circle) = visit(next, edges, state, path) {
                        return Some(circle);
                    }
                }
            }
        }
        path.pop();
        state.insert(node.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for module in modules.keys() {
        if !state.contains_key(module) {
            if let Some(circle) = visit(module, &edges, &mut state, &mut Vec::new()) {
                panic!("an import circle in the gateway: {}", circle.join(" -> "));
            }
        }
    }
}
