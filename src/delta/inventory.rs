//! What an isolated site's engine holds, written there and carried back to
//! the connected side so the next pack ships only what the site lacks.
//! It reveals, about the site: the engine's product and version, how it
//! stores images, every image's ID, tags and layer digests, the sizes of
//! layers, and the configs of images that came in airgap bundles (which the
//! connected side sent) — nothing about hosts, paths, containers or volumes.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::files::untrusted::{Links, read_bounded};
use crate::media::docker::engine::{Engine, EngineError, ImageStore};
use crate::media::source::ResolvedImage;

/// Media type of an inventory file.
pub const INVENTORY_MEDIA_TYPE: &str = "application/vnd.airgap.inventory.v1+json";
/// Largest inventory a reader accepts: a few hundred bytes per image, so
/// room for the engines of big build hosts many times over.
pub const INVENTORY_LIMIT: u64 = 64 << 20;

/// A site's engine contents.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    /// Always [`INVENTORY_MEDIA_TYPE`].
    pub media_type: String,
    /// When it was taken (RFC 3339, UTC).
    pub created: String,
    /// The airgap that took it.
    pub tool: String,
    /// The engine.
    pub engine: InventoryEngine,
    /// Every image.
    pub images: Vec<InventoryImage>,
    /// The uncompressed size of each layer, by diff ID: those bundles
    /// unpacked here carried (from the unpack record), those the node's
    /// content store holds uncompressed, and the rest as counted when the
    /// inventory was taken (unless it was told not to). A puller needs a
    /// layer's size to describe it and must otherwise download it to count
    /// it. Added after the first inventories: absent in theirs, and ignored
    /// by airgap before it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub layer_sizes: BTreeMap<Digest, u64>,
    /// The configs of images the site holds that came in airgap bundles
    /// (unpack keeps them), as JSON text, by digest: a delta then need not
    /// export an image the site holds whole only to learn its config. Only
    /// those, so the inventory tells the connected side nothing about an
    /// image's contents it did not send. Checked against their digests
    /// where used.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub configs: BTreeMap<Digest, String>,
}

/// The engine an inventory describes.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryEngine {
    /// Product and version.
    pub product: String,
    /// How it stores images.
    pub store: ImageStore,
}

/// One image on the site.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryImage {
    /// The engine's image ID.
    pub id: Digest,
    /// Its tags.
    pub tags: Vec<String>,
    /// Its layers' diff IDs, bottom first: the engine vouches for each
    /// prefix of this list as a layer chain it can build on.
    pub layers: Vec<Digest>,
}

/// Why an inventory could not be taken or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InventoryError {
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The unpack record, which holds the layer sizes, could not be used.
    #[error(transparent)]
    Record(#[from] crate::unpack::record::RecordError),
    /// The engine's export, read to count layer sizes, failed.
    #[error("counting the layers in the engine's export of {images} images")]
    Count {
        /// How many images were exported.
        images: usize,
        /// What failed.
        #[source]
        source: crate::media::source::SourceError,
    },
    /// containerd failed (`inventory --from containerd…`).
    #[error(transparent)]
    Containerd(#[from] crate::media::containerd::ContainerdError),
    /// The file could not be read.
    #[error("cannot read inventory {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not an inventory.
    #[error("{path} is not an airgap inventory")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },
}

impl InventoryError {
    /// The kind of this failure (see [`crate::Error::kind`]).
    pub fn kind(&self) -> crate::error::kind::ErrorKind {
        match self {
            Self::Engine(_) => crate::error::kind::ErrorKind::Engine,
            Self::Containerd(error) => error.kind(),
            Self::Record(error) => error.kind(),
            _ => crate::error::kind::ErrorKind::Failure,
        }
    }
}

impl Inventory {
    /// Takes the inventory of `engine`, with the layer sizes unpack
    /// recorded for it under `state_dir`; with `count`, the sizes of the
    /// other layers too, counted in one export of the images holding them.
    pub fn take(engine: &Engine, state_dir: &Path, count: bool) -> Result<Self, InventoryError> {
        let info = engine.info()?;
        let mut images = Vec::new();
        for id in engine.list_images()? {
            // An image removed between listing and inspecting is simply not there.
            if let Some(image) = engine.inspect(&id)? {
                let mut tags = image.repo_tags;
                tags.retain(|t| t != "<none>:<none>");
                images.push(InventoryImage {
                    id: image.id,
                    tags,
                    layers: image.diff_ids,
                });
            }
        }
        let mut recorded = crate::unpack::record::Record::layer_sizes(
            state_dir,
            &info.id,
            info.former_id.as_deref(),
        )?;
        let configs = kept_configs(state_dir, &images)?;
        if count {
            let exported = holding_unsized(&images, &recorded);
            if !exported.is_empty() {
                let holding: Vec<ResolvedImage> = images
                    .iter()
                    .filter(|image| exported.contains(&image.id.to_string()))
                    .map(|image| {
                        ResolvedImage::unnamed(Some(image.id.clone()), image.layers.clone())
                    })
                    .collect();
                let count_error = |source| InventoryError::Count {
                    images: exported.len(),
                    source,
                };
                let counted: Vec<(Digest, u64)> = match crate::media::docker::layer_sizes_in_place(
                    engine, &holding,
                )
                .map_err(count_error)?
                {
                    Some(sizes) => {
                        tracing::info!(
                            "inventory: the layers of {} images counted from the engine's overlay2 store",
                            exported.len()
                        );
                        sizes
                    }
                    None => {
                        tracing::info!(
                            "inventory: counting the layers of {} images in the engine's export",
                            exported.len()
                        );
                        crate::media::archive::count_layers(engine.save(&exported))
                            .map_err(count_error)?
                            .into_iter()
                            .collect()
                    }
                };
                recorded.extend(counted);
            }
        }
        Ok(Self::new(
            InventoryEngine {
                product: info.product,
                store: info.store,
            },
            images,
            recorded,
            configs,
        ))
    }

    /// An inventory taken now, keeping the sizes of the layers the images
    /// hold only: a layer since removed from the engine is not the site's.
    /// Configs are kept where they are text and every layer of their image
    /// is held.
    pub fn new(
        engine: InventoryEngine,
        images: Vec<InventoryImage>,
        mut layer_sizes: BTreeMap<Digest, u64>,
        configs: impl IntoIterator<Item = (Digest, Vec<u8>)>,
    ) -> Self {
        let held = held_layers(&images);
        layer_sizes.retain(|digest, _| held.contains(digest));
        let configs = configs
            .into_iter()
            .filter(|(_, bytes)| holds_whole(&held, bytes))
            .filter_map(|(digest, bytes)| Some((digest, String::from_utf8(bytes).ok()?)))
            .collect();
        Self {
            media_type: INVENTORY_MEDIA_TYPE.into(),
            created: crate::bundle::writer::now_rfc3339(),
            tool: format!("airgap {}", env!("CARGO_PKG_VERSION")),
            engine,
            images,
            layer_sizes,
            configs,
        }
    }

    /// Each config the inventory carries that hashes to its digest, with
    /// its image's layers where the inventory states every one's size.
    pub fn sized_configs(&self) -> Vec<(Digest, Vec<u8>, Vec<crate::image::BlobRef>)> {
        self.configs
            .iter()
            .filter(|(digest, text)| Digest::of(text.as_bytes()) == **digest)
            .filter_map(|(digest, text)| {
                let summary = crate::image::ConfigSummary::parse(text.as_bytes()).ok()?;
                let layers = summary
                    .rootfs
                    .diff_ids
                    .into_iter()
                    .map(|diff_id| {
                        let size = *self.layer_sizes.get(&diff_id)?;
                        Some(crate::image::BlobRef {
                            digest: diff_id,
                            size,
                        })
                    })
                    .collect::<Option<Vec<_>>>()?;
                Some((digest.clone(), text.as_bytes().to_vec(), layers))
            })
            .collect()
    }

    /// Reads an inventory file.
    /// The path is the user's own (`pack --have`): a link there is
    /// followed, but a FIFO or device is refused, and so is a file larger
    /// than [`INVENTORY_LIMIT`].
    pub fn read(path: &Path) -> Result<Self, InventoryError> {
        let bytes = read_bounded(path, Links::Follow, INVENTORY_LIMIT, "site inventory").map_err(
            |source| InventoryError::Read {
                path: path.to_owned(),
                source,
            },
        )?;
        let inventory: Self =
            serde_json::from_slice(&bytes).map_err(|source| InventoryError::Malformed {
                path: path.to_owned(),
                source,
            })?;
        Ok(inventory)
    }

    /// Serialises for writing.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("inventories always serialise");
        bytes.push(b'\n');
        bytes
    }

    /// How many distinct layers the inventory states no size for.
    pub fn unsized_layers(&self) -> usize {
        unsized_layers(&self.images, &self.layer_sizes).len()
    }

    /// The layer chains the site holds: each image's layer list.
    pub fn chains(&self) -> impl Iterator<Item = &[Digest]> {
        self.images.iter().map(|i| i.layers.as_slice())
    }
}

/// The configs unpack kept under `state_dir` of images whose every layer
/// the images hold.
pub fn kept_configs(
    state_dir: &Path,
    images: &[InventoryImage],
) -> Result<BTreeMap<Digest, Vec<u8>>, InventoryError> {
    let held = held_layers(images);
    Ok(crate::unpack::configs::read(state_dir, &|config| {
        holds_whole(&held, config)
    })?)
}

/// The layers `images` hold that `sizes` states no size for.
pub fn unsized_layers(images: &[InventoryImage], sizes: &BTreeMap<Digest, u64>) -> HashSet<Digest> {
    images
        .iter()
        .flat_map(|image| &image.layers)
        .filter(|layer| !sizes.contains_key(*layer))
        .cloned()
        .collect()
}

/// Every layer the images hold.
fn held_layers(images: &[InventoryImage]) -> HashSet<Digest> {
    images
        .iter()
        .flat_map(|i| i.layers.iter().cloned())
        .collect()
}

/// True when `config` is an image config whose every layer is `held`.
fn holds_whole(held: &HashSet<Digest>, config: &[u8]) -> bool {
    crate::image::ConfigSummary::parse(config)
        .is_ok_and(|summary| summary.rootfs.diff_ids.iter().all(|d| held.contains(d)))
}

/// The IDs of images that together hold every layer `sizes` lacks, the
/// longest chains first (they hold their parents' layers): what one export
/// must carry to count them all.
fn holding_unsized(images: &[InventoryImage], sizes: &BTreeMap<Digest, u64>) -> Vec<String> {
    let mut missing = unsized_layers(images, sizes);
    let mut longest_first: Vec<&InventoryImage> = images.iter().collect();
    longest_first.sort_by_key(|image| std::cmp::Reverse(image.layers.len()));
    let mut chosen = Vec::new();
    for image in longest_first {
        if image.layers.iter().any(|layer| missing.contains(layer)) {
            for layer in &image.layers {
                missing.remove(layer);
            }
            chosen.push(image.id.to_string());
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inventory_without_sizes_or_configs_still_reads_and_one_with_them_keeps_only_whole_images()
    {
        let layer = Digest::of(b"layer");
        let first = format!(
            r#"{{"mediaType":"{INVENTORY_MEDIA_TYPE}","created":"2026-01-01T00:00:00Z","tool":"airgap 0.1.0","engine":{{"product":"Docker Engine 20.10.24","store":"graph"}},"images":[{{"id":"{}","tags":["shop/web:1"],"layers":["{layer}"]}}]}}"#,
            Digest::of(b"config")
        );
        let old: Inventory = serde_json::from_str(&first).unwrap();
        assert!(old.layer_sizes.is_empty() && old.configs.is_empty());
        assert_eq!(old.unsized_layers(), 1);

        let whole = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{layer}"]}}}}"#
        );
        let partial = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{layer}","{}"]}}}}"#,
            Digest::of(b"elsewhere")
        );
        let taken = Inventory::new(
            old.engine.clone(),
            old.images.clone(),
            BTreeMap::from([(layer.clone(), 2048), (Digest::of(b"gone"), 1)]),
            [
                (Digest::of(whole.as_bytes()), whole.clone().into_bytes()),
                (Digest::of(partial.as_bytes()), partial.into_bytes()),
            ],
        );
        assert_eq!(
            taken.layer_sizes.len(),
            1,
            "a layer the engine no longer holds is dropped"
        );
        assert_eq!(
            taken.configs.len(),
            1,
            "a config of an image not held whole is dropped"
        );
        let read: Inventory = serde_json::from_slice(&taken.to_bytes()).unwrap();
        let sized = read.sized_configs();
        assert_eq!(sized.len(), 1);
        assert_eq!(sized[0].1, whole.as_bytes(), "the config's bytes, exactly");
        assert_eq!(sized[0].2[0].size, 2048);
    }

    #[test]
    fn the_images_exported_to_count_are_those_holding_a_layer_without_size() {
        let layer = |n: u8| Digest::of(&[n]);
        let image = |id: u8, layers: &[u8]| InventoryImage {
            id: Digest::of(&[100 + id]),
            tags: Vec::new(),
            layers: layers.iter().map(|n| layer(*n)).collect(),
        };
        let images = [
            image(1, &[1]),
            image(2, &[1, 2]),
            image(3, &[1, 2, 3]),
            image(4, &[1, 4]),
        ];
        let sizes = BTreeMap::from([(layer(1), 10), (layer(4), 40)]);
        assert_eq!(holding_unsized(&images, &sizes), [images[2].id.to_string()]);
        let all = BTreeMap::from([(layer(1), 1), (layer(2), 2), (layer(3), 3), (layer(4), 4)]);
        assert!(holding_unsized(&images, &all).is_empty());
    }

    #[test]
    fn an_inventory_that_is_a_fifo_a_device_or_too_large_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("have.json");
        crate::files::untrusted::mkfifo(&fifo);
        let error = Inventory::read(&fifo).unwrap_err();
        let cause = std::error::Error::source(&error).unwrap().to_string();
        assert!(cause.contains("FIFO"), "{cause}");

        let error = Inventory::read(Path::new("/dev/zero")).unwrap_err();
        let cause = std::error::Error::source(&error).unwrap().to_string();
        assert!(cause.contains("character device"), "{cause}");

        let big = dir.path().join("big.json");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(INVENTORY_LIMIT + 1)
            .unwrap();
        let error = Inventory::read(&big).unwrap_err();
        let cause = std::error::Error::source(&error).unwrap().to_string();
        assert!(cause.contains("more than a site inventory can"), "{cause}");
    }
}
