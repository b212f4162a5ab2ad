//! Why a compose project could not be resolved. Every variant names the file
//! it is about; YAML syntax errors also carry the line the parser reports.

use std::fmt;
use std::path::{Path, PathBuf};

use super::dotenv::DotenvError;
use super::interpolate::TemplateError;
use super::validate::Rule;

/// A compose project that cannot be resolved to images.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ComposeError {
    /// A compose or env file could not be read.
    #[error("cannot read {}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// No compose file where discovery looked.
    #[error(
        "no compose file in {} or its parents (compose.yaml, compose.yml, docker-compose.yml, docker-compose.yaml)",
        .dir.display()
    )]
    NotFound {
        /// Where the search started.
        dir: PathBuf,
    },
    /// No compose file in a directory named as a project.
    #[error(
        "no compose file in {} (compose.yaml, compose.yml, docker-compose.yml, docker-compose.yaml)",
        .dir.display()
    )]
    NotFoundIn {
        /// The directory.
        dir: PathBuf,
    },
    /// The file is not valid YAML.
    #[error("{}: not valid YAML", At(.path, *.line))]
    Yaml {
        /// The file.
        path: PathBuf,
        /// 1-based line, where the parser gives one.
        line: Option<usize>,
        /// The parser's error.
        #[source]
        source: serde_yaml::Error,
    },
    /// A document's top level is not a mapping.
    #[error("{}: the top level is not a mapping of compose keys", .path.display())]
    TopLevelNotMapping {
        /// The file.
        path: PathBuf,
    },
    /// A `<<:` merge key names something other than mappings.
    #[error("{}: merge key {key} must name a mapping or a list of mappings", .path.display())]
    MergeKey {
        /// The file.
        path: PathBuf,
        /// Dotted path of the merge key.
        key: String,
    },
    /// A key Compose does not know (a typo such as `service:` or `imgae:`).
    #[error("{}: unknown key {key:?} in {section}", .path.display())]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// `the top level` or `services.web`.
        section: String,
        /// The key.
        key: String,
    },
    /// A value of the wrong kind (`services` that is a list, …).
    #[error("{}: {key} must be {expected}", .path.display())]
    Shape {
        /// The file.
        path: PathBuf,
        /// Dotted path of the value.
        key: String,
        /// What it must be (`a mapping`, `a string`, …).
        expected: &'static str,
    },
    /// Nothing is defined at all.
    #[error("{}: empty compose file", .path.display())]
    Empty {
        /// The first compose file.
        path: PathBuf,
    },
    /// A value could not be interpolated (a required variable is unset, or
    /// `${` starts no valid expression).
    #[error("{}: cannot interpolate {key}", .path.display())]
    Interpolation {
        /// The file.
        path: PathBuf,
        /// Dotted path of the value (`services.web.image`).
        key: String,
        /// What went wrong.
        #[source]
        source: TemplateError,
    },
    /// An env file is malformed.
    #[error("{}: not a valid env file", .path.display())]
    EnvFile {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line.
        #[source]
        source: DotenvError,
    },
    /// `COMPOSE_DISABLE_ENV_FILE` is set to something other than a boolean.
    #[error("COMPOSE_DISABLE_ENV_FILE={value:?} is not a boolean")]
    DisableEnvFile {
        /// The value.
        value: String,
    },
    /// A file named by `include:` cannot be read.
    #[error("{}: cannot read included file {}", .path.display(), .included.display())]
    Include {
        /// The including file.
        path: PathBuf,
        /// The included file.
        included: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Files include each other in a loop.
    #[error("include cycle: {}", Chain(.chain))]
    IncludeCycle {
        /// The files, the first repeated at the end.
        chain: Vec<PathBuf>,
    },
    /// An included file defines a resource the including file defines differently.
    #[error("{}: {kind}.{name} conflicts with the definition in included file {}", .path.display(), .included.display())]
    IncludeConflict {
        /// The including file.
        path: PathBuf,
        /// The included file.
        included: PathBuf,
        /// `services`, `volumes`, …
        kind: String,
        /// The resource's name.
        name: String,
    },
    /// A service extends a service that does not exist.
    #[error("{}: service {service} extends {base}, which {} does not define", .path.display(), .base_file.display())]
    ExtendsMissing {
        /// The file of the extending service.
        path: PathBuf,
        /// The extending service.
        service: String,
        /// The service it names.
        base: String,
        /// Where that service was looked for.
        base_file: PathBuf,
    },
    /// `extends:` names a file that cannot be read.
    #[error("{}: service {service} extends a service of {}, which cannot be read", .path.display(), .file.display())]
    ExtendsFile {
        /// The file of the extending service.
        path: PathBuf,
        /// The extending service.
        service: String,
        /// The file it names.
        file: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Services extend each other in a loop.
    #[error("{}: extends cycle: {}", .path.display(), .chain.join(" -> "))]
    ExtendsCycle {
        /// The file where the loop was found.
        path: PathBuf,
        /// The services, the first repeated at the end.
        chain: Vec<String>,
    },
    /// A service has neither `image:` nor `build:`, so it names no image.
    #[error("{}: service {service} has neither `image` nor `build`", .path.display())]
    NoImage {
        /// The file that defines the service.
        path: PathBuf,
        /// The service.
        service: String,
    },
    /// The project breaks a rule Docker Compose enforces when it loads a
    /// project, so `docker compose up` would refuse it.
    #[error("{}: {at}: {rule} (docker compose refuses this project)", .path.display())]
    Rule {
        /// The file that defines the service (or the first compose file).
        path: PathBuf,
        /// `service web` or `the top level`.
        at: String,
        /// The rule and the value that breaks it.
        rule: Box<Rule>,
    },
    /// A project name given explicitly is not already in normal form.
    #[error(
        "invalid project name {name:?} (from {origin}): use only lowercase letters, digits, '-' and '_', starting with a letter or digit"
    )]
    ProjectName {
        /// The name.
        name: String,
        /// Where it came from (`COMPOSE_PROJECT_NAME`, …).
        origin: &'static str,
    },
    /// No project name could be derived.
    #[error("the project name derived from {} is empty", .dir.display())]
    EmptyProjectName {
        /// The project directory.
        dir: PathBuf,
    },
}

/// `path` or `path:line`.
struct At<'a>(&'a Path, Option<usize>);

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Some(line) => write!(f, "{}:{line}", self.0.display()),
            None => write!(f, "{}", self.0.display()),
        }
    }
}

/// Paths joined by arrows.
struct Chain<'a>(&'a [PathBuf]);

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, path) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" -> ")?;
            }
            write!(f, "{}", path.display())?;
        }
        Ok(())
    }
}
