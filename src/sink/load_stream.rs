//! The archive a sink sends to `docker load`: the layout files for just the
//! images to load (generated from the verified manifest), the bundle's blobs
//! those images need (re-hashed as they are read a second time), and any
//! layers rebuilt on this side. Images the engine has are left out, which
//! makes unpack idempotent and an interrupted one finish on rerun.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};

use crate::bundle::layout::layout_entries;
use crate::bundle::{BundleImage, Entry, LayerPatch, tar_stream};
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
                tar_stream::append(out, &entry.path, entry.size, content)
                    .map_err(SinkError::Stream)?;
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
