//! `inspect --html` and `verify --html`: one self-contained HTML page (inline
//! CSS; no scripts, fonts, images or links to fetch) that a person can open
//! on the isolated side. Every string that comes from the bundle is escaped
//! for HTML after [`crate::display::escape`] (a hostile bundle must not
//! inject markup), and the page forbids scripts and network access in its
//! own Content-Security-Policy as a second line.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::io;
use std::path::Path;

use crate::bundle::BundleManifest;
use crate::bundle::inspect::summarize;
use crate::digest::Digest;
use crate::display::{self, bytes};
use crate::files::untrusted;
use crate::verify::Report;

/// What the page shows.
#[derive(Debug, Default)]
pub struct Page<'a> {
    /// `inspect` or `verify`.
    pub command: &'a str,
    /// The bundle as named on the command line.
    pub bundle: &'a str,
    /// The bundle's manifest, when it could be read.
    pub manifest: Option<&'a BundleManifest>,
    /// The signer's key fingerprint, if the bundle is signed.
    pub signer: Option<String>,
    /// Whether the signer is trusted here, in words.
    pub trust: String,
    /// Whether the signer is trusted and the signature valid.
    pub trusted: bool,
    /// `verify`'s report and whether the bundle verified.
    pub verification: Option<(&'a Report, bool)>,
}

/// Writes the page for `page` to `path`: a temporary file beside it renamed
/// over it, so a link planted at `path` is replaced, never followed.
pub fn write(path: &Path, page: &Page) -> io::Result<()> {
    untrusted::write_atomic(path, render(page).as_bytes(), 0o644)
}

/// Text from the bundle, made safe for HTML.
fn text(value: &str) -> String {
    let shown = display::escape(value);
    let mut out = String::with_capacity(shown.len());
    for c in shown.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#1d2330;background:#fff}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #d6dae3;padding-bottom:.2em}
code,.mono{font-family:ui-monospace,monospace;font-size:.92em;word-break:break-all}
table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{text-align:left;padding:.3em .6em;border-bottom:1px solid #eceef3;vertical-align:top}
th{background:#f4f6fa;font-weight:600}
.ok{color:#0b6b2f;font-weight:600}.bad{color:#b3261e;font-weight:600}.muted{color:#5d6677}
.verdict{display:inline-block;padding:.2em .7em;border-radius:4px;color:#fff;font-weight:700}
.verdict.ok{background:#0b6b2f}.verdict.bad{background:#b3261e}
.bar{display:flex;height:22px;background:#f4f6fa;border:1px solid #d6dae3;border-radius:3px;overflow:hidden;margin:.3em 0}
.bar span{display:block;height:100%;min-width:2px;border-right:1px solid #fff;box-sizing:border-box}
.own{background:#4a78c2}.shared{background:#8e5cc4}.patched{background:#d08a1c}.required{background:repeating-linear-gradient(45deg,#aab1bf,#aab1bf 4px,#e3e6ec 4px,#e3e6ec 8px)}
.key span{display:inline-block;width:1em;height:1em;vertical-align:middle;margin:0 .3em 0 1em}
.image{margin:1em 0}
";

/// The whole page.
pub fn render(page: &Page) -> String {
    let mut html = String::new();
    let title = format!("airgap {}: {}", page.command, text(page.bundle));
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{title}</title><style>{STYLE}</style></head><body>\n<h1>{title}</h1>\n"
    );
    summary(&mut html, page);
    signer(&mut html, page);
    if let Some((report, verified)) = page.verification {
        checks(&mut html, report, verified);
    }
    match page.manifest {
        Some(manifest) => {
            images(&mut html, manifest);
            layers(&mut html, manifest);
            shared(&mut html, manifest);
            delta(&mut html, manifest);
            compose(&mut html, manifest);
        }
        None => {
            if let Some((report, _)) = page.verification {
                report_images(&mut html, report);
            }
        }
    }
    html.push_str("<p class=\"muted\">Written by airgap; this page loads nothing and runs nothing.</p>\n</body></html>\n");
    html
}

fn summary(html: &mut String, page: &Page) {
    html.push_str("<table class=\"summary\">\n");
    row(
        html,
        "bundle",
        &format!("<code>{}</code>", text(page.bundle)),
    );
    if let Some((report, _)) = page.verification {
        if let Some(size) = report.size {
            row(html, "size", &bytes(size));
        }
        if let Some(sha256) = &report.sha256 {
            row(
                html,
                "sha256",
                &format!("<code>{}</code>", text(sha256.hex())),
            );
        }
    }
    if let Some(manifest) = page.manifest {
        let kind = if manifest.required.is_empty() {
            "full"
        } else {
            "delta"
        };
        row(
            html,
            "format",
            &format!("{} ({kind})", text(&manifest.format_version)),
        );
        row(
            html,
            "created",
            &format!("{} by {}", text(&manifest.created), text(&manifest.tool)),
        );
        let engine = manifest
            .source
            .engine
            .as_deref()
            .map(|e| format!(" ({})", text(e)))
            .unwrap_or_default();
        row(
            html,
            "source",
            &format!("{}{engine}", text(&manifest.source.kind)),
        );
        let summary = summarize(manifest);
        row(
            html,
            "content",
            &format!(
                "{} carried in {} entries ({} if each image were saved alone)",
                bytes(summary.carried_size),
                manifest.entries.len(),
                bytes(summary.total_image_size)
            ),
        );
    }
    html.push_str("</table>\n");
}

fn row(html: &mut String, name: &str, value: &str) {
    let _ = writeln!(html, "<tr><th>{name}</th><td>{value}</td></tr>");
}

fn signer(html: &mut String, page: &Page) {
    html.push_str("<h2>Signer and trust</h2>\n<p>");
    let class = if page.trusted { "ok" } else { "bad" };
    match &page.signer {
        Some(key) => {
            let _ = write!(
                html,
                "signed by key <code class=\"fingerprint\">{}</code>: <span class=\"{class}\">{}</span>",
                text(key),
                text(&page.trust)
            );
        }
        None => {
            let _ = write!(
                html,
                "<span class=\"bad\">unsigned</span> ({})",
                text(&page.trust)
            );
        }
    }
    html.push_str("</p>\n");
}

fn checks(html: &mut String, report: &Report, verified: bool) {
    let (class, verdict) = if verified {
        ("ok", "VERIFIED")
    } else {
        ("bad", "REFUSED")
    };
    let _ = writeln!(
        html,
        "<h2>Checks</h2>\n<p>result: <span class=\"verdict {class}\">{verdict}</span></p>\n<table><tr><th>check</th><th>result</th><th>detail</th></tr>"
    );
    for check in &report.checks {
        let (class, result) = if check.passed {
            ("ok", "ok")
        } else {
            ("bad", "FAILED")
        };
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td class=\"{class}\">{result}</td><td>{}</td></tr>",
            text(check.check),
            text(&check.detail)
        );
    }
    html.push_str("</table>\n");
}

/// The images of a report whose manifest could not be read.
fn report_images(html: &mut String, report: &Report) {
    if report.images.is_empty() {
        return;
    }
    html.push_str("<h2>Images</h2>\n<table><tr><th>names</th><th>platform</th><th>config digest</th><th>manifest digest</th></tr>\n");
    for image in &report.images {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
            names(&image.refs),
            text(&image.platform),
            text(image.config.as_str()),
            text(image.manifest.as_str())
        );
    }
    html.push_str("</table>\n");
}

fn names(refs: &[String]) -> String {
    if refs.is_empty() {
        return "<span class=\"muted\">(no name)</span>".to_owned();
    }
    refs.iter()
        .map(|r| format!("<span class=\"name\">{}</span>", text(r)))
        .collect::<Vec<_>>()
        .join("<br>")
}

fn images(html: &mut String, manifest: &BundleManifest) {
    html.push_str("<h2>Images</h2>\n<table><tr><th>names</th><th>platform</th><th>config digest (image ID)</th><th>layers</th><th>size</th></tr>\n");
    for image in &manifest.images {
        let refs: Vec<String> = image.refs.iter().map(|r| r.given.clone()).collect();
        let size = image
            .layers
            .iter()
            .map(|l| l.size)
            .fold(0, u64::saturating_add);
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            names(&refs),
            text(&image.platform.to_string()),
            text(image.config.digest.as_str()),
            image.layers.len(),
            bytes(size)
        );
    }
    html.push_str("</table>\n");
}

/// How a layer travels in this bundle.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Carriage {
    /// Carried, used by one image.
    Own,
    /// Carried once, used by several images.
    Shared,
    /// Carried as a patch against a layer the site holds.
    Patched,
    /// Left out: the site must already hold it.
    Required,
}

impl Carriage {
    fn class(self) -> &'static str {
        match self {
            Self::Own => "own",
            Self::Shared => "shared",
            Self::Patched => "patched",
            Self::Required => "required",
        }
    }

    fn words(self) -> &'static str {
        match self {
            Self::Own => "carried",
            Self::Shared => "carried once, shared",
            Self::Patched => "carried as a patch",
            Self::Required => "left out: the site holds it",
        }
    }
}

fn layers(html: &mut String, manifest: &BundleManifest) {
    let users = layer_users(manifest);
    let patched: HashSet<&Digest> = manifest.patches.iter().map(|p| &p.layer.digest).collect();
    let required: HashSet<&Digest> = manifest.required.iter().map(|l| &l.digest).collect();
    let carriage = |digest: &Digest| {
        if required.contains(digest) {
            Carriage::Required
        } else if patched.contains(digest) {
            Carriage::Patched
        } else if users.get(digest).is_some_and(|u| u.len() > 1) {
            Carriage::Shared
        } else {
            Carriage::Own
        }
    };
    let largest = manifest
        .images
        .iter()
        .map(|i| i.layers.iter().map(|l| l.size).fold(0, u64::saturating_add))
        .max()
        .unwrap_or(0)
        .max(1);
    html.push_str("<h2>Layers by size</h2>\n<p class=\"key\">");
    for kind in [
        Carriage::Own,
        Carriage::Shared,
        Carriage::Patched,
        Carriage::Required,
    ] {
        let _ = write!(
            html,
            "<span class=\"{}\"></span>{}",
            kind.class(),
            kind.words()
        );
    }
    html.push_str("</p>\n");
    for image in &manifest.images {
        let refs: Vec<String> = image.refs.iter().map(|r| r.given.clone()).collect();
        let _ = write!(
            html,
            "<div class=\"image\"><strong>{}</strong> <span class=\"muted\">{}</span>\n<div class=\"bar\">",
            names(&refs),
            text(image.config.digest.short())
        );
        for layer in &image.layers {
            let share = layer.size as f64 / largest as f64 * 100.0;
            let kind = carriage(&layer.digest);
            let _ = write!(
                html,
                "<span class=\"{}\" style=\"width:{share:.3}%\" title=\"{} {} ({})\"></span>",
                kind.class(),
                text(layer.digest.short()),
                bytes(layer.size),
                kind.words()
            );
        }
        html.push_str(
            "</div>\n<table><tr><th>layer</th><th>size</th><th>in this bundle</th></tr>\n",
        );
        for layer in &image.layers {
            let kind = carriage(&layer.digest);
            let _ = writeln!(
                html,
                "<tr><td><code>{}</code></td><td>{}</td><td class=\"{}-text\">{}</td></tr>",
                text(layer.digest.as_str()),
                bytes(layer.size),
                kind.class(),
                kind.words()
            );
        }
        html.push_str("</table></div>\n");
    }
}

/// For each layer, the images (by first name, else config digest) that use it.
fn layer_users(manifest: &BundleManifest) -> HashMap<&Digest, Vec<String>> {
    let mut users: HashMap<&Digest, Vec<String>> = HashMap::new();
    for image in &manifest.images {
        let name = image
            .refs
            .first()
            .map(|r| r.given.clone())
            .unwrap_or_else(|| image.config.digest.short().to_owned());
        for layer in &image.layers {
            let list = users.entry(&layer.digest).or_default();
            if !list.contains(&name) {
                list.push(name.clone());
            }
        }
    }
    users
}

fn shared(html: &mut String, manifest: &BundleManifest) {
    let users = layer_users(manifest);
    let summary = summarize(manifest);
    if summary.shared_layers.is_empty() {
        return;
    }
    html.push_str("<h2>Shared layers (stored once)</h2>\n<table><tr><th>layer</th><th>size</th><th>used by</th></tr>\n");
    for (layer, _) in &summary.shared_layers {
        let by = users.get(&layer.digest).cloned().unwrap_or_default();
        let _ = writeln!(
            html,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            text(layer.digest.as_str()),
            bytes(layer.size),
            names(&by)
        );
    }
    html.push_str("</table>\n");
}

fn delta(html: &mut String, manifest: &BundleManifest) {
    if !manifest.required.is_empty() {
        html.push_str("<h2>Left out (the site must already hold these layers)</h2>\n<table><tr><th>layer</th><th>size</th></tr>\n");
        for layer in &manifest.required {
            let _ = writeln!(
                html,
                "<tr><td><code>{}</code></td><td>{}</td></tr>",
                text(layer.digest.as_str()),
                bytes(layer.size)
            );
        }
        html.push_str("</table>\n");
    }
    if !manifest.patches.is_empty() {
        let sizes: BTreeMap<&str, u64> = manifest
            .entries
            .iter()
            .map(|e| (e.path.as_str(), e.size))
            .collect();
        html.push_str("<h2>Patched (rebuilt at the site from a layer it holds)</h2>\n<table><tr><th>layer</th><th>size</th><th>patch</th><th>against</th></tr>\n");
        for patch in &manifest.patches {
            let size = sizes.get(patch.entry.as_str()).copied().unwrap_or(0);
            let _ = writeln!(
                html,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                text(patch.layer.digest.as_str()),
                bytes(patch.layer.size),
                bytes(size),
                text(patch.base.digest.as_str())
            );
        }
        html.push_str("</table>\n");
    }
}

fn compose(html: &mut String, manifest: &BundleManifest) {
    let Some(compose) = &manifest.compose else {
        return;
    };
    let _ = writeln!(
        html,
        "<h2>Compose project {}</h2>\n<table><tr><th>service</th><th>image</th><th>config digest</th></tr>",
        text(&compose.project)
    );
    for service in &compose.services {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            text(&service.service),
            text(&service.image),
            text(service.config.short())
        );
    }
    html.push_str("</table>\n");
    if !compose.files.is_empty() {
        html.push_str("<p>files: ");
        let files: Vec<String> = compose
            .files
            .iter()
            .map(|f| format!("<code>{}</code>", text(f)))
            .collect();
        html.push_str(&files.join(", "));
        html.push_str("</p>\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::{BundleImage, Entry, LayerPatch, SourceInfo, patch_entry};
    use crate::image::{BlobRef, ImageRef, Platform};

    fn blob(id: &[u8], size: u64) -> BlobRef {
        BlobRef {
            digest: Digest::of(id),
            size,
        }
    }

    fn manifest(names: &[&str]) -> BundleManifest {
        let mut manifest = BundleManifest::new(
            "airgap <b>0</b>".into(),
            "2026-01-01T00:00:00Z".into(),
            SourceInfo::default(),
        );
        let base = blob(b"base", 3_000_000);
        let mut entries = vec![base.clone()];
        for (i, name) in names.iter().enumerate() {
            let config = blob(format!("config {i}").as_bytes(), 100);
            let own = blob(format!("layer {i}").as_bytes(), 1_000_000);
            entries.extend([config.clone(), own.clone()]);
            manifest.images.push(BundleImage {
                refs: vec![ImageRef {
                    given: (*name).into(),
                    name: (*name).into(),
                }],
                platform: Platform::default(),
                manifest: config.clone(),
                config,
                layers: vec![base.clone(), own],
            });
        }
        manifest.entries = entries
            .iter()
            .map(|b| Entry {
                path: b.digest.blob_path(),
                size: b.size,
                sha256: b.digest.hex().into(),
            })
            .collect();
        manifest
    }

    fn page(manifest: &BundleManifest) -> String {
        render(&Page {
            command: "inspect",
            bundle: "shop.zst",
            manifest: Some(manifest),
            signer: Some("sha256:abc".into()),
            trust: "trusted here, signature valid".into(),
            trusted: true,
            verification: None,
        })
    }

    #[test]
    fn bundle_strings_cannot_inject_markup() {
        let hostile = "evil/<script>alert(1)</script>:\"1\"";
        let html = page(&manifest(&[hostile, "web:1"]));
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<b>0"), "{html}");
        assert!(html.contains("evil/&lt;script&gt;alert(1)&lt;/script&gt;:&quot;1&quot;"));
        assert!(html.contains("default-src 'none'"));
    }

    #[test]
    fn the_page_names_images_signer_and_shared_layers() {
        let html = page(&manifest(&["shop/web:1", "shop/api:2"]));
        for wanted in [
            "shop/web:1",
            "shop/api:2",
            "sha256:abc",
            "Shared layers",
            "3.0 MB",
        ] {
            assert!(html.contains(wanted), "{wanted} missing");
        }
        // Both bars: the shared base is 3 of the 4 MB of the largest image.
        assert_eq!(
            html.matches("class=\"shared\" style=\"width:75.000%\"")
                .count(),
            2
        );
        assert!(!html.contains("http:") && !html.contains("https:") && !html.contains("src="));
    }

    #[test]
    fn a_delta_shows_what_it_leaves_out_and_patches() {
        let mut manifest = manifest(&["shop/web:2"]);
        let base = manifest.images[0].layers[0].clone();
        let own = manifest.images[0].layers[1].clone();
        manifest.required = vec![base.clone()];
        manifest
            .entries
            .retain(|e| e.path != base.digest.blob_path());
        let old = blob(b"old layer", 900_000);
        manifest.patches = vec![LayerPatch {
            layer: own.clone(),
            base: old.clone(),
            entry: patch_entry(&own.digest),
        }];
        let html = page(&manifest);
        assert!(html.contains("Left out (the site must already hold these layers)"));
        assert!(html.contains("Patched (rebuilt at the site"));
        assert!(html.contains(old.digest.as_str()));
        assert!(html.contains("class=\"required\" style=\"width:75.000%\""));
        assert!(html.contains("class=\"patched\" style=\"width:25.000%\""));
        assert!(html.contains("(delta)"));
    }

    #[test]
    fn the_page_replaces_a_planted_link_instead_of_following_it() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let path = dir.path().join("report.html");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let manifest = manifest(&["a:1"]);
        write(
            &path,
            &Page {
                command: "inspect",
                bundle: "b.zst",
                manifest: Some(&manifest),
                ..Page::default()
            },
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert!(!path.is_symlink());
        assert!(std::fs::read_to_string(&path).unwrap().contains("a:1"));
    }
}
