//! `airgap plan`: what a pack would take, without packing. For now only
//! `--images`, which needs no engine.

use std::collections::BTreeSet;
use std::path::PathBuf;

use airgap::plan::{self, PlanError, PlanInput};

use super::compose::ComposeArgs;
use super::output::print;

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Image references, compose files (existing .yml/.yaml files) or a compose project directory.
    inputs: Vec<String>,
    /// A file listing one image reference per line (# comments allowed); repeatable.
    #[arg(long, value_name = "FILE")]
    images_file: Vec<PathBuf>,
    /// Print only the image references, one per line, sorted and unique, as spelt in the compose files (as `docker compose config --images` does).
    #[arg(long)]
    images: bool,
    #[command(flatten)]
    compose: ComposeArgs,
}

pub fn run(args: PlanArgs) -> anyhow::Result<()> {
    if !args.images {
        anyhow::bail!("airgap plan without --images is not available yet; pass --images");
    }
    let plan = match plan::plan(&PlanInput {
        args: args.inputs,
        image_lists: args.images_file,
        compose: args.compose.options()?,
    }) {
        Ok(plan) => plan,
        // A project whose services are all behind profiles lists nothing,
        // as `docker compose config --images` does; only pack needs images.
        Err(PlanError::Empty) => return Ok(()),
        Err(error) => return Err(airgap::Error::from(error).into()),
    };
    super::compose::warn_unset_variables(&plan);
    // Byte order, as `LC_ALL=C sort -u` gives it.
    let images: BTreeSet<&str> = plan.images.iter().map(|i| i.given.as_str()).collect();
    let mut text = String::new();
    for image in images {
        text += image;
        text += "\n";
    }
    print(&text)
}
