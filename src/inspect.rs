//! What a bundle holds, from its manifest: images, tags, layers, sizes and
//! which layers are shared. Reading the manifest is not verifying it; the
//! summary says whether the signature was checked.

use std::collections::HashMap;

use crate::bundle::BundleManifest;
use crate::digest::Digest;
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
    /// References as given.
    pub refs: Vec<String>,
    /// Config digest (the image ID on graph-driver engines).
    pub config: Digest,
    /// OS/architecture.
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
            refs: image.refs.iter().map(|r| r.given.clone()).collect(),
            config: image.config.digest.clone(),
            platform: image.platform.to_string(),
            size: image.layers.iter().map(|l| l.size).sum(),
            layers: image.layers.clone(),
        })
        .collect();
    BundleSummary {
        total_image_size: manifest
            .images
            .iter()
            .map(|i| i.config.size + i.layers.iter().map(|l| l.size).sum::<u64>())
            .sum(),
        carried_size: manifest.content_size(),
        required: manifest.required.clone(),
        shared_layers,
        images,
    }
}
