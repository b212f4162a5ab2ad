//! Layer blobs taken, by diff ID, from an engine's own images: saved through
//! the API and read by the archive reader, which hashes every layer as it
//! stages it, so only blobs whose digest is the wanted diff ID come back.
//! The sink uses it for layers a delta leaves out (on engines that cannot
//! load without them) and for patch references; pack for patch references.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::media::archive::read_archive;
use crate::media::docker::engine::Engine;
use crate::media::docker::engine::EngineError;
use crate::media::source::{LayerSink, SourceError};
use crate::progress::{Progress, Task};
use crate::store::{StagedLayer, StagedLayers};

/// Why layers could not be extracted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The engine's save could not be read.
    #[error("cannot read the engine's save while taking layers from it")]
    Save(#[source] Box<SourceError>),
    /// The engine's save lacked a layer it was expected to hold.
    #[error("the engine's save did not contain layer {layer}")]
    NotFound {
        /// The layer.
        layer: Digest,
    },
    /// The staging directory could not be made.
    #[error(transparent)]
    Staging(#[from] crate::store::StagingError),
}

impl ExtractError {
    /// The kind of this failure (see [`crate::Error::kind`]).
    pub fn kind(&self) -> crate::error::kind::ErrorKind {
        use crate::error::kind::ErrorKind;
        match self {
            Self::Engine(_) => ErrorKind::Engine,
            Self::Save(error) => error.kind(),
            Self::NotFound { .. } | Self::Staging(_) => ErrorKind::Failure,
        }
    }
}

/// The layer chains an engine holds, by image.
pub struct LocalImages {
    images: Vec<(String, Vec<Digest>)>,
}

impl LocalImages {
    /// Lists every image of `engine` with its layers.
    pub fn take(engine: &Engine) -> Result<Self, ExtractError> {
        let mut images = Vec::new();
        for id in engine.list_images()? {
            if let Some(image) = engine.inspect(&id)? {
                images.push((id, image.diff_ids));
            }
        }
        Ok(Self { images })
    }

    /// Every image's layers, bottom first.
    pub fn chains(&self) -> impl Iterator<Item = &[Digest]> {
        self.images.iter().map(|(_, layers)| layers.as_slice())
    }

    /// True when some image's layers start with `chain`.
    pub fn has_chain(&self, chain: &[Digest]) -> bool {
        self.images
            .iter()
            .any(|(_, layers)| layers.starts_with(chain))
    }

    /// True when some image holds `layer`.
    pub fn has_layer(&self, layer: &Digest) -> bool {
        self.images.iter().any(|(_, layers)| layers.contains(layer))
    }

    /// Images whose layers together include every one of `digests`.
    fn covering(&self, digests: &HashSet<Digest>) -> Vec<String> {
        let mut left = digests.clone();
        let mut chosen = Vec::new();
        for (id, layers) in &self.images {
            if layers.iter().any(|l| left.contains(l)) {
                for layer in layers {
                    left.remove(layer);
                }
                chosen.push(id.clone());
            }
            if left.is_empty() {
                break;
            }
        }
        chosen
    }
}

/// Saves from `engine` the images that hold `digests` and stages exactly
/// those layers, each verified by its digest.
pub fn extract(
    engine: &Engine,
    local: &LocalImages,
    digests: &HashSet<Digest>,
    progress: &dyn Progress,
) -> Result<StagedLayers, ExtractError> {
    let mut rebuilt = StagedLayers::none()?;
    if digests.is_empty() {
        return Ok(rebuilt);
    }
    let images = local.covering(digests);
    let mut collector = Collector {
        staging: rebuilt.dir().to_owned(),
        layers: HashMap::new(),
    };
    progress.start(Task::Saving, None);
    let read = read_archive(
        engine.save(&images),
        &collector.staging.clone(),
        digests,
        &mut collector,
        false,
        progress,
    );
    progress.finish();
    read.map_err(|error| match error {
        SourceError::Engine(engine) => ExtractError::Engine(engine),
        other => ExtractError::Save(Box::new(other)),
    })?;
    // Blobs of the save that were not wanted stay staged until the directory goes.
    if let Some(missing) = digests.iter().find(|d| !collector.layers.contains_key(*d)) {
        return Err(ExtractError::NotFound {
            layer: missing.clone(),
        });
    }
    rebuilt.layers = collector.layers;
    Ok(rebuilt)
}

struct Collector {
    staging: PathBuf,
    layers: HashMap<Digest, StagedLayer>,
}

impl LayerSink for Collector {
    fn staging_dir(&self) -> &Path {
        &self.staging
    }

    fn has_layer(&self, digest: &Digest) -> bool {
        self.layers.contains_key(digest)
    }

    fn put_layer(&mut self, layer: StagedLayer) -> Result<(), SourceError> {
        self.layers.insert(layer.digest.clone(), layer);
        Ok(())
    }
}
