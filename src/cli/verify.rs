//! `airgap verify`: a report a person can file, or JSON for machines.

use std::path::PathBuf;

use airgap::display::{escape, escape_all};
use airgap::verify::{self, Report};

use super::Context;
use super::input::BundleInput;
use super::output::{bytes, print};
use super::trust::TrustArgs;

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The bundle: a file, a split bundle's name, one of its parts or their directory, or - for standard input.
    bundle: PathBuf,
    #[command(flatten)]
    trust: TrustArgs,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Where a bundle read from standard input is staged before it is checked (default: $TMPDIR).
    #[arg(long, value_name = "DIR")]
    staging_dir: Option<PathBuf>,
}

pub fn run(args: VerifyArgs, context: &Context) -> anyhow::Result<()> {
    let policy = args.trust.policy()?;
    let input = BundleInput::open(&args.bundle, args.staging_dir.as_deref())?;
    let progress = context.progress();
    let (report, result) = verify::verify_with_report(input.path(), &policy, progress.as_ref());
    let mut report = report;
    report.bundle = args.bundle.display().to_string();
    print(&if args.json {
        json(&report, result.is_ok())
    } else {
        text(&report, result.is_ok())
    })?;
    result.map_err(airgap::Error::from)?;
    Ok(())
}

fn json(report: &Report, ok: bool) -> String {
    let mut value = serde_json::to_value(report).expect("reports always serialise");
    value["verified"] = serde_json::Value::Bool(ok);
    let mut text = serde_json::to_string_pretty(&value).expect("JSON values always serialise");
    text.push('\n');
    text
}

fn text(report: &Report, ok: bool) -> String {
    let mut text = format!("bundle:   {}\n", escape(&report.bundle));
    if let Some(size) = report.size {
        text += &format!(
            "size:     {}{}\n",
            bytes(size),
            if report.parts > 0 {
                format!(" in {} parts", report.parts)
            } else {
                String::new()
            }
        );
    }
    if let Some(sha256) = &report.sha256 {
        text += &format!("sha256:   {}\n", sha256.hex());
    }
    if let Some(signer) = &report.signer {
        let trust = if report.signer_trusted {
            "trusted here"
        } else {
            "NOT trusted here"
        };
        text += &format!("signer:   {signer} ({trust})\n");
    }
    if let (Some(version), Some(created), Some(tool)) =
        (&report.format_version, &report.created, &report.tool)
    {
        text += &format!(
            "format:   {}, made {} by {}\n",
            escape(version),
            escape(created),
            escape(tool)
        );
    }
    if !report.images.is_empty() {
        text += "images:\n";
        for image in &report.images {
            text += &format!(
                "  {}  config {}  manifest {}  {}\n",
                escape_all(&image.refs, ", "),
                image.config.short(),
                image.manifest.short(),
                escape(&image.platform)
            );
        }
    }
    text += "checks:\n";
    for check in &report.checks {
        text += &format!(
            "  [{}] {:<9} {}\n",
            if check.passed { "ok" } else { "FAILED" },
            check.check,
            escape(&check.detail)
        );
    }
    text += if ok {
        "result:   VERIFIED\n"
    } else {
        "result:   REFUSED\n"
    };
    text
}
