//! `airgap completions SHELL` and the hidden `airgap man DIR`: both made from
//! the clap definitions, so the CLI stays the one place commands are defined.

use std::path::PathBuf;

use clap::CommandFactory;
use clap_complete::Shell;

use super::Args;

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// The directory to write airgap.1 and one airgap-COMMAND.1 per command into (created).
    dir: PathBuf,
}

pub fn completions(args: CompletionsArgs) -> anyhow::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Args::command(), "airgap", &mut script);
    super::output::print(&String::from_utf8(script)?)
}

pub fn man(args: ManArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir)?;
    clap_mangen::generate_to(Args::command(), &args.dir)?;
    eprintln!("wrote the man pages to {}", args.dir.display());
    Ok(())
}
