//! Images from a `docker save` archive: a file on disk (this module's
//! [`ArchiveSource`]) or an engine's export stream (the daemon source reuses
//! the same reader, as go-containerregistry's daemon package reuses tarball).

mod catalogue;
mod contents;
pub mod load_tar;
mod scan;

pub use scan::count_layers;
mod source;

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;

use crate::digest::Digest;
use crate::image::{BlobRef, ConfigSummary, ImageRecord, ImageRef};

pub use catalogue::{ArchiveKind, ArchivedImage, Catalogue};
pub use contents::{ArchiveContents, ArchiveFile, read_archive};
pub use source::{ArchiveSource, GivenName, merge_resolved};

use crate::media::source::{LayerSink, Source, SourceError};

/// How to recognise a wanted image in an archive.
#[derive(Clone, Debug)]
pub enum Identity {
    /// By the ID and diff IDs an engine reported for it.
    Engine {
        /// The engine's image ID (config digest, or manifest/index digest).
        id: Digest,
        /// The engine's diff IDs.
        diff_ids: Vec<Digest>,
    },
    /// By a tag in the archive's `manifest.json`.
    Tag,
}

/// An image wanted from an archive, with every reference naming it.
#[derive(Clone, Debug)]
pub struct WantedImage {
    /// The references.
    pub refs: Vec<ImageRef>,
    /// How to find it.
    pub identity: Identity,
}

struct Candidate {
    config: Vec<u8>,
    config_digest: Digest,
    summary: ConfigSummary,
    repo_tags: Vec<String>,
    layer_paths: Vec<String>,
}

/// Builds one record per wanted image from what the archive held, handing
/// any layer still staged to `layers`, and checking every layer against the
/// config's diff IDs. An image whose export lacks a layer is an error.
pub fn records(
    contents: &mut ArchiveContents,
    wanted: &[WantedImage],
    layers: &mut dyn LayerSink,
) -> Result<Vec<ImageRecord>, SourceError> {
    let candidates = candidates(contents)?;
    let mut records: Vec<ImageRecord> = Vec::new();
    for want in wanted {
        let name = want
            .refs
            .first()
            .map_or_else(String::new, |r| r.given.clone());
        let candidate = find(contents, &candidates, want)
            .ok_or_else(|| malformed(format!("the export holds no image for {name}")))?;
        if let Some(record) = records
            .iter_mut()
            .find(|r| r.config_digest == candidate.config_digest)
        {
            record.refs.extend(want.refs.iter().cloned());
            continue;
        }
        let diff_ids = &candidate.summary.rootfs.diff_ids;
        if let Identity::Engine {
            diff_ids: engine_diff_ids,
            ..
        } = &want.identity
        {
            if engine_diff_ids != diff_ids {
                return Err(malformed(format!(
                    "the exported config of {name} lists other layers than the engine reports"
                )));
            }
        }
        if candidate.layer_paths.len() != diff_ids.len() {
            return Err(malformed(format!(
                "{name} has {} layer files for {} diff IDs",
                candidate.layer_paths.len(),
                diff_ids.len()
            )));
        }
        let mut image_layers = Vec::new();
        for (index, (path, diff_id)) in candidate.layer_paths.iter().zip(diff_ids).enumerate() {
            let layer =
                layer(contents, path, layers).ok_or_else(|| SourceError::LayerMissing {
                    image: name.clone(),
                    diff_id: diff_id.clone(),
                })??;
            if &layer.digest != diff_id {
                return Err(SourceError::LayerMismatch {
                    image: name.clone(),
                    index,
                    expected: diff_id.clone(),
                    actual: layer.digest,
                });
            }
            image_layers.push(layer);
        }
        records.push(ImageRecord {
            refs: want.refs.clone(),
            config: candidate.config.clone(),
            config_digest: candidate.config_digest.clone(),
            platform: candidate.summary.platform.clone(),
            layers: image_layers,
        });
    }
    Ok(records)
}

fn candidates(contents: &ArchiveContents) -> Result<Vec<Candidate>, SourceError> {
    contents
        .docker_manifest
        .iter()
        .map(|entry| {
            let Some((_, ArchiveFile::Staged(staged))) = contents.resolve(&entry.config) else {
                return Err(malformed(format!(
                    "config {} is missing from the export",
                    entry.config
                )));
            };
            let config = ArchiveContents::read_staged(staged)?;
            let summary = ConfigSummary::parse(&config).map_err(|e| {
                malformed(format!(
                    "config {} is not an image config: {e}",
                    entry.config
                ))
            })?;
            Ok(Candidate {
                config_digest: Digest::of(&config),
                config,
                summary,
                repo_tags: entry.repo_tags.clone().unwrap_or_default(),
                layer_paths: entry.layers.clone(),
            })
        })
        .collect()
}

fn find<'c>(
    contents: &ArchiveContents,
    candidates: &'c [Candidate],
    want: &WantedImage,
) -> Option<&'c Candidate> {
    match &want.identity {
        Identity::Engine { id, diff_ids } => candidates
            .iter()
            .find(|c| &c.config_digest == id)
            .or_else(|| {
                // Containerd image stores report a manifest or index digest as the ID.
                let configs = configs_behind(contents, id, 0);
                candidates.iter().find(|c| {
                    configs.contains(&c.config_digest) && &c.summary.rootfs.diff_ids == diff_ids
                })
            }),
        Identity::Tag => candidates.iter().find(|c| {
            c.repo_tags
                .iter()
                .filter_map(|tag| ImageRef::parse(tag).ok())
                .any(|tag| want.refs.iter().any(|r| r.name == tag.name))
        }),
    }
}

#[derive(Deserialize)]
struct ManifestOrIndex {
    config: Option<DescriptorDigest>,
    manifests: Option<Vec<DescriptorDigest>>,
}

#[derive(Deserialize)]
struct DescriptorDigest {
    digest: Digest,
}

/// Config digests reachable from the manifest or index blob `digest`.
fn configs_behind(contents: &ArchiveContents, digest: &Digest, depth: usize) -> HashSet<Digest> {
    let mut configs = HashSet::new();
    let Some(staged) = contents.staged_with_digest(digest) else {
        return configs;
    };
    let Ok(bytes) = ArchiveContents::read_staged(staged) else {
        return configs;
    };
    let Ok(parsed) = serde_json::from_slice::<ManifestOrIndex>(&bytes) else {
        return configs;
    };
    if let Some(config) = parsed.config {
        configs.insert(config.digest);
    }
    if depth < 4 {
        for child in parsed.manifests.unwrap_or_default() {
            configs.extend(configs_behind(contents, &child.digest, depth + 1));
        }
    }
    configs
}

/// The layer at `path`, handing it to `layers` first if it is still staged.
fn layer(
    contents: &mut ArchiveContents,
    path: &str,
    layers: &mut dyn LayerSink,
) -> Option<Result<BlobRef, SourceError>> {
    let (resolved, file) = contents.resolve(path)?;
    let resolved = resolved.to_owned();
    Some(match file {
        ArchiveFile::Layer { digest, size } => Ok(BlobRef {
            digest: digest.clone(),
            size: *size,
        }),
        ArchiveFile::Staged(_) => {
            let Some(ArchiveFile::Staged(staged)) = contents.files.remove(&resolved) else {
                unreachable!("resolve just found a staged file at this path")
            };
            contents::hand_over(staged, layers).map(|file| {
                let ArchiveFile::Layer { digest, size } = &file else {
                    unreachable!("hand_over returns a layer")
                };
                let blob = BlobRef {
                    digest: digest.clone(),
                    size: *size,
                };
                contents.mark_handed_over(&resolved, file);
                blob
            })
        }
    })
}

fn malformed(reason: String) -> SourceError {
    SourceError::Malformed { reason }
}

/// The source for an archive the user named: an OCI layout directory is
/// read by the layout medium, anything else (a tar of any kind, plain or
/// compressed, or skopeo's `dir:`) by [`ArchiveSource`], which also packs
/// images under `names` given on the way in (a layout's images have names).
pub fn open_source(
    path: &Path,
    platforms: &[crate::media::platform::WantedPlatform],
    names: &[GivenName],
) -> Box<dyn Source> {
    if path.is_dir() && path.join("oci-layout").exists() {
        tracing::info!("{}: an OCI image layout", crate::display::escape_path(path));
        Box::new(crate::media::layout::LayoutSource::new(path).with_platforms(platforms))
    } else {
        tracing::info!(
            "{}: read as an image archive",
            crate::display::escape_path(path)
        );
        Box::new(ArchiveSource::with_platforms(path, platforms).with_names(names))
    }
}
