//! Writes a bundle's compose project out on the isolated side and checks
//! that every service's image reference names, on the engine, exactly the
//! image that was packed, so `docker compose up` runs those images and has
//! nothing to pull.
//!
//! When the images arrive under new names (`--tag`, `--prefix`), an
//! override file gives each renamed service its new image, so the project
//! runs with those names. Its name is `compose.override.yml`, which Compose
//! reads by itself, when the project is a standard compose file with no
//! override of its own; otherwise [`RENAMES_FILE`], which must be named
//! with `-f` after the project's own files.
//!
//! DIR may hold entries someone else planted; every path beneath it is
//! resolved without following links (see [`crate::files::beneath`]).

use std::path::{Path, PathBuf};

use crate::bundle::{BundleImage, COMPOSE_PREFIX, ComposeRecord};
use crate::files::beneath::{Beneath, BeneathError};
use crate::image::ImageRef;
use crate::image::rename::Renaming;
use crate::media::sink::{Sink, SinkError};
use crate::plan::compose::discovery::{FILE_NAMES, OVERRIDE_NAMES};
use crate::verify::VerifiedBundle;

/// The override file for renamed images when Compose would not read
/// `compose.override.yml` by itself.
pub const RENAMES_FILE: &str = "compose.airgap-names.yml";

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
    /// A symbolic link beneath DIR, where a directory or file of the project goes.
    #[error(
        "{path} is a symbolic link; airgap does not write through links in --compose-dir: remove it or choose an empty directory"
    )]
    Link {
        /// The link.
        path: PathBuf,
    },
    /// Something that is not a regular file (or, on the way, not a directory)
    /// where the project's file (or directory) goes.
    #[error(
        "{path} is {kind}, where the compose project needs {needed}; airgap writes only regular files and directories in --compose-dir: remove it or choose an empty directory"
    )]
    Occupied {
        /// The entry.
        path: PathBuf,
        /// What it is.
        kind: &'static str,
        /// What the project needs there.
        needed: &'static str,
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

impl RestoreError {
    /// The kind of this failure (see [`crate::Error::kind`]).
    pub fn kind(&self) -> crate::error::kind::ErrorKind {
        match self {
            Self::Sink(error) => error.kind(),
            _ => crate::error::kind::ErrorKind::Failure,
        }
    }
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
    /// The override file naming the renamed images, if any service's image
    /// was renamed, and whether Compose reads it by itself.
    pub renames: Option<(PathBuf, bool)>,
}

/// Writes the project into `dir`, then checks every service's image on
/// `sink`; `images` are the bundle's images under the names they arrived
/// by, and `renaming` how they got them.
pub fn restore_compose(
    bundle: &VerifiedBundle,
    images: &[BundleImage],
    renaming: &Renaming,
    dir: &Path,
    sink: &dyn Sink,
) -> Result<Restored, RestoreError> {
    let record = bundle
        .manifest()
        .compose
        .as_ref()
        .ok_or(RestoreError::NoProject)?;
    let root = Beneath::create(dir)?;
    let mut files = Vec::new();
    for (name, bytes) in project_files(bundle)? {
        root.write_file(Path::new(name), bytes)?;
        files.push(dir.join(name));
    }
    let renames = match renames_override(record, renaming) {
        Some(file) => {
            root.write_file(Path::new(file.name), &file.bytes)?;
            files.push(dir.join(file.name));
            Some((dir.join(file.name), file.read_by_compose))
        }
        None => None,
    };
    let mut unresolved = Vec::new();
    for service in &record.services {
        let image = images
            .iter()
            .find(|i| i.config.digest == service.config)
            .expect("verification checked every service names a bundle image");
        let arrived = service_image(&service.image, renaming);
        if !sink.resolves(&arrived, image)? {
            unresolved.push(format!("{} ({})", service.service, arrived));
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
        renames,
    })
}

/// The image a service runs once the images are renamed; a reference that
/// does not parse (none in a verified bundle) or cannot be renamed keeps
/// its spelling, and the check after loading names it.
fn service_image(image: &str, renaming: &Renaming) -> String {
    let Ok(reference) = ImageRef::parse(image) else {
        return image.to_owned();
    };
    match renaming.rename(&reference) {
        Ok(renamed) if renamed.name != reference.name => renamed.given,
        _ => image.to_owned(),
    }
}

/// The override file giving renamed services their new images.
struct RenamesFile {
    name: &'static str,
    bytes: Vec<u8>,
    read_by_compose: bool,
}

/// The override for the services `renaming` gives new images, if any.
/// Names are written as JSON strings, which YAML reads as the same
/// double-quoted scalars, so no bundle string can change its structure.
fn renames_override(record: &ComposeRecord, renaming: &Renaming) -> Option<RenamesFile> {
    let quote = |text: &str| serde_json::to_string(text).expect("strings always serialise");
    let mut bytes = String::from(
        "# Written by airgap unpack: the images arrived under new names (--tag, --prefix).\nservices:\n",
    );
    let mut renamed = false;
    for service in &record.services {
        let arrived = service_image(&service.image, renaming);
        if arrived != service.image {
            renamed = true;
            bytes += &format!(
                "  {}:\n    image: {}\n",
                quote(&service.service),
                quote(&arrived)
            );
        }
    }
    if !renamed {
        return None;
    }
    // Files are in reading order, `.env` perhaps first: Compose finds a
    // project by any standard name in the directory.
    let standard_main = record
        .files
        .iter()
        .any(|file| FILE_NAMES.contains(&file.as_str()));
    let has_override = record
        .files
        .iter()
        .any(|file| OVERRIDE_NAMES.contains(&file.as_str()));
    let read_by_compose = standard_main && !has_override;
    Some(RenamesFile {
        // The first override name Compose looks for, so it wins over any
        // other override file left in the directory.
        name: if read_by_compose {
            OVERRIDE_NAMES[0]
        } else {
            RENAMES_FILE
        },
        bytes: bytes.into_bytes(),
        read_by_compose,
    })
}

/// Checks, before anything is loaded, that the project could be written
/// into `dir`: the bundle carries one, and nothing beneath `dir` is a link,
/// something other than a regular file or directory, or a file with other
/// content. Creates nothing; [`restore_compose`] checks again as it writes.
pub fn check_compose_dir(
    bundle: &VerifiedBundle,
    renaming: &Renaming,
    dir: &Path,
) -> Result<(), RestoreError> {
    let files = project_files(bundle)?;
    let Some(root) = Beneath::open(dir)? else {
        return Ok(());
    };
    for (name, bytes) in files {
        root.check_file(Path::new(name), bytes)?;
    }
    let record = bundle
        .manifest()
        .compose
        .as_ref()
        .ok_or(RestoreError::NoProject)?;
    if let Some(file) = renames_override(record, renaming) {
        root.check_file(Path::new(file.name), &file.bytes)?;
    }
    Ok(())
}

/// The project's files: each name (a plain relative path, as FORMAT.md's
/// path rules require) with its bytes.
fn project_files(bundle: &VerifiedBundle) -> Result<Vec<(&str, &[u8])>, RestoreError> {
    let record = bundle
        .manifest()
        .compose
        .as_ref()
        .ok_or(RestoreError::NoProject)?;
    Ok(record
        .files
        .iter()
        .map(|name| {
            let entry = format!("{COMPOSE_PREFIX}{name}");
            let bytes = bundle
                .metadata()
                .iter()
                .find(|(path, _)| *path == entry)
                .map(|(_, bytes)| bytes.as_slice())
                .expect("verification checked every compose file is an entry");
            (name.as_str(), bytes)
        })
        .collect())
}

impl From<BeneathError> for RestoreError {
    fn from(error: BeneathError) -> Self {
        match error {
            BeneathError::Link { path } => Self::Link { path },
            BeneathError::Differs { path } => Self::Exists { path },
            BeneathError::NotRegular { path, kind } => Self::Occupied {
                path,
                kind,
                needed: "a regular file",
            },
            BeneathError::NotDirectory { path, kind } => Self::Occupied {
                path,
                kind,
                needed: "a directory",
            },
            BeneathError::Io { path, source } => Self::Write { path, source },
            BeneathError::NotPlain { path } => Self::Write {
                path,
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "not a plain relative path",
                ),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::ComposeService;
    use crate::image::rename::{Prefix, TagRule};

    fn project(files: &[&str], services: &[(&str, &str)]) -> ComposeRecord {
        ComposeRecord {
            project: "shop".into(),
            files: files.iter().map(|f| (*f).to_owned()).collect(),
            services: services
                .iter()
                .map(|(service, image)| ComposeService {
                    service: (*service).to_owned(),
                    image: (*image).to_owned(),
                    config: crate::digest::Digest::of(image.as_bytes()),
                })
                .collect(),
        }
    }

    fn prefix(path: &str) -> Renaming {
        Renaming::new(Vec::new(), Some(Prefix::parse(path).unwrap())).unwrap()
    }

    #[test]
    fn a_standard_project_gets_the_override_compose_reads_by_itself() {
        let record = project(&[".env", "compose.yaml"], &[("web", "fixture/web:1")]);
        let file = renames_override(&record, &prefix("registry.local")).unwrap();
        assert_eq!(file.name, "compose.override.yml");
        assert!(file.read_by_compose);
        let text = String::from_utf8(file.bytes).unwrap();
        assert!(
            text.ends_with("services:\n  \"web\":\n    image: \"registry.local/fixture/web:1\"\n"),
            "{text}"
        );
    }

    #[test]
    fn a_project_with_its_own_override_or_no_standard_name_gets_a_file_to_add_with_f() {
        let services = [("web", "fixture/web:1")];
        for files in [
            &["compose.yaml", "compose.override.yaml"][..],
            &["deploy/stack.yml"][..],
        ] {
            let file = renames_override(&project(files, &services), &prefix("reg.local")).unwrap();
            assert_eq!(file.name, RENAMES_FILE, "{files:?}");
            assert!(!file.read_by_compose);
        }
    }

    #[test]
    fn only_renamed_services_are_named_and_none_means_no_file() {
        let record = project(
            &["compose.yaml"],
            &[("web", "fixture/web:1"), ("api", "fixture/api:1")],
        );
        let tag = TagRule::parse("fixture/api:1=site/api:1").unwrap();
        let renaming = Renaming::new(vec![tag], None).unwrap();
        let text = String::from_utf8(renames_override(&record, &renaming).unwrap().bytes).unwrap();
        assert!(
            text.contains("\"site/api:1\"") && !text.contains("web"),
            "{text}"
        );
        assert!(renames_override(&record, &Renaming::default()).is_none());
    }

    #[test]
    fn a_service_name_cannot_change_the_override_structure() {
        let record = project(&["compose.yaml"], &[("web\"\n  x:", "fixture/web:1")]);
        let file = renames_override(&record, &prefix("reg.local")).unwrap();
        let text = String::from_utf8(file.bytes).unwrap();
        let parsed: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        let services = parsed["services"].as_mapping().unwrap();
        assert_eq!(services.len(), 1, "{text}");
        assert_eq!(
            parsed["services"]["web\"\n  x:"]["image"].as_str(),
            Some("reg.local/fixture/web:1")
        );
    }
}
