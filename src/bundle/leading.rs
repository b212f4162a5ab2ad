//! The image configs at the front of a bundle, read without decompressing
//! a layer: airgap puts configs before any layer (in the head frame), so a
//! delta can take them from an earlier bundle instead of an export, and
//! unpack can keep them for the site's inventory. Each entry is checked
//! against the manifest as it streams and each config against its digest.

use std::cell::OnceCell;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;

use super::manifest::{BundleManifest, Entry};
use super::{BundleError, reader};
use crate::digest::Digest;
use crate::image::BlobRef;

/// Most bytes of entries read in front of a bundle's first layer: the
/// layout files, compose files, configs and manifests of a stack.
const LEADING_LIMIT: u64 = 64 << 20;
/// Largest config taken (configs are kilobytes).
pub const CONFIG_LIMIT: u64 = 16 << 20;

/// One image config found at the front of a bundle.
#[derive(Debug)]
pub struct LeadingConfig {
    /// Its digest, which its bytes were checked against.
    pub digest: Digest,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// The layers the bundle lists for its image, with their sizes.
    pub layers: Vec<BlobRef>,
}

/// The configs at the front of the bundle `input` streams (`path` names it
/// in errors).
pub fn configs(input: impl Read + Send, path: &Path) -> Result<Vec<LeadingConfig>, BundleError> {
    let wanted: OnceCell<HashSet<String>> = OnceCell::new();
    let is_wanted = |entry: &Entry| wanted.get().is_some_and(|w| w.contains(&entry.path));
    let mut found: HashMap<String, Vec<u8>> = HashMap::new();
    let head = reader::read_leading(
        input,
        |head| {
            let _ = wanted.set(leading_configs(&head.manifest));
            Ok::<(), BundleError>(())
        },
        is_wanted,
        |entry, content| {
            if !is_wanted(entry) {
                return Ok(());
            }
            let mut bytes = Vec::new();
            content
                .take(CONFIG_LIMIT)
                .read_to_end(&mut bytes)
                .map_err(|source| BundleError::Io {
                    action: "reading the configs of",
                    path: path.to_owned(),
                    source,
                })?;
            found.insert(entry.path.clone(), bytes);
            Ok(())
        },
    )?;
    Ok(head
        .manifest
        .images
        .into_iter()
        .filter_map(|image| {
            let bytes = found.remove(&image.config.digest.blob_path())?;
            (Digest::of(&bytes) == image.config.digest).then_some(LeadingConfig {
                digest: image.config.digest,
                bytes,
                layers: image.layers,
            })
        })
        .collect())
}

/// The config entries a bundle holds before its first layer or patch,
/// within [`LEADING_LIMIT`]: what can be read without decompressing a layer.
fn leading_configs(manifest: &BundleManifest) -> HashSet<String> {
    let configs: HashSet<String> = manifest
        .images
        .iter()
        .map(|i| i.config.digest.blob_path())
        .collect();
    let layers: HashSet<String> = manifest
        .images
        .iter()
        .flat_map(|i| &i.layers)
        .map(|l| l.digest.blob_path())
        .collect();
    let mut read = 0u64;
    let mut wanted = HashSet::new();
    for entry in &manifest.entries {
        read = read.saturating_add(entry.size);
        if layers.contains(&entry.path)
            || entry.path.starts_with("patches/")
            || read > LEADING_LIMIT
        {
            break;
        }
        if configs.contains(&entry.path) && entry.size <= CONFIG_LIMIT {
            wanted.insert(entry.path.clone());
        }
    }
    wanted
}
