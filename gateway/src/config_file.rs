//! The configuration file: TOML layered under the environment and the flags.
//!
//! A key is the name of an option's environment variable in lower case,
//! without `OBJECTSTACK_` (`listen`, `data_dir`, `database_url`,
//! `cors_origins`), so the file can say what the environment can and nothing
//! else, and one spelling serves both. The file's values become the options'
//! defaults, so the order is: flags, then the environment, then the file,
//! then the built-in defaults. The file is `--config`, else
//! `OBJECTSTACK_CONFIG`, else `./objectstack.toml` when it exists.
//!
//! Unknown keys and values an option would refuse are errors naming the file
//! and the key (with the key meant, for a near miss), before anything starts.
//! [`effective`] renders what a command would run with, each value's source
//! beside it and secrets masked (see [`mask`]).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};
use serde_json::Value as Json;

/// The file read when neither `--config` nor `OBJECTSTACK_CONFIG` names one.
pub const DEFAULT_FILE: &str = "objectstack.toml";
/// The variable naming the file.
pub const FILE_VARIABLE: &str = "OBJECTSTACK_CONFIG";

/// A config file as read: where it is, and each key's values as an option's.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub path: PathBuf,
    values: BTreeMap<String, Vec<String>>,
}

impl ConfigFile {
    /// Whether the file sets `key`.
    pub fn sets(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }
}

/// The file's key for an option: its variable's name, lower case, without the
/// prefix; `None` for options no variable sets (and for the file's own).
pub fn key_of(arg: &Arg) -> Option<String> {
    let variable = arg.get_env()?.to_str()?;
    (variable != FILE_VARIABLE).then(|| variable.strip_prefix("OBJECTSTACK_").unwrap_or(variable).to_ascii_lowercase())
}

/// Which file to read: `--config PATH` (or `--config=PATH`) among `args`,
/// else the variable, else [`DEFAULT_FILE`] when present. The flag and the
/// variable must name a file that exists; the default may be absent.
pub fn locate(args: &[OsString]) -> anyhow::Result<Option<PathBuf>> {
    let mut named = None;
    let mut iter = args.iter().skip(1);
    while let Some(arg) = iter.next() {
        let Some(text) = arg.to_str() else { continue };
        if text == "--" {
            break;
        }
        if text == "--config" {
            named = iter.next().map(PathBuf::from);
        } else if let Some(path) = text.strip_prefix("--config=") {
            named = Some(PathBuf::from(path));
        }
    }
    let named = named.or_else(|| std::env::var_os(FILE_VARIABLE).filter(|v| !v.is_empty()).map(PathBuf::from));
    match named {
        Some(path) if !path.is_file() => bail!("the config file {} does not exist", path.display()),
        Some(path) => Ok(Some(path)),
        None => Ok(Path::new(DEFAULT_FILE).is_file().then(|| PathBuf::from(DEFAULT_FILE))),
    }
}

/// Reads and checks the file at `path` against the options of `command` (all
/// its subcommands): every key must name one, every value must be one the
/// option accepts.
pub fn read(path: &Path, command: &Command) -> anyhow::Result<ConfigFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the config file {}", path.display()))?;
    let table: serde_json::Map<String, Json> =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{} is not valid TOML: {}", path.display(), e.to_string().trim_end()))?;
    let options = options(command);
    let known: Vec<&str> = options.keys().map(String::as_str).collect();
    let mut values = BTreeMap::new();
    for (key, value) in table {
        let Some(arg) = options.get(&key) else {
            let hint = domain::metadata::keys::nearest(&key, &known).map(|k| format!(" (did you mean '{k}'?)")).unwrap_or_default();
            bail!("{}: unknown key '{key}'{hint}; a key is an option's environment variable in lower case without OBJECTSTACK_", path.display());
        };
        let strings =
            as_strings(&value).ok_or_else(|| anyhow::anyhow!("{}: '{key}' must be a string, a number, a boolean or an array of them", path.display()))?;
        check(arg, &strings).map_err(|reason| anyhow::anyhow!("{}: '{key}': {reason}", path.display()))?;
        values.insert(key, strings);
    }
    Ok(ConfigFile { path: path.to_path_buf(), values })
}

/// `command` with the file's values as its options' defaults, in every
/// subcommand; an option the file sets is no longer required on the command line.
pub fn apply(command: Command, file: &ConfigFile) -> Command {
    let names: Vec<String> = command.get_subcommands().map(|s| s.get_name().to_string()).collect();
    let mut command = command.mut_args(|arg| match key_of(&arg).and_then(|key| file.values.get(&key)) {
        // A secret's value (`hide_env_values`) stays out of `--help` too.
        Some(values) => {
            let secret = arg.is_hide_env_values_set();
            arg.default_values(values.clone()).required(false).hide_default_value(secret)
        }
        None => arg,
    });
    for name in names {
        command = command.mut_subcommand(name, |sub| apply(sub, file));
    }
    command
}

/// Parses `args` with the file's values layered in; the file's errors and
/// clap's are returned, clap's ready to print as clap would.
pub fn parse(command: Command, args: Vec<OsString>) -> anyhow::Result<(ArgMatches, Option<ConfigFile>)> {
    let file = match locate(&args)? {
        Some(path) => Some(read(&path, &command)?),
        None => None,
    };
    let command = match &file {
        Some(file) => apply(command, file),
        None => command,
    };
    let matches = command.try_get_matches_from(args).unwrap_or_else(|e| e.exit());
    Ok((matches, file))
}

/// Every option a file may set, by key (the first found where several
/// subcommands share a variable: they take the same values).
fn options(command: &Command) -> BTreeMap<String, Arg> {
    let mut found = BTreeMap::new();
    fn walk(command: &Command, found: &mut BTreeMap<String, Arg>) {
        for arg in command.get_arguments() {
            if let Some(key) = key_of(arg) {
                found.entry(key).or_insert_with(|| arg.clone());
            }
        }
        for sub in command.get_subcommands() {
            walk(sub, found);
        }
    }
    walk(command, &mut found);
    found
}

fn as_strings(value: &Json) -> Option<Vec<String>> {
    let scalar = |v: &Json| match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match value {
        Json::Array(items) => items.iter().map(scalar).collect(),
        other => scalar(other).map(|s| vec![s]),
    }
}

/// Whether `arg` accepts `values`, parsed as the command line would parse them.
fn check(arg: &Arg, values: &[String]) -> Result<(), String> {
    let many = matches!(arg.get_action(), ArgAction::Append) || arg.get_num_args().is_some_and(|n| n.max_values() > 1);
    if values.len() != 1 && !many {
        return Err("takes one value, not an array".into());
    }
    if matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse) {
        return match values[0].as_str() {
            "true" | "false" => Ok(()),
            other => Err(format!("must be true or false, not '{other}'")),
        };
    }
    let Some(long) = arg.get_long() else { return Ok(()) };
    let probe = Command::new("check").no_binary_name(true).arg(arg.clone().env(None::<&str>).required(false).default_values(Vec::<String>::new()));
    let args: Vec<String> = values.iter().map(|v| format!("--{long}={v}")).collect();
    probe.try_get_matches_from(args).map(|_| ()).map_err(|e| {
        let text = e.to_string();
        text.lines().next().unwrap_or_default().trim_start_matches("error: ").to_string()
    })
}

/// Where an option's value came from.
fn source_of(arg: &Arg, key: &str, matches: &ArgMatches, file: Option<&ConfigFile>) -> String {
    match matches.value_source(arg.get_id().as_str()) {
        Some(ValueSource::CommandLine) => format!("flag --{}", arg.get_long().unwrap_or(key)),
        Some(ValueSource::EnvVariable) => format!("environment {}", arg.get_env().and_then(|v| v.to_str()).unwrap_or_default()),
        Some(ValueSource::DefaultValue) if file.is_some_and(|f| f.sets(key)) => {
            format!("file {}", file.map(|f| f.path.display().to_string()).unwrap_or_default())
        }
        Some(_) => "default".into(),
        None => "not set".into(),
    }
}

/// The options of `command` (one subcommand) as parsed into `matches` (of
/// it, or of a command with the same options), one
/// TOML line each with its source as a comment; the file this prints can be
/// read back. Options that have no value are commented out.
pub fn effective(command: &Command, matches: &ArgMatches, file: Option<&ConfigFile>) -> String {
    let mut out = format!("# The effective configuration of `objectstack {}`.\n", command.get_name());
    match file {
        Some(file) => out.push_str(&format!("# Config file: {}\n", file.path.display())),
        None => out.push_str(&format!("# No config file (--config, {FILE_VARIABLE} or ./{DEFAULT_FILE}).\n")),
    }
    out.push_str("# Order: flags, then the environment, then the file, then defaults. Secrets are masked.\n");
    for arg in command.get_arguments() {
        let Some(key) = key_of(arg) else { continue };
        let source = source_of(arg, &key, matches, file);
        let raw: Vec<String> =
            matches.get_raw(arg.get_id().as_str()).map(|values| values.map(|v| v.to_string_lossy().into_owned()).collect()).unwrap_or_default();
        let raw: Vec<String> = if arg.is_hide_env_values_set() { raw.iter().map(|v| mask(v)).collect() } else { raw };
        let many = matches!(arg.get_action(), ArgAction::Append) || arg.get_num_args().is_some_and(|n| n.max_values() > 1);
        let value = match (raw.as_slice(), many) {
            ([], true) if source != "not set" => "[]".to_string(),
            ([], _) => {
                out.push_str(&format!("# {key} =   # not set\n"));
                continue;
            }
            (values, true) => format!("[{}]", values.iter().map(|v| toml_value(v, false)).collect::<Vec<_>>().join(", ")),
            ([one, ..], false) => toml_value(one, matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse)),
        };
        out.push_str(&format!("{key} = {value}   # {source}\n"));
    }
    out
}

fn toml_value(value: &str, boolean: bool) -> String {
    if boolean || value.parse::<i64>().is_ok() {
        value.to_string()
    } else {
        serde_json::to_string(value).unwrap_or_default()
    }
}

/// A secret's printable form: a URL keeps all but its password, a
/// `KEY=VALUE` option its key; anything else is wholly masked.
pub fn mask(value: &str) -> String {
    if let Some((scheme, rest)) = value.split_once("://") {
        let (authority, path) = rest.split_once('/').map(|(a, p)| (a, Some(p))).unwrap_or((rest, None));
        let masked = match authority.rsplit_once('@') {
            Some((user, host)) => match user.split_once(':') {
                Some((name, _)) => format!("{name}:****@{host}"),
                None => format!("{user}@{host}"),
            },
            None => authority.to_string(),
        };
        let masked_path = path.map(|p| format!("/{}", mask_query(p))).unwrap_or_default();
        return format!("{scheme}://{masked}{masked_path}");
    }
    match value.split_once('=') {
        Some((key, _)) => format!("{key}=****"),
        None => "****".into(),
    }
}

/// A URL's query parameters keep their names; their values are masked
/// (`password=` may be one of them).
fn mask_query(path: &str) -> String {
    match path.split_once('?') {
        Some((path, query)) => {
            let masked: Vec<String> = query.split('&').map(|pair| pair.split_once('=').map(|(k, _)| format!("{k}=****")).unwrap_or(pair.to_string())).collect();
            format!("{path}?{}", masked.join("&"))
        }
        None => path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_url_keeps_all_but_its_password() {
        assert_eq!(mask("postgres://app:s3cret@db:5432/app"), "postgres://app:****@db:5432/app");
        assert_eq!(mask("postgres://app@db/app?sslmode=require&password=x"), "postgres://app@db/app?sslmode=****&password=****");
        assert_eq!(mask("sasl.password=hunter2"), "sasl.password=****");
        assert_eq!(mask("hunter2"), "****");
    }
}
