//! `airgap verify`.

use std::path::PathBuf;

use airgap::verify;

use super::Context;
use super::output::print;
use super::trust::TrustArgs;

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The bundle file.
    bundle: PathBuf,
    #[command(flatten)]
    trust: TrustArgs,
}

pub fn run(args: VerifyArgs, context: &Context) -> anyhow::Result<()> {
    let policy = args.trust.policy()?;
    let progress = context.progress();
    let bundle =
        verify::verify(&args.bundle, &policy, progress.as_ref()).map_err(airgap::Error::from)?;
    let manifest = bundle.manifest();
    let signer = bundle.signer().map_or_else(
        || "unsigned (accepted with --allow-unsigned)".to_owned(),
        |s| format!("{s} (trusted)"),
    );
    print(&format!(
        "{}: OK\n  signer:  {signer}\n  format:  {}\n  created: {} by {}\n  images:  {}\n  entries: {} checked, {} bytes\n",
        args.bundle.display(),
        manifest.format_version,
        manifest.created,
        manifest.tool,
        manifest.images.len(),
        manifest.entries.len(),
        manifest.content_size(),
    ))
}
