//! `airgap inventory`.

use std::path::PathBuf;

use airgap::delta::inventory::Inventory;
use airgap::display::escape_path;
use airgap::media::containerd::ContainerdAddress;

use super::Context;
use super::output::print;

#[derive(Debug, clap::Args)]
pub struct InventoryArgs {
    /// Write the inventory here (default: standard output).
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Print a JSON report (schema airgap/inventory/1, docs/JSON.md) on stdout; it holds the inventory itself unless -o writes it.
    #[arg(long)]
    json: bool,
    /// Take the inventory of this containerd instead of the engine at --host:
    /// containerd[://SOCKET][?namespace=NS] (default socket: the first of
    /// /run/containerd, /run/k3s/containerd, /run/k0s that exists; namespace k8s.io).
    #[arg(long, value_name = "CONTAINERD", value_parser = parse_containerd)]
    from: Option<ContainerdAddress>,
    /// Do not count the layers the unpack record states no size for
    /// (layers that came some other way than an airgap bundle). By default
    /// the engine exports the images holding them once, or the node
    /// decompresses their blobs, and nothing is written: a pull from a
    /// registry needs the sizes to leave those layers out without
    /// downloading them.
    #[arg(long)]
    no_count_layers: bool,
    /// The state directory unpack uses for this engine, whose record gives
    /// the sizes of the layers bundles carried here and the configs of their
    /// images (default: as for unpack).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

fn parse_containerd(text: &str) -> Result<ContainerdAddress, String> {
    ContainerdAddress::parse(text).map_err(|e| e.to_string())
}

pub fn run(args: InventoryArgs, context: &Context) -> anyhow::Result<()> {
    let started = super::progress::Summary::start();
    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(airgap::unpack::record::default_dir);
    let inventory = match &args.from {
        Some(address) => {
            airgap::media::containerd::take_inventory(address, !args.no_count_layers, &state_dir)
        }
        None => Inventory::take(&context.engine()?, &state_dir, !args.no_count_layers),
    }
    .map_err(airgap::Error::from)?;
    let bytes = inventory.to_bytes();
    let layers = inventory
        .chains()
        .flatten()
        .collect::<std::collections::HashSet<_>>()
        .len();
    let summary = started
        .count(inventory.images.len(), "image", "images")
        .count(layers, "layer", "layers");
    match &args.output {
        None if args.json => {
            super::json::print_document(&super::json::InventoryDocument::new(&inventory, None))
        }
        None => {
            print(&String::from_utf8(bytes).expect("JSON is UTF-8"))?;
            print_unsized_note(&inventory, context.quiet);
            summary.print(context.quiet);
            Ok(())
        }
        Some(path) => {
            // Atomically: a link planted at the name is replaced, not followed.
            airgap::files::untrusted::write_atomic(path, &bytes, 0o644)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            tracing::info!("inventory written to {}", escape_path(path));
            if args.json {
                return super::json::print_document(&super::json::InventoryDocument::new(
                    &inventory,
                    Some(path.display().to_string()),
                ));
            }
            eprintln!(
                "{} images, {layers} layers recorded in {}; carry it to the connected side and pack with --have {}",
                inventory.images.len(),
                path.display(),
                path.display()
            );
            print_unsized_note(&inventory, context.quiet);
            summary.print(context.quiet);
            Ok(())
        }
    }
}

/// Says which layers a pull would download only to count them, and how to
/// spare that.
fn print_unsized_note(inventory: &Inventory, quiet: bool) {
    let unsized_layers = inventory.unsized_layers();
    if unsized_layers == 0 || quiet {
        return;
    }
    eprintln!(
        "note: {unsized_layers} layers have no size in it (they did not come in an airgap bundle): a pack --from-registry downloads those only to count them; inventory without --no-count-layers counts them here"
    );
}
