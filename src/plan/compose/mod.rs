//! Compose projects: which images `docker compose` would run, worked out the
//! way Docker Compose v2 (2.40.3, compose-go 2.9.1) does, without an engine.
//!
//! [`load`] follows Compose's order: environment and `.env`, the compose
//! files (named, from `COMPOSE_FILE`, or discovered), the project name, then
//! each file through [`loader`] (interpolation, `extends`, `!reset`,
//! `include`, merge), then profiles. Each step lives in its own module; this
//! one only strings them together and says which files were read.
//!
//! It checks what decides the images, the shape Compose's schema gives the
//! keys it reads, and (in [`validate`]) the rules that make Compose refuse a
//! project at `up`: undefined references, `depends_on`, volume syntax and
//! values that do not convert. It is not a full validator.

pub(crate) mod discovery;
mod dotenv;
mod environment;
mod error;
mod extends;
mod include;
mod interpolate;
mod loader;
mod merge;
mod paths;
mod profiles;
mod project_name;
mod schema;
#[cfg(test)]
mod testutil;
mod validate;
mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

pub use dotenv::DotenvError;
pub use error::ComposeError;
pub use interpolate::TemplateError;
pub use validate::Rule;

use environment::Environment;
use loader::{Loader, Scope};

/// How to find and read a compose project: what `docker compose` takes as
/// `-f`, `--project-directory`, `-p`, `--profile`, `--all-profiles` and
/// `--env-file`, plus the directory and environment it runs in.
#[derive(Debug, Clone, Default)]
pub struct ComposeOptions {
    /// Compose files in merge order; empty means `COMPOSE_FILE`, else
    /// discovery.
    pub files: Vec<PathBuf>,
    /// The project directory (relative paths, `.env`, discovery); default:
    /// the first file's directory, else the current directory.
    pub project_directory: Option<PathBuf>,
    /// The project name; default: `COMPOSE_PROJECT_NAME`, `name:`, the
    /// directory name.
    pub project_name: Option<String>,
    /// Profiles to enable; default: `COMPOSE_PROFILES`.
    pub profiles: Vec<String>,
    /// Enable every profile.
    pub all_profiles: bool,
    /// Env files to read instead of the project's `.env`.
    pub env_files: Vec<PathBuf>,
    /// The directory relative paths given here resolve against.
    pub current_dir: PathBuf,
    /// The process environment (variables set here win over env files).
    pub environment: BTreeMap<String, String>,
}

/// A resolved compose project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// The project name.
    pub name: String,
    /// The project directory (absolute).
    pub directory: PathBuf,
    /// The services that are part of the project (profiles applied), in the
    /// order the files define them.
    pub services: Vec<Service>,
    /// Services left out because none of their profiles is enabled.
    pub disabled_services: Vec<String>,
    /// Every file read to resolve the project, in reading order.
    pub files: Vec<ProjectFile>,
    /// Variables that a plain `$NAME` or `${NAME}` referred to while unset,
    /// so they became empty strings (Compose warns about each), sorted.
    pub unset_variables: Vec<String>,
}

/// One service and the image it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The service name.
    pub name: String,
    /// The image reference as the compose file spells it after
    /// interpolation, or `<project>-<service>` for a service that is only
    /// built (what `docker compose config --images` prints).
    pub image: String,
    /// The service has a `build:` section (Compose builds the image unless
    /// it can pull it).
    pub build: bool,
    /// The file that defines the service.
    pub file: PathBuf,
    /// The service's `env_file:` targets, resolved against the directory of
    /// the file that defines the service. Never read by the planner; listed
    /// so that a bundle can carry them when asked to.
    pub env_files: Vec<PathBuf>,
}

/// A file the project was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectFile {
    /// Relative to the project directory where possible (`compose.yaml`,
    /// `../common/base.yml`), else absolute.
    pub path: PathBuf,
    /// The absolute path.
    pub absolute: PathBuf,
    /// What kind of file it is.
    pub kind: FileKind,
}

/// What a project file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A compose file (named, discovered, included, or extended from).
    Compose,
    /// An env file (`.env`, `--env-file`, an include's `env_file`).
    Env,
}

/// The files read so far, each once, in reading order.
#[derive(Debug, Default)]
pub(crate) struct FileLog {
    files: Vec<(PathBuf, FileKind)>,
}

impl FileLog {
    /// Reads `path` and records it.
    pub fn read(&mut self, path: &Path, kind: FileKind) -> Result<String, ComposeError> {
        let text = std::fs::read_to_string(path).map_err(|source| ComposeError::Read {
            path: path.to_owned(),
            source,
        })?;
        if !self.files.iter().any(|(p, _)| p == path) {
            self.files.push((path.to_owned(), kind));
        }
        Ok(text)
    }

    /// The paths read, in order.
    #[cfg(test)]
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|(p, _)| p.as_path())
    }
}

/// Resolves the compose project `options` describe.
pub fn load(options: &ComposeOptions) -> Result<Project, ComposeError> {
    let cwd = paths::absolute(Path::new("/"), &options.current_dir);
    let mut log = FileLog::default();
    let mut env = Environment::new(options.environment.clone());
    if env.get("PWD").is_none() {
        env.set("PWD", &cwd.to_string_lossy());
    }
    let named_dir = options
        .project_directory
        .as_ref()
        .map(|d| paths::absolute(&cwd, d));
    let named_files: Vec<PathBuf> = options
        .files
        .iter()
        .map(|f| paths::absolute(&cwd, f))
        .collect();
    let use_dotenv = match options.environment.get("COMPOSE_DISABLE_ENV_FILE") {
        None => true,
        Some(value) => {
            !environment::parse_bool(value).ok_or_else(|| ComposeError::DisableEnvFile {
                value: value.clone(),
            })?
        }
    };
    let env_files = |dir: &Path| -> Vec<PathBuf> {
        if !options.env_files.is_empty() {
            options
                .env_files
                .iter()
                .map(|f| paths::absolute(&cwd, f))
                .collect()
        } else if use_dotenv {
            environment::default_file(dir).into_iter().collect()
        } else {
            Vec::new()
        }
    };

    // Compose reads `.env` twice: before the files are known (it may set
    // COMPOSE_FILE) and again from the project directory they give.
    let first_dir = named_dir
        .clone()
        .or_else(|| named_files.first().map(|f| paths::parent(f)))
        .unwrap_or_else(|| cwd.clone());
    env.add_files(&env_files(&first_dir), &mut log)?;
    let files = if !named_files.is_empty() {
        named_files
    } else if let Some(list) = env.get("COMPOSE_FILE") {
        let listed: Vec<PathBuf> = discovery::split_list(list, env.get("COMPOSE_PATH_SEPARATOR"))
            .into_iter()
            .map(|f| paths::absolute(&cwd, Path::new(f)))
            .collect();
        listed
    } else {
        match &named_dir {
            // A directory named as the project must hold the compose file:
            // a parent's file would be some other project.
            Some(dir) => discovery::in_dir(dir)
                .ok_or_else(|| ComposeError::NotFoundIn { dir: dir.clone() })?,
            None => discovery::upwards(&cwd)
                .ok_or_else(|| ComposeError::NotFound { dir: cwd.clone() })?,
        }
    };
    let directory = named_dir.unwrap_or_else(|| paths::parent(&files[0]));
    env.add_files(&env_files(&directory), &mut log)?;
    let enabled = profiles::enabled(
        options.all_profiles,
        &options.profiles,
        env.get("COMPOSE_PROFILES"),
    );

    let mut loader = Loader { log: &mut log };
    let mut parsed = Vec::new();
    for path in &files {
        parsed.push((path.clone(), loader.documents(path)?));
    }
    let name = project_name(options, &env, &parsed, &directory)?;
    // Compose makes the resolved name visible to interpolation.
    env.set("COMPOSE_PROJECT_NAME", &name);
    let scope = Scope {
        dir: directory.clone(),
        env: &env,
        chain: Vec::new(),
    };
    let mut model = loader.load(parsed, &scope)?;
    model.mapping.remove("version");
    if model.mapping.is_empty() {
        return Err(ComposeError::Empty {
            path: files[0].clone(),
        });
    }

    let mut services = Vec::new();
    let mut disabled_services = Vec::new();
    if let Some(Value::Mapping(defined)) = model.mapping.get("services") {
        for (key, service) in defined {
            let Some(service_name) = key.as_str() else {
                continue;
            };
            let file = model
                .origins
                .get(service_name)
                .cloned()
                .unwrap_or_else(|| files[0].clone());
            let service_profiles: Vec<String> = service
                .get("profiles")
                .and_then(Value::as_sequence)
                .map(|list| {
                    list.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            if !profiles::is_active(&service_profiles, &enabled) {
                disabled_services.push(service_name.to_owned());
                continue;
            }
            services.push(resolve_service(service_name, service, &name, file)?);
        }
    }
    validate::check(
        &model.mapping,
        &disabled_services,
        |service| {
            model
                .origins
                .get(service)
                .cloned()
                .unwrap_or_else(|| files[0].clone())
        },
        &files[0],
    )?;
    Ok(Project {
        name,
        files: log
            .files
            .iter()
            .map(|(absolute, kind)| ProjectFile {
                path: paths::relative(&directory, absolute),
                absolute: absolute.clone(),
                kind: *kind,
            })
            .collect(),
        directory,
        services,
        disabled_services,
        unset_variables: env.unset_names(),
    })
}

/// The image of one active service.
fn resolve_service(
    name: &str,
    service: &Value,
    project: &str,
    file: PathBuf,
) -> Result<Service, ComposeError> {
    let image = service
        .get("image")
        .and_then(Value::as_str)
        .filter(|image| !image.is_empty());
    let build = service.get("build").is_some_and(|b| !b.is_null());
    // A `provider:` service runs no image of its own, but Compose still
    // lists it under its default image name.
    let provider = service.get("provider").is_some_and(|p| !p.is_null());
    let image = match image {
        Some(image) => image.to_owned(),
        None if build || provider => format!("{project}-{name}"),
        None => {
            return Err(ComposeError::NoImage {
                path: file,
                service: name.to_owned(),
            });
        }
    };
    let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let env_files = env_file_paths(service.get("env_file"))
        .into_iter()
        .map(|path| base.join(path))
        .collect();
    Ok(Service {
        name: name.to_owned(),
        image,
        build,
        file,
        env_files,
    })
}

/// `env_file:` is a path, a list of paths, or a list of `{path, required}`.
fn env_file_paths(value: Option<&Value>) -> Vec<String> {
    let one = |value: &Value| match value {
        Value::String(path) => Some(path.clone()),
        Value::Mapping(entry) => entry.get("path").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    };
    match value {
        Some(Value::Sequence(items)) => items.iter().filter_map(one).collect(),
        Some(value) => one(value).into_iter().collect(),
        None => Vec::new(),
    }
}

/// The project name, by Compose's precedence.
fn project_name(
    options: &ComposeOptions,
    env: &Environment,
    parsed: &[(PathBuf, Vec<yaml::Document>)],
    directory: &Path,
) -> Result<String, ComposeError> {
    if let Some(name) = &options.project_name {
        return project_name::explicit(name, "the command line");
    }
    if let Some(name) = env.get("COMPOSE_PROJECT_NAME").filter(|n| !n.is_empty()) {
        return project_name::explicit(name, "COMPOSE_PROJECT_NAME");
    }
    // The last non-empty `name:` of any document wins; it may use variables.
    let mut from_files = None;
    for (path, documents) in parsed {
        for document in documents {
            match document.model.get("name") {
                Some(Value::String(name)) if !name.is_empty() => {
                    let interpolated = interpolate::substitute(name, env).map_err(|source| {
                        ComposeError::Interpolation {
                            path: path.clone(),
                            key: "name".to_owned(),
                            source,
                        }
                    })?;
                    from_files = Some(interpolated);
                }
                None | Some(Value::Null) | Some(Value::String(_)) => {}
                Some(_) => {
                    return Err(ComposeError::Shape {
                        path: path.clone(),
                        key: "name".to_owned(),
                        expected: "a string",
                    });
                }
            }
        }
    }
    project_name::derived(from_files.as_deref(), directory)
}

#[cfg(test)]
mod tests {
    use super::testutil::{images, load_in};
    use super::*;

    #[test]
    fn dotenv_of_the_current_directory_and_of_the_project_are_both_read() {
        let (dir, project) = load_in(
            &[
                ("work/.env", "TAG=cwd\n"),
                (
                    "compose.yaml",
                    "services:\n  web: {image: \"web:${TAG}-${BASE}\"}\n",
                ),
                (".env", "TAG=project\nBASE=project\n"),
            ],
            |o| o.current_dir.push("work"),
        );
        let project = project.unwrap();
        // Compose reads the current directory's .env first; it wins.
        assert_eq!(images(&project), ["web:cwd-project"]);
        assert_eq!(project.directory, dir.path());
        let files: Vec<_> = project
            .files
            .iter()
            .map(|f| (f.path.clone(), f.kind))
            .collect();
        assert_eq!(
            files,
            [
                ("work/.env".into(), FileKind::Env),
                (".env".into(), FileKind::Env),
                ("compose.yaml".into(), FileKind::Compose),
            ]
        );
    }

    #[test]
    fn compose_file_entries_are_relative_to_the_current_directory() {
        let (_dir, project) = load_in(
            &[
                ("a/one.yml", "services:\n  one: {image: one}\n"),
                ("b/two.yml", "services:\n  two: {build: .}\n"),
            ],
            |o| {
                o.environment
                    .insert("COMPOSE_FILE".into(), "a/one.yml;b/two.yml".into());
                o.environment
                    .insert("COMPOSE_PATH_SEPARATOR".into(), ";".into());
            },
        );
        let project = project.unwrap();
        assert_eq!(images(&project), ["one", "a-two"]);
        assert_eq!(project.name, "a");
    }

    #[test]
    fn project_name_precedence() {
        let files = [
            (
                "compose.yaml",
                "name: From-Yaml\nservices:\n  web: {build: .}\n",
            ),
            ("override.yaml", "name: ${LATER:-later}\n"),
        ];
        let both = |o: &mut ComposeOptions| {
            o.files = vec!["compose.yaml".into(), "override.yaml".into()];
        };
        let (_d, p) = load_in(&files, both);
        assert_eq!(p.unwrap().name, "later");
        let (_d, p) = load_in(&files, |o| {
            both(o);
            o.environment
                .insert("COMPOSE_PROJECT_NAME".into(), "env".into());
        });
        assert_eq!(p.unwrap().name, "env");
        let (_d, p) = load_in(&files, |o| {
            both(o);
            o.environment
                .insert("COMPOSE_PROJECT_NAME".into(), "env".into());
            o.project_name = Some("flag".into());
        });
        assert_eq!(images(&p.unwrap()), ["flag-web"]);
    }

    #[test]
    fn unset_variables_are_reported() {
        let (_d, p) = load_in(
            &[(
                "compose.yaml",
                "services:\n  a: {image: \"a${SUFFIX}:${TAG:-1}\", environment: [X=$HOME_DIR]}\n",
            )],
            |_| {},
        );
        let project = p.unwrap();
        assert_eq!(images(&project), ["a:1"]);
        assert_eq!(project.unset_variables, ["HOME_DIR", "SUFFIX"]);
    }

    #[test]
    fn disabled_services_are_reported() {
        let (_d, p) = load_in(
            &[(
                "compose.yaml",
                "services:\n  a: {image: a}\n  b: {image: b, profiles: [x]}\n",
            )],
            |_| {},
        );
        let project = p.unwrap();
        assert_eq!(images(&project), ["a"]);
        assert_eq!(project.disabled_services, ["b"]);
    }

    #[test]
    fn the_default_env_file_can_be_disabled() {
        let files = [
            (
                "compose.yaml",
                "services:\n  a: {image: \"a:${TAG:-none}\"}\n",
            ),
            (".env", "TAG=1\n"),
        ];
        let (_d, p) = load_in(&files, |o| {
            o.environment
                .insert("COMPOSE_DISABLE_ENV_FILE".into(), "true".into());
        });
        assert_eq!(images(&p.unwrap()), ["a:none"]);
        let (_d, p) = load_in(&files, |o| {
            o.environment
                .insert("COMPOSE_DISABLE_ENV_FILE".into(), "maybe".into());
        });
        assert!(matches!(p, Err(ComposeError::DisableEnvFile { .. })));
    }

    #[test]
    fn a_named_directory_must_hold_the_compose_file() {
        let (_d, p) = load_in(&[("compose.yaml", "services: {}\n"), ("sub/x", "")], |o| {
            o.project_directory = Some("sub".into());
        });
        assert!(matches!(p, Err(ComposeError::NotFoundIn { .. })), "{p:?}");
    }
}
