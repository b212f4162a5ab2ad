//! `airgap pack`.

use std::collections::HashMap;
use std::path::PathBuf;

use airgap::media::registry::RegistrySource;
use airgap::media::registry::manifest::Choice;

use airgap::bundle::writer::{Compression, DEFAULT_LEVEL, MAX_LEVEL, Output};
use airgap::delta::inventory::Inventory;
use airgap::delta::{Site, SiteImage};
use airgap::image::ImageRef;
use airgap::image::change::Change;
use airgap::media::archive::{GivenName, open_source};
use airgap::media::combined::CombinedSource;
use airgap::media::docker::DaemonSource;
use airgap::media::docker::engine::Engine;
use airgap::media::docker::snapshot::{ContainerSource, ContainerSpec, Route};
use airgap::media::platform::WantedPlatform;
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
use super::registry::RegistryAccessArgs;

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("platform_source").multiple(true).args(["archive", "from_registry"])))]
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
    /// Take the images from this image archive instead of the engine: docker save, podman save (either format), skopeo's docker-archive, oci-archive, oci: or dir:, plain or gzip/zstd/xz/bzip2-compressed; repeatable. With no image names, every image of every archive.
    #[arg(long, value_name = "TAR|DIR")]
    archive: Vec<PathBuf>,
    /// Of a multi-platform image in an archive or a registry, take this platform (os/arch[/variant]; default this machine's); repeatable.
    #[arg(long, value_name = "PLATFORM", value_parser = super::plan::platform, requires = "platform_source")]
    platform: Vec<WantedPlatform>,
    /// Pull these images from their registries, with no engine: each names its registry, as HOST[:PORT]/REPOSITORY[:TAG|@DIGEST].
    #[arg(long, value_name = "REF", num_args = 1.., conflicts_with_all = ["archive", "pull", "container", "imports", "inputs", "images_file", "names"])]
    from_registry: Vec<String>,
    /// With --from-registry: take every platform of a multi-platform image (attestations left out).
    #[arg(long, requires = "from_registry", conflicts_with = "platform")]
    all_platforms: bool,
    #[command(flatten)]
    registry: RegistryAccessArgs,
    /// Pack the archive's image SRC (an ID, ID prefix or name it holds) under the name REPO:TAG: how an untagged `docker save ID` image gets one; repeatable.
    #[arg(long = "name", value_name = "SRC=REPO:TAG", requires = "archive")]
    names: Vec<GivenName>,
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
    /// Export every image from the engine; neither read nor fill the layer cache.
    #[arg(long)]
    no_cache: bool,
    /// Always export through the engine's API (the images, and the layers patches are made against), even where airgap can read the engine's image store in place (Docker's containerd content store or overlay2 graph driver, as root), which is faster.
    #[arg(long, conflicts_with_all = ["archive", "from_registry"])]
    engine_export: bool,
    /// The layer cache (default: $XDG_CACHE_HOME/airgap, else ~/.cache/airgap).
    #[arg(long, value_name = "DIR", conflicts_with = "no_cache")]
    cache_dir: Option<PathBuf>,
    /// Bound the layer cache to SIZE (K, M, G suffixes; default 4G); the least recently used go first.
    #[arg(long, value_name = "SIZE", value_parser = parse_split, conflicts_with = "no_cache")]
    cache_max: Option<u64>,
    /// The creation time the bundle records (RFC 3339; default: $SOURCE_DATE_EPOCH, else now); the same images, options, key and time give the same bundle bytes.
    #[arg(long, value_name = "TIME")]
    created: Option<String>,
    #[command(flatten)]
    compose: ComposeArgs,
}

pub fn run(args: PackArgs, context: &Context) -> anyhow::Result<()> {
    let started = super::progress::Summary::start();
    if args.output.as_os_str() == "-" {
        airgap::bundle::terminal::check_stdout_for_bundle().map_err(airgap::Error::from)?;
    }
    let made_here = !args.container.is_empty() || !args.imports.is_empty();
    let from_registry = !args.from_registry.is_empty();
    // Read once: the password comes from standard input.
    let access = match from_registry {
        true => Some(args.registry.options()?),
        false => None,
    };
    // Archives, containers and imports with no image names: everything they
    // hold, and no compose project is looked for.
    let nothing_else_named =
        args.inputs.is_empty() && args.images_file.is_empty() && args.compose.names_no_file();
    let everything =
        (made_here || !args.archive.is_empty()) && args.names.is_empty() && nothing_else_named;
    let mut plan = if from_registry {
        airgap::plan::Plan {
            images: RegistrySource::references(
                &args.from_registry,
                access.as_ref().expect("read for --from-registry"),
            )
            .map_err(airgap::Error::from)?,
            ..airgap::plan::Plan::default()
        }
    } else if everything || (!args.names.is_empty() && nothing_else_named) {
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
    } else if from_registry {
        // A pull feeds the compressor no faster than the network; one
        // worker (the same bytes as any number) keeps a pull of the bench
        // stacks near 100 MB (97–104 MB with 8 MiB jobs).
        compression.threads = 1;
    }
    let created = airgap::pack::creation_time(
        args.created.as_deref(),
        std::env::var("SOURCE_DATE_EPOCH").ok().as_deref(),
    )
    .map_err(airgap::Error::from)?;
    let progress = context.progress();
    let mut cache = None;
    let site = site(&args.have, &args.since)?;
    let mut members: Vec<Box<dyn Source>> = Vec::new();
    let mut made_here_refs: Vec<ImageRef> = Vec::new();
    // One connection (one version negotiation) serves containers and
    // engine images alike.
    let mut engine: Option<Engine> = None;
    let mut connect = || -> anyhow::Result<Engine> {
        if engine.is_none() {
            engine = Some(context.engine()?);
        }
        Ok(engine.clone().expect("connected just above"))
    };
    if !args.container.is_empty() {
        let route = if args.flatten {
            Route::Flatten
        } else {
            Route::Commit
        };
        let containers =
            ContainerSource::open(connect()?, &args.container, args.change.clone(), route)
                .map_err(airgap::Error::from)?;
        for note in containers.notes() {
            eprintln!("note: {}", airgap::display::escape(note));
        }
        made_here_refs.extend(containers.references());
        members.push(Box::new(containers));
    }
    if !args.imports.is_empty() {
        let imports = RootfsSource::new(args.imports.clone(), args.change.clone());
        made_here_refs.extend(imports.references());
        members.push(Box::new(imports));
    }
    members.extend(
        args.archive
            .iter()
            .map(|archive| open_source(archive, &args.platform, &args.names)),
    );
    if from_registry {
        let choice = match (args.all_platforms, args.platform.is_empty()) {
            (true, _) => Choice::All,
            (false, true) => Choice::Platforms(vec![WantedPlatform::host()]),
            (false, false) => Choice::Platforms(args.platform.clone()),
        };
        members.push(Box::new(RegistrySource::new(
            access.clone().expect("read for --from-registry"),
            choice,
            // Sizes the site states spare asking the registry for them.
            site.as_ref()
                .map(|site| site.layer_sizes.clone())
                .unwrap_or_default(),
        )));
    } else if args.archive.is_empty() && !everything {
        // Named images not made here come from the engine.
        let mut daemon = DaemonSource::new(connect()?);
        if args.engine_export {
            daemon = daemon.exporting_only();
        }
        if args.pull {
            for reference in daemon
                .pull_missing(&plan.images, progress.as_ref())
                .map_err(airgap::Error::from)?
            {
                eprintln!("pulled {reference}");
            }
        }
        if !args.no_cache {
            cache = Some(
                super::cache::open(
                    args.cache_dir.as_deref(),
                    args.cache_max.unwrap_or(airgap::cache::DEFAULT_MAX),
                )?
                .with_profile(compression.frame_profile()),
            );
        }
        members.push(Box::new(daemon));
    }
    if !everything {
        plan.images.extend(made_here_refs);
        plan.images
            .extend(args.names.iter().map(|given| given.name.clone()));
    }
    let source: Box<dyn Source> = match members.len() {
        1 => members.remove(0),
        _ => Box::new(CombinedSource::new(members)),
    };
    for note in source.notes(&plan.images).map_err(airgap::Error::from)? {
        eprintln!("note: {}", airgap::display::escape(&note));
    }
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
        site,
        patch: !args.no_patch,
        cache,
        created,
    };
    let (written, stats) =
        airgap::pack::pack_with_stats(source.as_ref(), &plan, &options, progress.as_ref())?;
    let to_stdout = matches!(output, Output::Stdout);

    let summary = airgap::bundle::inspect::summarize(&written.manifest);
    let mut text = String::new();
    for image in &summary.images {
        text += &format!(
            "packed {} ({}, {}, {})\n",
            if image.refs.is_empty() {
                "an untagged image".to_owned()
            } else {
                image.refs.join(", ")
            },
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
    if stats.exported < stats.images || stats.cached_layers > 0 {
        text += &format!(
            "engine: exported {} of {} images; {} from the layer cache\n",
            stats.exported,
            stats.images,
            super::pack::layers(stats.cached_layers)
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
    } else {
        print(&text)?;
    }
    let distinct: std::collections::HashSet<_> = summary
        .images
        .iter()
        .flat_map(|i| &i.layers)
        .map(|l| &l.digest)
        .collect();
    started
        .count(summary.images.len(), "image", "images")
        .count(distinct.len(), "layer", "layers")
        .size(summary.total_image_size, "in")
        .size(written.size, "out")
        .size(
            summary
                .total_image_size
                .saturating_sub(summary.carried_size),
            "saved by dedup",
        )
        .print(context.quiet);
    Ok(())
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
        configs: Vec::new(),
        layer_sizes: HashMap::new(),
    };
    for path in have {
        let inventory = Inventory::read(path).map_err(airgap::Error::from)?;
        site.configs.extend(inventory.sized_configs());
        site.layer_sizes.extend(inventory.layer_sizes);
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
        site.layer_sizes.extend(
            head.manifest
                .images
                .iter()
                .flat_map(|image| &image.layers)
                .map(|l| (l.digest.clone(), l.size)),
        );
    }
    Ok(Some(site))
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
