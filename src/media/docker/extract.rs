//! Layer blobs taken, by diff ID, from an engine's own images: saved through
//! the API and read by the archive reader, which hashes every layer as it
//! stages it, so only blobs whose digest is the wanted diff ID come back.
//! The sink uses it for layers a delta leaves out (on engines that cannot
//! load without them) and for patch references; pack for patch references.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::image::ImageRecord;
use crate::media::archive::read_archive;
use crate::media::docker::engine::Engine;
use crate::media::docker::engine::EngineError;
use crate::media::docker::in_place::InPlace;
use crate::media::source::ResolvedImage;
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
    /// The engine's store, read in place, failed.
    #[error(transparent)]
    InPlace(Box<SourceError>),
}

impl ExtractError {
    /// The kind of this failure (see [`crate::Error::kind`]).
    pub fn kind(&self) -> crate::error::kind::ErrorKind {
        use crate::error::kind::ErrorKind;
        match self {
            Self::Engine(_) => ErrorKind::Engine,
            Self::Save(error) | Self::InPlace(error) => error.kind(),
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
        self.covering_with_layers(digests)
            .into_iter()
            .map(|(id, _)| id.to_owned())
            .collect()
    }

    /// [`Self::covering`], each image with its layers.
    pub fn covering_with_layers(&self, digests: &HashSet<Digest>) -> Vec<(&str, &[Digest])> {
        let mut left = digests.clone();
        let mut chosen = Vec::new();
        for (id, layers) in &self.images {
            if layers.iter().any(|l| left.contains(l)) {
                for layer in layers {
                    left.remove(layer);
                }
                chosen.push((id.as_str(), layers.as_slice()));
            }
            if left.is_empty() {
                break;
            }
        }
        chosen
    }
}

/// Takes from `engine`'s own images exactly the layers `digests` names,
/// each verified by its digest: read in place from its containerd content
/// store or overlay2 store where this process can, else from a save of the
/// images that hold them.
pub fn extract(
    engine: &Engine,
    local: &LocalImages,
    digests: &HashSet<Digest>,
    progress: &dyn Progress,
) -> Result<StagedLayers, ExtractError> {
    let covering: Vec<ResolvedImage> = local
        .covering_with_layers(digests)
        .into_iter()
        .map(|(id, layers)| ResolvedImage::unnamed(id.parse().ok(), layers.to_vec()))
        .collect();
    let in_place = |error| ExtractError::InPlace(Box::new(error));
    if !digests.is_empty()
        && let Some(found) = InPlace::find(engine, &covering).map_err(in_place)?
    {
        return collect_wanted(digests, |sink| found.read(sink, progress)).map_err(in_place);
    }
    save_and_extract(engine, local, digests, progress)
}

/// Saves from `engine` the images that hold `digests` and stages exactly
/// those layers, each verified by its digest.
pub fn save_and_extract(
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
        wanted: None,
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

/// Stages exactly the layers `digests` names of those `read` hands over
/// (every layer of some images, read in place), each verified by its digest.
fn collect_wanted(
    digests: &HashSet<Digest>,
    read: impl FnOnce(&mut dyn LayerSink) -> Result<Vec<ImageRecord>, SourceError>,
) -> Result<StagedLayers, SourceError> {
    let mut rebuilt = StagedLayers::none()?;
    let mut collector = Collector {
        staging: rebuilt.dir().to_owned(),
        layers: HashMap::new(),
        wanted: Some(digests.clone()),
    };
    read(&mut collector)?;
    rebuilt.layers = collector.layers;
    Ok(rebuilt)
}

/// Takes the layers a save or a blob store offers, keeping those wanted.
struct Collector {
    staging: PathBuf,
    layers: HashMap<Digest, StagedLayer>,
    /// Where the source offers every layer of an image, those wanted.
    wanted: Option<HashSet<Digest>>,
}

impl LayerSink for Collector {
    fn staging_dir(&self) -> &Path {
        &self.staging
    }

    fn has_layer(&self, digest: &Digest) -> bool {
        self.layers.contains_key(digest)
    }

    // What is not wanted is taken as left out: a layer named by its digest
    // is then not read at all.
    fn is_left_out(&self, digest: &Digest) -> bool {
        self.wanted.as_ref().is_some_and(|w| !w.contains(digest))
    }

    fn put_layer(&mut self, layer: StagedLayer) -> Result<(), SourceError> {
        if self.is_left_out(&layer.digest) {
            let _ = std::fs::remove_file(&layer.path);
        } else {
            self.layers.insert(layer.digest.clone(), layer);
        }
        Ok(())
    }
}
