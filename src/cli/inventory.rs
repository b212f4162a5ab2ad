//! `airgap inventory`.

use std::path::PathBuf;

use airgap::delta::inventory::Inventory;
use airgap::display::escape_path;

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
}

pub fn run(args: InventoryArgs, context: &Context) -> anyhow::Result<()> {
    let started = super::progress::Summary::start();
    let inventory = Inventory::take(&context.engine()?).map_err(airgap::Error::from)?;
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
                "{} images, {} layers recorded in {}; carry it to the connected side and pack with --have {}",
                inventory.images.len(),
                inventory
                    .chains()
                    .flatten()
                    .collect::<std::collections::HashSet<_>>()
                    .len(),
                path.display(),
                path.display()
            );
            summary.print(context.quiet);
            Ok(())
        }
    }
}
