//! The deployment files in `ops/deploy/` (Dockerfile, Compose, Kubernetes)
//! pass only flags and environment variables the binary has: every
//! `command`/`args` list names a subcommand whose `--help` shows each of
//! its flags, and every `OBJECTSTACK_*` or `DATABASE_URL` variable they set
//! is one that `serve`, `relay`, `projector` or `migrate` reads.

use std::path::{Path, PathBuf};
use std::process::Command;

fn help(subcommand: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_objectstack")).args([subcommand, "--help"]).output().unwrap();
    assert!(out.status.success(), "objectstack {subcommand} --help");
    String::from_utf8(out.stdout).unwrap()
}

fn files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ops/deploy");
    let mut out = vec![root.join("Dockerfile")];
    // Every Compose file (the cluster's and the single node's).
    for entry in std::fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("compose") && n.ends_with(".yaml")) {
            out.push(path);
        }
    }
    for entry in std::fs::read_dir(root.join("k8s")).unwrap() {
        out.push(entry.unwrap().path());
    }
    assert!(out.len() >= 4, "the Dockerfile, both Compose files and the manifests: {out:?}");
    out
}

/// The JSON-style lists after `command:`, `args:`, `CMD` and `ENTRYPOINT`.
fn command_lists(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let rest = ["command:", "args:", "CMD", "ENTRYPOINT"].iter().find_map(|k| line.strip_prefix(k))?;
            serde_json::from_str::<Vec<String>>(rest.trim()).ok()
        })
        .collect()
}

/// Variable names the file sets: `NAME: value`, `- name: NAME`, `ENV NAME=...`.
fn variables(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if (word.starts_with("OBJECTSTACK_") || word == "DATABASE_URL") && !out.contains(&word.to_string()) {
            out.push(word.to_string());
        }
    }
    out
}

#[test]
fn deployment_files_use_only_flags_and_variables_the_binary_has() {
    let helps = [("serve", help("serve")), ("relay", help("relay")), ("projector", help("projector")), ("migrate", help("migrate"))];
    // Variables read before the command line is parsed (the log format, in the telemetry set-up).
    let main_source = ["src/main.rs", "src/telemetry.rs"].map(|f| std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(f)).unwrap()).concat();
    let mut lists = 0;
    for file in files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for list in command_lists(&text) {
            let Some((_, usage)) = helps.iter().find(|(name, _)| list.first().map(String::as_str) == Some(*name)) else {
                // The entrypoint (`objectstack`) alone, or another program's command (a broker's).
                continue;
            };
            lists += 1;
            for flag in list.iter().filter(|a| a.starts_with("--")) {
                assert!(usage.contains(&format!("{flag} ")) || usage.contains(&format!("{flag}\n")), "{}: {} has no flag {flag}", file.display(), list[0]);
            }
        }
        for name in variables(&text) {
            let read_by_main = main_source.contains(&format!("std::env::var(\"{name}\")"));
            assert!(
                read_by_main || helps.iter().any(|(_, usage)| usage.contains(&format!("env: {name}=")) || usage.contains(&format!("env: {name}]"))),
                "{}: no command reads {name}",
                file.display()
            );
        }
    }
    assert!(lists >= 7, "the files run serve, relay and projector ({lists} command lists found)");
}
