//! The unpack pipeline: verify → what the target holds → lock the record →
//! rollback check → finished images → intent → sink → tags → record.
//! Verification reads the whole bundle before the sink is even called: a
//! sealed bundle's bytes are hashed against its signed seal, any other is
//! decompressed and every entry checked.

pub mod configs;
pub mod record;
pub mod restore;

use std::path::PathBuf;

use crate::bundle::{BundleImage, BundleManifest};
use crate::delta::finish::{FinishedImages, Target};
use crate::digest::Digest;
use crate::display::{escape, escape_all};
use crate::error::Error;
use crate::image::rename::{RenameError, Renamed, Renaming};
use crate::media::sink::{LoadReport, Sink, SinkError};
use crate::progress::Progress;
use crate::trust::TrustPolicy;
use crate::unpack::record::{AppliedBundle, Record, RecordError};
use crate::unpack::restore::{RestoreError, Restored, restore_compose};
use crate::verify::{self, VerifiedBundle};

/// How to unpack.
pub struct UnpackOptions {
    /// Which signers to accept.
    pub policy: TrustPolicy,
    /// Where the per-engine unpack records live.
    pub state_dir: PathBuf,
    /// Load even if tags would move back to older images.
    pub allow_downgrade: bool,
    /// Write the carried compose project here and check its images.
    pub compose_dir: Option<PathBuf>,
    /// The names the images arrive under (`--tag`, `--prefix`); empty keeps the bundle's.
    pub renaming: Renaming,
}

/// What an unpack did.
pub struct UnpackReport {
    /// The bundle, as verified.
    pub bundle: VerifiedBundle,
    /// What the sink loaded.
    pub load: LoadReport,
    /// An earlier application of this same bundle to this engine.
    pub previously_applied: Option<AppliedBundle>,
    /// The compose project written out, if asked for.
    pub compose: Option<Restored>,
    /// Per image, in bundle order, each reference's name in the bundle and on arrival.
    pub names: Vec<Vec<Renamed>>,
    /// Per image, in bundle order, the tags that named another image on the
    /// target before and now name this one.
    pub moved: Vec<Vec<MovedTag>>,
    /// Names several images carried (one per platform) that now name only
    /// the target's platform's image.
    pub shared: Vec<SharedName>,
}

/// A tag unpack moved from another image to the bundle's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedTag {
    /// The tag, as it arrives.
    pub reference: String,
    /// The ID of the image it named before.
    pub previous: Digest,
}

/// For each image, the tags that name another image on the target now
/// (asked before anything is written: an engine's load moves them itself).
fn tags_to_move(sink: &dyn Sink, images: &[BundleImage]) -> Result<Vec<Vec<MovedTag>>, SinkError> {
    let mut moved = Vec::with_capacity(images.len());
    for image in images {
        let mut tags = Vec::new();
        for reference in image.refs.iter().filter(|r| r.repo_and_tag().is_some()) {
            let Some(current) = sink.current_id(&reference.given)? else {
                continue;
            };
            if current != image.config.digest && current != image.manifest.digest {
                tracing::info!(
                    "{} names image {} on the target; it moves to the bundle's {}",
                    escape(&reference.given),
                    current.short(),
                    image.config.digest.short()
                );
                tags.push(MovedTag {
                    reference: reference.given.clone(),
                    previous: current,
                });
            }
        }
        moved.push(tags);
    }
    Ok(moved)
}

/// Per image of `images`, each reference's name in the bundle and the name
/// it arrives under. Images are told apart by their manifest digest, so one
/// image carried under two names may arrive under one.
pub fn names_on_arrival(
    images: &[BundleImage],
    renaming: &Renaming,
) -> Result<Vec<Vec<Renamed>>, RenameError> {
    // Without a renaming every image keeps its references exactly as the
    // bundle lists them, as unpack always did.
    if renaming.is_empty() {
        return Ok(images
            .iter()
            .map(|image| {
                image
                    .refs
                    .iter()
                    .map(|r| Renamed {
                        from: r.clone(),
                        to: r.clone(),
                    })
                    .collect()
            })
            .collect());
    }
    let keyed: Vec<(&Digest, &[crate::image::ImageRef])> = images
        .iter()
        .map(|image| (&image.manifest.digest, image.refs.as_slice()))
        .collect();
    renaming.apply(&keyed)
}

/// A name several of a bundle's images carry (one per platform), on a
/// target that holds one image per name: it names the one for the target's
/// platform, and the others arrive without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedName {
    /// The name, as it arrives.
    pub name: String,
    /// The platform of the image it names.
    pub kept: crate::image::Platform,
    /// The platforms of the images loaded without it.
    pub left: Vec<crate::image::Platform>,
}

/// Takes, of each name several images share, all but one image's claim:
/// the one whose platform `platform` accepts, else the first. A target
/// holding one image per name would otherwise leave the name on whichever
/// image it loaded last.
fn one_platform_per_name(
    images: &[BundleImage],
    mut names: Vec<Vec<Renamed>>,
    platform: &crate::media::platform::WantedPlatform,
) -> (Vec<Vec<Renamed>>, Vec<SharedName>) {
    let mut holders: Vec<(String, Vec<usize>)> = Vec::new();
    for (index, arriving) in names.iter().enumerate() {
        for renamed in arriving.iter().filter(|r| r.to.is_taggable()) {
            match holders
                .iter_mut()
                .find(|(name, _)| *name == renamed.to.name)
            {
                Some((_, images)) => images.push(index),
                None => holders.push((renamed.to.name.clone(), vec![index])),
            }
        }
    }
    let mut shared = Vec::new();
    for (name, holding) in holders.into_iter().filter(|(_, h)| h.len() > 1) {
        let kept = holding
            .iter()
            .copied()
            .find(|i| platform.accepts(&images[*i].platform))
            .unwrap_or(holding[0]);
        for &other in holding.iter().filter(|i| **i != kept) {
            names[other].retain(|r| r.to.name != name);
        }
        tracing::info!(
            "{} names the {} image (the target's platform is {platform}); the others arrive without it",
            escape(&name),
            images[kept].platform
        );
        shared.push(SharedName {
            name,
            kept: images[kept].platform.clone(),
            left: holding
                .iter()
                .filter(|i| **i != kept)
                .map(|i| images[*i].platform.clone())
                .collect(),
        });
    }
    (names, shared)
}

/// The manifest as the target is to see it: the same bundle, its images
/// under the names they arrive by. Sinks, the record and the compose
/// project all take this one, so every one of them sees the new names only.
fn arriving(manifest: &BundleManifest, names: &[Vec<Renamed>]) -> BundleManifest {
    let mut arriving = manifest.clone();
    for (image, names) in arriving.images.iter_mut().zip(names) {
        image.refs = names.iter().map(|n| n.to.clone()).collect();
    }
    arriving
}

/// Keeps the bundle's configs for the site's inventory. A failure costs
/// only an export on the connected side later, so it is only logged.
fn keep_configs(state_dir: &std::path::Path, bundle: &VerifiedBundle) {
    let listed: std::collections::HashSet<&Digest> = bundle
        .manifest()
        .images
        .iter()
        .map(|image| &image.config.digest)
        .collect();
    let shown = std::path::PathBuf::from(bundle.location().describe());
    let kept = bundle
        .location()
        .open()
        .map_err(Error::from)
        .and_then(|file| Ok(crate::bundle::leading::configs(file, &shown)?))
        .and_then(|found| Ok(configs::keep(state_dir, &found, &|d| listed.contains(d))?));
    if let Err(error) = kept {
        tracing::info!("unpack: the bundle's configs are not kept for the inventory ({error})");
    }
}

/// Verifies the bundle at `path` completely, refuses rollbacks, loads it
/// into `sink`, and records what was applied.
pub fn unpack(
    path: &std::path::Path,
    options: &UnpackOptions,
    sink: &dyn Sink,
    progress: &dyn Progress,
) -> Result<UnpackReport, Error> {
    let bundle = verify::admit(path, &options.policy, progress)?;
    let names = names_on_arrival(&bundle.manifest().images, &options.renaming)?;
    let (names, shared) = match sink.one_image_per_name()? {
        Some(platform) => one_platform_per_name(&bundle.manifest().images, names, &platform),
        None => (names, Vec::new()),
    };
    let manifest = arriving(bundle.manifest(), &names);
    // Held until the record is written: another unpack of this engine
    // waits here, then checks against what this one applied.
    let holdings = sink.holdings(&manifest.images)?;
    let mut record = Record::open(
        &options.state_dir,
        &holdings.target,
        holdings.former_target.as_deref(),
    )?;
    let manifest_digest: Digest = bundle.manifest_digest();
    let previously_applied = record.applied(&manifest_digest).cloned();
    let downgrades = record.downgrades(&manifest);
    if !downgrades.is_empty() && !options.allow_downgrade {
        return Err(RecordError::Downgrade { downgrades }.into());
    }
    if options.compose_dir.is_some() && bundle.manifest().compose.is_none() {
        return Err(RestoreError::NoProject.into());
    }
    if let Some(dir) = &options.compose_dir {
        crate::unpack::restore::check_compose_dir(&bundle, &options.renaming, dir)?;
    }
    let target = Target {
        takes_absent_layers: holdings.takes_absent_layers,
        layer_chains: &|| sink.layer_chains(),
        supply_layers: &|digests| sink.supply_layers(digests, progress),
    };
    let finished: FinishedImages = FinishedImages::prepare::<SinkError>(
        &bundle,
        &manifest.images,
        &holdings.present,
        &target,
    )?;
    for (image, present) in manifest.images.iter().zip(&holdings.present) {
        if *present {
            tracing::info!(
                "{} ({}) is already on the target: nothing of it is sent",
                escape_all(image.refs.iter().map(|r| &r.given), ", "),
                image.config.digest.short()
            );
        }
    }
    let moved = tags_to_move(sink, &manifest.images)?;
    let signer = bundle.signer().map(ToString::to_string);
    record.note_intent(&manifest, &manifest_digest, signer.clone())?;
    if !finished.images().is_empty() {
        if let Err(error) = sink.write(&finished, progress) {
            // A lack of space is found before the target is sent anything;
            // any other failure may come after tags moved, and the intent stays.
            if matches!(error, SinkError::NoSpace(_)) {
                record.withdraw_intent(&manifest_digest)?;
            }
            return Err(error.into());
        }
    }
    let mut load = LoadReport::default();
    for (image, present) in manifest.images.iter().zip(&holdings.present) {
        load.images.push(sink.tag(image, *present)?);
    }
    record.note_applied(&manifest, &manifest_digest, signer)?;
    keep_configs(&options.state_dir, &bundle);
    drop(record);
    let compose = match &options.compose_dir {
        Some(dir) => Some(restore_compose(
            &bundle,
            &manifest.images,
            &options.renaming,
            dir,
            sink,
        )?),
        None => None,
    };
    Ok(UnpackReport {
        bundle,
        load,
        previously_applied,
        compose,
        names,
        moved,
        shared,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{BlobRef, ImageRef, Platform};
    use crate::media::platform::WantedPlatform;

    fn image(architecture: &str, names: &[&str]) -> BundleImage {
        BundleImage {
            refs: names.iter().map(|n| ImageRef::parse(n).unwrap()).collect(),
            platform: Platform {
                os: "linux".into(),
                architecture: architecture.into(),
                variant: None,
            },
            manifest: BlobRef {
                digest: Digest::of(architecture.as_bytes()),
                size: 1,
            },
            config: BlobRef {
                digest: Digest::of(names.concat().as_bytes()),
                size: 1,
            },
            layers: Vec::new(),
        }
    }

    #[test]
    fn a_name_several_platforms_share_stays_on_the_targets_platform_only() {
        let images = [
            image("arm64", &["shop/web:1", "shop/web:arm"]),
            image("amd64", &["shop/web:1"]),
            image("s390x", &["shop/web:1", "shop/other:1"]),
        ];
        let names = names_on_arrival(&images, &Renaming::default()).unwrap();
        let amd64 = WantedPlatform::parse("linux/amd64").unwrap();
        let (names, shared) = one_platform_per_name(&images, names, &amd64);
        let arriving =
            |i: usize| -> Vec<String> { names[i].iter().map(|r| r.to.given.clone()).collect() };
        assert_eq!(arriving(0), ["shop/web:arm"]);
        assert_eq!(arriving(1), ["shop/web:1"]);
        assert_eq!(arriving(2), ["shop/other:1"]);
        assert_eq!(shared.len(), 1);
        assert_eq!(shared[0].kept.architecture, "amd64");
        assert_eq!(shared[0].left.len(), 2);

        // No image for the target's platform: the first keeps the name.
        let riscv = WantedPlatform::parse("linux/riscv64").unwrap();
        let names = names_on_arrival(&images, &Renaming::default()).unwrap();
        let (names, _) = one_platform_per_name(&images, names, &riscv);
        assert!(names[0].iter().any(|r| r.to.given == "shop/web:1"));
        assert!(names[1].is_empty());
    }
}
