//! Turns what the user names (image references, image list files, compose
//! files) into the ordered, de-duplicated set of images to pack.

pub mod compose;
pub mod list;

use std::path::{Path, PathBuf};

use crate::image::{ImageRef, InvalidReference};

/// Why the set of images could not be worked out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// A file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A reference is not valid.
    #[error("{origin}: {source}")]
    Reference {
        /// Where it came from (`command line`, `list.txt:3`, `compose.yml service web`).
        origin: String,
        /// The reference error.
        source: InvalidReference,
    },
    /// A compose file is not valid YAML or not a compose file.
    #[error("{path}: {reason}")]
    Compose {
        /// The compose file.
        path: PathBuf,
        /// What is wrong (with the line where known).
        reason: String,
    },
    /// Nothing to pack.
    #[error("no images to pack: name images, an --images-file or a compose file")]
    Empty,
}

/// What the user named.
#[derive(Debug, Default, Clone)]
pub struct PlanInput {
    /// Positional arguments: compose files (existing `.yml`/`.yaml` files) or image references.
    pub args: Vec<String>,
    /// Files listing one image reference per line.
    pub image_lists: Vec<PathBuf>,
}

/// The images to pack, in the order first named, each once.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The references.
    pub images: Vec<ImageRef>,
}

impl Plan {
    fn add(&mut self, reference: ImageRef) {
        if !self.images.iter().any(|r| r.given == reference.given) {
            self.images.push(reference);
        }
    }
}

/// True when a positional argument names a compose file rather than an image.
pub fn is_compose_file(arg: &str) -> bool {
    let path = Path::new(arg);
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yml" | "yaml")
    ) && path.is_file()
}

/// Works out the images to pack from `input`.
pub fn plan(input: &PlanInput) -> Result<Plan, PlanError> {
    let mut plan = Plan::default();
    for arg in &input.args {
        if is_compose_file(arg) {
            for (origin, given) in compose::images(Path::new(arg))? {
                plan.add(parse(&given, origin)?);
            }
        } else {
            plan.add(parse(arg, "command line".into())?);
        }
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

fn parse(given: &str, origin: String) -> Result<ImageRef, PlanError> {
    ImageRef::parse(given).map_err(|source| PlanError::Reference { origin, source })
}
