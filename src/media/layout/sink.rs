//! An OCI image layout directory as a sink (`unpack --to oci:DIR`): the
//! directory is created, or merged into (blobs already there are not
//! written again, index entries naming the same reference are replaced).
//! A layout holds complete images only, so a delta's left-out layers are
//! taken from the layout's own blobs.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::bundle::BundleImage;
use crate::delta::finish::FinishedImages;
use crate::digest::Digest;
use crate::image::{BlobRef, ImageRef};
use crate::media::sink::{Holdings, LoadedImage, Sink, SinkError};
use crate::media::source::SourceError;
use crate::progress::Progress;
use crate::store::{StagedLayer, StagedLayers};

use super::{LayoutError, LayoutReader, LayoutWriter};

/// Writes images into the OCI image layout at a directory.
pub struct LayoutSink {
    dir: PathBuf,
}

impl LayoutSink {
    /// A sink writing into `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
        }
    }

    /// The layout as it is now; `None` before anything was written.
    fn reader(&self) -> Result<Option<LayoutReader>, SinkError> {
        if !self.dir.join("oci-layout").exists() {
            return Ok(None);
        }
        LayoutReader::open(&self.dir)
            .map(Some)
            .map_err(|error| self.unreadable(error))
    }

    fn unreadable(&self, error: SourceError) -> SinkError {
        self.failed(LayoutError::Malformed {
            path: self.dir.clone(),
            what: "OCI image layout",
            reason: error.to_string(),
        })
    }

    fn failed(&self, error: LayoutError) -> SinkError {
        SinkError::Medium {
            target: format!("oci:{}", self.dir.display()),
            source: Box::new(error),
        }
    }

    /// True when every reference of `image` names its manifest in the
    /// layout and every blob it needs is there.
    fn holds(&self, reader: &LayoutReader, image: &BundleImage) -> Result<bool, SinkError> {
        for reference in image.refs.iter().filter(|r| r.is_taggable()) {
            let named = reader
                .named(reference)
                .map_err(|error| self.unreadable(error))?;
            if named.as_ref() != Some(&image.manifest.digest) {
                return Ok(false);
            }
        }
        Ok(self.has_blobs(image))
    }

    /// True when every blob `image` needs is in the layout, at its size.
    fn has_blobs(&self, image: &BundleImage) -> bool {
        [&image.manifest, &image.config]
            .into_iter()
            .chain(&image.layers)
            .all(|blob| self.has_blob(blob))
    }

    fn has_blob(&self, blob: &BlobRef) -> bool {
        std::fs::symlink_metadata(self.dir.join(blob.digest.blob_path()))
            .is_ok_and(|m| m.is_file() && m.len() == blob.size)
    }
}

impl Sink for LayoutSink {
    fn holdings(&self, images: &[BundleImage]) -> Result<Holdings, SinkError> {
        let present = match self.reader()? {
            Some(reader) => images
                .iter()
                .map(|image| self.holds(&reader, image))
                .collect::<Result<_, _>>()?,
            None => vec![false; images.len()],
        };
        // The record follows the directory, wherever it is named from.
        let dir = std::fs::canonicalize(&self.dir).unwrap_or_else(|_| self.dir.clone());
        Ok(Holdings {
            target: format!("oci-layout:{}", dir.display()),
            former_target: None,
            present,
            takes_absent_layers: false,
        })
    }

    fn layer_chains(&self) -> Result<Vec<Vec<Digest>>, SinkError> {
        let Some(reader) = self.reader()? else {
            return Ok(Vec::new());
        };
        let images = reader.images().map_err(|error| self.unreadable(error))?;
        Ok(images
            .into_iter()
            .map(|image| image.layers.into_iter().map(|l| l.diff_id).collect())
            .collect())
    }

    fn supply_layers(
        &self,
        digests: &HashSet<Digest>,
        _progress: &dyn Progress,
    ) -> Result<StagedLayers, SinkError> {
        let mut staged = StagedLayers::none()?;
        let Some(reader) = self.reader()? else {
            return Ok(staged);
        };
        let images = reader.images().map_err(|error| self.unreadable(error))?;
        for layer in images.iter().flat_map(|i| &i.layers) {
            if !digests.contains(&layer.diff_id) || staged.layers.contains_key(&layer.diff_id) {
                continue;
            }
            let blob = reader
                .open_blob(&layer.blob)
                .map_err(|error| self.unreadable(error))?;
            let path = staged.dir().join(layer.diff_id.hex());
            let stored = crate::store::stage::stage(blob, &path).map_err(SinkError::Stream)?;
            if stored.digest != layer.diff_id {
                return Err(self.unreadable(SourceError::Malformed {
                    reason: format!(
                        "its layer {} decompresses to {}, not to its diff ID",
                        layer.blob.digest, stored.digest
                    ),
                }));
            }
            staged.layers.insert(
                layer.diff_id.clone(),
                StagedLayer {
                    path,
                    digest: stored.digest,
                    size: stored.size,
                },
            );
        }
        Ok(staged)
    }

    fn write(&self, images: &FinishedImages<'_>, progress: &dyn Progress) -> Result<(), SinkError> {
        let mut writer = LayoutWriter::open(&self.dir).map_err(|e| self.failed(e))?;
        images.for_each_blob(progress, &mut |blob: &BlobRef, content| {
            writer
                .put_blob(blob, content)
                .map(|_| ())
                .map_err(|e| self.failed(e))
        })?;
        for image in images.images() {
            writer.add_image(&image.refs, &image.manifest, Some(&image.platform));
        }
        writer.finish().map_err(|e| self.failed(e))
    }

    fn tag(&self, image: &BundleImage, already_present: bool) -> Result<LoadedImage, SinkError> {
        let (taggable, untaggable): (Vec<&ImageRef>, Vec<&ImageRef>) =
            image.refs.iter().partition(|r| r.is_taggable());
        for reference in &taggable {
            if !self.resolves(&reference.given, image)? {
                return Err(SinkError::Mismatch {
                    reference: reference.given.clone(),
                    expected: image.config.digest.clone(),
                    found: "missing".into(),
                });
            }
        }
        Ok(LoadedImage {
            tags: taggable.iter().map(|r| r.given.clone()).collect(),
            untaggable: untaggable.iter().map(|r| r.given.clone()).collect(),
            id: image.manifest.digest.clone(),
            config: image.config.digest.clone(),
            already_present,
        })
    }

    fn resolves(&self, reference: &str, image: &BundleImage) -> Result<bool, SinkError> {
        let Ok(reference) = ImageRef::parse(reference) else {
            return Ok(false);
        };
        let Some(reader) = self.reader()? else {
            return Ok(false);
        };
        let named = reader
            .named(&reference)
            .map_err(|error| self.unreadable(error))?;
        Ok(named.as_ref() == Some(&image.manifest.digest) && self.has_blobs(image))
    }
}
