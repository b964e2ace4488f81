//! Reading an app from a JSON file or a folder of JSON files, each file
//! checked against the protocol's JSON Schemas ([`domain::metadata::schema`])
//! before anything is loaded, and [`validate`]: every check `serve` makes of
//! an app, without starting anything.
//!
//! A folder's files are merged in name order: lists (`objects`, `flows`,
//! `permissions`, ...) are joined, a file holding one object definition
//! (`name` and `fields`) adds it to `objects`, and a key holding one JSON
//! object (`manifest`, `auth`, `analytics`) may come from one file only.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use domain::metadata::schema::{check_app, is_one_object, Level, Problem};
use serde_json::{Map, Value as Json};

/// An app as read: the merged JSON and what the checks found, by file.
#[derive(Debug, Clone)]
pub struct AppFiles {
    pub app: Json,
    pub problems: Vec<(PathBuf, Problem)>,
}

impl AppFiles {
    pub fn errors(&self) -> impl Iterator<Item = &(PathBuf, Problem)> {
        self.problems.iter().filter(|(_, p)| p.level == Level::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &(PathBuf, Problem)> {
        self.problems.iter().filter(|(_, p)| p.level == Level::Warning)
    }

    /// The errors as one message, for a command that stops on them.
    pub fn refuse(&self) -> anyhow::Result<()> {
        let errors: Vec<String> = self.errors().map(|(file, problem)| format!("{}: {problem}", file.display())).collect();
        if errors.is_empty() {
            return Ok(());
        }
        bail!("the app does not follow the protocol ({} problems; `objectstack validate --app PATH` lists them):\n  {}", errors.len(), errors.join("\n  "))
    }
}

/// Reads the app at `path` (a file or a folder), checking each file.
pub fn read(path: &Path) -> anyhow::Result<AppFiles> {
    if !path.exists() {
        bail!("the app {} does not exist (give a JSON file or a folder of JSON files)", path.display());
    }
    if path.is_file() {
        let json = read_json(path)?;
        let problems = checked(&json, path);
        return Ok(AppFiles { app: json, problems });
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("reading app folder {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
        .collect();
    entries.sort();
    if entries.is_empty() {
        bail!("the app folder {} holds no .json file", path.display());
    }
    let mut app = Map::new();
    let mut origin: Vec<(String, PathBuf)> = Vec::new();
    let mut problems = Vec::new();
    for file in entries {
        let json = read_json(&file)?;
        problems.extend(checked(&json, &file));
        let Json::Object(map) = json else { continue };
        if is_one_object(&map) {
            push(&mut app, "objects", Json::Object(map));
            continue;
        }
        for (key, value) in map {
            match value {
                Json::Array(items) => items.into_iter().for_each(|item| push(&mut app, &key, item)),
                other if key.starts_with('_') => drop(other),
                other => {
                    if let Some((_, first)) = origin.iter().find(|(k, _)| *k == key) {
                        let message = format!("'{key}' is also given in {}; give it in one file", first.display());
                        problems.push((file.clone(), Problem { level: Level::Error, path: format!("/{key}"), message }));
                        continue;
                    }
                    origin.push((key.clone(), file.clone()));
                    app.insert(key, other);
                }
            }
        }
    }
    for key in ["objects", "data"] {
        app.entry(key).or_insert_with(|| Json::Array(Vec::new()));
    }
    Ok(AppFiles { app: Json::Object(app), problems })
}

/// A file's problems, each with the file it is in.
fn checked(json: &Json, file: &Path) -> Vec<(PathBuf, Problem)> {
    check_app(json).into_iter().map(|p| (file.to_path_buf(), p)).collect()
}

fn push(app: &mut Map<String, Json>, key: &str, item: Json) {
    if let Some(list) = app.entry(key).or_insert_with(|| Json::Array(Vec::new())).as_array_mut() {
        list.push(item);
    }
}

fn read_json(path: &Path) -> anyhow::Result<Json> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

/// The app `serve` loads without `--app`.
pub const BUNDLED: &str = "<the bundled todo app>";

/// Reads the app at `path`, or the bundled todo app, checking each file.
pub fn read_or_bundled(path: Option<&Path>) -> anyhow::Result<AppFiles> {
    match path {
        Some(path) => read(path),
        None => {
            let app: Json = serde_json::from_str(domain::metadata::examples::TODO_APP).context("the bundled todo app")?;
            let problems = checked(&app, Path::new(BUNDLED));
            Ok(AppFiles { app, problems })
        }
    }
}

/// What [`validate`] found: every problem by file, and what would load.
#[derive(Debug, Default)]
pub struct Validation {
    pub problems: Vec<(PathBuf, Problem)>,
    pub objects: usize,
    pub seed_records: usize,
    pub automation: usize,
    pub permission_sets: usize,
}

impl Validation {
    /// How many of the problems are errors.
    pub fn errors(&self) -> usize {
        self.problems.iter().filter(|(_, p)| p.level == Level::Error).count()
    }

    pub fn ok(&self) -> bool {
        self.errors() == 0
    }
}

/// Every check `serve` makes of an app before it serves it, without
/// starting anything: the files against the protocol's schemas, then the
/// definitions, references and seed data (written to a throwaway embedded log
/// in a temporary folder, so seed records the rules refuse are found), the
/// permissions and the automation. A seed record `serve` would skip with a
/// warning is an error here.
pub async fn validate(path: Option<&Path>) -> anyhow::Result<Validation> {
    let files = read_or_bundled(path)?;
    let whole = path.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(BUNDLED));
    let mut report = Validation { problems: files.problems.clone(), ..Default::default() };
    if !report.ok() {
        return Ok(report);
    }
    let mut errors: Vec<String> = Vec::new();
    let app = match domain::metadata::load_app(&files.app) {
        Ok(app) => app,
        Err(error) => {
            report.problems.push((whole, top_level(error.to_string())));
            return Ok(report);
        }
    };
    report.objects = app.objects.len();
    let scratch = tempfile::Builder::new().prefix("objectstack-validate-").tempdir().context("making a temporary folder for a scratch log")?;
    let store: std::sync::Arc<dyn commands::store::EventStore> =
        std::sync::Arc::new(commands::store::open_embedded(scratch.path()).context("opening a scratch event log")?);
    let commands = commands::service::CommandService::start(store).await.context("starting a scratch command service")?;
    match commands::seed::load_app(&commands, &app, commands::clock::now()).await {
        Err(error) => errors.push(error.to_string()),
        Ok(seed) => {
            errors.extend(seed.skipped.iter().map(|skipped| format!("seed data: {skipped}")));
            report.seed_records = app.seed.iter().map(|set| set.records.len()).sum::<usize>() - seed.skipped.len();
            let catalog = commands.catalog();
            match security_policy(&files.app, &catalog) {
                Ok(policy) => report.permission_sets = policy.sets.len(),
                Err(error) => errors.push(format!("{error:#}")),
            }
            match domain::automation::Automation::from_app(&files.app, &catalog) {
                Ok(a) => report.automation = a.workflows.len() + a.flows.len() + a.webhooks.len() + a.approvals.len() + a.jobs.len(),
                Err(error) => errors.push(format!("automation: {error}")),
            }
        }
    }
    commands.settled().await;
    report.problems.extend(errors.into_iter().map(|e| (whole.clone(), top_level(e))));
    Ok(report)
}

fn top_level(message: String) -> Problem {
    Problem { level: Level::Error, path: String::new(), message }
}

/// The app's security declarations; a governed app always has an `admin`
/// profile (every permission) for the first administrator.
pub(crate) fn security_policy(app_json: &Json, catalog: &domain::metadata::Catalog) -> anyhow::Result<domain::security::SecurityPolicy> {
    let mut policy = domain::security::SecurityPolicy::from_app(app_json, catalog).context("loading the app's permissions")?;
    if policy.declared && !policy.sets.contains_key("admin") {
        let admin = serde_json::json!({"name": "admin", "label": "Administrator", "isProfile": true, "objects": {}, "systemPermissions": ["modify_all_data"]});
        policy.sets.insert("admin".into(), domain::security::PermissionSet::parse(&admin).context("the built-in admin profile")?);
    }
    Ok(policy)
}
