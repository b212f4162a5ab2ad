//! `airgap verify`: a report a person can file, or JSON for machines.

use std::path::PathBuf;

use airgap::display::{escape, escape_all, escape_path};
use airgap::report::html::{self, Page};
use airgap::verify::{self, Report};
use anyhow::Context as _;

use super::Context;
use super::input::BundleInput;
use super::output::{bytes, print};
use super::rename::RenameArgs;
use super::trust::TrustArgs;
use airgap::image::ImageRef;
use airgap::image::rename::{RenameError, Renamed, Renaming};

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
    /// Show the names the images would arrive under with these unpack options.
    #[command(flatten)]
    rename: RenameArgs,
    /// Also write the report as one self-contained HTML page to FILE (written whether or not the bundle verifies).
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

pub fn run(args: VerifyArgs, context: &Context) -> anyhow::Result<()> {
    let summary = super::progress::Summary::start();
    let policy = args.trust.policy()?;
    let renaming = args.rename.renaming()?;
    let input = BundleInput::open(&args.bundle, args.staging_dir.as_deref())?;
    let progress = context.progress_unless(args.json);
    let (report, result) = verify::verify_with_report(input.path(), &policy, progress.as_ref());
    let mut report = report;
    report.bundle = args.bundle.display().to_string();
    let names = if renaming.is_empty() || report.images.is_empty() {
        Ok(None)
    } else {
        names_on_arrival(&report, &renaming).map(Some)
    };
    if let Some(path) = &args.html {
        let manifest = result.as_ref().ok().map(|bundle| bundle.manifest());
        let page = Page {
            command: "verify",
            bundle: &report.bundle,
            manifest,
            signer: report.signer.as_ref().map(ToString::to_string),
            trust: if report.signer_trusted {
                "trusted here".to_owned()
            } else {
                "NOT trusted here".to_owned()
            },
            trusted: report.signer_trusted,
            verification: Some((&report, result.is_ok())),
        };
        html::write(path, &page)
            .with_context(|| format!("cannot write the HTML report {}", escape_path(path)))?;
    }
    let shown = names.as_ref().ok().and_then(Option::as_ref);
    if args.json {
        super::json::print_document(&super::json::VerifyDocument::new(
            &report,
            shown.map(Vec::as_slice),
            result.is_ok(),
        ))?;
    } else {
        print(&text(&report, shown, result.is_ok()))?;
    }
    result.map_err(airgap::Error::from)?;
    names.map_err(airgap::Error::from)?;
    summary
        .count(report.images.len(), "image", "images")
        .size(report.size.unwrap_or(0), "checked")
        .print(context.quiet || args.json);
    Ok(())
}

/// The names the report's images would arrive under.
fn names_on_arrival(
    report: &Report,
    renaming: &Renaming,
) -> Result<Vec<Vec<Renamed>>, RenameError> {
    let refs: Vec<Vec<ImageRef>> = report
        .images
        .iter()
        .map(|image| {
            image
                .refs
                .iter()
                .filter_map(|given| ImageRef::parse(given).ok())
                .collect()
        })
        .collect();
    let keyed: Vec<_> = report
        .images
        .iter()
        .zip(&refs)
        .map(|(image, refs)| (&image.manifest, refs.as_slice()))
        .collect();
    renaming.apply(&keyed)
}

fn text(report: &Report, names: Option<&Vec<Vec<Renamed>>>, ok: bool) -> String {
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
        for (index, image) in report.images.iter().enumerate() {
            let refs = match names.and_then(|names| names.get(index)) {
                Some(names) => super::rename::describe(names),
                None => escape_all(&image.refs, ", "),
            };
            text += &format!(
                "  {}  config {}  manifest {}  {}\n",
                refs,
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
