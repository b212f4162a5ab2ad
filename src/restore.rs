//! Writes a bundle's compose project out on the isolated side and checks
//! that every service's image reference names, on the engine, exactly the
//! image that was packed, so `docker compose up` runs those images and has
//! nothing to pull.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::bundle::COMPOSE_PREFIX;
use crate::sink::{Sink, SinkError};
use crate::verify::VerifiedBundle;

/// Why the project could not be restored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// The bundle carries no compose project.
    #[error("the bundle carries no compose project (it was not packed from compose files)")]
    NoProject,
    /// Writing a file failed.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A file exists with other content; nothing is overwritten.
    #[error("{path} already exists with other content; choose an empty --compose-dir")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// Service images the engine does not resolve to the packed image.
    #[error("compose services would not run the packed images: {}", .services.join(", "))]
    Unresolved {
        /// `service (image)` for each.
        services: Vec<String>,
    },
    /// The engine could not be asked.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// What was restored.
#[derive(Debug)]
pub struct Restored {
    /// The project name.
    pub project: String,
    /// Files written (or already there, identical).
    pub files: Vec<PathBuf>,
    /// Services checked.
    pub services: usize,
}

/// Writes the project into `dir`, then checks every service's image on `sink`.
pub fn restore_compose(
    bundle: &VerifiedBundle,
    dir: &Path,
    sink: &dyn Sink,
) -> Result<Restored, RestoreError> {
    let record = bundle
        .manifest()
        .compose
        .as_ref()
        .ok_or(RestoreError::NoProject)?;
    let mut files = Vec::new();
    for name in &record.files {
        let entry = format!("{COMPOSE_PREFIX}{name}");
        let bytes = bundle
            .metadata()
            .iter()
            .find(|(path, _)| *path == entry)
            .map(|(_, bytes)| bytes.as_slice())
            .expect("verification checked every compose file is an entry");
        // Names were checked against FORMAT.md's path rules: no `..`, not absolute.
        let path = dir.join(name);
        write_new_or_same(&path, bytes)?;
        files.push(path);
    }
    let mut unresolved = Vec::new();
    for service in &record.services {
        let image = bundle
            .manifest()
            .images
            .iter()
            .find(|i| i.config.digest == service.config)
            .expect("verification checked every service names a bundle image");
        if !sink.resolves(&service.image, image)? {
            unresolved.push(format!("{} ({})", service.service, service.image));
        }
    }
    if !unresolved.is_empty() {
        return Err(RestoreError::Unresolved {
            services: unresolved,
        });
    }
    Ok(Restored {
        project: record.project.clone(),
        files,
        services: record.services.len(),
    })
}

fn write_new_or_same(path: &Path, bytes: &[u8]) -> Result<(), RestoreError> {
    let write_error = |source| RestoreError::Write {
        path: path.to_owned(),
        source,
    };
    match fs::read(path) {
        Ok(existing) if existing == bytes => return Ok(()),
        Ok(_) => {
            return Err(RestoreError::Exists {
                path: path.to_owned(),
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(write_error(source)),
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(write_error)?;
    }
    // Env files may hold secrets; every file is written readable by the owner only.
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(write_error)?;
    file.write_all(bytes).map_err(write_error)?;
    file.sync_all().map_err(write_error)
}
