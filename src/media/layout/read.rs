//! Resolves image references in an OCI image layout to their manifest,
//! config and layers, whichever tool wrote the layout: airgap and containerd
//! name entries with the full reference, skopeo with what its user typed
//! (`fixture/web:1`, or just `1`). Every metadata blob is read with a bound
//! and checked against its digest before it is believed.

use std::fs::File;
use std::path::Path;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};

use crate::digest::Digest;
use crate::image::{BlobRef, ConfigSummary, ImageRef, Platform};
use crate::media::platform::WantedPlatform;
use crate::media::source::SourceError;

use super::dir::{BLOBS, LayoutDir};
use super::{CONTAINERD_NAME, INDEX_LIMIT, METADATA_LIMIT, REF_NAME};

/// Docker's media types for what OCI calls an index and a manifest.
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// How a layer blob is compressed, from its media type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar: the blob's digest is the diff ID.
    None,
    /// `+gzip` (and Docker's `tar.gzip`).
    Gzip,
    /// `+zstd`.
    Zstd,
}

/// One layer as the layout stores it.
#[derive(Clone, Debug)]
pub struct LayoutLayer {
    /// The blob, as stored (compressed or not).
    pub blob: BlobRef,
    /// How it is compressed.
    pub compression: Compression,
    /// The config's diff ID for it: the digest of the uncompressed tar.
    pub diff_id: Digest,
}

/// One image of the layout, resolved from its index entry.
#[derive(Clone, Debug)]
pub struct LayoutImage {
    /// The wanted references that name it.
    pub refs: Vec<ImageRef>,
    /// Its image manifest (behind a platform index, the host's).
    pub manifest: BlobRef,
    /// The exact config bytes.
    pub config: Vec<u8>,
    /// Digest of `config`.
    pub config_digest: Digest,
    /// Platform from the config.
    pub platform: Platform,
    /// Layers, bottom first.
    pub layers: Vec<LayoutLayer>,
}

/// An OCI image layout opened for reading.
#[derive(Debug)]
pub struct LayoutReader {
    root: LayoutDir,
    index: ImageIndex,
    platforms: Vec<WantedPlatform>,
}

impl LayoutReader {
    /// Opens the layout at `dir` and reads its index.
    pub fn open(dir: &Path) -> Result<Self, SourceError> {
        let shown = dir.display();
        let root = LayoutDir::open(dir).map_err(|e| malformed(format!("{shown}: {e}")))?;
        if !root.exists("oci-layout") {
            return Err(malformed(format!(
                "{shown} is a directory but not an OCI image layout (it has no oci-layout file)"
            )));
        }
        let bytes = root
            .read_file("index.json", INDEX_LIMIT, "OCI image index")
            .map_err(|e| malformed(format!("{shown}/index.json: {e}")))?;
        let index = serde_json::from_slice(&bytes)
            .map_err(|e| malformed(format!("{shown}/index.json: {e}")))?;
        Ok(Self {
            root,
            index,
            platforms: vec![WantedPlatform::host()],
        })
    }

    /// A directory that keeps its blobs as a layout does
    /// (`blobs/sha256/<hex>`) but has no index to name them: containerd's
    /// content store. Its images are found by digest
    /// ([`LayoutReader::images_behind`]).
    pub fn of_blob_store(dir: &Path) -> Result<Self, SourceError> {
        let root =
            LayoutDir::open(dir).map_err(|e| malformed(format!("{}: {e}", dir.display())))?;
        let index = oci_spec::image::ImageIndexBuilder::default()
            .schema_version(2u32)
            .manifests(Vec::new())
            .build()
            .expect("every required index field is set");
        Ok(Self {
            root,
            index,
            platforms: vec![WantedPlatform::host()],
        })
    }

    /// Every image the manifest or platform index `digest` leads to whose
    /// blobs are all here (attestations left out); none where its own blob
    /// is absent.
    pub fn images_behind(&self, digest: &Digest) -> Result<Vec<LayoutImage>, SourceError> {
        let Some(size) = self.blob_size(digest)? else {
            return Ok(Vec::new());
        };
        let blob = BlobRef {
            digest: digest.clone(),
            size,
        };
        let Some(bytes) = self.metadata(&blob)? else {
            return Ok(Vec::new());
        };
        /// What tells an index from a manifest.
        #[derive(serde::Deserialize)]
        struct Kind {
            #[serde(rename = "mediaType")]
            media_type: Option<String>,
            manifests: Option<serde_json::Value>,
        }
        let kind: Kind = serde_json::from_slice(&bytes)
            .map_err(|e| malformed(format!("blob {digest} is not a manifest or index: {e}")))?;
        let media_type = match (kind.media_type, kind.manifests.is_some()) {
            (Some(named), _) => MediaType::from(named.as_str()),
            (None, true) => MediaType::ImageIndex,
            (None, false) => MediaType::ImageManifest,
        };
        let oci_digest: oci_spec::image::Digest = digest
            .as_str()
            .parse()
            .expect("a sha256 digest is a valid OCI digest");
        let index = oci_spec::image::ImageIndexBuilder::default()
            .schema_version(2u32)
            .manifests(vec![Descriptor::new(media_type, size, oci_digest)])
            .build()
            .expect("every required index field is set");
        Ok(index_images(&index, self)?
            .into_iter()
            .map(|indexed| indexed.image)
            .collect())
    }

    /// Fails unless the blobs directory can be listed and its files read
    /// by this process (containerd's is root's alone).
    pub fn check_blobs_readable(&self) -> Result<(), SourceError> {
        let blobs = self.blobs()?;
        rustix::fs::accessat(
            blobs.fd(),
            ".",
            rustix::fs::Access::READ_OK | rustix::fs::Access::EXEC_OK,
            rustix::fs::AtFlags::empty(),
        )
        .map_err(|errno| malformed(format!("{}: {errno}", blobs.path().display())))
    }

    /// The size of blob `digest` where it is here as a regular file.
    pub fn blob_size(&self, digest: &Digest) -> Result<Option<u64>, SourceError> {
        Ok(self.blobs()?.regular_size(digest.hex()))
    }

    /// True when every layer blob of `image` is here at its stated size.
    pub fn holds_layers_of(&self, image: &LayoutImage) -> Result<bool, SourceError> {
        let blobs = self.blobs()?;
        Ok(image
            .layers
            .iter()
            .all(|layer| blobs.regular_size(layer.blob.digest.hex()) == Some(layer.blob.size)))
    }

    /// Takes these platforms from a multi-platform image instead of the host's.
    pub fn with_platforms(mut self, platforms: &[WantedPlatform]) -> Self {
        if !platforms.is_empty() {
            self.platforms = platforms.to_vec();
        }
        self
    }

    /// Every image the index leads to, on every platform whose blobs are
    /// present (attestations left out), for a catalogue.
    pub fn catalogue(&self) -> Result<Vec<IndexedImage>, SourceError> {
        index_images(&self.index, self)
    }

    /// What the layout's index names, for messages: each entry's reference,
    /// or its digest where it has none.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for entry in self.index.manifests() {
            let name = annotation(entry, CONTAINERD_NAME)
                .or_else(|| annotation(entry, REF_NAME))
                .map_or_else(
                    || entry.digest().to_string(),
                    |name| crate::display::escape(name).into_owned(),
                );
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    /// Resolves every reference, one image per manifest with every
    /// reference naming it; all references the layout lacks are named in
    /// one [`SourceError::Missing`], with what the layout holds.
    pub fn resolve(&self, refs: &[ImageRef]) -> Result<Vec<LayoutImage>, SourceError> {
        let mut found: Vec<(&Descriptor, Vec<ImageRef>)> = Vec::new();
        let mut missing = Vec::new();
        for reference in refs {
            match self.find(reference)? {
                Some(entry) => match found.iter_mut().find(|(e, _)| e.digest() == entry.digest()) {
                    Some((_, named)) => named.push(reference.clone()),
                    None => found.push((entry, vec![reference.clone()])),
                },
                None => missing.push(reference.given.clone()),
            }
        }
        if !missing.is_empty() {
            let held = self.names();
            let held = if held.is_empty() {
                "nothing".to_owned()
            } else {
                held.join(", ")
            };
            // The last name carries the listing: the error's one line says
            // both what is missing and what could have been meant.
            if let Some(last) = missing.last_mut() {
                *last = format!("{last} (the OCI layout holds {held})");
            }
            return Err(SourceError::Missing { refs: missing });
        }
        found
            .into_iter()
            .map(|(entry, refs)| self.image(entry, refs))
            .collect()
    }

    /// Every image the index names, each with no reference attached: what a
    /// sink into this layout holds.
    pub fn images(&self) -> Result<Vec<LayoutImage>, SourceError> {
        self.index
            .manifests()
            .iter()
            .filter(|entry| is_index(entry.media_type()) || is_manifest(entry.media_type()))
            .map(|entry| self.image(entry, Vec::new()))
            .collect()
    }

    /// Every image the index names (the wanted platforms of a platform
    /// index), each with the full references its annotations give.
    pub fn named_images(&self) -> Result<Vec<LayoutImage>, SourceError> {
        self.index
            .manifests()
            .iter()
            .filter(|entry| is_index(entry.media_type()) || is_manifest(entry.media_type()))
            .filter(|entry| !is_attestation(entry))
            .map(|entry| {
                let mut refs: Vec<ImageRef> = Vec::new();
                let names = [
                    annotation(entry, CONTAINERD_NAME),
                    annotation(entry, REF_NAME),
                ];
                for name in names.into_iter().flatten() {
                    // A tag alone (skopeo's oci:DIR:TAG) is no reference.
                    let Some(parsed) = name
                        .contains(['/', ':', '@'])
                        .then(|| ImageRef::parse(name).ok())
                        .flatten()
                    else {
                        continue;
                    };
                    if !refs.iter().any(|r| r.name == parsed.name) {
                        refs.push(parsed);
                    }
                }
                self.image(entry, refs)
            })
            .collect()
    }

    /// The digest of the manifest (or index) `reference` names, if any.
    pub fn named(&self, reference: &ImageRef) -> Result<Option<Digest>, SourceError> {
        Ok(self
            .find(reference)?
            .and_then(|entry| entry.digest().as_ref().parse().ok()))
    }

    /// Opens a blob for reading, checking its size against `blob`.
    pub fn open_blob(&self, blob: &BlobRef) -> Result<File, SourceError> {
        let path = blob.digest.blob_path();
        let file = self
            .blobs()?
            .open_file(blob.digest.hex())
            .map_err(|e| malformed(format!("blob {}: {e}", blob.digest)))?;
        let size = file.metadata().map_err(SourceError::Read)?.len();
        if size != blob.size {
            return Err(malformed(format!(
                "{path} holds {size} bytes, but the layout says {}",
                blob.size
            )));
        }
        Ok(file)
    }

    fn blobs(&self) -> Result<LayoutDir, SourceError> {
        self.root
            .subdir(&BLOBS, None)
            .map_err(|e| malformed(e.to_string()))
    }

    /// The index entry for `reference`: named by it in full or as typed;
    /// failing that, by its digest; failing that, by its tag alone (as
    /// `skopeo copy … oci:DIR:TAG` names it) if only one image has that tag.
    fn find(&self, reference: &ImageRef) -> Result<Option<&Descriptor>, SourceError> {
        let entries = self.index.manifests();
        if let Some(entry) = entries.iter().find(|e| names_exactly(e, reference)) {
            return Ok(Some(entry));
        }
        if let Some((_, digest)) = reference.name.split_once('@') {
            return Ok(entries.iter().find(|e| e.digest().as_ref() == digest));
        }
        let Some((_, tag)) = reference.repo_and_tag() else {
            return Ok(None);
        };
        // containerd writes the tag alone beside the full name: an entry
        // whose full name is another image's is not this one.
        let mut tagged = entries.iter().filter(|e| {
            annotation(e, REF_NAME) == Some(tag.as_str())
                && annotation(e, CONTAINERD_NAME).is_none_or(|name| name == reference.name)
        });
        let Some(first) = tagged.next() else {
            return Ok(None);
        };
        if tagged.any(|other| other.digest() != first.digest()) {
            return Err(malformed(format!(
                "several images are named only {} in the layout, so which is {reference} is unclear; name one by digest",
                crate::display::escape(&tag)
            )));
        }
        Ok(Some(first))
    }

    /// Reads the manifest (through one platform index), config and layer
    /// list of the image `entry` points to.
    fn image(&self, entry: &Descriptor, refs: Vec<ImageRef>) -> Result<LayoutImage, SourceError> {
        let name = refs.first().map_or_else(String::new, ToString::to_string);
        let entry = if is_index(entry.media_type()) {
            let bytes = self.read_json(entry)?;
            let index: ImageIndex = parse(&bytes, "image index", entry)?;
            platform_manifest(&index, &self.platforms, &name)?.clone()
        } else {
            entry.clone()
        };
        manifest_image(self, &entry, refs, &name)?.ok_or_else(|| {
            malformed(format!(
                "{name}: a blob of its image is absent from the layout"
            ))
        })
    }

    /// A small JSON blob, whole, checked against its descriptor.
    fn read_json(&self, descriptor: &Descriptor) -> Result<Vec<u8>, SourceError> {
        let blob = blob_ref(descriptor)?;
        let file = self.open_blob(&blob)?;
        let bytes =
            crate::files::untrusted::read_file_bounded(file, METADATA_LIMIT, "metadata blob")
                .map_err(|e| malformed(format!("blob {}: {e}", blob.digest)))?;
        let actual = Digest::of(&bytes);
        if actual != blob.digest {
            return Err(malformed(format!(
                "{} does not hash to its name (it hashes to {actual})",
                blob.digest.blob_path()
            )));
        }
        Ok(bytes)
    }
}

/// True when an annotation of `entry` names `reference`: containerd's in
/// full, the OCI one in full, as typed, or in any spelling normalising to it.
fn names_exactly(entry: &Descriptor, reference: &ImageRef) -> bool {
    annotation(entry, CONTAINERD_NAME) == Some(reference.name.as_str())
        || annotation(entry, REF_NAME).is_some_and(|value| {
            value == reference.name
                || value == reference.given
                || ImageRef::parse(value).is_ok_and(|parsed| parsed.name == reference.name)
        })
}

fn annotation<'d>(entry: &'d Descriptor, key: &str) -> Option<&'d str> {
    entry.annotations().as_ref()?.get(key).map(String::as_str)
}

fn is_index(media_type: &MediaType) -> bool {
    matches!(media_type, MediaType::ImageIndex) || media_type.as_ref() == DOCKER_LIST
}

fn is_manifest(media_type: &MediaType) -> bool {
    matches!(media_type, MediaType::ImageManifest) || media_type.as_ref() == DOCKER_MANIFEST
}

/// The index's manifest for the first wanted platform it has.
fn platform_manifest<'i>(
    index: &'i ImageIndex,
    wanted: &[WantedPlatform],
    name: &str,
) -> Result<&'i Descriptor, SourceError> {
    let platform_of = |m: &Descriptor| {
        m.platform().as_ref().map(|p| Platform {
            os: p.os().to_string(),
            architecture: p.architecture().to_string(),
            variant: p.variant().clone(),
        })
    };
    wanted
        .iter()
        .find_map(|w| {
            index
                .manifests()
                .iter()
                .find(|m| platform_of(m).is_some_and(|p| w.accepts(&p)))
        })
        .ok_or_else(|| {
            let held: Vec<String> = index
                .manifests()
                .iter()
                .filter_map(platform_of)
                .map(|p| crate::display::escape(&p.to_string()).into_owned())
                .collect();
            let wanted: Vec<String> = wanted.iter().map(ToString::to_string).collect();
            malformed(format!(
                "{name} has no {} image in the layout (it has {})",
                wanted.join(" or "),
                if held.is_empty() {
                    "none with a platform".to_owned()
                } else {
                    held.join(", ")
                }
            ))
        })
}

fn compression(media_type: &MediaType, name: &str) -> Result<Compression, SourceError> {
    Ok(match media_type {
        MediaType::ImageLayer | MediaType::ImageLayerNonDistributable => Compression::None,
        MediaType::ImageLayerGzip | MediaType::ImageLayerNonDistributableGzip => Compression::Gzip,
        MediaType::ImageLayerZstd | MediaType::ImageLayerNonDistributableZstd => Compression::Zstd,
        other => match other.as_ref() {
            "application/vnd.docker.image.rootfs.diff.tar" => Compression::None,
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Compression::Gzip,
            "application/vnd.docker.image.rootfs.diff.tar.zstd" => Compression::Zstd,
            unknown => {
                return Err(malformed(format!(
                    "{name} has a layer of media type {}, which airgap cannot unpack",
                    crate::display::escape(unknown)
                )));
            }
        },
    })
}

fn blob_ref(descriptor: &Descriptor) -> Result<BlobRef, SourceError> {
    let digest = descriptor.digest().as_ref().parse().map_err(|_| {
        malformed(format!(
            "the layout names the blob {}, which is not a sha256 digest",
            crate::display::escape(descriptor.digest().as_ref())
        ))
    })?;
    Ok(BlobRef {
        digest,
        size: descriptor.size(),
    })
}

fn parse<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &str,
    descriptor: &Descriptor,
) -> Result<T, SourceError> {
    serde_json::from_slice(bytes).map_err(|e| {
        malformed(format!(
            "blob {} is not an {what}: {e}",
            descriptor.digest()
        ))
    })
}

fn malformed(reason: String) -> SourceError {
    SourceError::Malformed { reason }
}

/// Where the small JSON blobs an OCI index leads to come from: a layout
/// directory's files, or the metadata an archive's first pass kept.
pub trait MetadataBlobs {
    /// The bytes of `blob`, bounded and checked against its digest; `None`
    /// where the blob is absent (an index may name platforms not saved).
    fn metadata(&self, blob: &BlobRef) -> Result<Option<Vec<u8>>, SourceError>;
}

impl MetadataBlobs for LayoutReader {
    fn metadata(&self, blob: &BlobRef) -> Result<Option<Vec<u8>>, SourceError> {
        if !self.blobs()?.exists(blob.digest.hex()) {
            return Ok(None);
        }
        let file = self.open_blob(blob)?;
        let bytes =
            crate::files::untrusted::read_file_bounded(file, METADATA_LIMIT, "metadata blob")
                .map_err(|e| malformed(format!("blob {}: {e}", blob.digest)))?;
        checked(bytes, blob).map(Some)
    }
}

/// `bytes` if they hash to `blob`'s digest.
pub fn checked(bytes: Vec<u8>, blob: &BlobRef) -> Result<Vec<u8>, SourceError> {
    let actual = Digest::of(&bytes);
    if actual != blob.digest {
        return Err(malformed(format!(
            "{} does not hash to its name (it hashes to {actual})",
            blob.digest.blob_path()
        )));
    }
    Ok(bytes)
}

/// One image an index leads to, with the names of its top entry.
#[derive(Clone, Debug)]
pub struct IndexedImage {
    /// containerd's full name annotation of the index entry.
    pub full_name: Option<String>,
    /// The OCI ref.name annotation: a full reference, or only a tag.
    pub ref_name: Option<String>,
    /// The image (no references attached).
    pub image: LayoutImage,
    /// The platform index it was found through, if any: its images are
    /// platforms of one image, of which `--platform` picks.
    pub platform_index: Option<Digest>,
}

/// Docker's annotation telling an attestation manifest from an image.
const REFERENCE_TYPE: &str = "vnd.docker.reference.type";

/// Every image `index` leads to (one level of platform index), skipping
/// attestation manifests, unknown platforms and manifests whose blobs are
/// absent.
pub fn index_images(
    index: &ImageIndex,
    blobs: &dyn MetadataBlobs,
) -> Result<Vec<IndexedImage>, SourceError> {
    let mut found = Vec::new();
    for entry in index.manifests() {
        let full_name = annotation(entry, CONTAINERD_NAME).map(str::to_owned);
        let ref_name = annotation(entry, REF_NAME).map(str::to_owned);
        let mut push = |image: LayoutImage, platform_index: Option<Digest>| {
            found.push(IndexedImage {
                full_name: full_name.clone(),
                ref_name: ref_name.clone(),
                image,
                platform_index,
            });
        };
        if is_index(entry.media_type()) {
            let Some(bytes) = blobs.metadata(&blob_ref(entry)?)? else {
                continue;
            };
            let nested: ImageIndex = parse(&bytes, "image index", entry)?;
            let group = Some(blob_ref(entry)?.digest);
            for child in nested.manifests() {
                if is_attestation(child) || !is_manifest(child.media_type()) {
                    continue;
                }
                let name = child.digest().to_string();
                if let Some(image) = manifest_image(blobs, child, Vec::new(), &name)? {
                    push(image, group.clone());
                }
            }
        } else if is_manifest(entry.media_type()) && !is_attestation(entry) {
            let name = entry.digest().to_string();
            if let Some(image) = manifest_image(blobs, entry, Vec::new(), &name)? {
                push(image, None);
            }
        }
    }
    Ok(found)
}

/// An attestation manifest, or a platform nothing runs on: not an image.
fn is_attestation(entry: &Descriptor) -> bool {
    annotation(entry, REFERENCE_TYPE) == Some("attestation-manifest")
        || entry.platform().as_ref().is_some_and(|p| {
            p.os().to_string() == "unknown" && p.architecture().to_string() == "unknown"
        })
}

/// Reads the manifest `entry` names, its config and layer list; `None`
/// where the manifest or config is absent.
pub fn manifest_image(
    blobs: &dyn MetadataBlobs,
    entry: &Descriptor,
    refs: Vec<ImageRef>,
    name: &str,
) -> Result<Option<LayoutImage>, SourceError> {
    if !is_manifest(entry.media_type()) {
        return Err(malformed(format!(
            "{name} is a {}, not an image manifest",
            crate::display::escape(entry.media_type().as_ref())
        )));
    }
    let manifest_ref = blob_ref(entry)?;
    let Some(manifest_bytes) = blobs.metadata(&manifest_ref)? else {
        return Ok(None);
    };
    let manifest: ImageManifest = parse(&manifest_bytes, "image manifest", entry)?;
    let Some(config) = blobs.metadata(&blob_ref(manifest.config())?)? else {
        return Ok(None);
    };
    image_of_manifest(&manifest, manifest_ref, config, refs, name).map(Some)
}

/// The image a parsed manifest and its config bytes describe.
pub fn image_of_manifest(
    manifest: &ImageManifest,
    manifest_ref: BlobRef,
    config: Vec<u8>,
    refs: Vec<ImageRef>,
    name: &str,
) -> Result<LayoutImage, SourceError> {
    let summary = ConfigSummary::parse(&config)
        .map_err(|e| malformed(format!("the config of {name} is not an image config: {e}")))?;
    let diff_ids = &summary.rootfs.diff_ids;
    if manifest.layers().len() != diff_ids.len() {
        return Err(malformed(format!(
            "{name} has {} layers for {} diff IDs",
            manifest.layers().len(),
            diff_ids.len()
        )));
    }
    let layers = manifest
        .layers()
        .iter()
        .zip(diff_ids)
        .map(|(layer, diff_id)| {
            Ok(LayoutLayer {
                blob: blob_ref(layer)?,
                compression: compression(layer.media_type(), name)?,
                diff_id: diff_id.clone(),
            })
        })
        .collect::<Result<_, SourceError>>()?;
    Ok(LayoutImage {
        refs,
        manifest: manifest_ref,
        config_digest: Digest::of(&config),
        config,
        platform: summary.platform,
        layers,
    })
}
