//! The bundle manifest (`airgap/manifest.json`) and signature entry, as the
//! format specification (bundle-spec/FORMAT.md, section 3 and 4) defines them.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::image::{BlobRef, ImageRef, Platform};

use super::{BundleError, FORMAT_MAJOR, FORMAT_VERSION, MANIFEST_MEDIA_TYPE};

/// The signed table of contents of a bundle.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleManifest {
    /// Always [`MANIFEST_MEDIA_TYPE`].
    pub media_type: String,
    /// `MAJOR.MINOR`.
    pub format_version: String,
    /// Writer name and version.
    pub tool: String,
    /// RFC 3339 UTC creation time.
    pub created: String,
    /// Where the images came from (informational).
    pub source: SourceInfo,
    /// The images, in the order asked for.
    pub images: Vec<BundleImage>,
    /// Every tar entry after the manifest and signature, in tar order.
    pub entries: Vec<Entry>,
    /// Blobs the images need that the bundle does not carry (delta bundles).
    #[serde(default)]
    pub required: Vec<BlobRef>,
    /// The compose project the images were planned from (format 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compose: Option<ComposeRecord>,
    /// Layers shipped as patches against layers the site holds (format 1.2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patches: Vec<LayerPatch>,
    /// Where images pulled from a registry came from (format 1.4).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub origins: Vec<ImageOrigin>,
}

/// Where one image pulled from a registry came from: the registry's own
/// manifest (which names compressed layers, unlike the one airgap writes)
/// and the multi-platform index it was chosen from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageOrigin {
    /// The image, by its config digest (one of `images[].config`).
    pub config: Digest,
    /// The registry, HOST[:PORT].
    pub registry: String,
    /// The repository in it.
    pub repository: String,
    /// The digest of the registry's image manifest.
    pub manifest: Digest,
    /// The index (or Docker manifest list) the manifest was chosen from;
    /// absent where the reference named an image manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<Digest>,
    /// The platform the index gave it (or its config's, without an index).
    pub platform: Platform,
}

/// A layer shipped as a zstd patch against an older layer the site holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerPatch {
    /// The layer the patch rebuilds.
    pub layer: BlobRef,
    /// The layer the site holds that the patch was made against.
    pub base: BlobRef,
    /// The entry holding the patch (`patches/sha256/<layer hex>`).
    pub entry: String,
}

/// The entry path of the patch that rebuilds `layer`.
pub fn patch_entry(layer: &Digest) -> String {
    format!("patches/sha256/{}", layer.hex())
}

/// Prefix of the entries that carry a compose project's files.
pub const COMPOSE_PREFIX: &str = "airgap/compose/";

/// A compose project carried in a bundle: its files (entries under
/// [`COMPOSE_PREFIX`]) and the image each service's reference resolved to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComposeRecord {
    /// The project name.
    pub project: String,
    /// The files, relative to the project directory, in reading order.
    pub files: Vec<String>,
    /// Every service with its image reference and that image's config digest.
    pub services: Vec<ComposeService>,
}

/// One service of a carried compose project.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComposeService {
    /// The service name.
    pub service: String,
    /// The image reference as the compose file spells it.
    pub image: String,
    /// Config digest of the image it resolved to when packed.
    pub config: Digest,
}

/// Where a bundle's images came from.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceInfo {
    /// `docker-engine` or `docker-archive`.
    pub kind: String,
    /// Engine name and version, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// Negotiated Engine API version, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
}

/// One image of a bundle.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BundleImage {
    /// References to restore.
    pub refs: Vec<ImageRef>,
    /// From the config.
    pub platform: Platform,
    /// The OCI image manifest airgap wrote.
    pub manifest: BlobRef,
    /// The image config.
    pub config: BlobRef,
    /// Uncompressed layers, bottom first.
    pub layers: Vec<BlobRef>,
}

/// One tar entry: path, size and SHA-256 of its content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Relative path in the tar.
    pub path: String,
    /// Content size in bytes.
    pub size: u64,
    /// SHA-256 of the content, 64 lowercase hex digits.
    pub sha256: String,
}

impl Entry {
    /// The entry's digest as a [`Digest`], when its hex is well formed.
    pub fn digest(&self) -> Result<Digest, BundleError> {
        Digest::from_hex(&self.sha256).map_err(|_| BundleError::Inconsistent {
            reason: format!("entry {} has a malformed sha256", self.path),
        })
    }
}

/// The signature entry (`airgap/manifest.json.sig`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SignatureEntry {
    /// Always `ed25519`.
    pub algorithm: String,
    /// Fingerprint of the signer's public key.
    pub key: Digest,
    /// 64-byte Ed25519 signature, hex.
    pub signature: String,
}

impl BundleManifest {
    /// Parses manifest bytes and checks version and consistency (FORMAT.md
    /// section 3), so no later stage sees a manifest that contradicts itself.
    pub fn parse(bytes: &[u8]) -> Result<Self, BundleError> {
        let probe: VersionProbe = serde_json::from_slice(bytes)
            .map_err(|source| BundleError::ManifestSyntax { source })?;
        if probe.media_type.as_deref() != Some(MANIFEST_MEDIA_TYPE) {
            return Err(BundleError::NotABundle {
                reason: "its manifest has an unknown media type".into(),
            });
        }
        let version = probe.format_version.unwrap_or_default();
        if !matches!(parse_version(&version), Some((FORMAT_MAJOR, _))) {
            return Err(BundleError::UnsupportedVersion { found: version });
        }
        let manifest: Self = serde_json::from_slice(bytes)
            .map_err(|source| BundleError::ManifestSyntax { source })?;
        manifest.check_consistency()?;
        Ok(manifest)
    }

    /// Serialises for writing; the exact bytes are what gets signed.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("manifest types always serialise");
        bytes.push(b'\n');
        bytes
    }

    /// A new manifest of the current version.
    pub fn new(tool: String, created: String, source: SourceInfo) -> Self {
        Self {
            media_type: MANIFEST_MEDIA_TYPE.into(),
            format_version: FORMAT_VERSION.into(),
            tool,
            created,
            source,
            images: Vec::new(),
            entries: Vec::new(),
            required: Vec::new(),
            compose: None,
            patches: Vec::new(),
            origins: Vec::new(),
        }
    }

    /// The format's minor version (`3` for `1.3`); [`Self::parse`] checked
    /// that the version has this form.
    pub fn format_minor(&self) -> u32 {
        parse_version(&self.format_version).map_or(0, |(_, minor)| minor)
    }

    /// Every check is linear in the manifest's size (sets and maps, never a
    /// search per item): it runs before the signature is checked, on a
    /// manifest anyone may have written.
    fn check_consistency(&self) -> Result<(), BundleError> {
        let inconsistent = |reason: String| Err(BundleError::Inconsistent { reason });
        // Rollback protection orders bundles by this time.
        if time::OffsetDateTime::parse(
            &self.created,
            &time::format_description::well_known::Rfc3339,
        )
        .is_err()
        {
            return inconsistent(format!(
                "creation time {:?} is not an RFC 3339 time",
                self.created
            ));
        }
        let mut paths = HashSet::new();
        let mut carried: HashMap<Digest, u64> = HashMap::new();
        for entry in &self.entries {
            super::check_entry_path(&entry.path)?;
            if super::is_reserved_path(&entry.path) {
                return inconsistent(format!("entry {} uses a reserved path", entry.path));
            }
            if !paths.insert(entry.path.as_str()) {
                return inconsistent(format!("entry {} is listed twice", entry.path));
            }
            let digest = entry.digest()?;
            if let Some(hex) = entry.path.strip_prefix("blobs/sha256/") {
                if hex != digest.hex() {
                    return inconsistent(format!(
                        "blob entry {} does not carry its own digest",
                        entry.path
                    ));
                }
                carried.insert(digest, entry.size);
            }
        }
        let mut required = HashMap::new();
        for blob in &self.required {
            if carried.contains_key(&blob.digest) {
                return inconsistent(format!("blob {} is both carried and required", blob.digest));
            }
            required.insert(blob.digest.clone(), blob.size);
        }
        let mut patched = HashMap::new();
        for patch in &self.patches {
            let digest = &patch.layer.digest;
            if patch.entry != patch_entry(digest) || !paths.contains(patch.entry.as_str()) {
                return inconsistent(format!("the patch for layer {digest} is not in the bundle"));
            }
            if carried.contains_key(digest)
                || required.contains_key(digest)
                || patch.base.digest == *digest
            {
                return inconsistent(format!(
                    "layer {digest} is patched and also carried, required or its own base"
                ));
            }
            if patched.insert(digest.clone(), patch.layer.size).is_some() {
                return inconsistent(format!("layer {digest} is patched twice"));
            }
        }
        let carries = |blob: &BlobRef| carried.get(&blob.digest) == Some(&blob.size);
        for image in &self.images {
            for reference in &image.refs {
                check_reference(reference)?;
            }
            let name = image.refs.first().map_or("(unnamed)", |r| r.given.as_str());
            for (what, blob) in [("manifest", &image.manifest), ("config", &image.config)] {
                if !carries(blob) {
                    return inconsistent(format!(
                        "the {what} of image {name} is not in the bundle"
                    ));
                }
            }
            for layer in &image.layers {
                let size = Some(&layer.size);
                if !carries(layer)
                    && required.get(&layer.digest) != size
                    && patched.get(&layer.digest) != size
                {
                    return inconsistent(format!(
                        "layer {} of image {name} is neither carried nor required",
                        layer.digest
                    ));
                }
            }
        }
        let configs: HashSet<&Digest> = self.images.iter().map(|i| &i.config.digest).collect();
        for origin in &self.origins {
            if !configs.contains(&origin.config) {
                return inconsistent(format!(
                    "the origin of image {} names an image not in the bundle",
                    origin.config
                ));
            }
        }
        if let Some(compose) = &self.compose {
            for file in &compose.files {
                if !paths.contains(format!("{COMPOSE_PREFIX}{file}").as_str()) {
                    return inconsistent(format!("compose file {file} is not in the bundle"));
                }
            }
            let configs: HashSet<&Digest> = self.images.iter().map(|i| &i.config.digest).collect();
            for service in &compose.services {
                if !configs.contains(&service.config) {
                    return inconsistent(format!(
                        "compose service {} names an image not in the bundle",
                        service.service
                    ));
                }
            }
        }
        Ok(())
    }

    /// Total bytes of content the entries declare. An unverified manifest
    /// may declare sizes whose sum does not fit a `u64`: the total then
    /// stops at `u64::MAX` rather than overflowing.
    pub fn content_size(&self) -> u64 {
        self.entries
            .iter()
            .fold(0u64, |total, e| total.saturating_add(e.size))
    }
}

/// `MAJOR.MINOR` as two numbers; `None` for any other form.
fn parse_version(version: &str) -> Option<(u32, u32)> {
    let (major, minor) = version.split_once('.')?;
    let number = |part: &str| {
        (!part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse::<u32>().ok())
            .flatten()
    };
    Some((number(major)?, number(minor)?))
}

/// A reference is restored as a tag by its `name`, and shown by its
/// `given`: both must be what parsing `given` makes of it, so that what
/// verify shows is what unpack moves, and every later use of `name` can
/// rely on it parsing.
fn check_reference(reference: &ImageRef) -> Result<(), BundleError> {
    let invalid = |why: &str| {
        Err(BundleError::Inconsistent {
            reason: format!(
                "image reference \"{}\" (name \"{}\") {why}",
                reference.given, reference.name
            ),
        })
    };
    match ImageRef::parse(&reference.given) {
        Ok(parsed) if parsed == *reference => Ok(()),
        Ok(_) => invalid("does not normalise to its name"),
        Err(error) => invalid(&format!("is not a valid reference: {}", error.source)),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VersionProbe {
    media_type: Option<String>,
    format_version: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(seed: &[u8]) -> (BlobRef, Entry) {
        let digest = Digest::of(seed);
        let entry = Entry {
            path: digest.blob_path(),
            size: seed.len() as u64,
            sha256: digest.hex().into(),
        };
        let blob = BlobRef {
            digest,
            size: seed.len() as u64,
        };
        (blob, entry)
    }

    fn image(refs: Vec<ImageRef>, blob: &BlobRef) -> BundleImage {
        BundleImage {
            refs,
            platform: crate::image::Platform::default(),
            manifest: blob.clone(),
            config: blob.clone(),
            layers: Vec::new(),
        }
    }

    /// A manifest of one image known by `refs`.
    fn with_refs(refs: Vec<ImageRef>) -> Vec<u8> {
        let mut manifest = BundleManifest::new(
            "test".into(),
            "2026-01-01T00:00:00Z".into(),
            SourceInfo::default(),
        );
        let (config, entry) = blob(b"config");
        manifest.entries = vec![entry];
        manifest.images = vec![image(refs, &config)];
        manifest.to_bytes()
    }

    fn reference(given: &str, name: &str) -> ImageRef {
        ImageRef {
            given: given.into(),
            name: name.into(),
        }
    }

    fn refusal(bytes: &[u8]) -> String {
        match BundleManifest::parse(bytes) {
            Err(error @ BundleError::Inconsistent { .. }) => error.to_string(),
            other => panic!("not refused as inconsistent: {other:?}"),
        }
    }

    #[test]
    fn references_as_parsing_makes_them_are_accepted() {
        let refs = ["nginx", "fixture/web:1", "localhost:5000/app:1.0"]
            .map(|r| ImageRef::parse(r).unwrap())
            .into();
        BundleManifest::parse(&with_refs(refs)).unwrap();
    }

    #[test]
    fn a_name_that_is_not_a_reference_is_refused() {
        let refused = refusal(&with_refs(vec![reference("app:1", "Not A Reference")]));
        assert!(refused.contains("\"app:1\""), "{refused}");
        let long = "a".repeat(300);
        let refused = refusal(&with_refs(vec![reference(
            &long,
            &format!("docker.io/library/{long}:latest"),
        )]));
        assert!(refused.contains("not a valid reference"), "{refused}");
    }

    #[test]
    fn a_name_other_than_the_given_reference_is_refused() {
        let refused = refusal(&with_refs(vec![reference(
            "app:1",
            "docker.io/library/other:2",
        )]));
        assert!(
            refused.contains("does not normalise to its name"),
            "{refused}"
        );
        // A spelling parse would trim is not the one shown.
        let refused = refusal(&with_refs(vec![reference(
            " app:1",
            "docker.io/library/app:1",
        )]));
        assert!(refused.contains("does not normalise"), "{refused}");
    }

    #[test]
    fn a_reference_with_control_characters_is_refused_and_quoted_escaped() {
        let given = "app:1\n[ok] signature trusted\x1b[2K";
        let refused = refusal(&with_refs(vec![reference(
            given,
            "docker.io/library/app:1",
        )]));
        assert!(
            !refused.contains('\n') && !refused.contains('\x1b'),
            "{refused:?}"
        );
        assert!(
            refused.contains("\\n[ok]") && refused.contains("\\x1b[2K"),
            "{refused}"
        );
    }

    #[test]
    fn versions_are_major_dot_minor_numbers() {
        assert_eq!(parse_version("1.3"), Some((1, 3)));
        assert_eq!(parse_version("1.12"), Some((1, 12)));
        for odd in ["1", "1.", ".3", "1.3.0", "1.x", "1.+3", "1.3\n", ""] {
            assert_eq!(parse_version(odd), None, "{odd:?}");
        }
        let manifest = String::from_utf8(with_refs(Vec::new()))
            .unwrap()
            .replace(&format!("\"{FORMAT_VERSION}\""), "\"1.3-unsealed\"");
        assert!(matches!(
            BundleManifest::parse(manifest.as_bytes()),
            Err(BundleError::UnsupportedVersion { .. })
        ));
    }

    // A 16 MiB manifest took 7-9 s to check while each compose service
    // searched the images: its check must stay linear, as it runs before
    // the signature is checked. 50,000 services each naming the last of
    // 50,000 images were 2.5e9 comparisons; linear, they are 100,000 lookups.
    #[test]
    fn a_large_manifest_is_checked_in_linear_time() {
        const COUNT: usize = 50_000;
        let mut manifest = BundleManifest::new(
            "test".into(),
            "2026-01-01T00:00:00Z".into(),
            SourceInfo::default(),
        );
        let app = ImageRef::parse("app:1").unwrap();
        for n in 0..COUNT {
            let (config, entry) = blob(&n.to_le_bytes());
            manifest.entries.push(entry);
            manifest.images.push(image(vec![app.clone()], &config));
        }
        let last = manifest.images[COUNT - 1].config.digest.clone();
        manifest.compose = Some(ComposeRecord {
            project: "p".into(),
            files: Vec::new(),
            services: (0..COUNT)
                .map(|n| ComposeService {
                    service: format!("s{n}"),
                    image: "app:1".into(),
                    config: last.clone(),
                })
                .collect(),
        });
        let bytes = manifest.to_bytes();
        let started = std::time::Instant::now();
        let parsed = BundleManifest::parse(&bytes).unwrap();
        let took = started.elapsed();
        assert_eq!(parsed.images.len(), COUNT);
        // Linear, this is well under a second; quadratic, tens of seconds.
        assert!(took < std::time::Duration::from_secs(8), "took {took:?}");
    }

    // Found by the fuzz target manifest_shape (crash-9e450f8c): `airgap
    // inspect` summed the sizes of an unverified manifest with `+`, which
    // panicked in debug builds and wrapped to a small number in release ones.
    #[test]
    fn content_size_of_sizes_past_u64_max_saturates() {
        let mut manifest = BundleManifest::new(
            "test".into(),
            "2026-01-01T00:00:00Z".into(),
            SourceInfo::default(),
        );
        manifest.entries = ["a", "b"]
            .map(|path| Entry {
                path: path.into(),
                size: 1 << 63,
                sha256: Digest::of(path.as_bytes()).hex().into(),
            })
            .into();
        let bytes = manifest.to_bytes();
        let parsed = BundleManifest::parse(&bytes).unwrap();
        assert_eq!(parsed.content_size(), u64::MAX);
    }
}
