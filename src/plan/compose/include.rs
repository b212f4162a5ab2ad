//! `include:`: other compose projects loaded on their own (their own
//! directory, their own `.env`) and their services, networks, volumes,
//! secrets, configs and models imported. A resource the including file also
//! defines must be identical, as Compose 2.40.3 requires.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use super::environment::{self, Environment};
use super::error::ComposeError;
use super::loader::{Loader, Scope};
use super::paths;

/// The kinds of resource an include imports.
const KINDS: [&str; 6] = [
    "services", "volumes", "networks", "secrets", "configs", "models",
];

/// One `include:` entry.
struct Entry {
    paths: Vec<String>,
    project_directory: Option<String>,
    env_files: Vec<String>,
}

/// Imports the includes of `config` (one document of `path`) into it.
/// Returns the file each imported service came from.
pub fn apply(
    loader: &mut Loader,
    config: &mut Mapping,
    path: &Path,
    scope: &Scope,
) -> Result<BTreeMap<String, PathBuf>, ComposeError> {
    let mut origins = BTreeMap::new();
    let entries = match config.remove("include") {
        None | Some(Value::Null) => return Ok(origins),
        Some(Value::Sequence(entries)) => entries,
        Some(_) => return Err(shape(path, "include", "a list")),
    };
    let mut chain = scope.chain.clone();
    chain.push(path.to_owned());
    for (index, entry) in entries.into_iter().enumerate() {
        let entry = parse_entry(path, index, entry)?;
        let files: Vec<PathBuf> = entry
            .paths
            .iter()
            .map(|p| paths::absolute(&scope.dir, Path::new(p)))
            .collect();
        let main = files[0].clone();
        if chain.contains(&main) {
            let mut cycle = chain.clone();
            cycle.push(main);
            return Err(ComposeError::IncludeCycle { chain: cycle });
        }
        for file in &files {
            if let Err(source) = std::fs::metadata(file) {
                return Err(ComposeError::Include {
                    path: path.to_owned(),
                    included: file.clone(),
                    source,
                });
            }
        }
        let dir = match &entry.project_directory {
            None => paths::parent(&main),
            Some(dir) => paths::absolute(&scope.dir, Path::new(dir)),
        };
        let env_files: Vec<PathBuf> = if entry.env_files.is_empty() {
            environment::default_file(&dir).into_iter().collect()
        } else {
            entry
                .env_files
                .iter()
                .map(|f| paths::absolute(&scope.dir, Path::new(f)))
                .collect()
        };
        // The including project's variables win over the included `.env`.
        let mut env: Environment = scope.env.clone();
        env.add_files(&env_files, loader.log)?;
        let inner = Scope {
            dir,
            env: &env,
            chain: chain.clone(),
        };
        let imported = loader.load_paths(&files, &inner)?;
        for kind in KINDS {
            let Some(Value::Mapping(resources)) = imported.mapping.get(kind) else {
                continue;
            };
            if !matches!(config.get(kind), Some(Value::Mapping(_))) {
                config.insert(kind.into(), Value::Mapping(Mapping::new()));
            }
            let Some(Value::Mapping(target)) = config.get_mut(kind) else {
                unreachable!("just made a mapping");
            };
            for (name, definition) in resources {
                match target.get(name) {
                    Some(existing) if existing == definition => {}
                    Some(_) => {
                        return Err(ComposeError::IncludeConflict {
                            path: path.to_owned(),
                            included: main.clone(),
                            kind: kind.to_owned(),
                            name: super::interpolate::key_text(name),
                        });
                    }
                    None => {
                        target.insert(name.clone(), definition.clone());
                        if kind == "services"
                            && let Some(name) = name.as_str()
                        {
                            let origin = imported.origins.get(name).cloned();
                            origins.insert(name.to_owned(), origin.unwrap_or_else(|| main.clone()));
                        }
                    }
                }
            }
        }
    }
    Ok(origins)
}

/// An entry is a path, or a mapping with `path` (one or a list),
/// `project_directory` and `env_file` (one or a list).
fn parse_entry(path: &Path, index: usize, entry: Value) -> Result<Entry, ComposeError> {
    let key = format!("include.{index}");
    let mut spec = match entry {
        Value::String(single) => {
            return Ok(Entry {
                paths: vec![single],
                project_directory: None,
                env_files: Vec::new(),
            });
        }
        Value::Mapping(spec) => spec,
        _ => return Err(shape(path, &key, "a path or a mapping with `path`")),
    };
    let strings = |value: Option<Value>, what: &str| -> Result<Vec<String>, ComposeError> {
        match value {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(one)) => Ok(vec![one]),
            Some(Value::Sequence(items)) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s),
                    _ => Err(shape(
                        path,
                        &format!("{key}.{what}"),
                        "a string or a list of strings",
                    )),
                })
                .collect(),
            Some(_) => Err(shape(
                path,
                &format!("{key}.{what}"),
                "a string or a list of strings",
            )),
        }
    };
    let paths = strings(spec.remove("path"), "path")?;
    if paths.is_empty() {
        return Err(shape(
            path,
            &format!("{key}.path"),
            "a path or a list of paths",
        ));
    }
    let project_directory = match spec.remove("project_directory") {
        None | Some(Value::Null) => None,
        Some(Value::String(dir)) => Some(dir),
        Some(_) => return Err(shape(path, &format!("{key}.project_directory"), "a string")),
    };
    let env_files = strings(spec.remove("env_file"), "env_file")?;
    Ok(Entry {
        paths,
        project_directory,
        env_files,
    })
}

fn shape(path: &Path, key: &str, expected: &'static str) -> ComposeError {
    ComposeError::Shape {
        path: path.to_owned(),
        key: key.to_owned(),
        expected,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{images, load_in};
    use super::super::{ComposeError, FileKind};

    #[test]
    fn the_including_project_s_variables_win_over_the_included_env() {
        let (_d, p) = load_in(
            &[
                (
                    "compose.yaml",
                    "include: [sub/compose.yaml]\nservices:\n  web: {image: web}\n",
                ),
                (
                    "sub/compose.yaml",
                    "services:\n  db: {image: \"db:${TAG}-${OWN}\"}\n",
                ),
                ("sub/.env", "TAG=sub\nOWN=sub\n"),
                (".env", "TAG=top\n"),
            ],
            |_| {},
        );
        let project = p.unwrap();
        assert_eq!(images(&project), ["web", "db:top-sub"]);
        assert_eq!(
            project.services[1].file,
            project.directory.join("sub/compose.yaml")
        );
        let env_files: Vec<_> = project
            .files
            .iter()
            .filter(|f| f.kind == FileKind::Env)
            .map(|f| f.path.clone())
            .collect();
        assert_eq!(
            env_files,
            [std::path::PathBuf::from(".env"), "sub/.env".into()]
        );
    }

    #[test]
    fn project_directory_sets_where_the_included_env_is_read() {
        let (_d, p) = load_in(
            &[
                (
                    "compose.yaml",
                    "include:\n  - path: parts/db.yml\n    project_directory: settings\n",
                ),
                ("parts/db.yml", "services:\n  db: {image: \"db:${TAG}\"}\n"),
                ("settings/.env", "TAG=from-settings\n"),
            ],
            |_| {},
        );
        assert_eq!(images(&p.unwrap()), ["db:from-settings"]);
    }

    #[test]
    fn identical_definitions_are_not_conflicts() {
        let (_d, p) = load_in(
            &[
                (
                    "compose.yaml",
                    "include: [other.yml]\nservices:\n  web: {image: web}\n",
                ),
                ("other.yml", "services:\n  web: {image: web}\n"),
            ],
            |_| {},
        );
        assert_eq!(images(&p.unwrap()), ["web"]);
        let (_d, p) = load_in(
            &[
                (
                    "compose.yaml",
                    "include: [other.yml]\nservices:\n  web: {image: web}\n",
                ),
                ("other.yml", "services:\n  web: {image: web2}\n"),
            ],
            |_| {},
        );
        assert!(matches!(p, Err(ComposeError::IncludeConflict { .. })));
    }

    #[test]
    fn a_file_that_includes_itself_is_a_cycle() {
        let (_d, p) = load_in(&[("compose.yaml", "include: [compose.yaml]\n")], |_| {});
        assert!(matches!(p, Err(ComposeError::IncludeCycle { .. })), "{p:?}");
    }
}
