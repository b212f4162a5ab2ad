//! What a registry answers for a reference: an image manifest, or an index
//! (Docker: manifest list) of one per platform, from which `--platform` or
//! `--all-platforms` choose. Attestation manifests are never chosen.

use std::collections::HashMap;

use serde::Deserialize;

use crate::digest::Digest;
use crate::image::{BlobRef, Platform};
use crate::media::platform::WantedPlatform;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The `Accept` header of a manifest request: every kind airgap reads.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// Docker's annotation telling an attestation manifest from an image.
const REFERENCE_TYPE: &str = "vnd.docker.reference.type";

/// A manifest as a registry sends it (either kind; fields of the other absent).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    media_type: Option<String>,
    config: Option<RawDescriptor>,
    layers: Option<Vec<RawDescriptor>>,
    manifests: Option<Vec<RawDescriptor>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    media_type: Option<String>,
    digest: String,
    size: u64,
    platform: Option<RawPlatform>,
    annotations: Option<HashMap<String, String>>,
}

#[derive(Deserialize)]
struct RawPlatform {
    os: String,
    architecture: String,
    variant: Option<String>,
}

/// A parsed manifest.
pub enum Manifest {
    /// One image.
    Image(ImageManifest),
    /// One image per platform.
    Index(Vec<IndexEntry>),
}

/// An image manifest: its config and layer blobs.
pub struct ImageManifest {
    /// The config blob.
    pub config: BlobRef,
    /// The layer blobs as the registry stores them, bottom first.
    pub layers: Vec<BlobRef>,
}

/// One manifest an index names.
#[derive(Clone, Debug)]
pub struct IndexEntry {
    /// The manifest's digest and size.
    pub blob: BlobRef,
    /// Its platform, where the index gives one.
    pub platform: Option<Platform>,
    /// An attestation (or a platform nothing runs on), not an image.
    pub attestation: bool,
}

/// Which images of an index to take.
#[derive(Clone, Debug)]
pub enum Choice {
    /// One image for each of these platforms (the host's by default).
    Platforms(Vec<WantedPlatform>),
    /// Every image.
    All,
}

impl Manifest {
    /// Parses a manifest the registry sent as `content_type`; `Err` says
    /// what is wrong, for a message that names the reference.
    pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Self, String> {
        let raw: RawManifest = serde_json::from_slice(bytes).map_err(|e| {
            // serde quotes what it found, which the registry wrote.
            format!(
                "its manifest does not parse: {}",
                crate::display::escape(&e.to_string())
            )
        })?;
        let media_type = raw
            .media_type
            .as_deref()
            .or(content_type)
            .map(|t| t.split(';').next().unwrap_or(t).trim().to_owned());
        let is_index = match media_type.as_deref() {
            Some(OCI_INDEX | DOCKER_LIST) => true,
            Some(OCI_MANIFEST | DOCKER_MANIFEST) => false,
            // OCI lets the media type out; the fields tell.
            None | Some("application/json") => raw.manifests.is_some(),
            Some(other) => {
                return Err(format!(
                    "its manifest is of media type {}, which airgap does not read (schema 1 manifests are obsolete)",
                    crate::display::escape(other)
                ));
            }
        };
        if is_index {
            let entries = raw
                .manifests
                .ok_or("its index lists no manifests")?
                .into_iter()
                .map(index_entry)
                .collect::<Result<_, _>>()?;
            return Ok(Self::Index(entries));
        }
        let config = blob(&raw.config.ok_or("its manifest names no config")?)?;
        let layers = raw
            .layers
            .unwrap_or_default()
            .iter()
            .map(layer)
            .collect::<Result<_, _>>()?;
        Ok(Self::Image(ImageManifest { config, layers }))
    }
}

fn index_entry(raw: RawDescriptor) -> Result<IndexEntry, String> {
    let platform = raw.platform.as_ref().map(|p| Platform {
        os: p.os.clone(),
        architecture: p.architecture.clone(),
        variant: p.variant.clone().filter(|v| !v.is_empty()),
    });
    let attestation = raw
        .annotations
        .as_ref()
        .and_then(|a| a.get(REFERENCE_TYPE))
        .is_some_and(|t| t == "attestation-manifest")
        || platform
            .as_ref()
            .is_some_and(|p| p.os == "unknown" && p.architecture == "unknown");
    let nested_index = matches!(raw.media_type.as_deref(), Some(OCI_INDEX | DOCKER_LIST));
    if nested_index {
        return Err("its index names another index, which airgap does not follow".into());
    }
    Ok(IndexEntry {
        blob: blob(&raw)?,
        platform,
        attestation,
    })
}

fn blob(raw: &RawDescriptor) -> Result<BlobRef, String> {
    let digest: Digest = raw.digest.parse().map_err(|_| {
        format!(
            "its manifest names the blob {}, which is not a sha256 digest",
            crate::display::escape(&raw.digest)
        )
    })?;
    Ok(BlobRef {
        digest,
        size: raw.size,
    })
}

/// A layer descriptor, refused where its media type is no layer airgap can
/// unpack (an encrypted layer, an artifact).
fn layer(raw: &RawDescriptor) -> Result<BlobRef, String> {
    let media_type = raw.media_type.as_deref().unwrap_or("");
    let known = matches!(
        media_type,
        "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
            | "application/vnd.docker.image.rootfs.diff.tar"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.zstd"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    );
    if !known {
        return Err(format!(
            "it has a layer of media type {}, which airgap cannot unpack",
            crate::display::escape(media_type)
        ));
    }
    blob(raw)
}

/// The entries of an index `choice` takes, each once, in the index's
/// order; `Err` lists the platforms the index has when a wanted one is missing.
pub fn choose<'i>(
    entries: &'i [IndexEntry],
    choice: &Choice,
) -> Result<Vec<&'i IndexEntry>, String> {
    let images: Vec<&IndexEntry> = entries.iter().filter(|e| !e.attestation).collect();
    let chosen: Vec<&IndexEntry> = match choice {
        Choice::All => images.clone(),
        Choice::Platforms(wanted) => {
            let mut chosen: Vec<&IndexEntry> = Vec::new();
            for platform in wanted {
                let found = images
                    .iter()
                    .find(|e| e.platform.as_ref().is_some_and(|p| platform.accepts(p)));
                match found {
                    Some(entry) => {
                        if !chosen.iter().any(|c| c.blob.digest == entry.blob.digest) {
                            chosen.push(entry);
                        }
                    }
                    None => return Err(format!("it has no {platform} image ({})", held(&images))),
                }
            }
            chosen
        }
    };
    if chosen.is_empty() {
        return Err(format!("its index holds no image ({})", held(&images)));
    }
    Ok(chosen)
}

/// The platforms an index holds, for a message.
fn held(images: &[&IndexEntry]) -> String {
    let platforms: Vec<String> = images
        .iter()
        .filter_map(|e| e.platform.as_ref())
        .map(|p| crate::display::escape(&p.to_string()).into_owned())
        .collect();
    if platforms.is_empty() {
        "it names no platform".into()
    } else {
        format!("it has {}", platforms.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(marker: &str) -> String {
        Digest::of(marker.as_bytes()).to_string()
    }

    fn index() -> Vec<u8> {
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": digest("amd"), "size": 1,
                 "platform": {"os": "linux", "architecture": "amd64"}},
                {"mediaType": OCI_MANIFEST, "digest": digest("arm"), "size": 2,
                 "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
                {"mediaType": OCI_MANIFEST, "digest": digest("att"), "size": 3,
                 "platform": {"os": "unknown", "architecture": "unknown"},
                 "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                                 "vnd.docker.reference.digest": digest("amd")}}
            ]
        })
        .to_string()
        .into_bytes()
    }

    fn entries() -> Vec<IndexEntry> {
        match Manifest::parse(&index(), None).unwrap() {
            Manifest::Index(entries) => entries,
            Manifest::Image(_) => panic!("an index"),
        }
    }

    fn wanted(platforms: &[&str]) -> Choice {
        Choice::Platforms(
            platforms
                .iter()
                .map(|p| WantedPlatform::parse(p).unwrap())
                .collect(),
        )
    }

    #[test]
    fn a_platform_is_chosen_with_its_variant_normalised() {
        let entries = entries();
        let chosen = choose(&entries, &wanted(&["linux/arm64"])).unwrap();
        assert_eq!(chosen.len(), 1);
        assert_eq!(chosen[0].blob.digest.to_string(), digest("arm"));
        let chosen = choose(&entries, &wanted(&["linux/aarch64/v8", "linux/amd64"])).unwrap();
        assert_eq!(chosen.len(), 2);
        let error = choose(&entries, &wanted(&["linux/s390x"])).unwrap_err();
        assert!(error.contains("linux/amd64, linux/arm64/v8"), "{error}");
    }

    #[test]
    fn attestations_are_never_chosen() {
        let entries = entries();
        assert!(entries[2].attestation);
        let all = choose(&entries, &Choice::All).unwrap();
        assert_eq!(all.len(), 2);
        assert!(
            all.iter()
                .all(|e| e.blob.digest.to_string() != digest("att"))
        );
        assert!(choose(&entries, &wanted(&["unknown/unknown"])).is_err());
    }

    #[test]
    fn image_manifests_parse_and_odd_layers_are_refused() {
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": digest("c"), "size": 5},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": digest("l"), "size": 7}]
        });
        let Manifest::Image(image) =
            Manifest::parse(manifest.to_string().as_bytes(), None).unwrap()
        else {
            panic!("an image manifest");
        };
        assert_eq!(image.layers.len(), 1);
        assert_eq!(image.config.size, 5);
        let encrypted = manifest
            .to_string()
            .replace("rootfs.diff.tar.gzip", "rootfs.diff.tar.gzip+encrypted");
        assert!(Manifest::parse(encrypted.as_bytes(), None).is_err());
        let schema1 = br#"{"schemaVersion":1,"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws"}"#;
        assert!(Manifest::parse(schema1, None).is_err());
    }
}
