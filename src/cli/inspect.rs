//! `airgap inspect`.

use std::collections::HashMap;
use std::path::PathBuf;

use airgap::bundle::inspect::summarize;
use airgap::display::{escape, escape_all, escape_path};
use airgap::report::html::{self, Page};
use airgap::verify::{self, VerifyError};
use anyhow::Context as _;

use super::output::{bytes, print};
use super::rename::RenameArgs;
use super::trust::TrustArgs;

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The bundle file.
    bundle: PathBuf,
    #[command(flatten)]
    trust: TrustArgs,
    /// Show the names the images would arrive under with these unpack options.
    #[command(flatten)]
    rename: RenameArgs,
    /// Print what the bundle holds as JSON (schema airgap/inspect/1, docs/JSON.md).
    #[arg(long)]
    json: bool,
    /// Also write the report as one self-contained HTML page to FILE.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

pub fn run(args: InspectArgs, context: &super::Context) -> anyhow::Result<()> {
    let started = super::progress::Summary::start();
    let renaming = args.rename.renaming()?;
    let head = if args.bundle.as_os_str() == "-" {
        verify::read_head_from(std::io::stdin())
    } else {
        verify::read_head(&args.bundle)
    };
    let head = head.map_err(airgap::Error::from)?;
    let manifest = &head.manifest;
    let summary = summarize(manifest);
    let names = if renaming.is_empty() {
        None
    } else {
        Some(
            airgap::unpack::names_on_arrival(&manifest.images, &renaming)
                .map_err(airgap::Error::from)?,
        )
    };
    let policy = args.trust.policy()?;
    let trust = match verify::check_signature(&head, &policy) {
        Ok(_) => Trust::Trusted,
        Err(VerifyError::BadSignature { .. }) => Trust::Invalid,
        Err(_) => Trust::Untrusted,
    };
    let trusted = head.signature.is_some() && matches!(trust, Trust::Trusted);
    let trust_text = match trust {
        Trust::Trusted => "trusted here, signature valid",
        Trust::Invalid => "SIGNATURE INVALID: the manifest was altered",
        Trust::Untrusted => "not trusted here",
    };
    if let Some(path) = &args.html {
        let page = Page {
            command: "inspect",
            bundle: &args.bundle.display().to_string(),
            manifest: Some(manifest),
            signer: head.signature.as_ref().map(|s| s.key.to_string()),
            trust: trust_text.to_owned(),
            trusted,
            verification: None,
        };
        html::write(path, &page)
            .with_context(|| format!("cannot write the HTML report {}", escape_path(path)))?;
    }
    if args.json {
        let signer = head
            .signature
            .as_ref()
            .map(|signature| super::json::InspectSigner {
                fingerprint: signature.key.to_string(),
                trust: match trust {
                    Trust::Trusted => "trusted",
                    Trust::Invalid => "invalid",
                    Trust::Untrusted => "untrusted",
                },
            });
        return super::json::print_document(&super::json::InspectDocument::new(
            args.bundle.display().to_string(),
            manifest,
            signer,
            names.as_deref(),
        ));
    }
    let mut text = format!(
        "bundle:   {}\nformat:   {} ({})\ncreated:  {} by {}\nsource:   {}{}\n",
        escape_path(&args.bundle),
        escape(&manifest.format_version),
        if manifest.required.is_empty() {
            "full"
        } else {
            "delta"
        },
        escape(&manifest.created),
        escape(&manifest.tool),
        escape(&manifest.source.kind),
        manifest
            .source
            .engine
            .as_deref()
            .map(|e| format!(" ({})", escape(e)))
            .unwrap_or_default(),
    );
    text += &match &head.signature {
        Some(signature) => format!("signer:   {} ({trust_text})\n", signature.key),
        None => "signer:   none (unsigned)\n".to_owned(),
    };
    text += &format!(
        "content:  {} in {} entries ({} if each image were saved alone); not checked here, run airgap verify\n\nimages:\n",
        bytes(summary.carried_size),
        manifest.entries.len(),
        bytes(summary.total_image_size)
    );
    for (index, image) in summary.images.iter().enumerate() {
        let refs = match names.as_ref().and_then(|names| names.get(index)) {
            Some(names) => super::rename::describe(names),
            None => escape_all(&image.refs, ", "),
        };
        text += &format!(
            "  {}\n    id {}  {}  {}  {}\n",
            refs,
            image.config.short(),
            escape(&image.platform),
            super::pack::layers(image.layers.len()),
            bytes(image.size)
        );
        for layer in &image.layers {
            text += &format!("      {}  {}\n", layer.digest.short(), bytes(layer.size));
        }
    }
    if !summary.shared_layers.is_empty() {
        text += "\nshared layers (stored once):\n";
        for (layer, users) in &summary.shared_layers {
            text += &format!(
                "  {}  {}  used by {users} images\n",
                layer.digest.short(),
                bytes(layer.size)
            );
        }
    }
    if let Some(compose) = &manifest.compose {
        text += &format!(
            "\ncompose project {} (unpack --compose-dir writes it out):\n",
            escape(&compose.project)
        );
        for file in &compose.files {
            text += &format!("  file {}\n", escape(file));
        }
        for service in &compose.services {
            text += &format!(
                "  service {} → {} ({}){}\n",
                escape(&service.service),
                escape(&service.image),
                service.config.short(),
                arrives_as(&service.image, &renaming)
            );
        }
    }
    if !manifest.patches.is_empty() {
        text += "\nlayers shipped as patches (unpack rebuilds them against the site's layer):\n";
        // A map, not a search per patch: the manifest is not verified here.
        let sizes: HashMap<&str, u64> = manifest
            .entries
            .iter()
            .map(|e| (e.path.as_str(), e.size))
            .collect();
        for patch in &manifest.patches {
            let size = sizes.get(patch.entry.as_str()).copied().unwrap_or(0);
            text += &format!(
                "  {}  {} as a {} patch against {}\n",
                patch.layer.digest.short(),
                bytes(patch.layer.size),
                bytes(size),
                patch.base.digest.short()
            );
        }
    }
    if !summary.required.is_empty() {
        text += "\nrequired on the target (not carried):\n";
        for layer in &summary.required {
            text += &format!("  {}  {}\n", layer.digest.short(), bytes(layer.size));
        }
    }
    print(&text)?;
    started
        .count(summary.images.len(), "image", "images")
        .count(
            summary
                .images
                .iter()
                .flat_map(|i| &i.layers)
                .map(|l| &l.digest)
                .collect::<std::collections::HashSet<_>>()
                .len(),
            "layer",
            "layers",
        )
        .size(summary.carried_size, "carried")
        .size(
            summary
                .total_image_size
                .saturating_sub(summary.carried_size),
            "saved by dedup",
        )
        .print(context.quiet);
    Ok(())
}

/// What the signature check says of the bundle here.
#[derive(Clone, Copy)]
enum Trust {
    Trusted,
    Invalid,
    Untrusted,
}

/// `, arriving as NEW` for a service image the renaming changes.
fn arrives_as(image: &str, renaming: &airgap::image::rename::Renaming) -> String {
    let Ok(reference) = airgap::image::ImageRef::parse(image) else {
        return String::new();
    };
    match renaming.rename(&reference) {
        Ok(renamed) if renamed.name != reference.name => {
            format!(", arriving as {}", escape(&renamed.given))
        }
        _ => String::new(),
    }
}
