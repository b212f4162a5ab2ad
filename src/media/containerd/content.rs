//! Docker's containerd image store read where its bytes lie. containerd
//! keeps its content as an OCI layout keeps its blobs (`blobs/sha256/<hex>`),
//! in the directory its content plugin reports. Reading the layers there
//! spares the engine's export, which on that store pushes every byte
//! through containerd's gRPC, dockerd and the engine's API: a core's worth
//! of CPU for as long as the export runs, beside the compression.
//!
//! The store is read as a layout given on the command line is: nothing
//! beneath it is reached through a link, blobs are regular files of the
//! size their manifest states, and every blob is checked against its
//! digest (each layer against its diff ID), so a store another user could
//! write to is trusted no more than any other input.

use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::image::ImageRef;
use crate::media::layout::{LayoutImage, LayoutReader};
use crate::media::source::SourceError;

use super::ContainerdError;
use super::ctr::Ctr;

/// A containerd content store, open for reading.
pub struct ContentStore {
    path: PathBuf,
    reader: LayoutReader,
}

/// Why a content store cannot be read: the image is then exported.
#[derive(Debug, thiserror::Error)]
pub enum Unreadable {
    /// containerd could not be asked where it is.
    #[error(transparent)]
    Containerd(#[from] ContainerdError),
    /// containerd reports no content store.
    #[error("containerd reports no content store")]
    NotReported,
    /// It cannot be opened (most often: only root may).
    #[error(transparent)]
    Open(#[from] SourceError),
}

impl ContentStore {
    /// The content store of the containerd `ctr` talks to.
    pub fn open(ctr: &Ctr) -> Result<Self, Unreadable> {
        let path = ctr.content_root()?.ok_or(Unreadable::NotReported)?;
        let reader = LayoutReader::of_blob_store(&path)?;
        // Opening the root needs only search permission; the blobs need more.
        reader.check_blobs_readable()?;
        Ok(Self { path, reader })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its blobs, to read images from.
    pub fn reader(&self) -> &LayoutReader {
        &self.reader
    }

    /// Blob `digest`'s file; `None` where the store holds no such file.
    pub fn blob(&self, digest: &Digest) -> Result<Option<std::fs::File>, SourceError> {
        match self.reader.blob_size(digest)? {
            Some(size) => self
                .reader
                .open_blob(&crate::image::BlobRef {
                    digest: digest.clone(),
                    size,
                })
                .map(Some),
            None => Ok(None),
        }
    }

    /// The image the manifest or platform index `id` leads to whose layers
    /// are `diff_ids`, named by `refs`, where every blob of it is here;
    /// `None` otherwise. An error is a blob that is not what its digest says.
    pub fn image(
        &self,
        id: &Digest,
        diff_ids: &[Digest],
        refs: &[ImageRef],
    ) -> Result<Option<LayoutImage>, SourceError> {
        let found = self
            .reader
            .images_behind(id)?
            .into_iter()
            .find(|image| image.layers.iter().map(|l| &l.diff_id).eq(diff_ids));
        let Some(mut image) = found else {
            return Ok(None);
        };
        if !self.reader.holds_layers_of(&image)? {
            return Ok(None);
        }
        image.refs = refs.to_vec();
        Ok(Some(image))
    }
}
