//! The archive a sink sends to `docker load`: the layout files for just the
//! images to load (generated from the verified manifest), then every blob
//! the finished images hand over. Images the engine has are left out, which
//! makes unpack idempotent and an interrupted one finish on rerun.

use std::io::{Read, Write};

use crate::bundle::layout::layout_entries;
use crate::bundle::{BundleImage, tar_stream};
use crate::delta::finish::FinishedImages;
use crate::image::BlobRef;
use crate::progress::Progress;

use crate::media::sink::SinkError;

/// Writes the load archive for `images` into `out`; without `oci`, only the
/// `docker load` view (Podman 4.3 refuses an OCI layout of several images and
/// names images inconsistently between its two load paths).
pub fn write(
    out: &mut dyn Write,
    images: &FinishedImages<'_>,
    oci: bool,
    progress: &dyn Progress,
) -> Result<(), SinkError> {
    let owned: Vec<BundleImage> = images.images().iter().map(|i| (*i).clone()).collect();
    let layout = layout_entries(&owned);
    for entry in layout.iter().filter(|e| oci || e.path == "manifest.json") {
        tar_stream::append_bytes(out, &entry.path, &entry.bytes).map_err(SinkError::Stream)?;
    }
    images.for_each_blob(progress, &mut |blob: &BlobRef, content: &mut dyn Read| {
        tar_stream::append(out, &blob.digest.blob_path(), blob.size, content)
            .map_err(SinkError::Stream)
    })?;
    tar_stream::finish(out).map_err(SinkError::Stream)
}
