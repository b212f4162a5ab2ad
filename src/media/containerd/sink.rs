//! Writes verified images into a containerd namespace: one `ctr images
//! import` of an uncompressed OCI layout holding only the images it lacks
//! (complete: a delta's left-out layers are taken from the node's own
//! content store first), unpacked by containerd for the snapshotter; then
//! every reference named, every name of the image pinned against the
//! kubelet's garbage collection, and each checked to name the bundle's
//! manifest.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::sync::OnceLock;

use crate::bundle::layout::layout_entries;
use crate::bundle::{BundleImage, tar_stream};
use crate::delta::finish::FinishedImages;
use crate::digest::Digest;
use crate::image::{BlobRef, ImageRef};
use crate::media::sink::{Holdings, LoadedImage, Sink, SinkError};
use crate::progress::Progress;
use crate::store::StagedLayers;

use super::ctr::{Ctr, Listed};
use super::node::{Node, StageError};
use super::{ContainerdAddress, ContainerdError, PIN_LABEL, PIN_VALUE};

/// Imports into one namespace of a containerd.
pub struct ContainerdSink {
    address: ContainerdAddress,
    ctr: Ctr,
    node: OnceLock<Node>,
}

impl ContainerdSink {
    /// A sink writing to the containerd `address` names; its socket is
    /// found now, contacted only when unpack asks what it holds.
    pub fn new(address: &ContainerdAddress) -> Result<Self, ContainerdError> {
        Ok(Self {
            address: address.clone(),
            ctr: Ctr::new(address)?,
            node: OnceLock::new(),
        })
    }

    /// The namespace's images, read once per unpack.
    fn node(&self) -> Result<&Node, ContainerdError> {
        if let Some(node) = self.node.get() {
            return Ok(node);
        }
        let node = Node::read(&self.ctr)?;
        Ok(self.node.get_or_init(|| node))
    }

    /// The record naming `image`'s manifest under `name`, if any.
    fn named<'l>(listed: &'l [Listed], name: &str, image: &BundleImage) -> Option<&'l Listed> {
        listed
            .iter()
            .find(|l| l.name == name && l.target == image.manifest.digest)
    }

    fn pin(&self, listed: &[Listed], image: &BundleImage) -> Result<(), ContainerdError> {
        let pin = format!("{PIN_LABEL}={PIN_VALUE}");
        for record in listed
            .iter()
            .filter(|l| l.target == image.manifest.digest && !l.labels.contains(&pin))
        {
            self.ctr.label(&record.name, PIN_LABEL, PIN_VALUE)?;
        }
        Ok(())
    }
}

impl Sink for ContainerdSink {
    fn holdings(&self, images: &[BundleImage]) -> Result<Holdings, SinkError> {
        let (_, uuid) = self.ctr.server()?;
        // The UUID survives a restart and a moved socket; the socket stands
        // in on a containerd too old to have one.
        let identity = uuid.unwrap_or_else(|| self.ctr.socket().display().to_string());
        let target = format!("containerd {identity} namespace {}", self.ctr.namespace());
        let listed = self.ctr.images()?;
        let present = images
            .iter()
            .map(|image| listed.iter().any(|l| l.target == image.manifest.digest))
            .collect();
        Ok(Holdings {
            target,
            former_target: None,
            present,
            takes_absent_layers: false,
        })
    }

    fn layer_chains(&self) -> Result<Vec<Vec<Digest>>, SinkError> {
        Ok(self.node()?.chains())
    }

    fn supply_layers(
        &self,
        digests: &HashSet<Digest>,
        _progress: &dyn Progress,
    ) -> Result<StagedLayers, SinkError> {
        self.node()?
            .stage(&self.ctr, digests)
            .map_err(|error| match error {
                StageError::Containerd(error) => SinkError::Containerd(error),
                StageError::Staging(error) => SinkError::Staging(error),
                StageError::Write(error) => SinkError::Stream(error),
            })
    }

    fn write(&self, images: &FinishedImages<'_>, progress: &dyn Progress) -> Result<(), SinkError> {
        self.ctr.import(self.address.snapshotter.as_deref(), |out| {
            write_layout(out, images, progress)
        })
    }

    fn tag(&self, image: &BundleImage, already_present: bool) -> Result<LoadedImage, SinkError> {
        let listed = self.ctr.images()?;
        let missing = |reference: &str| SinkError::Mismatch {
            reference: reference.to_owned(),
            expected: image.config.digest.clone(),
            found: "missing".into(),
        };
        let first = image.refs.first().map_or("", |r| r.given.as_str());
        let source = listed
            .iter()
            .find(|l| l.target == image.manifest.digest)
            .ok_or_else(|| missing(first))?;
        let mut tagged = false;
        for reference in &image.refs {
            if Self::named(&listed, &reference.name, image).is_none() {
                self.ctr.tag(&source.name, &reference.name)?;
                tagged = true;
            }
        }
        let listed = if tagged { self.ctr.images()? } else { listed };
        self.pin(&listed, image)?;
        for reference in &image.refs {
            if !self.resolves(&reference.name, image)? {
                return Err(SinkError::Mismatch {
                    reference: reference.given.clone(),
                    expected: image.manifest.digest.clone(),
                    found: self
                        .ctr
                        .images()?
                        .into_iter()
                        .find(|l| l.name == reference.name)
                        .map_or_else(|| "missing".into(), |l| l.target.to_string()),
                });
            }
        }
        Ok(LoadedImage {
            tags: image.refs.iter().map(|r| r.given.clone()).collect(),
            untaggable: Vec::new(),
            // What the kubelet and crictl call the image ID.
            id: image.config.digest.clone(),
            config: image.config.digest.clone(),
            already_present,
        })
    }

    fn resolves(&self, reference: &str, image: &BundleImage) -> Result<bool, SinkError> {
        // containerd knows images by their full names only, as the kubelet asks for them.
        let name = ImageRef::parse(reference).map_or_else(|_| reference.to_owned(), |r| r.name);
        Ok(Self::named(&self.ctr.images()?, &name, image).is_some())
    }
}

/// The OCI layout tar containerd imports: `oci-layout`, an `index.json`
/// naming just these images (by their full names, in the annotation
/// containerd reads) and their blobs. The `docker load` view
/// (`manifest.json`) is left out: ctr 1.6 would import its images too,
/// under Docker media types and other manifest digests.
fn write_layout(
    out: &mut dyn Write,
    images: &FinishedImages<'_>,
    progress: &dyn Progress,
) -> Result<(), SinkError> {
    let owned: Vec<BundleImage> = images.images().iter().map(|i| (*i).clone()).collect();
    for entry in layout_entries(&owned)
        .iter()
        .filter(|e| e.path != "manifest.json")
    {
        tar_stream::append_bytes(out, &entry.path, &entry.bytes).map_err(SinkError::Stream)?;
    }
    images.for_each_blob(progress, &mut |blob: &BlobRef, content: &mut dyn Read| {
        tar_stream::append(out, &blob.digest.blob_path(), blob.size, content)
            .map_err(SinkError::Stream)
    })?;
    tar_stream::finish(out).map_err(SinkError::Stream)
}
