//! The config file, through the real binary: flags win over the environment,
//! the environment over the file, the file over the defaults; `objectstack
//! config` says which layer each value came from and never prints a secret;
//! `serve` runs with what the file says; mistakes name the file and the key.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn objectstack(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_objectstack")).current_dir(dir).env_clear().envs(env.iter().copied()).args(args).output().unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "objectstack failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    assert!(!out.status.success(), "objectstack succeeded: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// The line of `key` in `objectstack config`'s output.
fn line<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(&format!("{key} = ")) || l.starts_with(&format!("# {key} = ")))
        .unwrap_or_else(|| panic!("no line for {key} in:\n{text}"))
}

#[test]
fn flags_beat_the_environment_which_beats_the_file_which_beats_defaults() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("objectstack.toml"),
        r#"
listen = "127.0.0.1:7001"
read_wait_ms = 1234
data_dir = "/srv/objectstack"
cors_origins = ["https://a.example", "https://b.example"]
admin_email = "root@example.com"
admin_password = "file-secret-1"
database_url = "postgres://app:url-secret-2@db.internal:5432/app"
kafka_options = ["sasl.username=app", "sasl.password=kafka-secret-3"]
"#,
    )
    .unwrap();
    // The file in the working directory is read without being named.
    let out =
        objectstack(dir.path(), &["config", "--listen", "127.0.0.1:7003"], &[("OBJECTSTACK_LISTEN", "127.0.0.1:7002"), ("OBJECTSTACK_READ_WAIT_MS", "777")]);
    let text = stdout(&out);
    assert!(text.contains("# Config file: objectstack.toml"), "{text}");
    assert_eq!(line(&text, "listen"), r#"listen = "127.0.0.1:7003"   # flag --listen"#);
    assert_eq!(line(&text, "read_wait_ms"), "read_wait_ms = 777   # environment OBJECTSTACK_READ_WAIT_MS");
    assert_eq!(line(&text, "data_dir"), r#"data_dir = "/srv/objectstack"   # file objectstack.toml"#);
    assert_eq!(line(&text, "cors_origins"), r#"cors_origins = ["https://a.example", "https://b.example"]   # file objectstack.toml"#);
    assert_eq!(line(&text, "header_timeout_secs"), "header_timeout_secs = 30   # default");
    assert_eq!(line(&text, "app"), "# app =   # not set");
    // Secrets are masked whatever layer they come from; a URL keeps its other parts.
    assert_eq!(line(&text, "admin_password"), r#"admin_password = "****"   # file objectstack.toml"#);
    assert_eq!(line(&text, "database_url"), r#"database_url = "postgres://app:****@db.internal:5432/app"   # file objectstack.toml"#);
    assert_eq!(line(&text, "kafka_options"), r#"kafka_options = ["sasl.username=****", "sasl.password=****"]   # file objectstack.toml"#);
    assert!(text.starts_with("# The effective configuration of `objectstack serve`."), "{text}");
    let help = stdout(&objectstack(dir.path(), &["serve", "--help"], &[]));
    assert!(help.contains("[default: 127.0.0.1:7001]"), "the file's values are the defaults --help shows: {help}");
    for secret in ["file-secret-1", "url-secret-2", "kafka-secret-3"] {
        assert!(!text.contains(secret), "{secret} printed:\n{text}");
        assert!(!help.contains(secret), "{secret} in --help:\n{help}");
    }
    let out = objectstack(dir.path(), &["config"], &[("DATABASE_URL", "postgres://env:env-secret-4@h/db")]);
    let text = stdout(&out);
    assert_eq!(line(&text, "database_url"), r#"database_url = "postgres://env:****@h/db"   # environment DATABASE_URL"#);
    assert!(!text.contains("env-secret-4"));

    // What `config` prints is a config file that says the same.
    let printed = dir.path().join("printed.toml");
    std::fs::write(&printed, stdout(&objectstack(dir.path(), &["config", "--listen", "127.0.0.1:7003"], &[]))).unwrap();
    let again = stdout(&objectstack(dir.path(), &["config", "--config", printed.to_str().unwrap()], &[]));
    assert_eq!(line(&again, "listen"), format!(r#"listen = "127.0.0.1:7003"   # file {}"#, printed.display()));
    assert_eq!(line(&again, "cors_origins"), format!(r#"cors_origins = ["https://a.example", "https://b.example"]   # file {}"#, printed.display()));

    // A file can stand for an option the command line requires.
    let relay = stderr(&objectstack(dir.path(), &["relay"], &[]));
    assert!(relay.contains("--kafka-brokers"), "{relay}");
    assert!(!relay.contains("--database-url"), "the file's database_url was not taken: {relay}");
}

#[tokio::test]
async fn serve_runs_with_what_the_file_says() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let file = dir.path().join("server.toml");
    std::fs::write(&file, format!("listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n", dir.path().join("events").display())).unwrap();
    let _server = support::Process::objectstack(&["serve".into(), "--config".into(), file.display().to_string()]);
    let started = Instant::now();
    while support::http(port, "GET", "/api/v1/health", None).await.is_none() {
        assert!(started.elapsed() < Duration::from_secs(60), "the server did not listen where the file says");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(dir.path().join("events").is_dir(), "the log is not where the file says");
}

#[test]
fn mistakes_name_the_file_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    let path = file.to_str().unwrap();
    let run = |text: &str| {
        std::fs::write(&file, text).unwrap();
        stderr(&objectstack(dir.path(), &["config", "--config", path], &[]))
    };
    let near = run("lisen = \"127.0.0.1:1\"\n");
    assert!(near.contains(&format!("{path}: unknown key 'lisen' (did you mean 'listen'?)")), "{near}");
    let far = run("flavour = 1\n");
    assert!(far.contains("unknown key 'flavour'") && !far.contains("did you mean"), "{far}");
    let wrong = run("listen = 8080\n");
    assert!(wrong.contains(&format!("{path}: 'listen': invalid value '8080'")), "{wrong}");
    let flag = run("allow_open = \"yes\"\n");
    assert!(flag.contains("'allow_open': must be true or false"), "{flag}");
    let table = run("[listen]\nport = 1\n");
    assert!(table.contains("'listen' must be a string, a number, a boolean or an array"), "{table}");
    let many = run("listen = [\"127.0.0.1:1\", \"127.0.0.1:2\"]\n");
    assert!(many.contains("'listen': takes one value"), "{many}");
    let syntax = run("listen = \n");
    assert!(syntax.contains("is not valid TOML"), "{syntax}");
    let missing = stderr(&objectstack(dir.path(), &["config", "--config", "nowhere.toml"], &[]));
    assert!(missing.contains("the config file nowhere.toml does not exist"), "{missing}");
    let named = stderr(&objectstack(dir.path(), &["config"], &[("OBJECTSTACK_CONFIG", "gone.toml")]));
    assert!(named.contains("the config file gone.toml does not exist"), "{named}");
}
