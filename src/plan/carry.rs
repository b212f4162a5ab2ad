//! Which files of a compose project a bundle carries, under which names:
//! the compose files always, env files only when asked (they often hold
//! secrets). Names are relative to the project directory and must be valid
//! bundle entry names, so a file outside the project cannot be carried.

use std::path::{Component, Path, PathBuf};

use super::{FileKind, Plan, PlanError};
use crate::image::ImageRef;

/// A compose project as a bundle carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarriedProject {
    /// The project name.
    pub name: String,
    /// The files, in reading order.
    pub files: Vec<CarriedFile>,
    /// Each service with its image.
    pub services: Vec<(String, ImageRef)>,
}

/// One file of a carried project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarriedFile {
    /// Its name relative to the project directory (`compose.yaml`, `env/web.env`).
    pub path: String,
    /// Where it is on this machine.
    pub absolute: PathBuf,
}

/// The project `plan` was made from, with its compose files, and its env
/// files (`.env`, `--env-file`, services' `env_file:`) when `with_env`.
pub fn carried_project(plan: &Plan, with_env: bool) -> Result<Option<CarriedProject>, PlanError> {
    let Some(project) = &plan.project else {
        return Ok(None);
    };
    let mut absolute: Vec<PathBuf> = project
        .files
        .iter()
        .filter(|f| f.kind == FileKind::Compose || with_env)
        .map(|f| f.absolute.clone())
        .collect();
    if with_env {
        for service in &project.services {
            for env_file in &service.env_files {
                absolute.push(project.directory.join(env_file));
            }
        }
    }
    let mut files: Vec<CarriedFile> = Vec::new();
    for path in absolute {
        let relative = relative_name(&project.directory, &path)
            .ok_or_else(|| PlanError::NotCarriable { path: path.clone() })?;
        if !files.iter().any(|f| f.path == relative) {
            files.push(CarriedFile {
                path: relative,
                absolute: path,
            });
        }
    }
    let services = plan
        .services
        .iter()
        .map(|s| (s.service.clone(), s.image.clone()))
        .collect();
    Ok(Some(CarriedProject {
        name: project.name.clone(),
        files,
        services,
    }))
}

/// `path` relative to `directory`, if it is inside it and its name is a valid
/// bundle entry name.
fn relative_name(directory: &Path, path: &Path) -> Option<String> {
    let relative = path.strip_prefix(directory).ok()?;
    let mut parts = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str()?.to_owned()),
            Component::CurDir => {}
            _ => return None,
        }
    }
    let name = parts.join("/");
    crate::bundle::check_entry_path(&format!("{}{name}", crate::bundle::COMPOSE_PREFIX)).ok()?;
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_relative_and_files_outside_the_project_are_refused() {
        let dir = Path::new("/srv/shop");
        assert_eq!(
            relative_name(dir, Path::new("/srv/shop/compose.yaml")).as_deref(),
            Some("compose.yaml")
        );
        assert_eq!(
            relative_name(dir, Path::new("/srv/shop/env/web.env")).as_deref(),
            Some("env/web.env")
        );
        assert_eq!(relative_name(dir, Path::new("/srv/common/base.yml")), None);
        assert_eq!(
            relative_name(dir, Path::new("/srv/shop/odd name.yml")),
            None
        );
    }
}
