//! Loads finished images into an engine in one `docker load`, streamed from
//! a second, re-hashing read of the bundle; then tags, then a check that
//! every reference names exactly the bundle's image. It supplies layers
//! from the engine's own images (saved through the API) when asked.

use std::collections::HashSet;
use std::io::Write;
use std::sync::OnceLock;

use crate::bundle::BundleImage;
use crate::delta::finish::FinishedImages;
use crate::digest::Digest;
use crate::display::escape;
use crate::media::docker::engine::{Engine, EngineImage, ImageStore, LoadError};
use crate::media::docker::extract::{ExtractError, LocalImages, extract};
use crate::progress::{Progress, Task};
use crate::store::StagedLayers;

use crate::media::archive::load_tar;
use crate::media::sink::{Holdings, LoadedImage, Sink, SinkError};
use crate::media::source::SourceError;

/// Loads into the engine behind `engine`.
pub struct DaemonSink {
    engine: Engine,
    local: OnceLock<LocalImages>,
}

impl DaemonSink {
    /// A sink writing to `engine`.
    pub fn new(engine: Engine) -> Self {
        Self {
            engine,
            local: OnceLock::new(),
        }
    }

    /// The engine's view of `image`, if it holds exactly that image: same
    /// layers, and an ID that is either the config digest (graph drivers,
    /// Podman) or the bundle's manifest digest (containerd image store).
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

    /// The engine's images with their layers, listed once per unpack.
    fn local(&self) -> Result<&LocalImages, SinkError> {
        if let Some(local) = self.local.get() {
            return Ok(local);
        }
        let local = LocalImages::take(&self.engine).map_err(from_extract)?;
        Ok(self.local.get_or_init(|| local))
    }

    /// The engine's data root must hold the layers about to arrive (twice on
    /// a containerd store: its content store keeps the blobs besides the
    /// unpacked snapshots), where it is on this machine.
    fn check_space(&self, images: &FinishedImages<'_>) -> Result<(), SinkError> {
        let info = self.engine.info()?;
        let Some(root) = &info.local_data_root else {
            return Ok(());
        };
        let copies = if info.store == ImageStore::Containerd {
            2
        } else {
            1
        };
        Ok(crate::files::space::ensure(
            root,
            images.incoming_layer_bytes().saturating_mul(copies),
        )?)
    }

    fn send(&self, images: &FinishedImages<'_>, progress: &dyn Progress) -> Result<(), SinkError> {
        let oci = self.engine.info()?.store != ImageStore::Podman;
        tracing::info!(
            images = images.images().len(),
            "engine: load ({} archive)",
            if oci { "OCI layout" } else { "legacy" }
        );
        let produce = |out: &mut dyn Write| {
            load_tar::write(out, images, oci, progress)?;
            // Every byte is sent; the engine now commits, which takes a
            // while for large layers, with nothing more to count.
            progress.start(Task::Committing, None);
            Ok(())
        };
        let loaded = self.engine.load(produce);
        progress.finish();
        match loaded {
            Ok(messages) => {
                for message in messages {
                    tracing::debug!("engine says: {}", escape(message.trim()));
                }
                Ok(())
            }
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
    fn one_image_per_name(
        &self,
    ) -> Result<Option<crate::media::platform::WantedPlatform>, SinkError> {
        Ok(self.engine.info()?.platform)
    }

    fn holdings(&self, images: &[BundleImage]) -> Result<Holdings, SinkError> {
        let info = self.engine.info()?;
        let mut present = Vec::with_capacity(images.len());
        for image in images {
            let held = self.find(image)?.is_some();
            if let (false, ImageStore::Containerd, Some(native)) =
                (held, info.store, &info.platform)
            {
                if image.refs.is_empty() && !native.accepts(&image.platform) {
                    return Err(SinkError::ForeignUnnamed {
                        platform: image.platform.to_string(),
                        config: image.config.digest.clone(),
                        native: native.to_string(),
                    });
                }
            }
            present.push(held);
        }
        Ok(Holdings {
            target: info.id,
            former_target: info.former_id,
            present,
            takes_absent_layers: info.store.accepts_absent_layers(),
        })
    }

    fn layer_chains(&self) -> Result<Vec<Vec<Digest>>, SinkError> {
        Ok(self.local()?.chains().map(<[Digest]>::to_vec).collect())
    }

    fn supply_layers(
        &self,
        digests: &HashSet<Digest>,
        progress: &dyn Progress,
    ) -> Result<StagedLayers, SinkError> {
        extract(&self.engine, self.local()?, digests, progress).map_err(from_extract)
    }

    fn write(&self, images: &FinishedImages<'_>, progress: &dyn Progress) -> Result<(), SinkError> {
        self.check_space(images)?;
        self.send(images, progress)
    }

    fn resolves(&self, reference: &str, image: &BundleImage) -> Result<bool, SinkError> {
        Ok(self
            .engine
            .inspect(reference)?
            .is_some_and(|found| matches_image(&found, image)))
    }

    fn current_id(&self, reference: &str) -> Result<Option<Digest>, SinkError> {
        Ok(self.engine.inspect(reference)?.map(|found| found.id))
    }

    fn tag(&self, image: &BundleImage, already_present: bool) -> Result<LoadedImage, SinkError> {
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
        let podman = self.engine.info()?.store == ImageStore::Podman;
        for reference in &image.refs {
            let Some((repo, tag)) = reference.repo_and_tag() else {
                loaded.untaggable.push(reference.given.clone());
                continue;
            };
            self.name(&found, image, &reference.given, &repo, &tag)?;
            // Podman names what a load stream names `localhost/NAME` and
            // resolves a short name to that first: the full name (what
            // Docker and the kubelet mean by it) is tagged too, so the
            // reference resolves as written in either spelling.
            if podman {
                if let Some(full_repo) = full_repository(&reference.name) {
                    self.name(&found, image, &reference.name, full_repo, &tag)?;
                }
            }
            loaded.tags.push(reference.given.clone());
        }
        Ok(loaded)
    }
}

impl DaemonSink {
    /// Makes `name` (`repo:tag`) name `image`, then checks it does.
    fn name(
        &self,
        found: &EngineImage,
        image: &BundleImage,
        name: &str,
        repo: &str,
        tag: &str,
    ) -> Result<(), SinkError> {
        // A tag already naming the image is left alone: re-applying
        // a bundle then costs one lookup per tag.
        if self.resolves(name, image)? {
            return Ok(());
        }
        tracing::info!("engine: tag {} as {}", found.id.short(), escape(name));
        self.engine.tag(found.id.as_str(), repo, tag)?;
        if !self.resolves(name, image)? {
            return Err(SinkError::Mismatch {
                reference: name.to_owned(),
                expected: image.config.digest.clone(),
                found: self
                    .engine
                    .inspect(name)?
                    .map_or_else(|| "missing".into(), |f| f.id.to_string()),
            });
        }
        Ok(())
    }
}

/// `registry/repository` of a full `registry/repository:tag` name.
fn full_repository(name: &str) -> Option<&str> {
    let (repository, tag) = name.rsplit_once(':')?;
    (!tag.contains('/') && !name.contains('@')).then_some(repository)
}

/// A failure to take layers from the engine's own images, as the sink's
/// error: the engine's failures stay the engine's.
fn from_extract(error: ExtractError) -> SinkError {
    match error {
        ExtractError::Engine(error) => SinkError::Engine(error),
        ExtractError::Save(error) | ExtractError::InPlace(error) => match *error {
            SourceError::Engine(error) => SinkError::Engine(error),
            other => SinkError::Medium {
                target: "the engine's own images".into(),
                source: Box::new(other),
            },
        },
        ExtractError::Staging(error) => SinkError::Staging(error),
        other => SinkError::Medium {
            target: "the engine's own images".into(),
            source: Box::new(other),
        },
    }
}
