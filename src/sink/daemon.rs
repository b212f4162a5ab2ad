//! Loads a verified bundle into an engine: only the images it lacks, in one
//! `docker load` streamed from a second, re-hashing read of the bundle; then
//! tags, then a check that every reference names exactly the bundle's image.
//! For a delta bundle it first checks the engine holds the layers the bundle
//! builds on, and rebuilds them from the engine where its store cannot load
//! an archive that leaves them out.

use std::collections::HashSet;
use std::io::Write;

use crate::bundle::BundleImage;
use crate::digest::Digest;
use crate::engine::{Engine, EngineImage, ImageStore, LoadError};
use crate::progress::Progress;
use crate::verify::VerifiedBundle;

use super::{LoadReport, LoadedImage, MissingBase, Sink, SinkError, load_stream};
use crate::extract::{LocalImages, StagedLayers, extract};

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

    /// Layers of `images` the bundle does not carry must already be on the
    /// engine, each with every layer below it (a chain); where the engine
    /// cannot load around absent layers, they are taken from its images.
    /// Patched layers need their base layer, always taken from the engine.
    fn prepare_absent(
        &self,
        bundle: &VerifiedBundle,
        images: &[&BundleImage],
        progress: &dyn Progress,
    ) -> Result<StagedLayers, SinkError> {
        let manifest = bundle.manifest();
        let carried: HashSet<&str> = manifest.entries.iter().map(|e| e.path.as_str()).collect();
        let patched: HashSet<&Digest> = manifest.patches.iter().map(|p| &p.layer.digest).collect();
        let is_absent = |digest: &Digest| {
            !carried.contains(digest.blob_path().as_str()) && !patched.contains(digest)
        };
        let used: HashSet<&Digest> = images
            .iter()
            .flat_map(|i| &i.layers)
            .map(|l| &l.digest)
            .collect();
        let absent: HashSet<Digest> = used
            .iter()
            .filter(|d| is_absent(d))
            .map(|d| (*d).clone())
            .collect();
        let bases: HashSet<Digest> = manifest
            .patches
            .iter()
            .filter(|p| used.contains(&p.layer.digest))
            .map(|p| p.base.digest.clone())
            .collect();
        if absent.is_empty() && bases.is_empty() {
            return Ok(StagedLayers::none()?);
        }
        let local = LocalImages::take(&self.engine)?;
        let mut missing = Vec::new();
        for image in images {
            let name = image
                .refs
                .first()
                .map_or_else(|| image.config.digest.to_string(), |r| r.given.clone());
            let mut lacking = Vec::new();
            if let Some(last) = image.layers.iter().rposition(|l| is_absent(&l.digest)) {
                let chain: Vec<Digest> = image.layers[..=last]
                    .iter()
                    .map(|l| l.digest.clone())
                    .collect();
                if !local.has_chain(&chain) {
                    lacking.extend(chain.into_iter().filter(|d| is_absent(d)));
                }
            }
            for patch in manifest
                .patches
                .iter()
                .filter(|p| image.layers.iter().any(|l| l.digest == p.layer.digest))
            {
                if !local.has_layer(&patch.base.digest) {
                    lacking.push(patch.base.digest.clone());
                }
            }
            if !lacking.is_empty() {
                missing.push(MissingBase {
                    image: name,
                    layers: lacking,
                });
            }
        }
        if !missing.is_empty() {
            return Err(SinkError::BaseMissing { missing });
        }
        let mut wanted = bases;
        if !self.engine.info()?.store.accepts_absent_layers() {
            wanted.extend(absent);
        }
        Ok(extract(&self.engine, &local, &wanted, progress)?)
    }

    /// The engine's data root must hold the layers about to arrive (twice on
    /// a containerd store: its content store keeps the blobs besides the
    /// unpacked snapshots), where it is on this machine.
    fn check_space(
        &self,
        bundle: &VerifiedBundle,
        images: &[&BundleImage],
    ) -> Result<(), SinkError> {
        let info = self.engine.info()?;
        let Some(root) = &info.local_data_root else {
            return Ok(());
        };
        let mut layers: Vec<&crate::image::BlobRef> =
            images.iter().flat_map(|i| &i.layers).collect();
        layers.sort_by(|a, b| a.digest.cmp(&b.digest));
        layers.dedup_by(|a, b| a.digest == b.digest);
        let incoming = bundle
            .manifest()
            .entries
            .iter()
            .map(|e| e.path.as_str())
            .collect::<HashSet<_>>();
        let patched: HashSet<&Digest> = bundle
            .manifest()
            .patches
            .iter()
            .map(|p| &p.layer.digest)
            .collect();
        let size: u64 = layers
            .iter()
            .filter(|l| {
                incoming.contains(l.digest.blob_path().as_str()) || patched.contains(&l.digest)
            })
            .fold(0u64, |total, l| total.saturating_add(l.size));
        let copies = if info.store == ImageStore::Containerd {
            2
        } else {
            1
        };
        Ok(crate::space::ensure(root, size.saturating_mul(copies))?)
    }

    fn send(
        &self,
        bundle: &VerifiedBundle,
        images: &[&BundleImage],
        rebuilt: &StagedLayers,
        progress: &dyn Progress,
    ) -> Result<(), SinkError> {
        let oci = self.engine.info()?.store != ImageStore::Podman;
        let produce =
            |out: &mut dyn Write| load_stream::write(out, bundle, images, rebuilt, oci, progress);
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
        let wanted: Vec<&BundleImage> = images
            .iter()
            .zip(&present)
            .filter(|(_, p)| !**p)
            .map(|(i, _)| i)
            .collect();
        if !wanted.is_empty() {
            self.check_space(bundle, &wanted)?;
            let rebuilt = self.prepare_absent(bundle, &wanted, progress)?;
            self.send(bundle, &wanted, &rebuilt, progress)?;
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
                // A tag already naming the image is left alone: re-applying
                // a bundle then costs one lookup per tag.
                if self.resolves(&reference.given, image)? {
                    loaded.tags.push(reference.given.clone());
                    continue;
                }
                self.engine.tag(found.id.as_str(), &repo, &tag)?;
                if !self.resolves(&reference.given, image)? {
                    return Err(SinkError::Mismatch {
                        reference: reference.given.clone(),
                        expected: image.config.digest.clone(),
                        found: self
                            .engine
                            .inspect(&reference.given)?
                            .map_or_else(|| "missing".into(), |f| f.id.to_string()),
                    });
                }
                loaded.tags.push(reference.given.clone());
            }
            report.images.push(loaded);
        }
        Ok(report)
    }
}
