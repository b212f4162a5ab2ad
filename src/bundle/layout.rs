//! The metadata entries that make a bundle's tar both an OCI image layout and
//! a `docker load` archive (FORMAT.md 3.1 and 3.2).

use std::collections::HashMap;

use oci_spec::image::{
    ANNOTATION_REF_NAME, Descriptor, ImageIndexBuilder, ImageManifest, ImageManifestBuilder,
    MediaType, OciLayoutBuilder,
};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::image::{BlobRef, ImageRecord};

use super::manifest::BundleImage;

/// Containerd's name annotation; Docker's containerd image store reads it.
const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// One image of a `docker load` archive's `manifest.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DockerLoadEntry {
    /// Path of the config file in the archive.
    pub config: String,
    /// Tags to set, in Docker's short form.
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    /// Paths of the layer files, bottom first.
    pub layers: Vec<String>,
}

/// A small metadata entry held in memory.
pub struct MetadataEntry {
    /// Path in the tar.
    pub path: String,
    /// Content.
    pub bytes: Vec<u8>,
}

/// The OCI image manifest airgap writes for an image: config plus
/// uncompressed layers, serialised deterministically so the same image always
/// gets the same manifest digest (the image ID on containerd image stores).
pub fn image_manifest(image: &ImageRecord) -> Vec<u8> {
    let descriptor = |media_type: MediaType, blob: &BlobRef| {
        let digest: oci_spec::image::Digest = blob
            .digest
            .as_str()
            .parse()
            .expect("a sha256 digest is a valid OCI digest");
        Descriptor::new(media_type, blob.size, digest)
    };
    let config = BlobRef {
        digest: image.config_digest.clone(),
        size: image.config.len() as u64,
    };
    let manifest: ImageManifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(MediaType::ImageConfig, &config))
        .layers(
            image
                .layers
                .iter()
                .map(|l| descriptor(MediaType::ImageLayer, l))
                .collect::<Vec<_>>(),
        )
        .build()
        .expect("every required manifest field is set");
    serde_json::to_vec(&manifest).expect("manifests always serialise")
}

/// `oci-layout`, `index.json` and `manifest.json` for `images`.
pub fn layout_entries(images: &[BundleImage]) -> Vec<MetadataEntry> {
    let layout = OciLayoutBuilder::default()
        .image_layout_version("1.0.0")
        .build()
        .expect("layout version is set");

    let mut index_manifests = Vec::new();
    let mut docker_entries = Vec::new();
    for image in images {
        let manifest = &image.manifest;
        for reference in &image.refs {
            let digest: oci_spec::image::Digest = manifest
                .digest
                .as_str()
                .parse()
                .expect("a sha256 digest is a valid OCI digest");
            let mut descriptor = Descriptor::new(MediaType::ImageManifest, manifest.size, digest);
            descriptor.set_annotations(Some(HashMap::from([
                (ANNOTATION_REF_NAME.to_owned(), reference.name.clone()),
                (CONTAINERD_NAME.to_owned(), reference.name.clone()),
            ])));
            index_manifests.push(descriptor);
        }
        docker_entries.push(DockerLoadEntry {
            config: image.config.digest.blob_path(),
            repo_tags: Some(image.refs.iter().filter_map(|r| r.familiar_tag()).collect()),
            layers: image.layers.iter().map(|l| l.digest.blob_path()).collect(),
        });
    }
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(index_manifests)
        .build()
        .expect("every required index field is set");

    vec![
        MetadataEntry {
            path: "oci-layout".into(),
            bytes: canonical_json(&layout),
        },
        MetadataEntry {
            path: "index.json".into(),
            bytes: canonical_json(&index),
        },
        MetadataEntry {
            path: "manifest.json".into(),
            bytes: canonical_json(&docker_entries),
        },
    ]
}

/// JSON with object keys sorted, so maps (annotations) serialise the same
/// way every time.
pub(crate) fn canonical_json(value: &impl Serialize) -> Vec<u8> {
    let value = serde_json::to_value(value).expect("layout types always serialise");
    serde_json::to_vec(&value).expect("a JSON value always serialises")
}

/// Blob entries for configs and image manifests, each once.
pub fn blob_entries<'a>(
    blobs: impl IntoIterator<Item = (&'a Digest, &'a [u8])>,
) -> Vec<MetadataEntry> {
    let mut seen = std::collections::HashSet::new();
    blobs
        .into_iter()
        .filter(|(digest, _)| seen.insert((*digest).clone()))
        .map(|(digest, bytes)| MetadataEntry {
            path: digest.blob_path(),
            bytes: bytes.to_vec(),
        })
        .collect()
}
