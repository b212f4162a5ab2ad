//! `airgap plan`: what a pack would take, without packing. `--images` needs
//! no engine; the full report asks the engine for sizes and layers.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use airgap::image::ImageRef;
use airgap::media::docker::DaemonSource;
use airgap::pack::survey::Survey;
use airgap::plan::{self, Arg, PlanError, PlanInput};

use super::compose::ComposeArgs;
use super::output::{bytes, print};

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Image references, compose files (existing .yml/.yaml files) or a compose project directory.
    #[arg(value_parser = input)]
    inputs: Vec<String>,
    /// A file listing one image reference per line (# comments allowed); repeatable.
    #[arg(long, value_name = "FILE")]
    images_file: Vec<PathBuf>,
    /// Print only the image references, one per line, sorted and unique, as spelt in the compose files (as `docker compose config --images` does).
    #[arg(long)]
    images: bool,
    /// Print the report as JSON.
    #[arg(long, conflicts_with = "images")]
    json: bool,
    #[command(flatten)]
    compose: ComposeArgs,
}

pub fn run(args: PlanArgs, context: &super::Context) -> anyhow::Result<()> {
    let report = !args.images;
    let json = args.json;
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
    if report {
        let source = DaemonSource::new(context.engine()?);
        let survey = airgap::pack::survey::survey(&source, &plan)?;
        return print(&if json {
            render_json(&survey)
        } else {
            render(&survey)
        });
    }
    // Byte order, as `LC_ALL=C sort -u` gives it.
    let images: BTreeSet<&str> = plan.images.iter().map(|i| i.given.as_str()).collect();
    let mut text = String::new();
    for image in images {
        text += image;
        text += "\n";
    }
    print(&text)
}

/// A positional input of pack or plan: sorted as the plan sorts it, an
/// argument that names no compose file or directory must be a valid image
/// reference, or the command line is refused as any bad argument is.
pub fn input(text: &str) -> Result<String, String> {
    if let Arg::Image(reference) = plan::classify(text, Path::new(".")) {
        ImageRef::parse(&reference).map_err(|error| {
            format!(
                "no compose file or directory has this name, and it is not an image reference ({})",
                error.source
            )
        })?;
    }
    Ok(text.to_owned())
}

fn size(size: Option<u64>) -> String {
    size.map_or_else(|| "size unknown".into(), bytes)
}

fn render(survey: &Survey) -> String {
    let mut text = String::new();
    for image in &survey.images {
        let services = match image.services.as_slice() {
            [] => String::new(),
            services => format!(" (service {})", services.join(", ")),
        };
        let Some(id) = &image.id else {
            text += &format!("{}{services}: MISSING from the engine\n", image.reference);
            continue;
        };
        let total: u64 = image.layers.iter().filter_map(|l| l.size).sum();
        text += &format!(
            "{}{services}: id {}, {}, {}\n",
            image.reference,
            id.short(),
            super::pack::layers(image.layers.len()),
            bytes(total)
        );
        for layer in &image.layers {
            text += &format!("    {}  {}\n", layer.digest.short(), size(layer.size));
        }
    }
    if !survey.shared_layers.is_empty() {
        text += "shared layers (packed once):\n";
        for layer in &survey.shared_layers {
            text += &format!(
                "    {}  {}  used by {}\n",
                layer.digest.short(),
                size(layer.size),
                layer.used_by.join(", ")
            );
        }
    }
    let bound = if survey.sizes_incomplete {
        "at least "
    } else {
        ""
    };
    text += &format!(
        "total: {bound}{} as separate images, {bound}{} deduplicated\n",
        bytes(survey.total_size),
        bytes(survey.deduplicated_size)
    );
    if !survey.missing.is_empty() {
        text += &format!(
            "missing from the engine: {} (pack would fail; build or load them, or pack --pull)\n",
            survey.missing.join(", ")
        );
    }
    text
}

fn render_json(survey: &Survey) -> String {
    let mut json = serde_json::to_string_pretty(survey).expect("surveys always serialise");
    json.push('\n');
    json
}
