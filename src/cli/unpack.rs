//! `airgap unpack`.

use std::path::PathBuf;

use airgap::sink::DaemonSink;

use super::Context;
use super::output::print;
use super::trust::TrustArgs;

#[derive(Debug, clap::Args)]
pub struct UnpackArgs {
    /// The bundle file.
    bundle: PathBuf,
    #[command(flatten)]
    trust: TrustArgs,
}

pub fn run(args: UnpackArgs, context: &Context) -> anyhow::Result<()> {
    let policy = args.trust.policy()?;
    let sink = DaemonSink::new(context.engine()?);
    let progress = context.progress();
    let (bundle, report) = airgap::unpack(&args.bundle, &policy, &sink, progress.as_ref())?;
    let mut text = match bundle.signer() {
        Some(signer) => format!("verified {} (signed by {signer})\n", args.bundle.display()),
        None => format!("verified {} (unsigned, accepted)\n", args.bundle.display()),
    };
    for image in &report.images {
        let what = if image.already_present {
            "already present"
        } else {
            "loaded"
        };
        text += &format!("{what} {} ({})\n", image.tags.join(", "), image.id.short());
        for reference in &image.untaggable {
            text += &format!(
                "  note: {reference} is a digest reference and cannot be restored as a tag\n"
            );
        }
    }
    print(&text)
}
