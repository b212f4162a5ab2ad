//! `airgap inventory`.

use std::path::PathBuf;

use airgap::delta::inventory::Inventory;

use super::Context;
use super::output::print;

#[derive(Debug, clap::Args)]
pub struct InventoryArgs {
    /// Write the inventory here (default: standard output).
    #[arg(long, short)]
    output: Option<PathBuf>,
}

pub fn run(args: InventoryArgs, context: &Context) -> anyhow::Result<()> {
    let inventory = Inventory::take(&context.engine()?).map_err(airgap::Error::from)?;
    let bytes = inventory.to_bytes();
    match &args.output {
        None => print(&String::from_utf8(bytes).expect("JSON is UTF-8")),
        Some(path) => {
            // Atomically: a link planted at the name is replaced, not followed.
            airgap::files::untrusted::write_atomic(path, &bytes, 0o644)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
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
            Ok(())
        }
    }
}
