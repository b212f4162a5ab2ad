//! The image index a push puts over the platform images of one
//! multi-platform index (a bundle packed with `--all-platforms` or several
//! `--platform`s): the bundle's `origins` say which images came from which
//! index and for which platform. Its bytes depend only on the pushed
//! manifests and the platforms, so the same bundle gives the same index
//! digest; that digest differs from the original index's whenever the
//! layers were compressed again.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::bundle::{BundleImage, ImageOrigin};
use crate::digest::Digest;
use crate::image::Platform;

/// Media type of the index pushed.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// Images of the bundle that share one destination (repository and tag)
/// and all came from the same index: they are tagged through an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexGroup {
    /// Positions in the bundle's image list, in bundle order.
    pub images: Vec<usize>,
    /// Each member's platforms as the original index gave them, in origin order.
    pub platforms: Vec<Vec<Platform>>,
}

/// One platform manifest as pushed.
pub struct PushedManifest<'a> {
    pub media_type: &'a str,
    pub digest: &'a Digest,
    pub size: u64,
}

/// Groups, by destination, the images that are to be tagged through an
/// index: more than one platform under that destination, every image there
/// pulled from the same index. Anything else keeps its manifest tagged.
pub fn index_groups<K: Ord + Clone>(
    images: &[&BundleImage],
    destinations: &[Vec<K>],
    origins: &[ImageOrigin],
) -> BTreeMap<K, IndexGroup> {
    let mut sharing: BTreeMap<K, Vec<usize>> = BTreeMap::new();
    for (position, keys) in destinations.iter().enumerate() {
        for key in keys {
            let members = sharing.entry(key.clone()).or_default();
            if !members.contains(&position) {
                members.push(position);
            }
        }
    }
    sharing
        .into_iter()
        .filter_map(|(key, members)| group_of(images, &members, origins).map(|group| (key, group)))
        .collect()
}

fn group_of(
    images: &[&BundleImage],
    members: &[usize],
    origins: &[ImageOrigin],
) -> Option<IndexGroup> {
    let mut index: Option<&Digest> = None;
    let mut platforms = Vec::new();
    for &position in members {
        let config = &images[position].config.digest;
        let from: Vec<&ImageOrigin> = origins.iter().filter(|o| &o.config == config).collect();
        let mut mine = Vec::new();
        for origin in from {
            let named = origin.index.as_ref()?;
            if *index.get_or_insert(named) != named {
                return None;
            }
            if !mine.contains(&origin.platform) {
                mine.push(origin.platform.clone());
            }
        }
        if mine.is_empty() {
            return None;
        }
        platforms.push(mine);
    }
    let count: usize = platforms.iter().map(Vec::len).sum();
    (count > 1).then(|| IndexGroup {
        images: members.to_vec(),
        platforms,
    })
}

#[derive(Serialize)]
struct Index<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    manifests: Vec<Descriptor<'a>>,
}

#[derive(Serialize)]
struct Descriptor<'a> {
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    digest: &'a str,
    size: u64,
    platform: IndexPlatform<'a>,
}

#[derive(Serialize)]
struct IndexPlatform<'a> {
    architecture: &'a str,
    os: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
}

/// The index bytes over `manifests`, each paired with its platforms, in
/// the order given.
pub fn index_bytes(manifests: &[(PushedManifest<'_>, &[Platform])]) -> Vec<u8> {
    let descriptors = manifests
        .iter()
        .flat_map(|(manifest, platforms)| {
            platforms.iter().map(move |platform| Descriptor {
                media_type: manifest.media_type,
                digest: manifest.digest.as_str(),
                size: manifest.size,
                platform: IndexPlatform {
                    architecture: &platform.architecture,
                    os: &platform.os,
                    variant: platform.variant.as_deref(),
                },
            })
        })
        .collect();
    serde_json::to_vec(&Index {
        schema_version: 2,
        media_type: INDEX_MEDIA_TYPE,
        manifests: descriptors,
    })
    .expect("an index serialises")
}
