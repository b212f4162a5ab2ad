//! The images an archive holds, from its metadata alone: `manifest.json`
//! (`docker save`, Podman and skopeo `docker-archive`), the OCI index
//! (Docker 25+, the containerd store, `oci-archive`), or skopeo's `dir:`.
//! The same image found both ways is one entry; platforms whose blobs are
//! absent and attestation manifests are left out.

use oci_spec::image::{ImageIndex, ImageManifest};

use crate::bundle::layout::DockerLoadEntry;
use crate::digest::Digest;
use crate::image::{BlobRef, ConfigSummary, ImageRef, Platform};
use crate::media::layout::dir::LayoutDir;
use crate::media::layout::{self, IndexedImage, MetadataBlobs};
use crate::media::source::SourceError;

use super::scan::{METADATA_LIMIT, Scanned, WantedLayer};

/// The kinds of archive told apart, for the bundle's source record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveKind {
    /// `manifest.json` only (Docker ≤ 24, Podman, skopeo `docker-archive`).
    DockerArchive,
    /// An OCI layout with `manifest.json` (Docker 25+, the containerd store).
    DockerOciArchive,
    /// An OCI layout without `manifest.json` (`oci-archive`).
    OciArchive,
    /// skopeo's `dir:` directory.
    SkopeoDir,
}

impl ArchiveKind {
    /// The name the bundle records.
    pub fn name(self) -> &'static str {
        match self {
            Self::DockerArchive | Self::DockerOciArchive => "docker-archive",
            Self::OciArchive => "oci-archive",
            Self::SkopeoDir => "dir",
        }
    }
}

/// Every image of one archive.
#[derive(Debug)]
pub struct Catalogue {
    /// What the archive is.
    pub kind: ArchiveKind,
    /// Its images.
    pub images: Vec<ArchivedImage>,
}

/// One image of an archive.
#[derive(Clone, Debug)]
pub struct ArchivedImage {
    /// Full references naming it.
    pub refs: Vec<ImageRef>,
    /// Names that are only a tag (an `oci-archive:F:TAG`'s).
    pub tags_only: Vec<String>,
    /// The exact config bytes.
    pub config: Vec<u8>,
    /// Their digest: the image ID.
    pub config_digest: Digest,
    /// From the config.
    pub platform: Platform,
    /// The platform index it belongs to, if any (`--platform` picks).
    pub platform_index: Option<Digest>,
    /// Layers, bottom first.
    pub layers: Vec<ArchivedLayer>,
}

/// Where a layer is in the archive.
#[derive(Clone, Debug)]
pub struct ArchivedLayer {
    /// Its normalised path (links followed); `None` where the archive
    /// lacks it (moby issue 49473: a save that leaves layers out), which
    /// fails the export of the image.
    pub path: Option<String>,
    /// Its size as stored.
    pub size: u64,
    /// What pass 2 needs to deliver and check it.
    pub wanted: WantedLayer,
}

impl ArchivedImage {
    /// The names the catalogue shows for it.
    pub fn shown_refs(&self) -> Vec<String> {
        let mut shown: Vec<String> = self.refs.iter().map(|r| r.given.clone()).collect();
        shown.extend(self.tags_only.iter().map(|t| format!("(tag only) {t}")));
        shown
    }
}

/// The catalogue of a scanned tar.
pub fn of_tar(scanned: &Scanned) -> Result<Catalogue, SourceError> {
    let docker = scanned.metadata("manifest.json")?;
    let index = if scanned.resolve("oci-layout").is_some() {
        scanned.metadata("index.json")?
    } else {
        None
    };
    let kind = match (docker.is_some(), index.is_some()) {
        (true, false) => ArchiveKind::DockerArchive,
        (true, true) => ArchiveKind::DockerOciArchive,
        (false, true) => ArchiveKind::OciArchive,
        (false, false) => {
            return Err(malformed(
                "it has neither manifest.json nor an OCI index.json: it is not an image archive (docker save, podman save, skopeo copy)".into(),
            ));
        }
    };
    let mut images = Vec::new();
    if let Some(bytes) = docker {
        let entries: Vec<DockerLoadEntry> =
            serde_json::from_slice(bytes).map_err(|e| malformed(format!("manifest.json: {e}")))?;
        for entry in &entries {
            if let Some(image) = docker_image(scanned, entry)? {
                merge(&mut images, image);
            }
        }
    }
    if let Some(bytes) = index {
        let index: ImageIndex =
            serde_json::from_slice(bytes).map_err(|e| malformed(format!("index.json: {e}")))?;
        for indexed in layout::index_images(&index, &TarBlobs(scanned))? {
            if let Some(image) = indexed_image(indexed, |blob| {
                let path = blob.digest.blob_path();
                scanned.files.get(&path).map(|size| (path, *size))
            }) {
                merge(&mut images, image);
            }
        }
    }
    Ok(Catalogue { kind, images })
}

/// The image a `manifest.json` entry describes; `None` where a layer is absent.
fn docker_image(
    scanned: &Scanned,
    entry: &DockerLoadEntry,
) -> Result<Option<ArchivedImage>, SourceError> {
    let config = scanned.metadata(&entry.config)?.ok_or_else(|| {
        malformed(format!(
            "config {} is missing from the archive",
            entry.config
        ))
    })?;
    let summary = ConfigSummary::parse(config).map_err(|e| {
        malformed(format!(
            "config {} is not an image config: {e}",
            entry.config
        ))
    })?;
    let diff_ids = &summary.rootfs.diff_ids;
    if entry.layers.len() != diff_ids.len() {
        return Err(malformed(format!(
            "config {} lists {} diff IDs for {} layer files",
            entry.config,
            diff_ids.len(),
            entry.layers.len()
        )));
    }
    let mut layers = Vec::new();
    for (path, diff_id) in entry.layers.iter().zip(diff_ids) {
        let found = scanned.resolve(path);
        layers.push(ArchivedLayer {
            path: found.map(str::to_owned),
            size: found.map_or(0, |found| scanned.files[found]),
            wanted: WantedLayer {
                diff_id: diff_id.clone(),
                named: found
                    .and_then(|found| found.strip_prefix("blobs/sha256/"))
                    .and_then(|hex| Digest::from_hex(hex).ok()),
            },
        });
    }
    let refs = entry
        .repo_tags
        .iter()
        .flatten()
        .filter_map(|tag| ImageRef::parse(tag).ok())
        .collect();
    Ok(Some(ArchivedImage {
        refs,
        tags_only: Vec::new(),
        config_digest: Digest::of(config),
        config: config.to_vec(),
        platform: summary.platform,
        platform_index: None,
        layers,
    }))
}

/// An image from the OCI index, its layers found by `locate` (path and
/// stored size); `None` for a platform of a multi-platform image whose
/// layers are absent (one not saved).
fn indexed_image(
    indexed: IndexedImage,
    locate: impl Fn(&BlobRef) -> Option<(String, u64)>,
) -> Option<ArchivedImage> {
    let mut refs = Vec::new();
    let mut tags_only = Vec::new();
    if let Some(full) = indexed
        .full_name
        .as_deref()
        .and_then(|n| ImageRef::parse(n).ok())
    {
        refs.push(full);
    }
    if let Some(name) = indexed.ref_name {
        // A tag alone has no `/` or `:`; it parses as a repository name,
        // which it is not.
        let full = (name.contains(['/', ':', '@']))
            .then(|| ImageRef::parse(&name).ok())
            .flatten();
        match full {
            Some(full) if refs.iter().any(|r| r.name == full.name) => {}
            Some(full) => refs.push(full),
            None if refs.is_empty() => tags_only.push(name),
            None => {}
        }
    }
    let mut layers = Vec::new();
    for layer in &indexed.image.layers {
        let found = locate(&layer.blob);
        if found.is_none() && indexed.platform_index.is_some() {
            return None;
        }
        let (path, size) = found.map_or((None, 0), |(path, size)| (Some(path), size));
        layers.push(ArchivedLayer {
            path,
            size,
            wanted: WantedLayer {
                diff_id: layer.diff_id.clone(),
                named: Some(layer.blob.digest.clone()),
            },
        });
    }
    Some(ArchivedImage {
        refs,
        tags_only,
        config: indexed.image.config,
        config_digest: indexed.image.config_digest,
        platform: indexed.image.platform,
        platform_index: indexed.platform_index,
        layers,
    })
}

/// Adds `image`, or its names to the entry with the same config.
fn merge(images: &mut Vec<ArchivedImage>, image: ArchivedImage) {
    match images
        .iter_mut()
        .find(|i| i.config_digest == image.config_digest)
    {
        Some(known) => {
            for reference in image.refs {
                if !known.refs.iter().any(|r| r.name == reference.name) {
                    known.refs.push(reference);
                }
            }
            for tag in image.tags_only {
                if known.refs.is_empty() && !known.tags_only.contains(&tag) {
                    known.tags_only.push(tag);
                }
            }
            known.platform_index = known.platform_index.take().or(image.platform_index);
        }
        None => images.push(image),
    }
}

/// The OCI blobs pass 1 kept.
struct TarBlobs<'s>(&'s Scanned);

impl MetadataBlobs for TarBlobs<'_> {
    fn metadata(&self, blob: &BlobRef) -> Result<Option<Vec<u8>>, SourceError> {
        match self.0.metadata(&blob.digest.blob_path())? {
            Some(bytes) => layout::checked(bytes.to_vec(), blob).map(Some),
            None => Ok(None),
        }
    }
}

/// The `version` file of skopeo's `dir:` transport.
const DIR_VERSION: &str = "Directory Transport Version: 1.";

/// The catalogue of skopeo's `dir:` directory: one image, unnamed.
pub fn of_skopeo_dir(dir: &LayoutDir) -> Result<Catalogue, SourceError> {
    let shown = dir.path().display().to_string();
    let read = |name: &str, what: &str| {
        dir.read_file(name, METADATA_LIMIT, what)
            .map_err(|e| malformed(format!("{shown}/{name}: {e}")))
    };
    if !dir.exists("version") {
        return Err(malformed(format!(
            "{shown} is a directory but neither an OCI image layout (it has no oci-layout file) nor skopeo's dir: (it has no version file)"
        )));
    }
    let version = read("version", "dir: version file")?;
    if !version.starts_with(DIR_VERSION.as_bytes()) {
        return Err(malformed(format!(
            "{shown}/version is not skopeo's dir: transport version"
        )));
    }
    let manifest_bytes = read("manifest.json", "image manifest")?;
    let manifest: ImageManifest = serde_json::from_slice(&manifest_bytes).map_err(|e| {
        malformed(format!(
            "{shown}/manifest.json is not an image manifest: {e}"
        ))
    })?;
    let config_ref = BlobRef {
        digest: manifest.config().digest().as_ref().parse().map_err(|_| {
            malformed(format!(
                "{shown}/manifest.json names a config that is not a sha256 digest"
            ))
        })?,
        size: manifest.config().size(),
    };
    let config = layout::checked(read(config_ref.digest.hex(), "image config")?, &config_ref)?;
    let manifest_ref = BlobRef {
        digest: Digest::of(&manifest_bytes),
        size: manifest_bytes.len() as u64,
    };
    let image = layout::image_of_manifest(&manifest, manifest_ref, config, Vec::new(), &shown)?;
    let indexed = IndexedImage {
        full_name: None,
        ref_name: None,
        image,
        platform_index: None,
    };
    let image = indexed_image(indexed, |blob| {
        let name = blob.digest.hex().to_owned();
        dir.regular_size(&name).map(|size| (name, size))
    })
    .expect("an image outside a platform index is always kept");
    Ok(Catalogue {
        kind: ArchiveKind::SkopeoDir,
        images: vec![image],
    })
}

fn malformed(reason: String) -> SourceError {
    SourceError::Malformed { reason }
}
