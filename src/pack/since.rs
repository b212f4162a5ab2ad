//! The configs the `--since` bundles carry (and a site's inventory, where
//! unpack kept them), so that a delta need not export an image the site
//! holds whole just to learn its config, even with the layer cache off or
//! cold. Only the front of each bundle is read ([`leading`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::bundle::leading;
use crate::cache::{CachedImage, LayerCache};
use crate::delta::Site;
use crate::digest::Digest;
use crate::error::Error;
use crate::image::{BlobRef, ConfigSummary};
use crate::media::source::{ResolvedImage, Source};
use crate::verify::locate::Location;

/// Configs from earlier bundles, by digest, with the layers the bundle
/// listed for their image.
#[derive(Debug, Default)]
pub struct SinceConfigs {
    images: HashMap<Digest, SinceImage>,
    /// Config digests of engine images named by another digest (their
    /// manifest's, on Docker's containerd image store).
    configs_of_ids: HashMap<Digest, Digest>,
}

#[derive(Debug)]
struct SinceImage {
    config: Vec<u8>,
    layers: Vec<BlobRef>,
}

impl SinceConfigs {
    /// The configs `site`'s `--since` bundles and inventory carry, and,
    /// for images `source` names by another digest and `cache` cannot
    /// stand in for, the configs behind those names where `source` can
    /// tell them.
    pub fn for_site(
        site: &Site,
        source: &dyn Source,
        images: &[ResolvedImage],
        cache: Option<&LayerCache>,
    ) -> Self {
        let mut configs = Self::read(&site.bundles);
        for (digest, config, layers) in &site.configs {
            configs.insert(digest.clone(), config.clone(), layers.clone());
        }
        if configs.images.is_empty() {
            return configs;
        }
        let named_otherwise: Vec<ResolvedImage> = images
            .iter()
            .filter(|image| {
                image.id.as_ref().is_some_and(|id| {
                    !configs.images.contains_key(id) && cache.is_none_or(|c| c.image(id).is_none())
                })
            })
            .cloned()
            .collect();
        if !named_otherwise.is_empty() {
            configs
                .configs_of_ids
                .extend(source.config_digests(&named_otherwise));
        }
        configs
    }

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
    /// digest: graph drivers and Podman) or an ID whose config the engine
    /// told ([`SinceConfigs::for_site`]). The layer sizes are the
    /// earlier bundle's claim, as the site's layer sizes always are; the
    /// config and the layer digests are checked against the engine on use.
    pub fn image(&self, id: &Digest) -> Option<CachedImage> {
        let config = self.configs_of_ids.get(id).unwrap_or(id);
        let found = self.images.get(config)?;
        Some(CachedImage {
            id: id.clone(),
            config: config.clone(),
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
        for found in leading::configs(file, path)? {
            self.insert(found.digest, found.bytes, found.layers);
        }
        Ok(())
    }
}
