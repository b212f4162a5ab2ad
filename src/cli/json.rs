//! `--json`: the documents `plan`, `inspect`, `verify`, `inventory` and
//! `unpack` print on stdout, one per run. Each names its schema and version
//! (`airgap/COMMAND/1`); docs/JSON.md describes every field. These view
//! types are the schema: the domain types may change without changing it.
//! Strings are as the bundle or engine gives them: JSON escapes what needs
//! it, so nothing is escaped for a terminal here.

use std::collections::HashMap;

use airgap::bundle::BundleManifest;
use airgap::delta::inventory::Inventory;
use airgap::digest::Digest;
use airgap::image::rename::Renamed;
use airgap::media::source::HeldImage;
use airgap::pack::survey::Survey;
use airgap::unpack::UnpackReport;
use airgap::verify::Report;
use serde::Serialize;

use super::output::print;

/// Prints `document` as pretty JSON and a newline.
pub fn print_document(document: &impl Serialize) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(document).expect("documents always serialise");
    text.push('\n');
    print(&text)
}

/// `plan --json`: the survey of the planned images on the engine or archives.
#[derive(Serialize)]
pub struct PlanDocument<'a> {
    pub schema: &'static str,
    #[serde(flatten)]
    pub survey: &'a Survey,
}

impl<'a> PlanDocument<'a> {
    pub fn new(survey: &'a Survey) -> Self {
        Self {
            schema: "airgap/plan/1",
            survey,
        }
    }
}

/// `plan --archive F --json` with no image names: what the archives hold.
#[derive(Serialize)]
pub struct CatalogueDocument<'a> {
    pub schema: &'static str,
    pub images: &'a [HeldImage],
}

impl<'a> CatalogueDocument<'a> {
    pub fn new(images: &'a [HeldImage]) -> Self {
        Self {
            schema: "airgap/plan-archive/1",
            images,
        }
    }
}

/// One reference's name in the bundle and the name it arrives under.
#[derive(Serialize)]
pub struct Arrival {
    pub from: String,
    pub to: String,
}

fn arrivals(names: &[Renamed]) -> Vec<Arrival> {
    names
        .iter()
        .map(|n| Arrival {
            from: n.from.given.clone(),
            to: n.to.given.clone(),
        })
        .collect()
}

/// `verify --json`: the report, whether or not the bundle passed.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyDocument<'a> {
    pub schema: &'static str,
    pub verified: bool,
    pub bundle: &'a str,
    pub size: Option<u64>,
    pub sha256: Option<&'a Digest>,
    pub parts: usize,
    pub signer: Option<String>,
    pub signer_trusted: bool,
    pub format_version: Option<&'a str>,
    pub created: Option<&'a str>,
    pub tool: Option<&'a str>,
    pub images: Vec<VerifyImage<'a>>,
    pub checks: Vec<VerifyCheck<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyImage<'a> {
    pub refs: &'a [String],
    pub config: &'a Digest,
    pub manifest: &'a Digest,
    pub platform: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arrives_as: Option<Vec<Arrival>>,
}

#[derive(Serialize)]
pub struct VerifyCheck<'a> {
    pub check: &'a str,
    pub passed: bool,
    pub detail: &'a str,
}

impl<'a> VerifyDocument<'a> {
    pub fn new(report: &'a Report, names: Option<&[Vec<Renamed>]>, verified: bool) -> Self {
        Self {
            schema: "airgap/verify/1",
            verified,
            bundle: &report.bundle,
            size: report.size,
            sha256: report.sha256.as_ref(),
            parts: report.parts,
            signer: report.signer.as_ref().map(ToString::to_string),
            signer_trusted: report.signer_trusted,
            format_version: report.format_version.as_deref(),
            created: report.created.as_deref(),
            tool: report.tool.as_deref(),
            images: report
                .images
                .iter()
                .enumerate()
                .map(|(index, image)| VerifyImage {
                    refs: &image.refs,
                    config: &image.config,
                    manifest: &image.manifest,
                    platform: &image.platform,
                    arrives_as: names.and_then(|n| n.get(index)).map(|n| arrivals(n)),
                })
                .collect(),
            checks: report
                .checks
                .iter()
                .map(|c| VerifyCheck {
                    check: c.check,
                    passed: c.passed,
                    detail: &c.detail,
                })
                .collect(),
        }
    }
}

/// A blob: digest and size in bytes.
#[derive(Serialize)]
pub struct Blob<'a> {
    pub digest: &'a Digest,
    pub size: u64,
}

/// `inspect --json`: what the bundle's manifest claims, unverified.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InspectDocument<'a> {
    pub schema: &'static str,
    pub bundle: String,
    pub format_version: &'a str,
    /// `full` or `delta`.
    pub kind: &'static str,
    pub created: &'a str,
    pub tool: &'a str,
    pub source: InspectSource<'a>,
    pub signer: Option<InspectSigner>,
    pub carried_size: u64,
    pub total_image_size: u64,
    pub entries: usize,
    pub images: Vec<InspectImage<'a>>,
    pub shared_layers: Vec<SharedLayer<'a>>,
    pub patches: Vec<Patch<'a>>,
    pub required: Vec<Blob<'a>>,
    pub compose: Option<InspectCompose<'a>>,
}

#[derive(Serialize)]
pub struct InspectSource<'a> {
    pub kind: &'a str,
    pub engine: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InspectSigner {
    pub fingerprint: String,
    /// `trusted` (trusted here, signature valid), `untrusted` or `invalid`.
    pub trust: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InspectImage<'a> {
    pub refs: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arrives_as: Option<Vec<Arrival>>,
    pub config: &'a Digest,
    pub manifest: &'a Digest,
    pub platform: String,
    pub size: u64,
    pub layers: Vec<Blob<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SharedLayer<'a> {
    pub digest: &'a Digest,
    pub size: u64,
    pub used_by: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Patch<'a> {
    pub layer: Blob<'a>,
    pub base: Blob<'a>,
    pub patch_size: u64,
}

#[derive(Serialize)]
pub struct InspectCompose<'a> {
    pub project: &'a str,
    pub files: &'a [String],
    pub services: Vec<ComposeService<'a>>,
}

#[derive(Serialize)]
pub struct ComposeService<'a> {
    pub service: &'a str,
    pub image: &'a str,
    pub config: &'a Digest,
}

impl<'a> InspectDocument<'a> {
    pub fn new(
        bundle: String,
        manifest: &'a BundleManifest,
        signer: Option<InspectSigner>,
        names: Option<&[Vec<Renamed>]>,
    ) -> Self {
        let summary = airgap::bundle::inspect::summarize(manifest);
        let sizes: HashMap<&str, u64> = manifest
            .entries
            .iter()
            .map(|e| (e.path.as_str(), e.size))
            .collect();
        let mut users: HashMap<&Digest, usize> = HashMap::new();
        for layer in manifest.images.iter().flat_map(|i| &i.layers) {
            *users.entry(&layer.digest).or_default() += 1;
        }
        let blob = |b: &'a airgap::image::BlobRef| Blob {
            digest: &b.digest,
            size: b.size,
        };
        Self {
            schema: "airgap/inspect/1",
            bundle,
            format_version: &manifest.format_version,
            kind: if manifest.required.is_empty() {
                "full"
            } else {
                "delta"
            },
            created: &manifest.created,
            tool: &manifest.tool,
            source: InspectSource {
                kind: &manifest.source.kind,
                engine: manifest.source.engine.as_deref(),
            },
            signer,
            carried_size: summary.carried_size,
            total_image_size: summary.total_image_size,
            entries: manifest.entries.len(),
            images: manifest
                .images
                .iter()
                .enumerate()
                .map(|(index, image)| InspectImage {
                    refs: image.refs.iter().map(|r| r.given.as_str()).collect(),
                    arrives_as: names.and_then(|n| n.get(index)).map(|n| arrivals(n)),
                    config: &image.config.digest,
                    manifest: &image.manifest.digest,
                    platform: image.platform.to_string(),
                    size: image.layers.iter().map(|l| l.size).sum(),
                    layers: image.layers.iter().map(blob).collect(),
                })
                .collect(),
            shared_layers: summary
                .shared_layers
                .iter()
                .filter_map(|(layer, _)| {
                    // The summary's blobs are copies; point into the manifest.
                    let (digest, count) = users.get_key_value(&layer.digest)?;
                    Some(SharedLayer {
                        digest,
                        size: layer.size,
                        used_by: *count,
                    })
                })
                .collect(),
            patches: manifest
                .patches
                .iter()
                .map(|p| Patch {
                    layer: blob(&p.layer),
                    base: blob(&p.base),
                    patch_size: sizes.get(p.entry.as_str()).copied().unwrap_or(0),
                })
                .collect(),
            required: manifest.required.iter().map(blob).collect(),
            compose: manifest.compose.as_ref().map(|c| InspectCompose {
                project: &c.project,
                files: &c.files,
                services: c
                    .services
                    .iter()
                    .map(|s| ComposeService {
                        service: &s.service,
                        image: &s.image,
                        config: &s.config,
                    })
                    .collect(),
            }),
        }
    }
}

/// `inventory --json`: what was recorded, and where.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryDocument<'a> {
    pub schema: &'static str,
    /// The file written, or `null` when the inventory is in `inventory`.
    pub written: Option<String>,
    pub engine: &'a airgap::delta::inventory::InventoryEngine,
    pub images: Vec<InventoryImage<'a>>,
    /// Distinct layers over all images.
    pub layers: usize,
    /// The inventory itself (pack --have reads it), when not written to a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inventory: Option<&'a Inventory>,
}

#[derive(Serialize)]
pub struct InventoryImage<'a> {
    pub id: &'a Digest,
    pub tags: &'a [String],
    pub layers: usize,
}

impl<'a> InventoryDocument<'a> {
    pub fn new(inventory: &'a Inventory, written: Option<String>) -> Self {
        let layers = inventory
            .images
            .iter()
            .flat_map(|i| &i.layers)
            .collect::<std::collections::HashSet<_>>()
            .len();
        Self {
            schema: "airgap/inventory/1",
            inventory: written.is_none().then_some(inventory),
            written,
            engine: &inventory.engine,
            images: inventory
                .images
                .iter()
                .map(|i| InventoryImage {
                    id: &i.id,
                    tags: &i.tags,
                    layers: i.layers.len(),
                })
                .collect(),
            layers,
        }
    }
}

/// `unpack --json`: what arrived where, and what changed on the target.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnpackDocument<'a> {
    pub schema: &'static str,
    pub bundle: String,
    pub signer: Option<String>,
    /// `docker`, `oci` or `registry`.
    pub target: &'static str,
    /// When this same bundle was applied to this target before.
    pub previously_applied: Option<&'a str>,
    pub images: Vec<UnpackImage<'a>>,
    pub compose: Option<UnpackCompose>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnpackImage<'a> {
    /// `loaded`, `pushed` or `already-present`.
    pub status: &'static str,
    /// The references it arrived under, each a tag now naming it.
    pub tags: &'a [String],
    /// Digest references, which cannot be tags and were not restored.
    pub untaggable: &'a [String],
    pub id: &'a Digest,
    /// `config` or `manifest`: which digest the target reports as the ID.
    pub id_kind: &'static str,
    pub config: &'a Digest,
    pub manifest: &'a Digest,
    pub renamed: Vec<Arrival>,
    pub moved_tags: Vec<MovedTag<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MovedTag<'a> {
    pub tag: &'a str,
    pub previous_id: &'a Digest,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnpackCompose {
    pub project: String,
    pub files: Vec<String>,
    pub services: usize,
    pub override_file: Option<String>,
}

/// Which digest `id` is of an image with this config and manifest.
pub fn id_kind(id: &Digest, config: &Digest, manifest: &Digest) -> &'static str {
    if id == config {
        "config"
    } else if id == manifest {
        "manifest"
    } else {
        "other"
    }
}

impl<'a> UnpackDocument<'a> {
    pub fn new(bundle: String, target: &'static str, report: &'a UnpackReport) -> Self {
        let images = &report.bundle.manifest().images;
        Self {
            schema: "airgap/unpack/1",
            bundle,
            signer: report.bundle.signer().map(ToString::to_string),
            target,
            previously_applied: report
                .previously_applied
                .as_ref()
                .map(|a| a.applied_at.as_str()),
            images: report
                .load
                .images
                .iter()
                .enumerate()
                .map(|(index, loaded)| {
                    let manifest = &images[index].manifest.digest;
                    UnpackImage {
                        status: match (loaded.already_present, target) {
                            (true, _) => "already-present",
                            (false, "registry") => "pushed",
                            (false, _) => "loaded",
                        },
                        tags: &loaded.tags,
                        untaggable: &loaded.untaggable,
                        id: &loaded.id,
                        id_kind: id_kind(&loaded.id, &loaded.config, manifest),
                        config: &loaded.config,
                        manifest,
                        renamed: report
                            .names
                            .get(index)
                            .map(|n| arrivals(n).into_iter().filter(|a| a.from != a.to).collect())
                            .unwrap_or_default(),
                        moved_tags: report
                            .moved
                            .get(index)
                            .into_iter()
                            .flatten()
                            .map(|m| MovedTag {
                                tag: &m.reference,
                                previous_id: &m.previous,
                            })
                            .collect(),
                    }
                })
                .collect(),
            compose: report.compose.as_ref().map(|c| UnpackCompose {
                project: c.project.clone(),
                files: c.files.iter().map(|f| f.display().to_string()).collect(),
                services: c.services,
                override_file: c.renames.as_ref().map(|(f, _)| f.display().to_string()),
            }),
        }
    }
}
