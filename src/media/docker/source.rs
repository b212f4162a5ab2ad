//! Images from a running engine: looked up with inspect, exported with one
//! `docker save` request, and read as it streams by the archive reader.

use std::collections::HashSet;

use crate::bundle::SourceInfo;
use crate::digest::Digest;
use crate::display::{escape, escape_all};
use crate::image::{ImageRecord, ImageRef};
use crate::media::docker::engine::{Engine, EngineImage, ImageStore};
use crate::media::docker::extract::{ExtractError, LocalImages, extract};
use crate::progress::{Progress, StartOnFirstByte, Task};
use crate::store::StagedLayers;

use crate::media::archive::{self, Identity, WantedImage};
use crate::media::source::{LayerSink, ResolvedImage, Source, SourceError};

/// Images from the engine behind `engine`.
pub struct DaemonSource {
    engine: Engine,
}

impl DaemonSource {
    /// A source reading from `engine`.
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }

    /// The engine images come from.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Inspects every reference; one error names all that are missing.
    fn inspect_all(&self, refs: &[ImageRef]) -> Result<Vec<(ImageRef, EngineImage)>, SourceError> {
        let given: Vec<&str> = refs.iter().map(|r| r.given.as_str()).collect();
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for (reference, image) in refs.iter().zip(self.engine.inspect_many(&given)?) {
            match image {
                Some(image) => found.push((reference.clone(), image)),
                None => missing.push(self.explain_missing(reference)?),
            }
        }
        if missing.is_empty() {
            Ok(found)
        } else {
            Err(SourceError::Missing { refs: missing })
        }
    }
}

impl DaemonSource {
    /// A missing reference as given; one named without a tag also says
    /// that `:latest` was assumed and which tags of it the engine holds,
    /// since the operator most likely meant one of those.
    fn explain_missing(&self, reference: &ImageRef) -> Result<String, SourceError> {
        let given = reference.given.clone();
        let Some((repository, _)) = reference.repo_and_tag().filter(|_| reference.tag_assumed())
        else {
            return Ok(given);
        };
        let tags = self.engine.repository_tags(&repository)?;
        let held = if tags.is_empty() {
            format!("the engine holds no tag of {repository}")
        } else {
            format!("the engine holds {}", tags.join(", "))
        };
        Ok(format!(
            "{given} (no tag given, so :latest was assumed; {held})"
        ))
    }

    /// Pulls, through the engine, every reference it lacks; returns those pulled.
    pub fn pull_missing(
        &self,
        refs: &[ImageRef],
        progress: &dyn Progress,
    ) -> Result<Vec<String>, SourceError> {
        let mut pulled = Vec::new();
        for reference in refs {
            if self.engine.inspect(&reference.given)?.is_none() {
                tracing::info!("engine: pull {} (not held)", escape(&reference.name));
                progress.start(Task::Saving, None);
                let result = self.engine.pull(&reference.name);
                progress.finish();
                result?;
                pulled.push(reference.given.clone());
            }
        }
        Ok(pulled)
    }
}

impl Source for DaemonSource {
    fn describe(&self) -> SourceInfo {
        let info = self.engine.info().ok();
        SourceInfo {
            kind: "docker-engine".into(),
            engine: info.as_ref().map(|i| i.product.clone()),
            api_version: info.map(|i| i.api_version),
        }
    }

    fn reads_from_engine(&self) -> bool {
        true
    }

    fn notes(&self, refs: &[ImageRef]) -> Result<Vec<String>, SourceError> {
        if self.engine.info()?.store != ImageStore::Podman {
            return Ok(Vec::new());
        }
        let mut notes = Vec::new();
        for reference in refs {
            let Some(local) = reference.podman_local() else {
                continue;
            };
            let Some(image) = self.engine.inspect(&reference.given)? else {
                continue;
            };
            // Podman resolved the short name to its own local name.
            let named = |name: &str| image.repo_tags.iter().any(|t| t == name);
            if named(&local.name) && !named(&reference.name) {
                notes.push(format!(
                    "{} is Podman's {}; it arrives as {} ({}), which is what Docker and the kubelet resolve; name it {} to keep Podman's name",
                    reference.given, local.given, reference.given, reference.name, local.given
                ));
            }
        }
        Ok(notes)
    }

    fn resolve(&self, refs: &[ImageRef]) -> Result<Vec<ResolvedImage>, SourceError> {
        let mut resolved: Vec<ResolvedImage> = Vec::new();
        for (reference, image) in self.inspect_all(refs)? {
            match resolved
                .iter_mut()
                .find(|r| r.id.as_ref() == Some(&image.id))
            {
                Some(existing) => existing.refs.push(reference),
                None => resolved.push(ResolvedImage {
                    refs: vec![reference],
                    id: Some(image.id),
                    layers: Some(image.diff_ids),
                }),
            }
        }
        Ok(resolved)
    }

    fn layer_sizes(&self, image: &ResolvedImage) -> Result<Option<Vec<u64>>, SourceError> {
        let (Some(reference), Some(layers)) = (image.refs.first(), &image.layers) else {
            return Ok(None);
        };
        Ok(self.engine.layer_sizes(&reference.given, layers.len())?)
    }

    fn image_size(&self, image: &ResolvedImage) -> Result<Option<u64>, SourceError> {
        let Some(reference) = image.refs.first() else {
            return Ok(None);
        };
        Ok(self.engine.image_size(&reference.given)?)
    }

    fn supply_layers(
        &self,
        digests: &HashSet<Digest>,
        progress: &dyn Progress,
    ) -> Result<StagedLayers, SourceError> {
        if digests.is_empty() {
            return Ok(StagedLayers::none()?);
        }
        let local = LocalImages::take(&self.engine).map_err(from_extract)?;
        let held: HashSet<Digest> = digests
            .iter()
            .filter(|d| local.has_layer(d))
            .cloned()
            .collect();
        extract(&self.engine, &local, &held, progress).map_err(from_extract)
    }

    fn export(
        &self,
        images: &[ResolvedImage],
        layers: &mut dyn LayerSink,
        progress: &dyn Progress,
    ) -> Result<Vec<ImageRecord>, SourceError> {
        let mut names: Vec<String> = images
            .iter()
            .flat_map(|i| &i.refs)
            .map(|r| r.given.clone())
            .collect();
        names.dedup();
        self.export_saving(images, &names, layers, progress)
    }
}

impl DaemonSource {
    /// Exports `images` with one `docker save` of `names`, which may be
    /// image IDs where the images have no tag on the engine (a snapshot's
    /// temporary image); each record takes its image's references.
    pub fn export_saving(
        &self,
        images: &[ResolvedImage],
        names: &[String],
        layers: &mut dyn LayerSink,
        progress: &dyn Progress,
    ) -> Result<Vec<ImageRecord>, SourceError> {
        let mut wanted: Vec<WantedImage> = Vec::new();
        let mut expected_layers: HashSet<Digest> = HashSet::new();
        for image in images {
            // Resolved here, an image always has both; by name otherwise.
            let identity = match (&image.id, &image.layers) {
                (Some(id), Some(diff_ids)) => {
                    expected_layers.extend(diff_ids.iter().cloned());
                    Identity::Engine {
                        id: id.clone(),
                        diff_ids: diff_ids.clone(),
                    }
                }
                _ => Identity::Tag,
            };
            wanted.push(WantedImage {
                refs: image.refs.clone(),
                identity,
            });
        }
        let total = self.export_size(images);
        tracing::info!(
            "engine: save {} ({})",
            escape_all(names, ", "),
            total.map_or_else(
                || "size unknown".to_owned(),
                |t| format!("about {t} bytes of layers")
            )
        );
        // The engine may stage the whole export before sending a byte
        // (Docker 20.10 does): say so until the first byte arrives.
        progress.start(Task::Preparing, total);
        let staging = layers.staging_dir().to_owned();
        let contents = archive::read_archive(
            StartOnFirstByte::new(self.engine.save(names), progress, Task::Saving, total),
            &staging,
            &expected_layers,
            layers,
            progress,
        );
        tracing::debug!("engine: the export's last byte arrived");
        progress.finish();
        archive::records(&mut contents?, &wanted, layers)
    }
}

impl DaemonSource {
    /// The bytes of the layers `images` hold, each counted once, as the
    /// export carries them; `None` where the engine does not tell a size.
    fn export_size(&self, images: &[ResolvedImage]) -> Option<u64> {
        let mut sizes: std::collections::HashMap<&Digest, u64> = std::collections::HashMap::new();
        for image in images {
            let layers = image.layers.as_ref()?;
            let layer_sizes = self.layer_sizes(image).ok()??;
            sizes.extend(layers.iter().zip(layer_sizes));
        }
        let total: u64 = sizes.values().sum();
        (total > 0).then_some(total)
    }
}

/// A failure to take layers from the engine, as the source's own error.
fn from_extract(error: ExtractError) -> SourceError {
    match error {
        ExtractError::Engine(error) => SourceError::Engine(error),
        ExtractError::Save(error) => *error,
        ExtractError::Staging(error) => SourceError::Staging(error),
        ExtractError::NotFound { layer } => SourceError::Malformed {
            reason: format!("the engine's save did not contain layer {layer}"),
        },
    }
}
