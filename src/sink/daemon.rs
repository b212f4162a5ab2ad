//! Loads a verified bundle into an engine: one `docker load` streamed from a
//! second, re-hashing read of the bundle, then tags, then a check that every
//! reference names exactly the bundle's image.

use std::io::Write;

use crate::bundle::{BundleImage, Entry, tar_stream};
use crate::engine::{Engine, EngineImage, LoadError};
use crate::progress::{Progress, Task};
use crate::verify::VerifiedBundle;

use super::{LoadReport, LoadedImage, Sink, SinkError};

/// Loads into the engine behind `engine`.
pub struct DaemonSink {
    engine: Engine,
}

impl DaemonSink {
    /// A sink writing to `engine`.
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }

    /// The engine's view of `image`, if it holds exactly that image: same
    /// layers, and an ID that is either the config digest (graph drivers) or
    /// the bundle's manifest digest (containerd image store).
    fn find(&self, image: &BundleImage) -> Result<Option<EngineImage>, SinkError> {
        for candidate in [&image.config.digest, &image.manifest.digest] {
            if let Some(found) = self.engine.inspect(candidate.as_str())? {
                if matches_image(&found, image) {
                    return Ok(Some(found));
                }
            }
        }
        Ok(None)
    }

    fn send(&self, bundle: &VerifiedBundle, progress: &dyn Progress) -> Result<(), SinkError> {
        let produce = |out: &mut dyn Write| -> Result<(), SinkError> {
            bundle.read_entries(progress, Task::Loading, |entry: &Entry, content| {
                if entry.path.starts_with("airgap/") {
                    return Ok(());
                }
                tar_stream::append(out, &entry.path, entry.size, content).map_err(SinkError::Stream)
            })?;
            tar_stream::finish(out).map_err(SinkError::Stream)
        };
        match self.engine.load(produce) {
            Ok(_) => Ok(()),
            Err(LoadError::Produce(error)) => Err(error),
            Err(LoadError::Engine(error)) => Err(error.into()),
        }
    }
}

fn matches_image(found: &EngineImage, image: &BundleImage) -> bool {
    let same_layers = found.diff_ids.len() == image.layers.len()
        && found
            .diff_ids
            .iter()
            .zip(&image.layers)
            .all(|(a, b)| a == &b.digest);
    same_layers && (found.id == image.config.digest || found.id == image.manifest.digest)
}

impl Sink for DaemonSink {
    fn resolves(&self, reference: &str, image: &BundleImage) -> Result<bool, SinkError> {
        Ok(self
            .engine
            .inspect(reference)?
            .is_some_and(|found| matches_image(&found, image)))
    }

    fn target(&self) -> Result<String, SinkError> {
        Ok(self.engine.info()?.id)
    }

    fn load(
        &self,
        bundle: &VerifiedBundle,
        progress: &dyn Progress,
    ) -> Result<LoadReport, SinkError> {
        let images = &bundle.manifest().images;
        let mut present = Vec::with_capacity(images.len());
        for image in images {
            present.push(self.find(image)?.is_some());
        }
        if present.iter().any(|p| !p) {
            self.send(bundle, progress)?;
        }

        let mut report = LoadReport::default();
        for (image, already_present) in images.iter().zip(present) {
            let found = self.find(image)?.ok_or_else(|| SinkError::Mismatch {
                reference: image
                    .refs
                    .first()
                    .map_or_else(String::new, |r| r.given.clone()),
                expected: image.config.digest.clone(),
                found: "missing".into(),
            })?;
            let mut loaded = LoadedImage {
                tags: Vec::new(),
                untaggable: Vec::new(),
                id: found.id.clone(),
                config: image.config.digest.clone(),
                already_present,
            };
            for reference in &image.refs {
                let Some((repo, tag)) = reference.repo_and_tag() else {
                    loaded.untaggable.push(reference.given.clone());
                    continue;
                };
                self.engine.tag(found.id.as_str(), &repo, &tag)?;
                confirm(self, image, &reference.given)?;
                loaded.tags.push(reference.given.clone());
            }
            report.images.push(loaded);
        }
        Ok(report)
    }
}

/// The reference must now name exactly the bundle's image.
fn confirm(sink: &DaemonSink, image: &BundleImage, reference: &str) -> Result<(), SinkError> {
    match sink.engine.inspect(reference)? {
        Some(found) if matches_image(&found, image) => Ok(()),
        found => Err(SinkError::Mismatch {
            reference: reference.to_owned(),
            expected: image.config.digest.clone(),
            found: found.map_or_else(|| "missing".into(), |f| f.id.to_string()),
        }),
    }
}
