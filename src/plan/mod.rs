//! Turns what the user names (image references, image list files, compose
//! projects) into the ordered, de-duplicated set of images to pack.
//!
//! Positional arguments are sorted by what they name on disk: an existing
//! `.yml`/`.yaml` file is a compose file, an existing directory a compose
//! project directory, anything else an image reference. With nothing named
//! at all, the compose project of the current directory is used.

pub mod carry;
pub mod compose;
pub mod list;

use std::path::{Path, PathBuf};

use crate::error::kind::ErrorKind;
use crate::image::{ImageRef, InvalidReference};

pub use compose::{ComposeError, ComposeOptions, FileKind, Project, ProjectFile, Rule};

/// Why the set of images could not be worked out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// A file could not be read.
    #[error("cannot read {}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A reference is not valid.
    #[error("{origin}")]
    Reference {
        /// Where it came from (`command line`, `list.txt:3`, `compose.yml service web`).
        origin: String,
        /// The reference error.
        #[source]
        source: InvalidReference,
    },
    /// The compose project could not be resolved.
    #[error(transparent)]
    Compose(#[from] ComposeError),
    /// Two different directories were named as the compose project.
    #[error(
        "two compose project directories named ({} and {}): plan one project at a time",
        .first.display(),
        .second.display()
    )]
    SeveralProjects {
        /// The first directory.
        first: PathBuf,
        /// The second directory.
        second: PathBuf,
    },
    /// A project file outside the project directory, or with a name a
    /// bundle cannot hold.
    #[error("cannot carry {} in the bundle: it is outside the compose project directory or has an unusual name", .path.display())]
    NotCarriable {
        /// The file.
        path: PathBuf,
    },
    /// A `.yml`/`.yaml` argument names no file: a mistyped compose file,
    /// not an image (no image is named like a YAML file).
    #[error("{}: {NO_SUCH_COMPOSE_FILE}", .path.display())]
    NoSuchComposeFile {
        /// The path as given.
        path: PathBuf,
    },
    /// A compose service's image has spaces around it (an empty variable
    /// beside a space); Compose refuses such a reference, so it is not trimmed.
    #[error(
        "{} service {service}: image {image:?} has surrounding white space, which docker compose refuses; check the variables it is made of",
        .file.display()
    )]
    ImageWhiteSpace {
        /// The compose file.
        file: PathBuf,
        /// The service.
        service: String,
        /// The image reference as resolved.
        image: String,
    },
    /// Nothing to pack.
    #[error("no images to pack: name images, an --images-file or a compose file")]
    Empty,
}

/// Why a `.yml`/`.yaml` argument that names no file is refused.
pub const NO_SUCH_COMPOSE_FILE: &str =
    "no such compose file (an argument ending in .yml or .yaml is read as one)";

/// The origin of references named as arguments.
pub const COMMAND_LINE: &str = "command line";

impl PlanError {
    /// A reference or a second project named as an argument is a bad
    /// command line; anything read from a file is that file's fault.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Reference { origin, .. } if origin == COMMAND_LINE => ErrorKind::Usage,
            Self::SeveralProjects { .. } | Self::NoSuchComposeFile { .. } => ErrorKind::Usage,
            _ => ErrorKind::Failure,
        }
    }
}

/// What the user named.
#[derive(Debug, Default, Clone)]
pub struct PlanInput {
    /// Positional arguments: compose files (existing `.yml`/`.yaml` files),
    /// a compose project directory, or image references.
    pub args: Vec<String>,
    /// Files listing one image reference per line.
    pub image_lists: Vec<PathBuf>,
    /// Compose options (`-f` files, project name, profiles, env files…) and
    /// the directory and environment the command runs in. Positional compose
    /// files are merged after `files`.
    pub compose: ComposeOptions,
}

/// The images to pack, in the order first named, each once.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The references.
    pub images: Vec<ImageRef>,
    /// The active services of the compose project and their images, in the
    /// order the compose files define them (empty without a compose project).
    pub services: Vec<ServiceImage>,
    /// The compose project the images came from, if any: its name,
    /// directory, and the files it was read from.
    pub project: Option<Project>,
}

/// One compose service and its image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceImage {
    /// The service name.
    pub service: String,
    /// Its image, spelt as the compose file spells it (`given`).
    pub image: ImageRef,
    /// The service has a `build:` section.
    pub build: bool,
}

impl Plan {
    fn add(&mut self, reference: ImageRef) {
        if !self.images.iter().any(|r| r.given == reference.given) {
            self.images.push(reference);
        }
    }
}

/// What a positional argument names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// An existing `.yml`/`.yaml` file.
    ComposeFile(PathBuf),
    /// An existing directory.
    ProjectDirectory(PathBuf),
    /// A `.yml`/`.yaml` name with no file behind it.
    MissingComposeFile(PathBuf),
    /// Anything else.
    Image(String),
}

/// Sorts a positional argument, resolving relative paths against `dir`.
pub fn classify(arg: &str, dir: &Path) -> Arg {
    let path = dir.join(arg);
    let yaml = matches!(
        Path::new(arg).extension().and_then(|e| e.to_str()),
        Some("yml" | "yaml")
    );
    if yaml && path.is_file() {
        Arg::ComposeFile(PathBuf::from(arg))
    } else if path.is_dir() {
        Arg::ProjectDirectory(PathBuf::from(arg))
    } else if yaml {
        Arg::MissingComposeFile(PathBuf::from(arg))
    } else {
        Arg::Image(arg.to_owned())
    }
}

/// Works out the images to pack from `input`.
pub fn plan(input: &PlanInput) -> Result<Plan, PlanError> {
    let mut compose = input.compose.clone();
    let mut images = Vec::new();
    for arg in &input.args {
        match classify(arg, &compose.current_dir) {
            Arg::ComposeFile(path) => compose.files.push(path),
            Arg::ProjectDirectory(dir) => match &compose.project_directory {
                Some(first) if !same_dir(&compose.current_dir, first, &dir) => {
                    return Err(PlanError::SeveralProjects {
                        first: first.clone(),
                        second: dir,
                    });
                }
                _ => compose.project_directory = Some(dir),
            },
            Arg::MissingComposeFile(path) => return Err(PlanError::NoSuchComposeFile { path }),
            Arg::Image(image) => images.push(image.clone()),
        }
    }
    let nothing_named = input.args.is_empty() && input.image_lists.is_empty();
    let mut plan = Plan::default();
    if nothing_named || !compose.files.is_empty() || compose.project_directory.is_some() {
        let project = compose::load(&compose)?;
        for service in &project.services {
            if service.image.trim() != service.image {
                return Err(PlanError::ImageWhiteSpace {
                    file: service.file.clone(),
                    service: service.name.clone(),
                    image: service.image.clone(),
                });
            }
            let origin = format!("{} service {}", service.file.display(), service.name);
            let image = parse(&service.image, origin)?;
            plan.add(image.clone());
            plan.services.push(ServiceImage {
                service: service.name.clone(),
                image,
                build: service.build,
            });
        }
        plan.project = Some(project);
    }
    for image in images {
        plan.add(parse(&image, COMMAND_LINE.into())?);
    }
    for path in &input.image_lists {
        for (origin, given) in list::images(path)? {
            plan.add(parse(&given, origin)?);
        }
    }
    if plan.images.is_empty() {
        return Err(PlanError::Empty);
    }
    Ok(plan)
}

fn same_dir(base: &Path, a: &Path, b: &Path) -> bool {
    let clean = |p: &Path| {
        base.join(p)
            .components()
            .filter(|c| !matches!(c, std::path::Component::CurDir))
            .collect::<PathBuf>()
    };
    clean(a) == clean(b)
}

fn parse(given: &str, origin: String) -> Result<ImageRef, PlanError> {
    ImageRef::parse(given).map_err(|source| PlanError::Reference { origin, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_sorted_by_what_they_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("compose.yml"), "services: {}\n").unwrap();
        std::fs::write(dir.path().join("list.txt"), "").unwrap();
        std::fs::create_dir(dir.path().join("project")).unwrap();
        assert_eq!(
            classify("compose.yml", dir.path()),
            Arg::ComposeFile("compose.yml".into())
        );
        assert_eq!(
            classify("project", dir.path()),
            Arg::ProjectDirectory("project".into())
        );
        assert_eq!(
            classify("missing.yml", dir.path()),
            Arg::MissingComposeFile("missing.yml".into())
        );
        assert_eq!(
            classify("nginx:1.27", dir.path()),
            Arg::Image("nginx:1.27".into())
        );
    }

    #[test]
    fn a_compose_image_with_surrounding_white_space_is_refused_naming_its_service() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("compose.yaml"),
            "services:\n  web: {image: \"${REGISTRY} web:1\"}\n",
        )
        .unwrap();
        let input = PlanInput {
            args: vec![".".into()],
            image_lists: Vec::new(),
            compose: ComposeOptions {
                current_dir: dir.path().to_owned(),
                ..ComposeOptions::default()
            },
        };
        let error = plan(&input).unwrap_err();
        assert!(
            matches!(&error, PlanError::ImageWhiteSpace { service, .. } if service == "web"),
            "{error}"
        );
    }

    #[test]
    fn a_missing_yaml_argument_is_no_such_compose_file() {
        let dir = tempfile::tempdir().unwrap();
        let input = PlanInput {
            args: vec!["compose.prod.yml".into()],
            image_lists: Vec::new(),
            compose: ComposeOptions {
                current_dir: dir.path().to_owned(),
                ..ComposeOptions::default()
            },
        };
        let error = plan(&input).unwrap_err();
        assert!(
            matches!(error, PlanError::NoSuchComposeFile { .. }),
            "{error}"
        );
        assert_eq!(error.kind(), ErrorKind::Usage);
    }

    #[test]
    fn compose_images_then_named_images_each_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("compose.yaml"),
            "services:\n  web: {image: nginx}\n  api: {build: ./api}\n  cache: {image: nginx}\n",
        )
        .unwrap();
        let input = PlanInput {
            args: vec![".".into(), "redis:7".into(), "nginx".into()],
            image_lists: Vec::new(),
            compose: ComposeOptions {
                current_dir: dir.path().to_owned(),
                project_name: Some("shop".into()),
                ..ComposeOptions::default()
            },
        };
        let plan = plan(&input).unwrap();
        let given: Vec<_> = plan.images.iter().map(|i| i.given.as_str()).collect();
        assert_eq!(given, ["nginx", "shop-api", "redis:7"]);
        assert_eq!(plan.images[1].name, "docker.io/library/shop-api:latest");
        let services: Vec<_> = plan
            .services
            .iter()
            .map(|s| (s.service.as_str(), s.image.given.as_str(), s.build))
            .collect();
        assert_eq!(
            services,
            [
                ("web", "nginx", false),
                ("api", "shop-api", true),
                ("cache", "nginx", false)
            ]
        );
        let project = plan.project.unwrap();
        assert_eq!(project.name, "shop");
        assert_eq!(project.files[0].path, Path::new("compose.yaml"));
    }

    #[test]
    fn images_alone_need_no_compose_file() {
        let dir = tempfile::tempdir().unwrap();
        let input = PlanInput {
            args: vec!["nginx:1.27".into()],
            compose: ComposeOptions {
                current_dir: dir.path().to_owned(),
                ..ComposeOptions::default()
            },
            ..PlanInput::default()
        };
        let plan = plan(&input).unwrap();
        assert_eq!(plan.images.len(), 1);
        assert!(plan.project.is_none());
    }

    #[test]
    fn two_project_directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::create_dir(dir.path().join("b")).unwrap();
        let input = PlanInput {
            args: vec!["a".into(), "b".into()],
            compose: ComposeOptions {
                current_dir: dir.path().to_owned(),
                ..ComposeOptions::default()
            },
            ..PlanInput::default()
        };
        assert!(matches!(
            plan(&input),
            Err(PlanError::SeveralProjects { .. })
        ));
    }
}
