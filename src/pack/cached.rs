//! Which images a pack must export from the engine and which it can carry
//! from what it already has: the layer cache's checked entries, the configs
//! the `--since` bundles carry, and the layers a delta leaves out (which
//! need no bytes at all). An image is exported only when one of the layers
//! the bundle carries, or its config, is not at hand.

use std::collections::{HashMap, HashSet};

use crate::cache::{CachedFrame, CachedImage, LayerCache};
use crate::digest::Digest;
use crate::image::{ConfigSummary, ImageRecord};
use crate::media::source::ResolvedImage;

use super::since::SinceConfigs;

/// What pack already holds of images it may not need to export: the layer
/// cache (records, configs and layers) and the `--since` bundles (configs
/// and their images' layer lists, never layer bytes).
#[derive(Clone, Copy)]
pub struct Known<'a> {
    /// The layer cache, if used.
    pub cache: Option<&'a LayerCache>,
    /// The configs the `--since` bundles carry.
    pub since: &'a SinceConfigs,
}

impl Known<'_> {
    /// What is recorded of the engine image `id`: a hint, checked on use.
    fn image(&self, id: &Digest) -> Option<CachedImage> {
        self.cache
            .and_then(|cache| cache.image(id))
            .or_else(|| self.since.image(id))
    }

    /// The config `digest`, checked against it.
    fn config(&self, digest: &Digest) -> Option<Vec<u8>> {
        self.cache
            .and_then(|cache| cache.config(digest))
            .or_else(|| self.since.config(digest))
    }

    /// The layer `digest`, checked; only the cache holds layer bytes.
    fn layer(&self, digest: &Digest) -> Option<CachedFrame> {
        self.cache?.layer(digest)
    }
}

/// What the cache supplies and what the engine must export.
#[derive(Default)]
pub struct CachePlan {
    /// Images to export, in plan order.
    pub exported: Vec<ResolvedImage>,
    /// Records of the images not exported, by their index in the plan.
    pub cached: HashMap<usize, ImageRecord>,
    /// Checked layers the cache supplies.
    pub layers: HashMap<Digest, CachedFrame>,
}

/// Decides, image by image, whether what is `known` (with the layers a
/// delta leaves out) holds all a bundle needs of it. `patch_targets` are layers
/// a delta may ship as patches, which must come from the export (a patch
/// is made from the staged file). Only images the engine identified (ID
/// and diff IDs from inspect) are taken from the cache, and only when the
/// record of that ID lists the same diff IDs and its config, by digest,
/// lists them too.
pub fn plan(
    known: &Known<'_>,
    images: &[ResolvedImage],
    left_out: &HashSet<Digest>,
    patch_targets: &HashSet<Digest>,
) -> CachePlan {
    let mut plan = CachePlan::default();
    for (index, image) in images.iter().enumerate() {
        match from_known(known, image, left_out, patch_targets, &mut plan.layers) {
            Some(record) => {
                plan.cached.insert(index, record);
            }
            None => plan.exported.push(image.clone()),
        }
    }
    plan
}

fn from_known(
    known: &Known<'_>,
    image: &ResolvedImage,
    left_out: &HashSet<Digest>,
    patch_targets: &HashSet<Digest>,
    layers: &mut HashMap<Digest, CachedFrame>,
) -> Option<ImageRecord> {
    let (Some(id), Some(diff_ids)) = (&image.id, &image.layers) else {
        return None;
    };
    let recorded = known.image(id)?;
    let recorded_ids: Vec<&Digest> = recorded.layers.iter().map(|l| &l.digest).collect();
    if recorded_ids != diff_ids.iter().collect::<Vec<_>>() {
        return None;
    }
    let config = known.config(&recorded.config)?;
    if ConfigSummary::parse(&config).ok()?.rootfs.diff_ids != *diff_ids {
        return None;
    }
    let mut complete = true;
    for layer in &recorded.layers {
        if left_out.contains(&layer.digest) || layers.contains_key(&layer.digest) {
            continue;
        }
        if patch_targets.contains(&layer.digest) {
            complete = false;
            continue;
        }
        match known.layer(&layer.digest) {
            Some(found) if found.size == layer.size => {
                layers.insert(layer.digest.clone(), found);
            }
            // Checked layers stay of use to the export's other images.
            _ => complete = false,
        }
    }
    complete.then(|| ImageRecord {
        refs: image.refs.clone(),
        config,
        config_digest: recorded.config,
        platform: recorded.platform,
        layers: recorded.layers,
    })
}

/// The sizes of the layers a delta leaves out, as the site (`stated`) or
/// the records of the images in the cache or the `--since` bundles give
/// them: hints for an export that names layers only once it has read them,
/// so that it need not stage one it can skip. The reader checks each
/// skipped layer by its digest. (A cached frame is not opened for its
/// size: checking it would hash the whole frame.)
pub fn left_out_sizes(
    known: &Known<'_>,
    images: &[ResolvedImage],
    left_out: &HashSet<Digest>,
    stated: &HashMap<Digest, u64>,
) -> HashSet<u64> {
    let mut sizes: HashMap<Digest, u64> = stated
        .iter()
        .filter(|(digest, _)| left_out.contains(*digest))
        .map(|(digest, size)| (digest.clone(), *size))
        .collect();
    let recorded = images
        .iter()
        .filter_map(|image| known.image(image.id.as_ref()?))
        .flat_map(|image| image.layers);
    for layer in recorded.filter(|layer| left_out.contains(&layer.digest)) {
        sizes.entry(layer.digest).or_insert(layer.size);
    }
    sizes.into_values().collect()
}

/// What the cache keeps of an exported image, so the next pack need not
/// export it.
pub fn remember(cache: &LayerCache, id: &Digest, record: &ImageRecord) {
    // A failure here costs only the next pack's time.
    if cache
        .put_config(&record.config_digest, &record.config)
        .is_ok()
    {
        let _ = cache.put_image(&CachedImage {
            id: id.clone(),
            config: record.config_digest.clone(),
            platform: record.platform.clone(),
            layers: record.layers.clone(),
        });
    }
}

/// The records of every planned image in plan order, as an export of all
/// of them would give them: images that share a config are one record
/// with the references of each, in plan order.
pub fn merge(
    images: &[ResolvedImage],
    mut cached: HashMap<usize, ImageRecord>,
    exported: Vec<ImageRecord>,
) -> Vec<ImageRecord> {
    let mut records: Vec<ImageRecord> = Vec::new();
    let mut taken = vec![false; exported.len()];
    for (index, image) in images.iter().enumerate() {
        let record = match cached.remove(&index) {
            Some(record) => record,
            None => {
                // Several platforms of one index share their references:
                // the layers tell them apart, and a record serves one image
                // where another fits.
                let named = |r: &ImageRecord| image.refs.iter().any(|x| r.refs.contains(x));
                let same_layers = |r: &ImageRecord| {
                    image
                        .layers
                        .as_ref()
                        .is_none_or(|layers| r.layers.iter().map(|l| &l.digest).eq(layers.iter()))
                };
                let first = |fits: &dyn Fn(usize) -> bool| (0..exported.len()).find(|&i| fits(i));
                let found =
                    first(&|i| !taken[i] && named(&exported[i]) && same_layers(&exported[i]))
                        .or_else(|| first(&|i| !taken[i] && named(&exported[i])))
                        .or_else(|| first(&|i| named(&exported[i])));
                let Some(found) = found else {
                    continue;
                };
                taken[found] = true;
                exported[found].clone()
            }
        };
        match records
            .iter_mut()
            .find(|r| r.config_digest == record.config_digest)
        {
            Some(existing) => {
                for reference in record.refs {
                    if !existing.refs.contains(&reference) {
                        existing.refs.push(reference);
                    }
                }
            }
            None => records.push(record),
        }
    }
    records
}

/// The layers the bundle carries, in the order it carries them: image by
/// image in plan order, bottom first, each once. Whatever order the engine
/// exports them in (Docker 20.10 walks its images in no fixed order) and
/// whatever the cache supplies, the bundle's bytes stay the same.
pub fn carried_order(images: &[ResolvedImage], left_out: &HashSet<Digest>) -> Vec<Digest> {
    let mut seen = HashSet::new();
    images
        .iter()
        .flat_map(|i| i.layers.iter().flatten())
        .filter(|d| !left_out.contains(*d) && seen.insert((*d).clone()))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{BlobRef, ImageRef, Platform};

    fn d(n: u8) -> Digest {
        Digest::of(&[n])
    }

    fn record(refs: &[&str], config: u8) -> ImageRecord {
        ImageRecord {
            refs: refs.iter().map(|r| ImageRef::parse(r).unwrap()).collect(),
            config: vec![config],
            config_digest: d(config),
            platform: Platform::default(),
            layers: vec![BlobRef {
                digest: d(100 + config),
                size: 1,
            }],
        }
    }

    fn resolved(reference: &str, layers: &[u8]) -> ResolvedImage {
        ResolvedImage {
            refs: vec![ImageRef::parse(reference).unwrap()],
            id: Some(d(200)),
            layers: Some(layers.iter().map(|n| d(*n)).collect()),
        }
    }

    #[test]
    fn records_keep_plan_order_whichever_way_they_came() {
        let images = [
            resolved("a:1", &[1]),
            resolved("b:1", &[2]),
            resolved("c:1", &[3]),
        ];
        let cached = HashMap::from([(1, record(&["b:1"], 2))]);
        let exported = vec![record(&["c:1"], 3), record(&["a:1"], 1)];
        let merged = merge(&images, cached, exported);
        let names: Vec<&str> = merged.iter().map(|r| r.refs[0].given.as_str()).collect();
        assert_eq!(names, ["a:1", "b:1", "c:1"]);
    }

    #[test]
    fn images_sharing_a_config_are_one_record() {
        let images = [resolved("a:1", &[1]), resolved("a:latest", &[1])];
        let cached = HashMap::from([(0, record(&["a:1"], 1)), (1, record(&["a:latest"], 1))]);
        let merged = merge(&images, cached, Vec::new());
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].refs.len(), 2);
    }

    fn config_of(layers: &[u8]) -> Vec<u8> {
        let diff_ids: Vec<String> = layers.iter().map(|n| format!("\"{}\"", d(*n))).collect();
        format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
            diff_ids.join(",")
        )
        .into_bytes()
    }

    /// An image as a graph-driver engine resolves it: its ID is its config's digest.
    fn engine_image(reference: &str, layers: &[u8]) -> (ResolvedImage, Vec<u8>) {
        let config = config_of(layers);
        let image = ResolvedImage {
            refs: vec![ImageRef::parse(reference).unwrap()],
            id: Some(Digest::of(&config)),
            layers: Some(layers.iter().map(|n| d(*n)).collect()),
        };
        (image, config)
    }

    fn blobs(layers: &[u8]) -> Vec<BlobRef> {
        layers
            .iter()
            .map(|n| BlobRef {
                digest: d(*n),
                size: 10 + u64::from(*n),
            })
            .collect()
    }

    #[test]
    fn without_a_cache_a_since_config_spares_the_export_of_an_image_the_site_holds_whole() {
        let (held, held_config) = engine_image("web:1", &[1, 2]);
        let (changed, changed_config) = engine_image("app:2", &[1, 3]);
        let (unknown, _) = engine_image("db:1", &[1, 2, 4]);
        let mut since = SinceConfigs::default();
        since.insert(
            Digest::of(&held_config),
            held_config.clone(),
            blobs(&[1, 2]),
        );
        since.insert(Digest::of(&changed_config), changed_config, blobs(&[1, 3]));
        // A config stored under another digest is never taken.
        since.insert(d(250), config_of(&[1, 2, 4]), blobs(&[1, 2, 4]));
        let known = Known {
            cache: None,
            since: &since,
        };
        let images = [held, changed, unknown];
        let left_out = HashSet::from([d(1), d(2)]);
        let plan = plan(&known, &images, &left_out, &HashSet::new());
        let exported: Vec<&str> = plan
            .exported
            .iter()
            .map(|i| i.refs[0].given.as_str())
            .collect();
        // app:2 carries layer 3, which only an export gives; db:1's config is unknown.
        assert_eq!(exported, ["app:2", "db:1"]);
        let record = &plan.cached[&0];
        assert_eq!(record.config, held_config);
        assert_eq!(record.config_digest, Digest::of(&held_config));
        assert_eq!(record.layers, blobs(&[1, 2]));
        assert_eq!(record.platform.architecture, "amd64");
    }

    #[test]
    fn a_since_config_whose_layers_differ_from_the_engines_is_not_taken() {
        let (image, config) = engine_image("web:1", &[1, 2]);
        let mut since = SinceConfigs::default();
        since.insert(Digest::of(&config), config, blobs(&[1, 5]));
        let known = Known {
            cache: None,
            since: &since,
        };
        let left_out = HashSet::from([d(1), d(2), d(5)]);
        let plan = plan(&known, &[image], &left_out, &HashSet::new());
        assert_eq!(plan.exported.len(), 1);
    }

    #[test]
    fn the_carried_order_is_plan_order_without_left_out_or_repeated_layers() {
        let images = [resolved("a:1", &[1, 2, 3]), resolved("b:1", &[1, 4, 2])];
        assert_eq!(
            carried_order(&images, &HashSet::from([d(1)])),
            vec![d(2), d(3), d(4)]
        );
    }

    #[test]
    fn platforms_sharing_a_name_stay_apart_by_their_layers() {
        let images = [resolved("multi:1", &[102]), resolved("multi:1", &[101])];
        let exported = vec![record(&["multi:1"], 1), record(&["multi:1"], 2)];
        let merged = merge(&images, HashMap::new(), exported);
        let configs: Vec<&Digest> = merged.iter().map(|r| &r.config_digest).collect();
        assert_eq!(configs, [&d(2), &d(1)]);
    }
}
