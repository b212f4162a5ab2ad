//! Command-line interface: clap definitions, dispatch, and printing. No
//! logic lives here beyond turning arguments into library options.

mod cache;
mod compose;
mod docs;
pub mod exit;
mod input;
mod inspect;
mod inventory;
mod json;
mod key;
mod keygen;
mod log;
pub mod output;
mod pack;
mod plan;
mod progress;
mod registry;
mod rename;
mod trust;
mod unpack;
mod verify;

use airgap::media::docker::engine::Engine;
use airgap::progress::{NoProgress, Progress};
use clap::{Parser, Subcommand};
use tokio::runtime::Handle;

/// The version, and the bundle format versions this airgap writes and reads.
static VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "{} ({})",
        env!("CARGO_PKG_VERSION"),
        airgap::bundle::format_versions()
    )
});

const EXAMPLES: &str = "\
Examples:
  airgap keygen -o ops                                   make ops.pem and ops.pub.pem
  airgap pack -k ops.pem -o shop.airgap compose.yaml     pack a compose project's images
  airgap unpack --key ops.pub.pem shop.airgap            verify and load on the isolated side
  airgap help pack                                       more on one command";

/// Move container images into networks with no internet: pack them into one
/// signed, deduplicated zstd bundle on the connected side, verify and load it
/// on the isolated side.
#[derive(Debug, Parser)]
#[command(name = "airgap", version = VERSION.as_str(), max_term_width = 100, after_help = EXAMPLES)]
pub struct Args {
    /// Engine address (unix:///path/docker.sock or tcp://host:port); default: $DOCKER_HOST, then the local socket.
    #[arg(long, short = 'H', global = true, value_name = "ADDRESS")]
    host: Option<String>,
    /// No progress bars.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// Say what is done on stderr: engine calls, files, decisions (-vv: more detail).
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Make an Ed25519 signing key pair: PREFIX.pem (private, mode 0600) and PREFIX.pub.pem.
    #[command(after_help = "\
Examples:
  airgap keygen -o ops          writes ops.pem (keep it here) and ops.pub.pem (copy it to the site)")]
    Keygen(keygen::KeygenArgs),
    /// Work with keys: print a key's fingerprint.
    #[command(
        subcommand,
        after_help = "\
Examples:
  airgap key fingerprint ops.pub.pem    compare it with the one keygen printed"
    )]
    Key(key::KeyCommand),
    /// Save images from the engine into one signed bundle.
    #[command(after_help = "\
Examples:
  airgap pack -k ops.pem -o app.airgap nginx:1.27 redis:7    named images
  airgap pack -k ops.pem -o app.airgap                       the compose project here
  airgap pack -k ops.pem -o app.airgap --have site.json      a delta against the site's inventory
  airgap pack -k ops.pem -o - app.yaml | ssh site airgap unpack --key ops.pub.pem -")]
    Pack(Box<pack::PackArgs>),
    /// Show what pack would take; --images lists a compose project's images without an engine.
    #[command(after_help = "\
Examples:
  airgap plan                        the compose project here: images, layers, sizes
  airgap plan --images compose.yaml  only the image references, no engine needed
  airgap plan --archive saved.tar    what an image archive holds
Exits 6, as pack would, when an image is missing.")]
    Plan(plan::PlanArgs),
    /// Check a bundle's signature and every byte of its content.
    #[command(after_help = "\
Examples:
  airgap verify --key ops.pub.pem app.airgap
  airgap verify --allow-unsigned app.airgap
  airgap verify --key ops.pub.pem --html report.html app.airgap   also a page to open in a browser")]
    Verify(verify::VerifyArgs),
    /// Verify a bundle, then load its images into the engine and restore their tags.
    #[command(after_help = "\
Examples:
  airgap unpack --key ops.pub.pem app.airgap
  airgap unpack --key ops.pub.pem --compose-dir /srv/app app.airgap
  airgap unpack --key ops.pub.pem --to oci:/srv/layout app.airgap
  airgap unpack --key ops.pub.pem - < app.airgap")]
    Unpack(unpack::UnpackArgs),
    /// Record what the engine holds (images, tags, layers) for a delta pack on the connected side.
    #[command(after_help = "\
Examples:
  airgap inventory -o site.json      then carry site.json to the connected side for pack --have")]
    Inventory(inventory::InventoryArgs),
    /// List or prune the layer cache pack keeps of what it read from the engine.
    #[command(
        subcommand,
        after_help = "\
Examples:
  airgap cache ls                  every entry, least recently used first
  airgap cache prune --max 2G      keep the 2 GB used most recently
  airgap cache prune --all         empty it"
    )]
    Cache(cache::CacheCommand),
    /// Show what a bundle holds: images, tags, layers, sizes, signer.
    #[command(after_help = "\
Examples:
  airgap inspect app.airgap
  airgap inspect --html app.html app.airgap    also a page to open in a browser")]
    Inspect(inspect::InspectArgs),
    /// Print a shell completion script: bash, zsh or fish.
    #[command(after_help = "\
Examples:
  airgap completions bash > /etc/bash_completion.d/airgap
  airgap completions zsh > \"${fpath[1]}/_airgap\"
  airgap completions fish > ~/.config/fish/completions/airgap.fish")]
    Completions(docs::CompletionsArgs),
    /// Write the man pages into a directory (used by `make man`).
    #[command(hide = true)]
    Man(docs::ManArgs),
}

/// What every command gets besides its own arguments.
struct Context {
    host: Option<String>,
    quiet: bool,
    runtime: Handle,
}

impl Context {
    fn progress(&self) -> Box<dyn Progress> {
        self.progress_unless(false)
    }

    /// Bars, unless the run is quiet or `json` (stdout then carries one
    /// document, and stderr only errors and -v lines).
    fn progress_unless(&self, json: bool) -> Box<dyn Progress> {
        if self.quiet || json {
            Box::new(NoProgress)
        } else {
            Box::new(progress::Bars::new())
        }
    }

    fn engine(&self) -> anyhow::Result<Engine> {
        Ok(Engine::connect(self.host.as_deref(), self.runtime.clone())
            .map_err(airgap::Error::from)?)
    }
}

/// Runs the command; called on a blocking thread.
pub fn run(args: Args, runtime: Handle) -> anyhow::Result<()> {
    log::init(args.verbose);
    let context = Context {
        host: args.host,
        quiet: args.quiet,
        runtime,
    };
    match args.command {
        Command::Keygen(args) => keygen::run(args),
        Command::Key(command) => key::run(command),
        Command::Pack(args) => pack::run(*args, &context),
        Command::Plan(args) => plan::run(args, &context),
        Command::Verify(args) => verify::run(args, &context),
        Command::Unpack(args) => unpack::run(args, &context),
        Command::Inventory(args) => inventory::run(args, &context),
        Command::Inspect(args) => inspect::run(args, &context),
        Command::Cache(command) => cache::run(command),
        Command::Completions(args) => docs::completions(args),
        Command::Man(args) => docs::man(args),
    }
}
