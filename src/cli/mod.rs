//! Command-line interface: clap definitions, dispatch, and printing. No
//! logic lives here beyond turning arguments into library options.

mod compose;
pub mod exit;
mod input;
mod inspect;
mod inventory;
mod key;
mod keygen;
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

/// Move container images into networks with no internet: pack them into one
/// signed, deduplicated zstd bundle on the connected side, verify and load it
/// on the isolated side.
#[derive(Debug, Parser)]
#[command(name = "airgap", version, max_term_width = 100)]
pub struct Args {
    /// Engine address (unix:///path/docker.sock or tcp://host:port); default: $DOCKER_HOST, then the local socket.
    #[arg(long, short = 'H', global = true, value_name = "ADDRESS")]
    host: Option<String>,
    /// No progress bars.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Make an Ed25519 signing key pair: PREFIX.pem (private, mode 0600) and PREFIX.pub.pem.
    Keygen(keygen::KeygenArgs),
    /// Work with keys: print a key's fingerprint.
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Save images from the engine into one signed bundle.
    Pack(Box<pack::PackArgs>),
    /// Show what pack would take; --images lists a compose project's images without an engine.
    Plan(plan::PlanArgs),
    /// Check a bundle's signature and every byte of its content.
    Verify(verify::VerifyArgs),
    /// Verify a bundle, then load its images into the engine and restore their tags.
    Unpack(unpack::UnpackArgs),
    /// Record what the engine holds (images, tags, layers) for a delta pack on the connected side.
    Inventory(inventory::InventoryArgs),
    /// Show what a bundle holds: images, tags, layers, sizes, signer.
    Inspect(inspect::InspectArgs),
}

/// What every command gets besides its own arguments.
struct Context {
    host: Option<String>,
    quiet: bool,
    runtime: Handle,
}

impl Context {
    fn progress(&self) -> Box<dyn Progress> {
        if self.quiet {
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
        Command::Inspect(args) => inspect::run(args),
    }
}
