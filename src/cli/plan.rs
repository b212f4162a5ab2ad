//! `airgap plan`: what a pack would take, without packing. `--images` needs
//! no engine; the full report asks the engine for sizes and layers.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use airgap::display::escape;
use airgap::image::ImageRef;
use airgap::media::archive::open_source;
use airgap::media::combined::CombinedSource;
use airgap::media::docker::DaemonSource;
use airgap::media::platform::WantedPlatform;
use airgap::media::source::{HeldImage, Source, SourceError};
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
    /// Survey the images of this image archive (any kind pack --archive takes) instead of the engine; with no image names, list everything it holds (refs, IDs, platforms, sizes). Repeatable.
    #[arg(long, value_name = "TAR|DIR")]
    archive: Vec<PathBuf>,
    /// Of a multi-platform image in an archive, survey this platform (os/arch[/variant]; default this machine's); repeatable.
    #[arg(long, value_name = "PLATFORM", value_parser = platform, requires = "archive")]
    platform: Vec<WantedPlatform>,
    #[command(flatten)]
    compose: ComposeArgs,
}

pub fn run(args: PlanArgs, context: &super::Context) -> anyhow::Result<()> {
    let summary = super::progress::Summary::start();
    let report = !args.images;
    let json = args.json;
    let source: Option<Box<dyn Source>> = match args.archive.as_slice() {
        [] => None,
        [archive] => Some(open_source(archive, &args.platform, &[])),
        archives => Some(Box::new(CombinedSource::new(
            archives
                .iter()
                .map(|archive| open_source(archive, &args.platform, &[]))
                .collect(),
        ))),
    };
    if let Some(source) = &source {
        if args.inputs.is_empty() && args.images_file.is_empty() && args.compose.names_no_file() {
            let held = source
                .catalogue()
                .map_err(airgap::Error::from)?
                .unwrap_or_default();
            if json {
                return super::json::print_document(&super::json::CatalogueDocument::new(&held));
            }
            print(&render_catalogue(&held))?;
            summary
                .count(held.len(), "image", "images")
                .size(held.iter().flat_map(|i| &i.layer_sizes).sum(), "as stored")
                .print(context.quiet);
            return Ok(());
        }
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
    if report {
        let source = match source {
            Some(source) => source,
            None => Box::new(DaemonSource::new(context.engine()?)),
        };
        let archived = !args.archive.is_empty();
        let survey = airgap::pack::survey::survey(source.as_ref(), &plan)?;
        if json {
            super::json::print_document(&super::json::PlanDocument::new(&survey))?;
        } else {
            print(&render(&survey, archived))?;
        }
        // Pack would fail on the same images: scripts that plan first stop here.
        if !survey.missing.is_empty() {
            let refs = survey.missing_explained;
            return Err(airgap::Error::from(if archived {
                SourceError::NotInArchive { refs }
            } else {
                SourceError::Missing { refs }
            })
            .into());
        }
        let layers: BTreeSet<_> = survey
            .images
            .iter()
            .flat_map(|i| &i.layers)
            .map(|l| &l.digest)
            .collect();
        summary
            .count(survey.images.len(), "image", "images")
            .count(layers.len(), "layer", "layers")
            .size(survey.total_size, "as separate images")
            .size(survey.deduplicated_size, "deduplicated")
            .size(
                survey.total_size.saturating_sub(survey.deduplicated_size),
                "saved by dedup",
            )
            .print(context.quiet || json);
        return Ok(());
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
    match plan::classify(text, Path::new(".")) {
        Arg::Image(reference) => {
            ImageRef::parse(&reference).map_err(|error| {
                format!(
                    "no compose file or directory has this name, and it is not an image reference ({})",
                    error.source
                )
            })?;
        }
        Arg::MissingComposeFile(_) => return Err(plan::NO_SUCH_COMPOSE_FILE.into()),
        Arg::ComposeFile(_) | Arg::ProjectDirectory(_) => {}
    }
    Ok(text.to_owned())
}

/// A `--platform` value.
pub fn platform(text: &str) -> Result<WantedPlatform, String> {
    WantedPlatform::parse(text).map_err(|e| e.to_string())
}

/// What archives hold: per archive, one line per image.
fn render_catalogue(held: &[HeldImage]) -> String {
    let mut text = String::new();
    let mut place = None;
    let mut total = 0;
    for image in held {
        if place != Some(&image.place) {
            place = Some(&image.place);
            let count = held.iter().filter(|i| i.place == image.place).count();
            text += &format!(
                "{}: {} {}\n",
                escape(&image.place),
                count,
                if count == 1 { "image" } else { "images" }
            );
        }
        let names = if image.refs.is_empty() {
            "untagged".to_owned()
        } else {
            image
                .refs
                .iter()
                .map(|r| escape(r).into_owned())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let size: u64 = image.layer_sizes.iter().sum();
        total += size;
        text += &format!(
            "    {names} ({}): id {}, {}, {}\n",
            escape(&image.platform.to_string()),
            image.id.short(),
            super::pack::layers(image.layer_sizes.len()),
            bytes(size)
        );
    }
    text += &format!(
        "total: {} {}, {} as stored\n",
        held.len(),
        if held.len() == 1 { "image" } else { "images" },
        bytes(total)
    );
    text
}

fn size(size: Option<u64>) -> String {
    size.map_or_else(|| "size unknown".into(), bytes)
}

fn render(survey: &Survey, archived: bool) -> String {
    let mut text = String::new();
    for image in &survey.images {
        let services = match image.services.as_slice() {
            [] => String::new(),
            services => format!(" (service {})", services.join(", ")),
        };
        let Some(id) = &image.id else {
            text += &format!(
                "{}{services}: MISSING from the {}\n",
                image.reference,
                if archived { "archives" } else { "engine" }
            );
            continue;
        };
        text += &format!(
            "{}{services}: id {}, {}, {}\n",
            image.reference,
            id.short(),
            super::pack::layers(image.layers.len()),
            size(image.size)
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
            "missing from the {}: {} (pack would fail; {})\n",
            if archived { "archives" } else { "engine" },
            survey.missing.join(", "),
            if archived {
                "name what the archives hold (airgap plan --archive F lists it)"
            } else {
                "build or load them, or pack --pull"
            }
        );
    }
    text
}
