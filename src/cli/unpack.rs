//! `airgap unpack`.

use std::path::PathBuf;

use airgap::display::{escape, escape_all, escape_path};
use airgap::media::containerd::{ContainerdAddress, ContainerdSink};
use airgap::media::docker::DaemonSink;
use airgap::media::layout::LayoutSink;
use airgap::media::registry::{RegistryAddress, RegistrySink};
use airgap::media::sink::Sink;
use airgap::unpack::UnpackOptions;

use super::Context;
use super::input::BundleInput;
use super::output::print;
use super::registry::RegistryArgs;
use super::rename::RenameArgs;
use super::trust::TrustArgs;

#[derive(Debug, clap::Args)]
pub struct UnpackArgs {
    /// The bundle: a file, a split bundle's name, one of its parts or their directory, or - for standard input.
    bundle: PathBuf,
    /// Where a bundle read from standard input is staged before it is verified (default: $TMPDIR); it needs the bundle's size.
    #[arg(long, value_name = "DIR")]
    staging_dir: Option<PathBuf>,
    #[command(flatten)]
    trust: TrustArgs,
    /// Where unpack keeps its per-engine record of applied bundles and tags
    /// (default: $AIRGAP_STATE_DIR, else /var/lib/airgap as root, else ~/.local/state/airgap).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Load even if this moves tags back to images older than the ones
    /// recorded (a rollback you mean to do).
    #[arg(long)]
    allow_downgrade: bool,
    /// Where the images go: `docker` (the engine at --host; the default),
    /// `oci:DIR` (an OCI image layout directory, created or merged into),
    /// `registry://HOST[:PORT][/PREFIX]` (pushed, named as with --prefix HOST[:PORT][/PREFIX]) or
    /// `containerd[://SOCKET][?namespace=NS]` (a Kubernetes node's containerd, through ctr; default namespace k8s.io).
    #[arg(long, value_name = "TARGET", default_value = "docker", value_parser = parse_target)]
    to: Target,
    /// Write the compose project the bundle was packed from into DIR, and check that every service's image is the packed one.
    #[arg(long, value_name = "DIR")]
    compose_dir: Option<PathBuf>,
    #[command(flatten)]
    rename: RenameArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Print what was loaded, moved and already present as JSON (schema airgap/unpack/1, docs/JSON.md).
    #[arg(long)]
    json: bool,
}

pub fn run(args: UnpackArgs, context: &Context) -> anyhow::Result<()> {
    let summary = super::progress::Summary::start();
    // Before the engine is reached, so the advice is the first thing said.
    if args.bundle.as_os_str() == "-" {
        airgap::bundle::terminal::check_stdin_for_bundle().map_err(airgap::Error::from)?;
    }
    let options = UnpackOptions {
        policy: args.trust.policy()?,
        state_dir: args
            .state_dir
            .unwrap_or_else(airgap::unpack::record::default_dir),
        allow_downgrade: args.allow_downgrade,
        compose_dir: args.compose_dir,
        renaming: match &args.to {
            Target::Registry(address) => args
                .rename
                .renaming_under(address.prefix().map_err(airgap::Error::from)?)?,
            _ => args.rename.renaming()?,
        },
    };
    // A file that is no bundle is named for what it is before any engine
    // or registry is reached (an unreachable engine would otherwise be all
    // the user hears about a foreign file).
    if args.bundle.as_os_str() != "-" {
        airgap::verify::read_head(&args.bundle).map_err(airgap::Error::from)?;
    }
    let mut registry = None;
    let sink: Box<dyn Sink> = match &args.to {
        Target::Docker => Box::new(DaemonSink::new(context.engine()?)),
        Target::Layout(dir) => Box::new(LayoutSink::new(dir)),
        Target::Containerd(address) => {
            Box::new(ContainerdSink::new(address).map_err(airgap::Error::from)?)
        }
        Target::Registry(address) => {
            let pushing = std::rc::Rc::new(
                RegistrySink::new(
                    address.clone(),
                    &args.registry.access()?,
                    args.registry.compression(),
                    &options.state_dir,
                )
                .map_err(airgap::Error::from)?,
            );
            registry = Some(pushing.clone());
            Box::new(SharedSink(pushing))
        }
    };
    let input = BundleInput::open(&args.bundle, args.staging_dir.as_deref())?;
    let progress = context.progress_unless(args.json);
    let unpacked = airgap::unpack(input.path(), &options, sink.as_ref(), progress.as_ref());
    for note in registry.iter().flat_map(|r| r.notes()) {
        eprintln!("note: {}", escape(&note));
    }
    let report = unpacked?;
    if args.json {
        let target = match &args.to {
            Target::Docker => "docker",
            Target::Layout(_) => "oci",
            Target::Registry(_) => "registry",
            Target::Containerd(_) => "containerd",
        };
        return super::json::print_document(&super::json::UnpackDocument::new(
            args.bundle.display().to_string(),
            target,
            &report,
        ));
    }
    let bundle = &report.bundle;
    let named = escape_path(&args.bundle);
    let mut text = match bundle.signer() {
        Some(signer) => format!("verified {named} (signed by {signer})\n"),
        None => format!("verified {named} (unsigned, accepted)\n"),
    };
    if let Some(earlier) = &report.previously_applied {
        text += &format!(
            "this bundle was already applied to this engine on {}\n",
            escape(&earlier.applied_at)
        );
    }
    for (index, (image, names)) in report.load.images.iter().zip(&report.names).enumerate() {
        let what = match (image.already_present, registry.is_some()) {
            (true, _) => "already present",
            (false, true) => "pushed",
            (false, false) => "loaded",
        };
        let tags = match image.tags.is_empty() {
            true => "an untagged image".to_owned(),
            false => escape_all(&image.tags, ", "),
        };
        text += &format!(
            "{what} {tags} ({})\n",
            describe_id(
                image,
                &bundle.manifest().images[index].manifest.digest,
                matches!(args.to, Target::Docker)
            )
        );
        for moved in report
            .moved
            .iter()
            .flatten()
            .filter(|m| image.tags.contains(&m.reference))
        {
            text += &format!(
                "  moved {} here from image {} (that image keeps its other names, or none)\n",
                escape(&moved.reference),
                moved.previous.short()
            );
        }
        if names.iter().any(|n| n.from.name != n.to.name) {
            text += &format!("  renamed: {}\n", super::rename::describe(names));
        }
        for reference in &image.untaggable {
            text += &format!(
                "  note: {} is a digest reference and cannot be restored as a tag\n",
                escape(&reference.to_string())
            );
        }
    }
    for shared in &report.shared {
        let left: Vec<String> = shared.left.iter().map(ToString::to_string).collect();
        text += &format!(
            "note: {} names the {} image, the engine's own platform; the {} image is loaded without it (an engine holds one image per name)\n",
            escape(&shared.name),
            shared.kept,
            left.join(", ")
        );
    }
    if let Some(compose) = &report.compose {
        text += &format!(
            "compose project {}: {} files written, every service's image checked ({} services); run docker compose up there\n",
            escape(&compose.project),
            compose.files.len(),
            compose.services
        );
        match &compose.renames {
            Some((file, true)) => {
                text += &format!(
                    "  {} gives the services their new image names; docker compose reads it by itself\n",
                    escape_path(file)
                );
            }
            Some((file, false)) => {
                text += &format!(
                    "  {} gives the services their new image names; the project has its own override file, so add -f {} after the project's files\n",
                    escape_path(file),
                    escape_path(file)
                );
            }
            None => {}
        }
    }
    print(&text)?;
    let images = &bundle.manifest().images;
    let layers: std::collections::HashSet<_> = images
        .iter()
        .flat_map(|i| &i.layers)
        .map(|l| &l.digest)
        .collect();
    let present = report
        .load
        .images
        .iter()
        .filter(|i| i.already_present)
        .count();
    summary
        .count(images.len() - present, "image sent", "images sent")
        .count(present, "already present", "already present")
        .count(layers.len(), "layer", "layers")
        .size(bundle.location().size().unwrap_or(0), "bundle read")
        .print(context.quiet);
    Ok(())
}

/// The ID the target reports, saying which digest it is where that is not
/// the config digest: Docker's containerd image store names the manifest.
fn describe_id(
    image: &airgap::media::sink::LoadedImage,
    manifest: &airgap::digest::Digest,
    engine: bool,
) -> String {
    if engine && super::json::id_kind(&image.id, &image.config, manifest) == "manifest" {
        format!(
            "{}: the manifest digest, which this engine's containerd image store reports as the ID; config {}",
            image.id.short(),
            image.config.short()
        )
    } else {
        image.id.short().to_owned()
    }
}

/// Where unpack writes the images.
#[derive(Clone, Debug)]
pub enum Target {
    /// The engine at `--host`.
    Docker,
    /// An OCI image layout directory.
    Layout(PathBuf),
    /// A registry, and the path images go under.
    Registry(RegistryAddress),
    /// A containerd namespace.
    Containerd(ContainerdAddress),
}

/// The registry sink, kept by the command to print its notes afterwards.
struct SharedSink(std::rc::Rc<RegistrySink>);

impl Sink for SharedSink {
    fn holdings(
        &self,
        images: &[airgap::bundle::BundleImage],
    ) -> Result<airgap::media::sink::Holdings, airgap::media::sink::SinkError> {
        self.0.holdings(images)
    }
    fn layer_chains(
        &self,
    ) -> Result<Vec<Vec<airgap::digest::Digest>>, airgap::media::sink::SinkError> {
        self.0.layer_chains()
    }
    fn supply_layers(
        &self,
        digests: &std::collections::HashSet<airgap::digest::Digest>,
        progress: &dyn airgap::progress::Progress,
    ) -> Result<airgap::store::StagedLayers, airgap::media::sink::SinkError> {
        self.0.supply_layers(digests, progress)
    }
    fn write(
        &self,
        images: &airgap::delta::finish::FinishedImages<'_>,
        progress: &dyn airgap::progress::Progress,
    ) -> Result<(), airgap::media::sink::SinkError> {
        self.0.write(images, progress)
    }
    fn tag(
        &self,
        image: &airgap::bundle::BundleImage,
        already_present: bool,
    ) -> Result<airgap::media::sink::LoadedImage, airgap::media::sink::SinkError> {
        self.0.tag(image, already_present)
    }
    fn resolves(
        &self,
        reference: &str,
        image: &airgap::bundle::BundleImage,
    ) -> Result<bool, airgap::media::sink::SinkError> {
        self.0.resolves(reference, image)
    }
}

fn parse_target(text: &str) -> Result<Target, String> {
    if text == "docker" {
        return Ok(Target::Docker);
    }
    if ContainerdAddress::names_containerd(text) {
        return ContainerdAddress::parse(text)
            .map(Target::Containerd)
            .map_err(|e| e.to_string());
    }
    if text.starts_with("registry://") {
        return RegistryAddress::parse(text)
            .map(Target::Registry)
            .map_err(|e| e.to_string());
    }
    match text.strip_prefix("oci:") {
        Some(dir) if !dir.is_empty() => Ok(Target::Layout(PathBuf::from(dir))),
        _ => Err("expected docker (the engine at --host), oci:DIR (an OCI image layout), registry://HOST[:PORT][/PREFIX] or containerd[://SOCKET][?namespace=NS]".into()),
    }
}
