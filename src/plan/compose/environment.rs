//! The variables interpolation sees: the process environment, then the
//! project's env files (`.env`, or those named with `--env-file`) for what
//! the process does not set. The process environment is handed in as a map,
//! so nothing here reads `std::env`.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::error::ComposeError;
use super::interpolate::Variables;
use super::{FileKind, FileLog, dotenv};

/// Variable names to values, and the names interpolation found unset
/// (shared by the clones made for included projects).
#[derive(Debug, Clone, Default)]
pub struct Environment {
    vars: BTreeMap<String, String>,
    unset: Rc<RefCell<BTreeSet<String>>>,
}

impl Environment {
    /// Starts from the process environment.
    pub fn new(process: BTreeMap<String, String>) -> Self {
        Self {
            vars: process,
            unset: Rc::default(),
        }
    }

    /// Variables a plain `$NAME` or `${NAME}` referred to while unset.
    pub fn unset_names(&self) -> Vec<String> {
        self.unset.borrow().iter().cloned().collect()
    }

    /// The value of `name`, `None` when unset.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Sets `name`, replacing any value.
    pub fn set(&mut self, name: &str, value: &str) {
        self.vars.insert(name.to_owned(), value.to_owned());
    }

    /// The values alone, for reading env files (which Compose does not warn about).
    fn values(&self) -> impl Fn(&str) -> Option<String> + '_ {
        |name| self.vars.get(name).cloned()
    }

    /// Reads `files` in order (later files override earlier ones) and adds
    /// the variables this environment does not already have.
    pub fn add_files(&mut self, files: &[PathBuf], log: &mut FileLog) -> Result<(), ComposeError> {
        let read = read_files(files, self, log)?;
        for (name, value) in read {
            self.vars.entry(name).or_insert(value);
        }
        Ok(())
    }
}

/// The variables of `files`, their values interpolated against `current`
/// first, then against what the files set.
fn read_files(
    files: &[PathBuf],
    current: &Environment,
    log: &mut FileLog,
) -> Result<BTreeMap<String, String>, ComposeError> {
    let mut vars = BTreeMap::new();
    for path in files {
        let text = log.read(path, FileKind::Env)?;
        dotenv::parse(&text, &current.values(), &mut vars).map_err(|source| {
            ComposeError::EnvFile {
                path: path.clone(),
                source,
            }
        })?;
    }
    Ok(vars)
}

impl Variables for Environment {
    fn get(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }

    fn unset(&self, name: &str) {
        self.unset.borrow_mut().insert(name.to_owned());
    }
}

/// The default env file of a project directory, when there is one.
pub fn default_file(dir: &Path) -> Option<PathBuf> {
    let path = dir.join(".env");
    path.is_file().then_some(path)
}

/// Go's `strconv.ParseBool`, which Compose uses for `COMPOSE_DISABLE_ENV_FILE`.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_environment_wins_over_env_files() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("a.env");
        let second = dir.path().join("b.env");
        std::fs::write(&first, "TAG=file-a\nONLY_A=a\nREF=$HOME_DIR/x\n").unwrap();
        std::fs::write(&second, "TAG=file-b\n").unwrap();
        let mut env = Environment::new(BTreeMap::from([
            ("HOME_DIR".to_owned(), "/home/u".to_owned()),
            ("ONLY_A".to_owned(), "process".to_owned()),
        ]));
        let mut log = FileLog::default();
        env.add_files(&[first.clone(), second.clone()], &mut log)
            .unwrap();
        assert_eq!(env.get("TAG"), Some("file-b"));
        assert_eq!(env.get("ONLY_A"), Some("process"));
        assert_eq!(env.get("REF"), Some("/home/u/x"));
        assert_eq!(
            log.paths().collect::<Vec<_>>(),
            vec![first.as_path(), second.as_path()]
        );
    }

    #[test]
    fn a_missing_env_file_is_an_error() {
        let mut env = Environment::default();
        let error = env
            .add_files(
                &[PathBuf::from("/nonexistent/.env")],
                &mut FileLog::default(),
            )
            .unwrap_err();
        assert!(matches!(error, ComposeError::Read { .. }), "{error:?}");
    }

    #[test]
    fn booleans_as_go_reads_them() {
        assert_eq!(parse_bool("True"), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("yes"), None);
    }
}
