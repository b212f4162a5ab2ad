//! The configs the `--since` bundles carry, so that a delta need not export
//! an image the site holds whole just to learn its config, even with the
//! layer cache off or cold. Only the front of each bundle is read (airgap
//! puts configs in the head frame, before any layer), each entry checked
//! against the manifest as it streams and each config against its digest.

use std::cell::OnceCell;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::bundle::manifest::BundleManifest;
use crate::bundle::{BundleError, reader};
use crate::cache::CachedImage;
use crate::digest::Digest;
use crate::error::Error;
use crate::image::{BlobRef, ConfigSummary};
use crate::verify::locate::Location;

/// Most bytes of entries read in front of a bundle's first layer: the
/// layout files, compose files, configs and manifests of a stack.
const LEADING_LIMIT: u64 = 64 << 20;
/// Largest config taken (configs are kilobytes).
const CONFIG_LIMIT: u64 = 16 << 20;

/// Configs from earlier bundles, by digest, with the layers the bundle
/// listed for their image.
#[derive(Debug, Default)]
pub struct SinceConfigs {
    images: HashMap<Digest, SinceImage>,
}

#[derive(Debug)]
struct SinceImage {
    config: Vec<u8>,
    layers: Vec<BlobRef>,
}

impl SinceConfigs {
    /// Reads the configs at the front of each of `bundles`. A bundle that
    /// cannot be read this way gives none: its images are exported.
    pub fn read(bundles: &[PathBuf]) -> Self {
        let mut configs = Self::default();
        for path in bundles {
            if let Err(error) = configs.read_bundle(path) {
                tracing::info!(
                    "pack: the configs of --since bundle {} are not used ({error}); its images are exported",
                    crate::display::escape_path(path)
                );
            }
        }
        tracing::debug!(
            "pack: {} image configs at hand from the --since bundles",
            configs.images.len()
        );
        configs
    }

    /// What the engine image `id` is made of, where `id` is the digest of
    /// a config these bundles hold (engines whose image ID is the config
    /// digest: graph drivers and Podman). The layer sizes are the earlier
    /// bundle's claim, as the site's layer sizes always are; the config and
    /// the layer digests are checked against the engine on use.
    pub fn image(&self, id: &Digest) -> Option<CachedImage> {
        let found = self.images.get(id)?;
        Some(CachedImage {
            id: id.clone(),
            config: id.clone(),
            platform: ConfigSummary::parse(&found.config).ok()?.platform,
            layers: found.layers.clone(),
        })
    }

    /// The config `digest`, if a bundle held it.
    pub fn config(&self, digest: &Digest) -> Option<Vec<u8>> {
        self.images.get(digest).map(|found| found.config.clone())
    }

    /// Keeps `config` (when it is `digest`'s) with its image's `layers`.
    pub fn insert(&mut self, digest: Digest, config: Vec<u8>, layers: Vec<BlobRef>) {
        if Digest::of(&config) == digest {
            self.images
                .entry(digest)
                .or_insert(SinceImage { config, layers });
        }
    }

    fn read_bundle(&mut self, path: &Path) -> Result<(), Error> {
        // Found as unpack finds a bundle, so a split --since bundle reads too.
        let file = Location::find(path, None)?.open()?;
        let wanted: OnceCell<HashSet<String>> = OnceCell::new();
        let is_wanted = |entry: &crate::bundle::manifest::Entry| {
            wanted.get().is_some_and(|w| w.contains(&entry.path))
        };
        let mut found: HashMap<String, Vec<u8>> = HashMap::new();
        let head = reader::read_leading(
            file,
            |head| {
                let _ = wanted.set(leading_configs(&head.manifest));
                Ok::<(), Error>(())
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
        for image in head.manifest.images {
            if let Some(config) = found.remove(&image.config.digest.blob_path()) {
                self.insert(image.config.digest, config, image.layers);
            }
        }
        Ok(())
    }
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
