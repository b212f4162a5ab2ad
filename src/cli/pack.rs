//! `airgap pack`.

use std::path::PathBuf;

use airgap::bundle::writer::{Compression, DEFAULT_LEVEL, MAX_LEVEL, Output};
use airgap::delta::inventory::Inventory;
use airgap::delta::{Site, SiteImage};
use airgap::image::ImageRef;
use airgap::image::change::Change;
use airgap::media::archive::ArchiveSource;
use airgap::media::docker::DaemonSource;
use airgap::media::docker::snapshot::{ContainerSource, ContainerSpec, Route};
use airgap::media::joined::{Joined, Part};
use airgap::media::layout::LayoutSource;
use airgap::media::rootfs::{Import, RootfsSource};
use airgap::media::source::Source;
use airgap::pack::PackOptions;
use airgap::plan::carry::carried_project;
use airgap::plan::{self, PlanInput};
use airgap::trust::keys::PrivateKey;
use airgap::verify;

use super::Context;
use super::compose::ComposeArgs;
use super::output::{bytes, print};

#[derive(Debug, clap::Args)]
pub struct PackArgs {
    /// Image references, compose files (existing .yml/.yaml files) or a compose project directory; with none of these, no --images-file and no -f, the compose project of the current directory.
    #[arg(value_parser = super::plan::input)]
    inputs: Vec<String>,
    /// A file listing one image reference per line (# comments allowed); repeatable.
    #[arg(long, value_name = "FILE")]
    images_file: Vec<PathBuf>,
    /// The bundle to write (a .sha256 file is written beside it), or - for standard output.
    #[arg(long, short)]
    output: PathBuf,
    /// Split the bundle into parts of at most SIZE (K, M, G suffixes; fat32 for the largest FAT32 file): NAME.001, NAME.002, … and a signed index NAME.parts.
    #[arg(long, value_name = "SIZE", value_parser = parse_split)]
    split: Option<u64>,
    /// The private key (PKCS#8 PEM) to sign with.
    #[arg(
        long,
        short = 'k',
        value_name = "PRIVATE_KEY",
        required_unless_present = "unsigned"
    )]
    key: Option<PathBuf>,
    /// Write an unsigned bundle (the isolated side must then pass --allow-unsigned).
    #[arg(long, conflicts_with = "key")]
    unsigned: bool,
    /// zstd level: 1 (fastest) to 16 (smallest).
    #[arg(long, default_value_t = DEFAULT_LEVEL, value_parser = clap::value_parser!(i32).range(1..=MAX_LEVEL as i64))]
    level: i32,
    /// Compression threads (default: one per CPU, at most 4).
    #[arg(long)]
    threads: Option<u32>,
    /// Take the images from this `docker save` archive, or OCI image layout directory, instead of the engine.
    #[arg(long, value_name = "TAR|DIR")]
    archive: Option<PathBuf>,
    /// Also carry the compose project's env files (.env, --env-file, services' env_file); they often hold secrets.
    #[arg(long)]
    with_env: bool,
    /// The isolated site's inventory (from `airgap inventory`): write a delta bundle that leaves out the layers the site holds; repeatable.
    #[arg(long, value_name = "INVENTORY", conflicts_with = "archive")]
    have: Vec<PathBuf>,
    /// An earlier bundle the site has unpacked: its layers count as present (a delta); repeatable.
    #[arg(long, value_name = "BUNDLE", conflicts_with = "archive")]
    since: Vec<PathBuf>,
    /// In a delta, ship changed layers whole instead of as patches against the site's older versions.
    #[arg(long)]
    no_patch: bool,
    /// Pull images the engine lacks (through the engine, from their registries) before packing.
    #[arg(long, conflicts_with = "archive")]
    pull: bool,
    /// Carry a container's state as an image (its changes as one layer on its image's), named REPO:TAG or NAME:snapshot; repeatable.
    #[arg(long, value_name = "NAME|ID[=REPO:TAG]", value_parser = parse_container)]
    container: Vec<ContainerSpec>,
    /// Make a one-layer image of a root filesystem tar (docker export output; plain or compressed); repeatable.
    #[arg(long = "import", value_name = "FILE=REPO:TAG", value_parser = parse_import)]
    imports: Vec<Import>,
    /// A Dockerfile instruction for the config of every --container and --import image (CMD ENTRYPOINT ENV EXPOSE HEALTHCHECK LABEL ONBUILD STOPSIGNAL USER VOLUME WORKDIR); repeatable.
    #[arg(long, value_name = "INSTR", value_parser = parse_change)]
    change: Vec<Change>,
    /// With --container: export the container's whole filesystem as one layer (no layers shared with its image).
    #[arg(long, requires = "container")]
    flatten: bool,
    #[command(flatten)]
    compose: ComposeArgs,
}

pub fn run(args: PackArgs, context: &Context) -> anyhow::Result<()> {
    let only_made_here = (!args.container.is_empty() || !args.imports.is_empty())
        && args.inputs.is_empty()
        && args.images_file.is_empty();
    let mut plan = if only_made_here {
        // Nothing else named: no compose project is looked for.
        airgap::plan::Plan::default()
    } else {
        plan::plan(&PlanInput {
            args: args.inputs,
            image_lists: args.images_file,
            compose: args.compose.options()?,
        })
        .map_err(airgap::Error::from)?
    };
    super::compose::warn_unset_variables(&plan);
    let key = args
        .key
        .as_deref()
        .map(PrivateKey::read)
        .transpose()
        .map_err(airgap::Error::from)?;
    let mut compression = Compression {
        level: args.level,
        ..Compression::default()
    };
    if let Some(threads) = args.threads {
        compression.threads = threads;
    }
    let progress = context.progress();
    let containers = match args.container.is_empty() {
        true => None,
        false => Some(
            ContainerSource::open(
                context.engine()?,
                &args.container,
                args.change.clone(),
                if args.flatten {
                    Route::Flatten
                } else {
                    Route::Commit
                },
            )
            .map_err(airgap::Error::from)?,
        ),
    };
    let imports = (!args.imports.is_empty())
        .then(|| RootfsSource::new(args.imports.clone(), args.change.clone()));
    for note in containers.iter().flat_map(|c| c.notes()) {
        eprintln!("note: {note}");
    }
    let made_here: Vec<ImageRef> = containers
        .iter()
        .flat_map(ContainerSource::references)
        .chain(imports.iter().flat_map(RootfsSource::references))
        .collect();
    plan.images.extend(made_here.iter().cloned());
    let source: Box<dyn Source> = match &args.archive {
        _ if only_made_here => Box::new(NoImages),
        // A directory can only be an OCI layout; its source says so if it is not.
        Some(dir) if dir.is_dir() => Box::new(LayoutSource::new(dir)),
        Some(archive) => Box::new(ArchiveSource::new(archive)),
        None => {
            let daemon = DaemonSource::new(context.engine()?);
            if args.pull {
                for reference in daemon
                    .pull_missing(&plan.images, progress.as_ref())
                    .map_err(airgap::Error::from)?
                {
                    eprintln!("pulled {reference}");
                }
            }
            Box::new(daemon)
        }
    };
    let compose = carried_project(&plan, args.with_env).map_err(airgap::Error::from)?;
    let output = match (args.output.as_os_str() == "-", args.split) {
        (true, _) => Output::Stdout,
        (false, Some(part_size)) => Output::Parts {
            path: args.output.clone(),
            part_size,
        },
        (false, None) => Output::File(args.output.clone()),
    };
    let options = PackOptions {
        output: output.clone(),
        compression,
        key,
        compose,
        site: site(&args.have, &args.since)?,
        patch: !args.no_patch,
    };
    let mut parts = vec![Part {
        source: source.as_ref(),
        claims: None,
    }];
    if let Some(containers) = &containers {
        parts.push(Part {
            source: containers,
            claims: Some(containers.references()),
        });
    }
    if let Some(imports) = &imports {
        parts.push(Part {
            source: imports,
            claims: Some(imports.references()),
        });
    }
    let joined = Joined::new(parts);
    let written = airgap::pack(&joined, &plan, &options, progress.as_ref())?;
    let to_stdout = matches!(output, Output::Stdout);

    let summary = airgap::bundle::inspect::summarize(&written.manifest);
    let mut text = String::new();
    for image in &summary.images {
        text += &format!(
            "packed {} ({}, {}, {})\n",
            image.refs.join(", "),
            image.config.short(),
            layers(image.layers.len()),
            bytes(image.size)
        );
    }
    text += &format!(
        "wrote {} ({}; {} of content, {} as separate saves)\nsha256 {}{}\n",
        if to_stdout {
            "the bundle to standard output".into()
        } else {
            written.path.display().to_string()
        },
        bytes(written.size),
        bytes(summary.carried_size),
        bytes(summary.total_image_size),
        written.sha256.hex(),
        written
            .checksum_path
            .as_ref()
            .map(|p| format!(" (in {})", p.display()))
            .unwrap_or_default(),
    );
    if !written.parts.is_empty() {
        text += &format!(
            "split into {} parts ({} … {}), index {}\n",
            written.parts.len(),
            written.parts[0].name,
            written.parts[written.parts.len() - 1].name,
            airgap::bundle::parts::index_path(&written.path).display()
        );
    }
    for patch in &written.manifest.patches {
        let size = written
            .manifest
            .entries
            .iter()
            .find(|e| e.path == patch.entry)
            .map_or(0, |e| e.size);
        text += &format!(
            "patch: layer {} ({}) ships as {} against {}\n",
            patch.layer.digest.short(),
            bytes(patch.layer.size),
            bytes(size),
            patch.base.digest.short()
        );
    }
    if !written.manifest.required.is_empty() {
        let left_out: u64 = written.manifest.required.iter().map(|b| b.size).sum();
        text += &format!(
            "delta: {} left out ({}), the site must hold them\n",
            super::pack::layers(written.manifest.required.len()),
            bytes(left_out)
        );
    }
    text += &match &written.signer {
        Some(signer) => format!("signed by {signer}\n"),
        None => "UNSIGNED: the isolated side must pass --allow-unsigned\n".to_owned(),
    };
    if to_stdout {
        // Standard output carries the bundle itself.
        eprint!("{text}");
        Ok(())
    } else {
        print(&text)
    }
}

pub fn layers(count: usize) -> String {
    if count == 1 {
        "1 layer".into()
    } else {
        format!("{count} layers")
    }
}

/// What the site holds, from inventories and earlier bundles; `None` when
/// neither is named (a full bundle).
fn site(have: &[PathBuf], since: &[PathBuf]) -> anyhow::Result<Option<Site>> {
    if have.is_empty() && since.is_empty() {
        return Ok(None);
    }
    let mut site = Site {
        images: Vec::new(),
        bundles: since.to_vec(),
    };
    for path in have {
        let inventory = Inventory::read(path).map_err(airgap::Error::from)?;
        site.images
            .extend(inventory.images.into_iter().map(|image| {
                SiteImage {
                    names: image
                        .tags
                        .iter()
                        .filter_map(|t| ImageRef::parse(t).ok())
                        .map(|r| r.name)
                        .collect(),
                    layers: image.layers,
                }
            }));
    }
    for path in since {
        // Only what the earlier bundle claims to hold is used, to decide what
        // to leave out; a false claim makes the site refuse the delta.
        let head = verify::read_head(path).map_err(|error| {
            anyhow::Error::new(airgap::Error::from(error))
                .context(super::exit::SinceBundle(path.clone()))
        })?;
        site.images
            .extend(head.manifest.images.iter().map(|image| SiteImage {
                names: image.refs.iter().map(|r| r.name.clone()).collect(),
                layers: image.layers.iter().map(|l| l.digest.clone()).collect(),
            }));
    }
    Ok(Some(site))
}

/// The source behind a pack of snapshots and imports alone: it holds nothing.
struct NoImages;

impl Source for NoImages {
    fn describe(&self) -> airgap::bundle::SourceInfo {
        airgap::bundle::SourceInfo {
            kind: "none".into(),
            engine: None,
            api_version: None,
        }
    }

    fn resolve(
        &self,
        refs: &[ImageRef],
    ) -> Result<Vec<airgap::media::source::ResolvedImage>, airgap::media::source::SourceError> {
        Err(airgap::media::source::SourceError::Missing {
            refs: refs.iter().map(|r| r.given.clone()).collect(),
        })
    }

    fn export(
        &self,
        _images: &[airgap::media::source::ResolvedImage],
        _layers: &mut dyn airgap::media::source::LayerSink,
        _progress: &dyn airgap::progress::Progress,
    ) -> Result<Vec<airgap::image::ImageRecord>, airgap::media::source::SourceError> {
        Ok(Vec::new())
    }
}

fn parse_container(text: &str) -> Result<ContainerSpec, String> {
    let (container, reference) = match text.split_once('=') {
        Some((container, name)) => (container, Some(parse_name(name)?)),
        None => (text, None),
    };
    if container.is_empty() {
        return Err("give a container's name or ID before the =".into());
    }
    Ok(ContainerSpec {
        container: container.to_owned(),
        reference,
    })
}

fn parse_import(text: &str) -> Result<Import, String> {
    let Some((path, name)) = text.rsplit_once('=') else {
        return Err("give the image a name: --import FILE=REPO:TAG".into());
    };
    if path.is_empty() {
        return Err("give the root filesystem tar before the =".into());
    }
    Ok(Import {
        path: PathBuf::from(path),
        reference: parse_name(name)?,
    })
}

fn parse_name(name: &str) -> Result<ImageRef, String> {
    ImageRef::parse(name).map_err(|e| e.to_string())
}

fn parse_change(text: &str) -> Result<Change, String> {
    Change::parse(text).map_err(|e| e.reason)
}

fn parse_split(text: &str) -> Result<u64, String> {
    airgap::bundle::parts::parse_size(text)
}
