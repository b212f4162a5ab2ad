//! The inventory of a containerd namespace (`inventory --from
//! containerd…`), for `pack --have`: every image with the layers the node
//! can hand a delta from its own content store.

use crate::delta::inventory::{
    Inventory, InventoryEngine, InventoryError, InventoryImage, unsized_layers,
};
use crate::media::docker::engine::ImageStore;

use super::node::Node;
use super::{ContainerdAddress, Ctr};

/// Takes the inventory of the namespace `address` names, with the configs
/// unpack kept under `state_dir`; with `count`, the sizes of compressed
/// layers too, each blob decompressed to count it.
pub fn take_inventory(
    address: &ContainerdAddress,
    count: bool,
    state_dir: &std::path::Path,
) -> Result<Inventory, InventoryError> {
    let ctr = Ctr::new(address)?;
    let (version, _) = ctr.server()?;
    let node = Node::read(&ctr)?;
    let images: Vec<InventoryImage> = node
        .images()
        .iter()
        .zip(node.chains())
        .map(|(image, chain)| InventoryImage {
            id: image.config.clone(),
            // The CRI's `sha256:…` records and digest names are no tags.
            tags: image
                .names
                .iter()
                .filter(|n| !n.starts_with("sha256:") && !n.contains('@'))
                .cloned()
                .collect(),
            layers: chain,
        })
        .collect();
    let mut layer_sizes = node.uncompressed_sizes();
    if count {
        layer_sizes.extend(node.count(&ctr, &unsized_layers(&images, &layer_sizes))?);
    }
    let configs = crate::delta::inventory::kept_configs(state_dir, &images)?;
    Ok(Inventory::new(
        InventoryEngine {
            product: format!("containerd {version} (namespace {})", ctr.namespace()),
            store: ImageStore::Containerd,
        },
        images,
        layer_sizes,
        configs,
    ))
}
