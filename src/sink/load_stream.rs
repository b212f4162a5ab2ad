//! The archive a sink sends to `docker load`: the layout files for just the
//! images to load (generated from the verified manifest), the bundle's blobs
//! those images need (each checked against the manifest as it passes), and any
//! layers rebuilt on this side. Images the engine has are left out, which
//! makes unpack idempotent and an interrupted one finish on rerun.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};

use crate::bundle::layout::layout_entries;
use crate::bundle::{BundleError, BundleImage, Entry, LayerPatch, tar_stream};
use crate::digest::Digest;
use crate::progress::{Progress, Task};
use crate::verify::VerifiedBundle;

use super::SinkError;
use crate::extract::StagedLayers;

/// Writes the load archive for `images` into `out`; without `oci`, only the
/// `docker load` view (Podman 4.3 refuses an OCI layout of several images and
/// names images inconsistently between its two load paths).
pub fn write(
    out: &mut dyn Write,
    bundle: &VerifiedBundle,
    images: &[&BundleImage],
    rebuilt: &StagedLayers,
    oci: bool,
    progress: &dyn Progress,
) -> Result<(), SinkError> {
    let owned: Vec<BundleImage> = images.iter().map(|i| (*i).clone()).collect();
    let layout = layout_entries(&owned);
    for entry in layout.iter().filter(|e| oci || e.path == "manifest.json") {
        tar_stream::append_bytes(out, &entry.path, &entry.bytes).map_err(SinkError::Stream)?;
    }
    let needed: HashSet<String> = images
        .iter()
        .flat_map(|i| [&i.config, &i.manifest].into_iter().chain(&i.layers))
        .map(|blob| blob.digest.blob_path())
        .collect();
    let patches: HashMap<&str, &LayerPatch> = bundle
        .manifest()
        .patches
        .iter()
        .filter(|p| needed.contains(&p.layer.digest.blob_path()))
        .map(|p| (p.entry.as_str(), p))
        .collect();
    bundle.read_entries(
        progress,
        Task::Loading,
        |entry: &Entry, content: &mut dyn Read| {
            if needed.contains(&entry.path) {
                append_entry(out, entry, content)?;
            } else if let Some(patch) = patches.get(entry.path.as_str()) {
                append_patched(out, patch, content, rebuilt)?;
            }
            Ok::<(), SinkError>(())
        },
    )?;
    let mut written: HashSet<&Digest> = HashSet::new();
    for image in images {
        for layer in &image.layers {
            if let Some(staged) = rebuilt.layers.get(&layer.digest) {
                if written.insert(&layer.digest) {
                    let mut file = std::fs::File::open(&staged.path).map_err(SinkError::Stream)?;
                    tar_stream::append(out, &layer.digest.blob_path(), staged.size, &mut file)
                        .map_err(SinkError::Stream)?;
                }
            }
        }
    }
    tar_stream::finish(out).map_err(SinkError::Stream)
}

/// Passes one bundle entry on. A failure to read it means the bundle is
/// damaged (the decompressor failed), a failure to write it that the
/// transfer to the engine broke; each is reported as what it is.
fn append_entry(
    out: &mut dyn Write,
    entry: &Entry,
    content: &mut dyn Read,
) -> Result<(), SinkError> {
    let mut watched = WatchedRead {
        inner: content,
        failed: false,
    };
    tar_stream::append(out, &entry.path, entry.size, &mut watched).map_err(|error| {
        if watched.failed {
            BundleError::Corrupt(error).into()
        } else {
            SinkError::Stream(error)
        }
    })
}

/// A reader that remembers whether it failed.
struct WatchedRead<'a> {
    inner: &'a mut dyn Read,
    failed: bool,
}

impl Read for WatchedRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf);
        self.failed |= read.is_err();
        read
    }
}

/// Rebuilds a patched layer against its base (taken from the engine) into a
/// staged file, checks it is exactly the layer the manifest names, and
/// appends it.
fn append_patched(
    out: &mut dyn Write,
    patch: &LayerPatch,
    content: &mut dyn Read,
    staged: &StagedLayers,
) -> Result<(), SinkError> {
    let base = staged
        .layers
        .get(&patch.base.digest)
        .expect("every patch base was taken from the engine before loading");
    let target = staged
        .dir()
        .join(format!("patched-{}", patch.layer.digest.hex()));
    let mut file = std::fs::File::create(&target).map_err(SinkError::Stream)?;
    let rebuilt = crate::patch::apply(content, &base.path, &mut file);
    let mismatch = || SinkError::PatchMismatch {
        layer: patch.layer.digest.clone(),
    };
    let (digest, size) = rebuilt.map_err(|_| mismatch())?;
    if digest != patch.layer.digest || size != patch.layer.size {
        return Err(mismatch());
    }
    let mut file = std::fs::File::open(&target).map_err(SinkError::Stream)?;
    tar_stream::append(out, &patch.layer.digest.blob_path(), size, &mut file)
        .map_err(SinkError::Stream)?;
    let _ = std::fs::remove_file(&target);
    Ok(())
}
