//! Deltas for every medium. On the connected side: what a delta bundle
//! leaves out and what it ships as patches, decided from what the receiving
//! site holds (its inventory, or earlier bundles). On the isolated side
//! ([`finish`]): turning a verified bundle into complete images for whatever
//! sink receives them, patches applied and absent layers supplied.

pub mod inventory;

pub mod finish;
pub mod patch;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use oci_spec::distribution::Reference;

use crate::bundle::reader;
use crate::bundle::writer::BundleWriter;
use crate::cache::LayerCache;
use crate::digest::{Digest, HashingWriter};
use crate::error::Error;
use crate::image::{BlobRef, ImageRef};
use crate::media::source::{ResolvedImage, Source, SourceError};
use crate::progress::Progress;
use crate::store::StagedLayer;
use crate::store::StagedLayers;

/// What a receiving site holds.
#[derive(Clone, Debug, Default)]
pub struct Site {
    /// Its images.
    pub images: Vec<SiteImage>,
    /// Earlier bundles the site unpacked, which may hold layers to patch against.
    pub bundles: Vec<PathBuf>,
    /// Configs the site's inventories carry, each with its image's layers
    /// and their sizes: what a delta needs of an image the site holds
    /// whole, so that the engine need not export it.
    pub configs: Vec<(Digest, Vec<u8>, Vec<crate::image::BlobRef>)>,
    /// The sizes of layers the inventories and earlier bundles state.
    pub layer_sizes: std::collections::HashMap<Digest, u64>,
}

/// One image on the site.
#[derive(Clone, Debug)]
pub struct SiteImage {
    /// Its fully qualified names.
    pub names: Vec<String>,
    /// Its layers, bottom first.
    pub layers: Vec<Digest>,
}

/// Tells `writer` what to leave out and what to patch; returns the staged
/// patch references, which must live until the bundle is written.
pub fn prepare(
    writer: &mut BundleWriter,
    source: &dyn Source,
    images: &[ResolvedImage],
    site: &Site,
    patch: bool,
    cache: Option<&LayerCache>,
    progress: &dyn Progress,
) -> Result<Vec<StagedLayers>, Error> {
    let mut refs = Vec::new();
    let mut lists = Vec::new();
    for image in images {
        let layers = image.layers.as_ref().ok_or(SourceError::NoLayerLists)?;
        for reference in &image.refs {
            refs.push(reference.clone());
            lists.push(layers.clone());
        }
    }
    let refs = &refs;
    let chains: Vec<Vec<Digest>> = site.images.iter().map(|i| i.layers.clone()).collect();
    let left = left_out(&lists, &chains);
    log_left_out(refs, &lists, &left);
    let mut staged = Vec::new();
    if patch {
        let pairs = patch_pairs(refs, &lists, &site.images, &left);
        let bases: HashSet<Digest> = pairs.values().cloned().collect();
        // Bases the layer cache holds need no export.
        let cached = match cache {
            Some(cache) => from_cache(cache, &bases)?,
            None => StagedLayers::none().map_err(SourceError::from)?,
        };
        // Then the earlier bundles, read only up to the last base they
        // carry: cheaper than the engine exporting each base's whole image.
        let mut bundled = StagedLayers::none().map_err(SourceError::from)?;
        for bundle in &site.bundles {
            let still_wanted = missing(&bases, &[&cached, &bundled]);
            from_bundle(bundle, &still_wanted, &mut bundled)?;
        }
        let from_source = missing(&bases, &[&cached, &bundled]);
        let mut references = source.supply_layers(&from_source, progress)?;
        for layer in cached.layers.values().chain(bundled.layers.values()) {
            references.layers.insert(
                layer.digest.clone(),
                StagedLayer {
                    path: layer.path.clone(),
                    digest: layer.digest.clone(),
                    size: layer.size,
                },
            );
        }
        staged.push(cached);
        staged.push(bundled);
        let plan = pairs
            .into_iter()
            .filter_map(|(layer, base)| {
                let Some(staged) = references.layers.get(&base) else {
                    tracing::info!(
                        "delta: layer {} ships whole: its patch base {} is neither on this engine nor in an earlier bundle named",
                        layer.short(),
                        base.short()
                    );
                    return None;
                };
                tracing::info!(
                    "delta: layer {} may ship as a patch against {}, the same place in the site's previous version",
                    layer.short(),
                    base.short()
                );
                Some((
                    layer,
                    (
                        BlobRef {
                            digest: base,
                            size: staged.size,
                        },
                        staged.path.clone(),
                    ),
                ))
            })
            .collect();
        writer.plan_patches(plan);
        staged.push(references);
    }
    writer.leave_out(left);
    Ok(staged)
}

/// Says, per image, which of its layers are left out and why.
fn log_left_out(refs: &[ImageRef], lists: &[Vec<Digest>], left: &HashSet<Digest>) {
    for (reference, layers) in refs.iter().zip(lists) {
        for (position, layer) in layers.iter().enumerate() {
            if left.contains(layer) {
                tracing::info!(
                    "delta: layer {} of {} (position {}) left out: the site holds the chain up to it",
                    layer.short(),
                    crate::display::escape(&reference.given),
                    position + 1
                );
            } else {
                tracing::debug!(
                    "delta: layer {} of {} ships",
                    layer.short(),
                    crate::display::escape(&reference.given)
                );
            }
        }
    }
}

/// The layers a site can build on without receiving them: for each image, the
/// longest prefix of its layers that the site holds as a chain. A layer the
/// site holds but above a layer it lacks sits in a chain the site cannot
/// build, so it ships; a layer shipped for one image is carried for all.
pub fn left_out(images: &[Vec<Digest>], site: &[Vec<Digest>]) -> HashSet<Digest> {
    let mut on_site = HashSet::new();
    let mut carried = HashSet::new();
    for layers in images {
        let held = site
            .iter()
            .map(|chain| common_prefix(layers, chain))
            .max()
            .unwrap_or(0);
        on_site.extend(layers[..held].iter().cloned());
        carried.extend(layers[held..].iter().cloned());
    }
    on_site.retain(|layer| !carried.contains(layer));
    on_site
}

fn common_prefix(a: &[Digest], b: &[Digest]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// For every shipped layer of an image whose repository the site holds an
/// older image of, the site's layer at the same position: what the new
/// layer most likely changed from.
pub fn patch_pairs(
    refs: &[ImageRef],
    lists: &[Vec<Digest>],
    site: &[SiteImage],
    left_out: &HashSet<Digest>,
) -> HashMap<Digest, Digest> {
    let mut pairs = HashMap::new();
    for (reference, layers) in refs.iter().zip(lists) {
        let Some(repository) = repository(&reference.name) else {
            continue;
        };
        let previous = site
            .iter()
            .filter(|s| {
                s.layers != *layers
                    && s.names
                        .iter()
                        .any(|n| repository_of(n) == Some(repository.clone()))
            })
            .max_by_key(|s| common_prefix(layers, &s.layers));
        let Some(previous) = previous else { continue };
        for (layer, base) in layers.iter().zip(&previous.layers) {
            if layer != base && !left_out.contains(layer) && !layers.contains(base) {
                pairs.entry(layer.clone()).or_insert_with(|| base.clone());
            }
        }
    }
    pairs
}

fn repository_of(name: &str) -> Option<String> {
    repository(name)
}

/// `registry/repository` of a reference; Podman's `localhost/` registry for
/// short names counts as Docker Hub, where the same short name points.
fn repository(name: &str) -> Option<String> {
    let reference: Reference = name.parse().ok()?;
    let registry = match reference.registry() {
        "localhost" => "docker.io",
        other => other,
    };
    Some(format!("{registry}/{}", reference.repository()))
}

/// The layers of `wanted` none of `staged` holds.
fn missing(wanted: &HashSet<Digest>, staged: &[&StagedLayers]) -> HashSet<Digest> {
    wanted
        .iter()
        .filter(|d| !staged.iter().any(|s| s.layers.contains_key(*d)))
        .cloned()
        .collect()
}

/// Stages the layers of `wanted` the layer cache holds (checked).
fn from_cache(cache: &LayerCache, wanted: &HashSet<Digest>) -> Result<StagedLayers, Error> {
    let mut staged = StagedLayers::none().map_err(SourceError::from)?;
    for digest in wanted {
        let path = staged.dir().join(format!("cache-{}", digest.hex()));
        if let Some(size) = cache.extract_layer(digest, &path) {
            staged.layers.insert(
                digest.clone(),
                StagedLayer {
                    path,
                    digest: digest.clone(),
                    size,
                },
            );
        }
    }
    Ok(staged)
}

/// Stages from an earlier bundle the blobs of `wanted` it carries, reading
/// it no further than the last of them.
fn from_bundle(
    path: &std::path::Path,
    wanted: &HashSet<Digest>,
    staged: &mut StagedLayers,
) -> Result<(), Error> {
    if wanted.is_empty() {
        return Ok(());
    }
    // Found as unpack finds a bundle, so a split --since bundle reads too.
    let file = crate::verify::locate::Location::find(path, None)?.open()?;
    let dir = staged.dir().to_owned();
    let mut found = Vec::new();
    let is_wanted = |entry: &crate::bundle::manifest::Entry| {
        entry
            .path
            .strip_prefix("blobs/sha256/")
            .and_then(|h| Digest::from_hex(h).ok())
            .is_some_and(|digest| wanted.contains(&digest))
    };
    reader::read_leading(
        file,
        |_| Ok::<(), Error>(()),
        is_wanted,
        |entry, content| {
            let Some(digest) = entry
                .path
                .strip_prefix("blobs/sha256/")
                .and_then(|h| Digest::from_hex(h).ok())
            else {
                return Ok(());
            };
            if !wanted.contains(&digest) {
                return Ok(());
            }
            let target = dir.join(format!("since-{}", digest.hex()));
            let io_error = |source| crate::bundle::BundleError::Io {
                action: "staging",
                path: target.clone(),
                source,
            };
            let mut out = HashingWriter::new(std::fs::File::create(&target).map_err(io_error)?);
            std::io::copy(content, &mut out).map_err(io_error)?;
            let (actual, size, _) = out.finish();
            // The reader checks the entry against the manifest; the name is the digest.
            if actual == digest {
                found.push(StagedLayer {
                    path: target,
                    digest,
                    size,
                });
            }
            Ok(())
        },
    )?;
    for layer in found {
        staged.layers.insert(layer.digest.clone(), layer);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        Digest::of(&[n])
    }

    #[test]
    fn only_chain_prefixes_the_site_holds_are_left_out() {
        let site = vec![vec![d(1), d(2), d(3)]];
        // Same base, new top: base and middle stay home.
        assert_eq!(
            left_out(&[vec![d(1), d(2), d(4)]], &site),
            HashSet::from([d(1), d(2)])
        );
        // A changed middle layer: the unchanged top layer above it must ship.
        assert_eq!(
            left_out(&[vec![d(1), d(5), d(3)]], &site),
            HashSet::from([d(1)])
        );
        // Nothing in common.
        assert!(left_out(&[vec![d(9)]], &site).is_empty());
    }

    #[test]
    fn a_layer_shipped_for_one_image_is_not_also_left_out() {
        let site = vec![vec![d(1), d(2)]];
        let images = [vec![d(1), d(2)], vec![d(1), d(3), d(2)]];
        assert_eq!(left_out(&images, &site), HashSet::from([d(1)]));
    }

    #[test]
    fn changed_layers_pair_with_the_previous_version_of_the_same_repository() {
        let site = [
            SiteImage {
                names: vec!["localhost/local/api:1".into()],
                layers: vec![d(1), d(2)],
            },
            SiteImage {
                names: vec!["docker.io/other/thing:1".into()],
                layers: vec![d(1), d(7)],
            },
        ];
        let refs = [ImageRef::parse("local/api:3").unwrap()];
        let lists = [vec![d(1), d(3)]];
        let left = left_out(&lists, &[site[0].layers.clone(), site[1].layers.clone()]);
        let pairs = patch_pairs(&refs, &lists, &site, &left);
        assert_eq!(pairs, HashMap::from([(d(3), d(2))]));
    }
}
