//! What a bundle holds, from its manifest: images, tags, layers, sizes and
//! which layers are shared. Reading the manifest is not verifying it; the
//! summary says whether the signature was checked.

use std::collections::HashMap;

use crate::bundle::BundleManifest;
use crate::digest::Digest;
use crate::display::escape;
use crate::image::BlobRef;

/// A summary of a bundle for people.
#[derive(Debug)]
pub struct BundleSummary {
    /// One per image.
    pub images: Vec<ImageSummary>,
    /// Layers used by more than one image, with how many use them.
    pub shared_layers: Vec<(BlobRef, usize)>,
    /// Sum of every image's layers and configs, as if each were saved alone.
    pub total_image_size: u64,
    /// Bytes of content actually carried (each blob once).
    pub carried_size: u64,
    /// Layers the site must already have (delta bundles).
    pub required: Vec<BlobRef>,
}

/// One image in a [`BundleSummary`].
#[derive(Debug)]
pub struct ImageSummary {
    /// References as given, escaped for people ([`crate::display::escape`]).
    pub refs: Vec<String>,
    /// Config digest (the image ID on graph-driver engines).
    pub config: Digest,
    /// OS/architecture, escaped for people.
    pub platform: String,
    /// Layers, bottom first.
    pub layers: Vec<BlobRef>,
    /// Sum of layer sizes.
    pub size: u64,
}

/// Summarises `manifest`.
pub fn summarize(manifest: &BundleManifest) -> BundleSummary {
    let mut users: HashMap<&Digest, (BlobRef, usize)> = HashMap::new();
    let mut order = Vec::new();
    for image in &manifest.images {
        for layer in &image.layers {
            let slot = users.entry(&layer.digest).or_insert_with(|| {
                order.push(&layer.digest);
                (layer.clone(), 0)
            });
            slot.1 += 1;
        }
    }
    let shared_layers = order
        .iter()
        .map(|d| users[d].clone())
        .filter(|(_, count)| *count > 1)
        .collect();
    let images: Vec<ImageSummary> = manifest
        .images
        .iter()
        .map(|image| ImageSummary {
            refs: image
                .refs
                .iter()
                .map(|r| escape(&r.given).into_owned())
                .collect(),
            config: image.config.digest.clone(),
            platform: escape(&image.platform.to_string()).into_owned(),
            size: sum(image.layers.iter().map(|l| l.size)),
            layers: image.layers.clone(),
        })
        .collect();
    BundleSummary {
        total_image_size: sum(manifest
            .images
            .iter()
            .flat_map(|i| std::iter::once(&i.config).chain(&i.layers))
            .map(|blob| blob.size)),
        carried_size: manifest.content_size(),
        required: manifest.required.clone(),
        shared_layers,
        images,
    }
}

/// Sizes come from a manifest that may not be verified yet (`airgap
/// inspect`), so their sum may not fit a `u64`: it stops at `u64::MAX`.
fn sum(sizes: impl Iterator<Item = u64>) -> u64 {
    sizes.fold(0, u64::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::{BundleImage, Entry, SourceInfo};
    use crate::image::{ImageRef, Platform};

    fn blob(id: &[u8], size: u64) -> BlobRef {
        BlobRef {
            digest: Digest::of(id),
            size,
        }
    }

    // Found by the fuzz target manifest_shape (crash-9e450f8c): layer and
    // config sizes of an unverified manifest were summed with `+`, which
    // panicked in debug builds and wrapped in release ones.
    #[test]
    fn sizes_past_u64_max_saturate() {
        let (config, huge) = (blob(b"config", 1), blob(b"layer", u64::MAX));
        let mut manifest = BundleManifest::new(
            "test".into(),
            "2026-01-01T00:00:00Z".into(),
            SourceInfo::default(),
        );
        manifest.entries = [&config, &huge]
            .map(|b| Entry {
                path: b.digest.blob_path(),
                size: b.size,
                sha256: b.digest.hex().into(),
            })
            .into();
        manifest.images = vec![BundleImage {
            refs: vec![ImageRef {
                given: "a:1".into(),
                name: "docker.io/library/a:1".into(),
            }],
            platform: Platform::default(),
            manifest: config.clone(),
            config: config.clone(),
            layers: vec![huge.clone(), huge],
        }];
        let manifest = BundleManifest::parse(&manifest.to_bytes()).unwrap();
        let summary = summarize(&manifest);
        assert_eq!(summary.images[0].size, u64::MAX);
        assert_eq!(summary.total_image_size, u64::MAX);
        assert_eq!(summary.carried_size, u64::MAX);
    }
}
