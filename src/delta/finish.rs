//! The images a sink is handed: made only from a [`VerifiedBundle`], for
//! the images the target lacks, with every blob they need streamed once —
//! carried ones re-hashed as the bundle is read again, patched layers
//! rebuilt against the target's own base layer and checked, and layers a
//! delta left out taken from the target where it cannot load around them.
//! Whatever the medium, a sink sees complete, checked images.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};

use crate::bundle::{BundleError, BundleImage, Entry, LayerPatch};
use crate::digest::Digest;
use crate::image::BlobRef;
use crate::progress::{Progress, Task};
use crate::store::{StagedLayers, StagingError};
use crate::verify::{VerifiedBundle, VerifyError};

/// Why images could not be finished; a sink's error takes each as its own.
#[derive(Debug)]
pub enum FinishError {
    /// A delta builds on layers the target does not hold.
    BaseMissing {
        /// Each image and the layers it lacks.
        missing: Vec<MissingBase>,
    },
    /// A patch did not rebuild the layer the manifest names.
    PatchMismatch {
        /// The layer.
        layer: Digest,
    },
    /// A staging directory could not be made.
    Staging(StagingError),
    /// A layer staged on this side could not be written or read back.
    Stream(io::Error),
}

/// An image of a delta bundle whose base is not on the engine.
#[derive(Debug, Clone)]
pub struct MissingBase {
    /// The image, as the bundle names it.
    pub image: String,
    /// The left-out layers it needs that the engine lacks as a chain.
    pub layers: Vec<Digest>,
}

/// Each image and the layers it lacks, for a message.
pub fn describe_missing(missing: &[MissingBase]) -> String {
    missing
        .iter()
        .map(|m| {
            let layers: Vec<&str> = m.layers.iter().map(Digest::short).collect();
            format!("{} needs {}", m.image, layers.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// What [`FinishedImages::prepare`] asks of the target, only for a delta.
pub struct Target<'t, E> {
    /// Whether an image may arrive without the layers the target holds.
    pub takes_absent_layers: bool,
    /// The layer chains (bottom first) of every image the target holds.
    pub layer_chains: &'t dyn Fn() -> Result<Vec<Vec<Digest>>, E>,
    /// Stages layers with these digests from the target's own images.
    pub supply_layers: &'t dyn Fn(&HashSet<Digest>) -> Result<StagedLayers, E>,
}

/// Images ready for a sink.
pub struct FinishedImages<'a> {
    bundle: &'a VerifiedBundle,
    images: Vec<&'a BundleImage>,
    supplied: StagedLayers,
}

impl<'a> FinishedImages<'a> {
    /// The images of `bundle` that `holdings` says the target lacks, as
    /// `images` names them (the bundle's images, in its order, perhaps
    /// under new names: a delta's bases are found by layer digests, never
    /// by name). A delta's left-out layers must be on the target, each with
    /// every layer below it (a chain), and a patch's base layer too;
    /// anything lacking is one error naming it all, before the target is
    /// sent anything.
    pub fn prepare<E: From<FinishError>>(
        bundle: &'a VerifiedBundle,
        images: &'a [BundleImage],
        present: &[bool],
        target: &Target<'_, E>,
    ) -> Result<Self, E> {
        // Only names may differ: what a sink is handed stays what was verified.
        assert!(
            images.len() == bundle.manifest().images.len()
                && images
                    .iter()
                    .zip(&bundle.manifest().images)
                    .all(|(named, verified)| same_content(named, verified)),
            "finished images must be the verified bundle's images"
        );
        let images: Vec<&BundleImage> = images
            .iter()
            .zip(present)
            .filter(|(_, present)| !**present)
            .map(|(image, _)| image)
            .collect();
        let needs = Needs::of(bundle, &images);
        if needs.absent.is_empty() && needs.bases.is_empty() {
            return Ok(Self {
                bundle,
                images,
                supplied: StagedLayers::none().map_err(FinishError::Staging)?,
            });
        }
        let chains = (target.layer_chains)()?;
        let missing = needs.missing(bundle, &images, &chains);
        if !missing.is_empty() {
            return Err(FinishError::BaseMissing { missing }.into());
        }
        let mut wanted = needs.bases;
        if !target.takes_absent_layers {
            wanted.extend(needs.absent);
        }
        let supplied = if wanted.is_empty() {
            StagedLayers::none().map_err(FinishError::Staging)?
        } else {
            (target.supply_layers)(&wanted)?
        };
        Ok(Self {
            bundle,
            images,
            supplied,
        })
    }

    /// The images to write, in bundle order.
    pub fn images(&self) -> &[&'a BundleImage] {
        &self.images
    }

    /// The bundle they come from.
    pub fn bundle(&self) -> &'a VerifiedBundle {
        self.bundle
    }

    /// The bytes the images need that are not carried whole, for sizing
    /// the target: carried and patched layers.
    pub fn incoming_layer_bytes(&self) -> u64 {
        let manifest = self.bundle.manifest();
        let carried: HashSet<&str> = manifest.entries.iter().map(|e| e.path.as_str()).collect();
        let patched: HashSet<&Digest> = manifest.patches.iter().map(|p| &p.layer.digest).collect();
        let mut seen = HashSet::new();
        self.images
            .iter()
            .flat_map(|i| &i.layers)
            .filter(|l| seen.insert(&l.digest))
            .filter(|l| {
                carried.contains(l.digest.blob_path().as_str()) || patched.contains(&l.digest)
            })
            .fold(0u64, |total, l| total.saturating_add(l.size))
    }

    /// Hands `write` every blob the images need (configs, manifests,
    /// layers), each once, in the order the bundle holds them and then the
    /// layers taken from the target. A carried blob is checked against the
    /// manifest as it streams: a failure to read it is a damaged bundle,
    /// any other failure is the sink's own.
    pub fn for_each_blob<E>(
        &self,
        progress: &dyn Progress,
        write: &mut dyn FnMut(&BlobRef, &mut dyn Read) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<FinishError> + From<VerifyError> + From<BundleError>,
    {
        let needed: HashMap<String, BlobRef> = self
            .images
            .iter()
            .flat_map(|i| [&i.config, &i.manifest].into_iter().chain(&i.layers))
            .map(|blob| (blob.digest.blob_path(), blob.clone()))
            .collect();
        let patches: HashMap<&str, &LayerPatch> = self
            .bundle
            .manifest()
            .patches
            .iter()
            .filter(|p| needed.contains_key(&p.layer.digest.blob_path()))
            .map(|p| (p.entry.as_str(), p))
            .collect();
        let mut sent: HashSet<Digest> = HashSet::new();
        self.bundle.read_entries(
            progress,
            Task::Loading,
            |entry: &Entry, content: &mut dyn Read| {
                if let Some(blob) = needed.get(&entry.path) {
                    sent.insert(blob.digest.clone());
                    pass_on(blob, content, write)
                } else if let Some(patch) = patches.get(entry.path.as_str()) {
                    sent.insert(patch.layer.digest.clone());
                    self.rebuild(patch, content, write)
                } else {
                    Ok(())
                }
            },
        )?;
        for layer in self.images.iter().flat_map(|i| &i.layers) {
            let Some(staged) = self.supplied.layers.get(&layer.digest) else {
                continue;
            };
            if sent.insert(layer.digest.clone()) {
                let mut file = std::fs::File::open(&staged.path).map_err(FinishError::Stream)?;
                write(layer, &mut file)?;
            }
        }
        Ok(())
    }

    /// Rebuilds a patched layer against its base (taken from the target)
    /// into a staged file, checks it is exactly the layer the manifest
    /// names, and hands it on.
    fn rebuild<E: From<FinishError>>(
        &self,
        patch: &LayerPatch,
        content: &mut dyn Read,
        write: &mut dyn FnMut(&BlobRef, &mut dyn Read) -> Result<(), E>,
    ) -> Result<(), E> {
        let base = self
            .supplied
            .layers
            .get(&patch.base.digest)
            .expect("every patch base was taken from the target before writing");
        let target = self
            .supplied
            .dir()
            .join(format!("patched-{}", patch.layer.digest.hex()));
        let mut file = std::fs::File::create(&target).map_err(FinishError::Stream)?;
        let rebuilt = super::patch::apply(content, &base.path, &mut file);
        let mismatch = || FinishError::PatchMismatch {
            layer: patch.layer.digest.clone(),
        };
        let (digest, size) = rebuilt.map_err(|_| mismatch())?;
        if digest != patch.layer.digest || size != patch.layer.size {
            return Err(mismatch().into());
        }
        let mut file = std::fs::File::open(&target).map_err(FinishError::Stream)?;
        let handed = write(&patch.layer, &mut file);
        let _ = std::fs::remove_file(&target);
        handed
    }
}

fn same_content(a: &BundleImage, b: &BundleImage) -> bool {
    a.manifest == b.manifest
        && a.config == b.config
        && a.layers == b.layers
        && a.platform == b.platform
}

/// What the images need that the bundle does not carry whole.
struct Needs {
    carried: Carried,
    /// Layers left out by a delta.
    absent: HashSet<Digest>,
    /// Base layers patches are applied to.
    bases: HashSet<Digest>,
}

impl Needs {
    fn of(bundle: &VerifiedBundle, images: &[&BundleImage]) -> Self {
        let manifest = bundle.manifest();
        let used: HashSet<&Digest> = images
            .iter()
            .flat_map(|i| &i.layers)
            .map(|l| &l.digest)
            .collect();
        let carried = Carried::of(bundle);
        let absent = used
            .iter()
            .filter(|d| carried.lacks(d))
            .map(|d| (*d).clone())
            .collect();
        let bases = manifest
            .patches
            .iter()
            .filter(|p| used.contains(&p.layer.digest))
            .map(|p| p.base.digest.clone())
            .collect();
        Self {
            carried,
            absent,
            bases,
        }
    }

    /// Each image's left-out layers the target does not hold as a chain,
    /// and patch bases it does not hold at all.
    fn missing(
        &self,
        bundle: &VerifiedBundle,
        images: &[&BundleImage],
        chains: &[Vec<Digest>],
    ) -> Vec<MissingBase> {
        let has_chain = |chain: &[Digest]| chains.iter().any(|c| c.starts_with(chain));
        let has_layer = |layer: &Digest| chains.iter().any(|c| c.contains(layer));
        let mut missing = Vec::new();
        for image in images {
            let mut lacking = Vec::new();
            if let Some(last) = image
                .layers
                .iter()
                .rposition(|l| self.carried.lacks(&l.digest))
            {
                let chain: Vec<Digest> = image.layers[..=last]
                    .iter()
                    .map(|l| l.digest.clone())
                    .collect();
                if !has_chain(&chain) {
                    lacking.extend(chain.into_iter().filter(|d| self.carried.lacks(d)));
                }
            }
            for patch in bundle
                .manifest()
                .patches
                .iter()
                .filter(|p| image.layers.iter().any(|l| l.digest == p.layer.digest))
            {
                if !has_layer(&patch.base.digest) {
                    lacking.push(patch.base.digest.clone());
                }
            }
            if !lacking.is_empty() {
                missing.push(MissingBase {
                    image: image
                        .refs
                        .first()
                        .map_or_else(|| image.config.digest.to_string(), |r| r.given.clone()),
                    layers: lacking,
                });
            }
        }
        missing
    }
}

/// What the bundle carries, whole or as patches.
struct Carried {
    paths: HashSet<String>,
    patched: HashSet<Digest>,
}

impl Carried {
    fn of(bundle: &VerifiedBundle) -> Self {
        let manifest = bundle.manifest();
        Self {
            paths: manifest.entries.iter().map(|e| e.path.clone()).collect(),
            patched: manifest
                .patches
                .iter()
                .map(|p| p.layer.digest.clone())
                .collect(),
        }
    }

    /// A layer neither carried nor patched: a delta left it out.
    fn lacks(&self, digest: &Digest) -> bool {
        !self.paths.contains(&digest.blob_path()) && !self.patched.contains(digest)
    }
}

/// Passes one carried blob on. A failure to read it means the bundle is
/// damaged (the decompressor or the digest check failed), a failure to
/// write it that the transfer to the target broke; each is reported as what
/// it is.
fn pass_on<E: From<BundleError>>(
    blob: &BlobRef,
    content: &mut dyn Read,
    write: &mut dyn FnMut(&BlobRef, &mut dyn Read) -> Result<(), E>,
) -> Result<(), E> {
    let mut watched = WatchedRead {
        inner: content,
        failure: None,
    };
    let handed = write(blob, &mut watched);
    match (handed, watched.failure) {
        (Err(_), Some(failure)) => Err(BundleError::Corrupt(failure).into()),
        (handed, _) => handed,
    }
}

/// A reader that keeps its first failure.
struct WatchedRead<'a> {
    inner: &'a mut dyn Read,
    failure: Option<io::Error>,
}

impl Read for WatchedRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf);
        if let Err(error) = &read {
            if self.failure.is_none() {
                self.failure = Some(io::Error::new(error.kind(), error.to_string()));
            }
        }
        read
    }
}
