//! Rebuilds layer blobs a bundle leaves out from the engine that already
//! holds them: saved through the API, read by the archive reader, which
//! hashes every layer as it stages it, so only blobs whose digest is the
//! wanted diff ID come back. Engines that cannot load an archive missing
//! layer files (containerd image store, Podman) get them this way.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::engine::Engine;
use crate::progress::{Progress, Task};
use crate::source::archive::read_archive;
use crate::source::{LayerSink, SourceError, StagedLayer};

use super::SinkError;

/// The layer chains an engine holds, by image.
pub struct LocalImages {
    images: Vec<(String, Vec<Digest>)>,
}

impl LocalImages {
    /// Lists every image of `engine` with its layers.
    pub fn take(engine: &Engine) -> Result<Self, SinkError> {
        let mut images = Vec::new();
        for id in engine.list_images()? {
            if let Some(image) = engine.inspect(&id)? {
                images.push((id, image.diff_ids));
            }
        }
        Ok(Self { images })
    }

    /// True when some image's layers start with `chain`.
    pub fn has_chain(&self, chain: &[Digest]) -> bool {
        self.images
            .iter()
            .any(|(_, layers)| layers.starts_with(chain))
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

/// Layers staged from the engine, by diff ID.
pub struct RebuiltLayers {
    dir: tempfile::TempDir,
    _registration: crate::cleanup::Registration,
    /// The staged files.
    pub layers: HashMap<Digest, StagedLayer>,
}

impl RebuiltLayers {
    /// Nothing rebuilt.
    pub fn none() -> Result<Self, SinkError> {
        let dir = tempfile::tempdir().map_err(SinkError::Stream)?;
        let registration = crate::cleanup::register(dir.path());
        Ok(Self {
            dir,
            _registration: registration,
            layers: HashMap::new(),
        })
    }

    /// Where the staged files are.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Saves from `engine` the images that hold `digests` and stages exactly
/// those layers, each verified by its digest.
pub fn rebuild(
    engine: &Engine,
    local: &LocalImages,
    digests: &HashSet<Digest>,
    progress: &dyn Progress,
) -> Result<RebuiltLayers, SinkError> {
    let mut rebuilt = RebuiltLayers::none()?;
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
        progress,
    );
    progress.finish();
    read.map_err(rebuild_error)?;
    // Blobs of the save that were not wanted stay staged until the directory goes.
    if let Some(missing) = digests.iter().find(|d| !collector.layers.contains_key(*d)) {
        return Err(SinkError::NotRebuilt {
            layer: missing.clone(),
        });
    }
    rebuilt.layers = collector.layers;
    Ok(rebuilt)
}

fn rebuild_error(error: SourceError) -> SinkError {
    match error {
        SourceError::Engine(engine) => SinkError::Engine(engine),
        other => SinkError::Rebuild(other),
    }
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
