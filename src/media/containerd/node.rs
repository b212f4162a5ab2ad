//! What a containerd namespace holds: each image's manifest, config diff
//! IDs and the blobs its layers can be read from. A delta's left-out layers
//! come from here: the blob whose digest is the diff ID (an uncompressed
//! import, as airgap's), else the image's own (compressed) layer blob,
//! decompressed and checked against the diff ID. Blobs are read from the
//! content store's files where this process can (root), which is many times
//! faster than `ctr content get` through containerd's gRPC, else with ctr.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;

use crate::digest::{Digest, HashingWriter};
use crate::image::ConfigSummary;
use crate::store::{StagedLayer, StagedLayers};

use super::ContainerdError;
use super::content::ContentStore;
use super::ctr::{Ctr, Listed};

/// One image manifest the namespace holds, with its content.
#[derive(Clone, Debug)]
pub struct NodeImage {
    /// Every name pointing at it (or at an index holding it).
    pub names: Vec<String>,
    /// Its config digest (the CRI's image ID).
    pub config: Digest,
    /// Its layers' diff IDs, bottom first.
    pub diff_ids: Vec<Digest>,
    /// Its layers' blobs as the manifest lists them, bottom first.
    pub layer_blobs: Vec<Digest>,
    /// The sizes of those blobs, as the manifest states them.
    pub blob_sizes: Vec<u64>,
}

/// The images of a namespace, and which blobs its content store holds.
pub struct Node {
    images: Vec<NodeImage>,
    content: HashSet<Digest>,
}

#[derive(Deserialize)]
struct Descriptor {
    digest: Digest,
    #[serde(default)]
    size: u64,
}

/// The fields of an image manifest or index this reads.
#[derive(Deserialize)]
struct ManifestOrIndex {
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

impl Node {
    /// Reads every image of the namespace whose content is there.
    pub fn read(ctr: &Ctr) -> Result<Self, ContainerdError> {
        let content = ctr.content_digests()?;
        let mut names: HashMap<Digest, Vec<String>> = HashMap::new();
        for Listed { name, target, .. } in ctr.images()? {
            names.entry(target).or_default().push(name);
        }
        let mut images = Vec::new();
        for (target, names) in names {
            if !content.contains(&target) {
                continue;
            }
            let top: ManifestOrIndex = parse(&target, &ctr.small_blob(&target)?)?;
            let manifests = if top.manifests.is_empty() {
                vec![(target.clone(), top)]
            } else {
                // An index (pulled multi-platform images): the platforms whose
                // manifests were fetched.
                let mut children = Vec::new();
                for child in top.manifests.iter().filter(|m| content.contains(&m.digest)) {
                    let parsed = parse(&child.digest, &ctr.small_blob(&child.digest)?)?;
                    children.push((child.digest.clone(), parsed));
                }
                children
            };
            for (_, manifest) in manifests {
                let Some(config) = manifest.config.filter(|c| content.contains(&c.digest)) else {
                    continue;
                };
                let summary =
                    ConfigSummary::parse(&ctr.small_blob(&config.digest)?).map_err(|e| {
                        ContainerdError::Content {
                            digest: config.digest.clone(),
                            reason: format!("not an image config ({e})"),
                        }
                    })?;
                // A manifest whose layers do not match its config's diff IDs
                // one for one cannot be mapped; it is left out.
                if summary.rootfs.diff_ids.len() != manifest.layers.len() {
                    continue;
                }
                images.push(NodeImage {
                    names: names.clone(),
                    config: config.digest,
                    diff_ids: summary.rootfs.diff_ids,
                    blob_sizes: manifest.layers.iter().map(|l| l.size).collect(),
                    layer_blobs: manifest.layers.into_iter().map(|l| l.digest).collect(),
                });
            }
        }
        images.sort_by(|a, b| a.names.cmp(&b.names));
        Ok(Self { images, content })
    }

    /// The images read.
    pub fn images(&self) -> &[NodeImage] {
        &self.images
    }

    /// Each image's layer chain, bottom first, as far as every layer of it
    /// can be read from the content store (a node that discards unpacked
    /// layers holds the snapshots but not the blobs).
    pub fn chains(&self) -> Vec<Vec<Digest>> {
        self.images
            .iter()
            .map(|image| {
                image
                    .diff_ids
                    .iter()
                    .take_while(|diff_id| self.source_of(diff_id).is_some())
                    .cloned()
                    .collect()
            })
            .collect()
    }

    /// The size of each layer the content store holds uncompressed (the
    /// blob is the layer: its digest is the diff ID), as airgap imports
    /// them; a compressed blob does not tell its layer's size.
    pub fn uncompressed_sizes(&self) -> std::collections::BTreeMap<Digest, u64> {
        self.images
            .iter()
            .flat_map(|image| {
                image
                    .diff_ids
                    .iter()
                    .zip(image.layer_blobs.iter().zip(&image.blob_sizes))
            })
            .filter(|(diff_id, (blob, _))| *diff_id == *blob && self.content.contains(*blob))
            .map(|(diff_id, (_, size))| (diff_id.clone(), *size))
            .collect()
    }

    /// The blob layer `diff_id` can be read from.
    fn source_of(&self, diff_id: &Digest) -> Option<Digest> {
        if self.content.contains(diff_id) {
            return Some(diff_id.clone());
        }
        self.images.iter().find_map(|image| {
            image
                .diff_ids
                .iter()
                .zip(&image.layer_blobs)
                .find(|(d, blob)| *d == diff_id && self.content.contains(*blob))
                .map(|(_, blob)| blob.clone())
        })
    }

    /// The size of each layer in `diff_ids`, counted by decompressing its
    /// blob (written nowhere) and checked against its diff ID.
    pub fn count(
        &self,
        ctr: &Ctr,
        diff_ids: &HashSet<Digest>,
    ) -> Result<std::collections::BTreeMap<Digest, u64>, ContainerdError> {
        let files = in_place(ctr);
        let mut sizes = std::collections::BTreeMap::new();
        for diff_id in diff_ids {
            let Some(blob) = self.source_of(diff_id) else {
                continue;
            };
            let (digest, size) = decode_into(ctr, files.as_ref(), &blob, &mut std::io::sink())
                .map_err(|error| match error {
                    StageError::Containerd(error) => error,
                    other => ContainerdError::Content {
                        digest: blob.clone(),
                        reason: other.to_string(),
                    },
                })?;
            if &digest != diff_id {
                return Err(ContainerdError::Content {
                    digest: blob,
                    reason: format!("it does not decompress to layer {diff_id}"),
                });
            }
            sizes.insert(diff_id.clone(), size);
        }
        Ok(sizes)
    }

    /// Stages the layers with these diff IDs from the content store, each
    /// decompressed as needed and checked against its diff ID.
    pub fn stage(&self, ctr: &Ctr, diff_ids: &HashSet<Digest>) -> Result<StagedLayers, StageError> {
        let files = in_place(ctr);
        let mut staged = StagedLayers::none()?;
        for diff_id in diff_ids {
            let blob = self
                .source_of(diff_id)
                .ok_or_else(|| ContainerdError::Content {
                    digest: diff_id.clone(),
                    reason: "the content store holds no blob of this layer".into(),
                })?;
            let path = staged.dir().join(diff_id.hex());
            let (digest, size) = copy_decoded(ctr, files.as_ref(), &blob, &path)?;
            if &digest != diff_id {
                return Err(ContainerdError::Content {
                    digest: blob,
                    reason: format!("it does not decompress to layer {diff_id}"),
                }
                .into());
            }
            staged
                .layers
                .insert(diff_id.clone(), StagedLayer { path, digest, size });
        }
        Ok(staged)
    }
}

/// Why layers could not be staged.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// containerd failed, or holds something else.
    #[error(transparent)]
    Containerd(#[from] ContainerdError),
    /// The staging directory could not be made.
    #[error(transparent)]
    Staging(#[from] crate::store::StagingError),
    /// A layer could not be written into it.
    #[error("writing a layer taken from containerd into the staging directory")]
    Write(#[source] std::io::Error),
}

/// The config digest behind each of `manifests` that is a single-platform
/// image manifest in `ctr`'s content store, each read and checked against
/// its digest; an index, or a manifest it cannot read, is left out.
pub fn manifest_configs<'a>(
    ctr: &Ctr,
    manifests: impl IntoIterator<Item = &'a Digest>,
) -> HashMap<Digest, Digest> {
    let mut configs = HashMap::new();
    for manifest in manifests {
        let read = ctr
            .small_blob(manifest)
            .and_then(|bytes| parse(manifest, &bytes));
        match read {
            Ok(ManifestOrIndex {
                config: Some(config),
                manifests,
                ..
            }) if manifests.is_empty() => {
                configs.insert(manifest.clone(), config.digest);
            }
            Ok(_) => {}
            Err(error) => tracing::debug!("containerd: {manifest} not read: {error}"),
        }
    }
    configs
}

fn parse(digest: &Digest, bytes: &[u8]) -> Result<ManifestOrIndex, ContainerdError> {
    serde_json::from_slice(bytes).map_err(|e| ContainerdError::Content {
        digest: digest.clone(),
        reason: format!("not an image manifest or index ({e})"),
    })
}

/// The content store's files, where this process can read them.
fn in_place(ctr: &Ctr) -> Option<ContentStore> {
    ContentStore::open(ctr)
        .inspect_err(|reason| tracing::debug!("containerd: blobs read with ctr ({reason})"))
        .ok()
}

/// Copies blob `blob`, decompressed, into `path`; returns the digest and
/// size of what was written.
fn copy_decoded(
    ctr: &Ctr,
    files: Option<&ContentStore>,
    blob: &Digest,
    path: &std::path::Path,
) -> Result<(Digest, u64), StageError> {
    let file = std::fs::File::create(path).map_err(StageError::Write)?;
    let mut writer = std::io::BufWriter::new(file);
    let written = decode_into(ctr, files, blob, &mut writer)?;
    std::io::Write::flush(&mut writer).map_err(StageError::Write)?;
    Ok(written)
}

/// Writes blob `blob`, decompressed, into `out` (read from `files` where
/// it is there, else with ctr); returns the digest and size of what was
/// written.
fn decode_into(
    ctr: &Ctr,
    files: Option<&ContentStore>,
    blob: &Digest,
    out: &mut dyn std::io::Write,
) -> Result<(Digest, u64), StageError> {
    let unreadable = |reason: String| ContainerdError::Content {
        digest: blob.clone(),
        reason,
    };
    let file = files
        .map(|files| files.blob(blob))
        .transpose()
        .map_err(|e| unreadable(e.to_string()))?
        .flatten();
    let (input, mut child): (Box<dyn std::io::Read + Send>, _) = match file {
        Some(file) => (Box::new(file), None),
        None => {
            let mut child = ctr.blob_stream(blob)?;
            let stdout = child.stdout.take().expect("stdout is piped");
            (Box::new(stdout), Some(child))
        }
    };
    let mut writer = HashingWriter::new(out);
    let copied = crate::media::compression::decoded(input)
        .and_then(|(_, mut reader)| std::io::copy(&mut reader, &mut writer));
    // ctr is waited for whatever happened, so no process is left behind.
    let status = child.as_mut().map(std::process::Child::wait).transpose();
    copied.map_err(|e| unreadable(format!("cannot be read or decompressed ({e})")))?;
    if let Some(status) = status.map_err(StageError::Write)?
        && !status.success()
    {
        return Err(unreadable(format!("ctr content get exited with {status}")).into());
    }
    let (digest, size, _) = writer.finish();
    Ok((digest, size))
}
