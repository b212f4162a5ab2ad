//! The pack pipeline: plan → source → bundle. The source stages layers on
//! one thread while the bundle writer compresses them on another (and zstd
//! on its own workers), so receiving, hashing and compressing overlap.
//! No printing; the CLI reports.

pub mod cached;
mod ordered;
pub mod since;
pub mod survey;

use std::collections::HashSet;
use std::thread;

use crate::bundle::BundleError;
use crate::bundle::in_place::head_room;
use crate::bundle::writer::{
    BundleWriter, Compression, Contents, MetadataEntry, Output, WrittenBundle,
};
use crate::bundle::{COMPOSE_PREFIX, ComposeRecord, ComposeService};
use crate::cache::LayerCache;
use crate::delta::{self, Site};
use crate::error::Error;
use crate::image::ImageRecord;
use crate::media::source::{Source, SourceError};
use crate::plan::Plan;
use crate::plan::PlanError;
use crate::plan::carry::CarriedProject;
use crate::progress::{Progress, Task};
use crate::store::queue::{Arrival, Deliveries, blob_store};
use crate::trust::keys::PrivateKey;

/// How to pack.
pub struct PackOptions {
    /// Where the bundle goes.
    pub output: Output,
    /// zstd settings.
    pub compression: Compression,
    /// The signing key; `None` writes an unsigned bundle.
    pub key: Option<PrivateKey>,
    /// The compose project to carry, if the images were planned from one.
    pub compose: Option<CarriedProject>,
    /// What the receiving site holds. With it, the bundle is a delta that
    /// leaves out the layers the site can build on.
    pub site: Option<Site>,
    /// Ship changed layers as patches against the site's older versions.
    pub patch: bool,
    /// The layer cache; `None` exports every image.
    pub cache: Option<LayerCache>,
    /// The creation time to record (RFC 3339, see [`creation_time`]);
    /// `None`: now.
    pub created: Option<String>,
}

/// How much of a pack the engine exported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PackStats {
    /// Images the bundle holds (as the plan resolved them).
    pub images: usize,
    /// Of those, the images exported from the source.
    pub exported: usize,
    /// Layers the cache supplied.
    pub cached_layers: usize,
}

/// A creation time that is not one.
#[derive(Debug, thiserror::Error)]
#[error(
    "{given:?} ({origin}) is not a creation time; give RFC 3339 (2026-01-31T12:00:00Z) to --created, or seconds since 1970 in SOURCE_DATE_EPOCH"
)]
pub struct InvalidTime {
    /// What was given.
    pub given: String,
    /// Where it came from.
    pub origin: &'static str,
}

/// The creation time a bundle records: `--created` (RFC 3339), else
/// `SOURCE_DATE_EPOCH` (seconds, as reproducible builds set it), else
/// `None` (the time the pack finishes), in UTC to the second.
pub fn creation_time(
    created: Option<&str>,
    source_date_epoch: Option<&str>,
) -> Result<Option<String>, InvalidTime> {
    use time::format_description::well_known::Rfc3339;
    let time = match (created, source_date_epoch.filter(|s| !s.trim().is_empty())) {
        (Some(given), _) => {
            time::OffsetDateTime::parse(given, &Rfc3339).map_err(|_| InvalidTime {
                given: given.to_owned(),
                origin: "--created",
            })?
        }
        (None, Some(epoch)) => epoch
            .trim()
            .parse::<i64>()
            .ok()
            .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
            .ok_or_else(|| InvalidTime {
                given: epoch.to_owned(),
                origin: "SOURCE_DATE_EPOCH",
            })?,
        (None, None) => return Ok(None),
    };
    let utc = time
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .expect("0 is a valid nanosecond");
    Ok(Some(utc.format(&Rfc3339).expect("UTC times always format")))
}

/// Largest project file (compose or env file) a bundle carries.
const PROJECT_FILE_LIMIT: u64 = 4 << 20;

/// Packs the images of `plan` from `source` into one bundle. Every reference
/// is checked first, so a missing image fails before anything is written.
pub fn pack(
    source: &dyn Source,
    plan: &Plan,
    options: &PackOptions,
    progress: &dyn Progress,
) -> Result<WrittenBundle, Error> {
    pack_with_stats(source, plan, options, progress).map(|(written, _)| written)
}

/// [`pack`], also telling how much the source exported.
pub fn pack_with_stats(
    source: &dyn Source,
    plan: &Plan,
    options: &PackOptions,
    progress: &dyn Progress,
) -> Result<(WrittenBundle, PackStats), Error> {
    // No names (pack --archive F alone): everything the source holds.
    let resolved = match plan.images.is_empty() {
        true => match source.resolve_all()? {
            Some(all) if all.is_empty() => {
                return Err(SourceError::Missing {
                    refs: vec!["any image (the source holds none)".into()],
                }
                .into());
            }
            Some(all) => all,
            None => source.resolve(&plan.images)?,
        },
        false => source.resolve(&plan.images)?,
    };
    for image in &resolved {
        tracing::info!(
            "pack: {} ({} layers)",
            crate::display::escape_all(image.refs.iter().map(|r| &r.given), ", "),
            image.layers.as_ref().map_or(0, Vec::len)
        );
    }
    let files = match &options.compose {
        Some(project) => read_project_files(project)?,
        None => Vec::new(),
    };
    let project_bytes = files.iter().map(|f| f.bytes.len() as u64).sum();
    let mut writer = BundleWriter::create(
        &options.output,
        &options.compression,
        head_room(plan.images.len().max(resolved.len()), project_bytes),
    )?;
    if let Some(created) = &options.created {
        writer.set_created(created.clone());
    }
    let cache = options
        .cache
        .as_ref()
        .filter(|_| source.reads_from_engine());
    // Held until the bundle is written: patch references live in it.
    let _references = match &options.site {
        Some(site) => Some(delta::prepare(
            &mut writer,
            source,
            &resolved,
            site,
            options.patch,
            cache,
            progress,
        )?),
        None => None,
    };
    let left_out = writer.left_out().clone();
    let needs_staging = writer.needs_staging();
    let patch_targets: HashSet<_> = needs_staging.difference(&left_out).cloned().collect();
    // Configs the earlier bundles and the inventories carry spare exports
    // with the cache off or cold.
    let since = match &options.site {
        Some(site) if source.reads_from_engine() => {
            since::SinceConfigs::for_site(site, source, &resolved, cache)
        }
        _ => since::SinceConfigs::default(),
    };
    let known = cached::Known {
        cache,
        since: &since,
    };
    let from_cache = cached::plan(&known, &resolved, &left_out, &patch_targets);
    let stats = PackStats {
        images: resolved.len(),
        exported: from_cache.exported.len(),
        cached_layers: from_cache.layers.len(),
    };
    let order = ordered::Order {
        layers: cached::carried_order(&resolved, &left_out),
        cached: from_cache.layers,
        cache,
    };
    let exported = &from_cache.exported;
    let stated = options
        .site
        .as_ref()
        .map(|site| site.layer_sizes.clone())
        .unwrap_or_default();
    let skimmed_sizes = cached::left_out_sizes(&known, &resolved, &left_out, &stated);
    let (mut store, deliveries) = blob_store(writer.workdir(), needs_staging);
    store.leave_out(left_out.clone(), skimmed_sizes);
    let (writer, records) = thread::scope(|scope| {
        let compressing = scope.spawn(move || compress(writer, deliveries, order));
        // An image the cache holds whole is never asked of the source.
        let records = match exported.is_empty() {
            true => Ok(Vec::new()),
            false => source.export(exported, &mut store, progress),
        };
        drop(store);
        let writer = compressing
            .join()
            .expect("the compressing thread does not panic");
        (writer, records)
    });
    let writer = match writer {
        // The source stopped in the middle of a layer; its error says why.
        Ok(None) => {
            return Err(records
                .err()
                .map_or(SourceError::WriterStopped.into(), Into::into));
        }
        // A writer failure (disk full) is the cause of any send failure the source saw.
        Ok(Some(writer)) => writer,
        Err(error) => return Err(error.into()),
    };
    tracing::debug!("pack: every layer is in the bundle");
    let exported_records = records?;
    if let Some(cache) = cache {
        for image in exported {
            let record = exported_records.iter().find(|r| {
                image.refs.iter().any(|x| r.refs.contains(x))
                    && image
                        .layers
                        .as_ref()
                        .is_none_or(|layers| r.layers.iter().map(|l| &l.digest).eq(layers.iter()))
            });
            if let (Some(id), Some(record)) = (&image.id, record) {
                cached::remember(cache, id, record);
            }
        }
    }
    let records = cached::merge(&resolved, from_cache.cached, exported_records);
    let compose = options
        .compose
        .as_ref()
        .map(|p| compose_record(p, &records));
    progress.start(Task::Writing, None);
    let written = writer.finish(Contents {
        images: &records,
        source: source.describe(),
        key: options.key.as_ref(),
        compose,
        files,
        origins: source.origins(),
    });
    progress.finish();
    tracing::debug!("pack: the bundle is finished");
    if let Some(cache) = cache {
        // Over the bound, the least recently used go; a failure costs only space.
        let _ = cache.evict();
    }
    Ok((written?, stats))
}

/// Adds every layer to the bundle, in the carried order, as the store
/// delivers them or the cache supplies them. `None` when the source stopped
/// in the middle of a streamed layer (the source's own error says why).
fn compress(
    writer: BundleWriter,
    deliveries: Deliveries,
    order: ordered::Order<'_>,
) -> Result<Option<BundleWriter>, BundleError> {
    yield_to_the_export();
    let mut ordered = ordered::Ordered::new(writer, order);
    // What the cache supplies is compressed while the export starts.
    ordered.write_waiting()?;
    let complete = deliveries.consume(|arrival| match arrival {
        Arrival::Staged(layer) => ordered.staged(layer),
        Arrival::Streamed {
            digest,
            size,
            content,
        } => ordered.streamed(&digest, size, content),
    })?;
    let writer = ordered.finish()?;
    Ok(complete.then_some(writer))
}

/// How much lower compression runs than the rest of the machine.
const COMPRESSION_NICENESS: i32 = 10;

/// The engine's export is what a pack waits for, and an engine exporting
/// from the containerd store needs more than a core of its own; compressing
/// at full priority beside it slows the export and so the whole pack. This
/// thread, and the zstd workers it starts on its first write (they inherit
/// its priority), take what CPU the export leaves. On Linux a priority is a
/// thread's, so the thread reading the export keeps its own.
fn yield_to_the_export() {
    // Only ever lowered, which needs no privilege; a failure costs only speed.
    let _ = rustix::process::nice(COMPRESSION_NICENESS);
}

/// The project's files as bundle entries, read before the export starts so
/// an unreadable file fails the pack early.
fn read_project_files(project: &CarriedProject) -> Result<Vec<MetadataEntry>, Error> {
    project
        .files
        .iter()
        .map(|file| {
            let read_error = |source| PlanError::Read {
                path: file.absolute.clone(),
                source,
            };
            let handle = std::fs::File::open(&file.absolute).map_err(read_error)?;
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(
                &mut std::io::Read::take(handle, PROJECT_FILE_LIMIT + 1),
                &mut bytes,
            )
            .map_err(read_error)?;
            if bytes.len() as u64 > PROJECT_FILE_LIMIT {
                return Err(PlanError::NotCarriable {
                    path: file.absolute.clone(),
                }
                .into());
            }
            Ok(MetadataEntry {
                path: format!("{COMPOSE_PREFIX}{}", file.path),
                bytes,
            })
        })
        .collect()
}

/// Which image each service's reference resolved to.
fn compose_record(project: &CarriedProject, records: &[ImageRecord]) -> ComposeRecord {
    let services = project
        .services
        .iter()
        .filter_map(|(service, image)| {
            let record = records
                .iter()
                .find(|r| r.refs.iter().any(|x| x.name == image.name))?;
            Some(ComposeService {
                service: service.clone(),
                image: image.given.clone(),
                config: record.config_digest.clone(),
            })
        })
        .collect();
    ComposeRecord {
        project: project.name.clone(),
        files: project.files.iter().map(|f| f.path.clone()).collect(),
        services,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_creation_time_is_created_then_source_date_epoch_then_none() {
        assert_eq!(
            creation_time(Some("2026-01-31T13:00:00.5+01:00"), Some("1")).unwrap(),
            Some("2026-01-31T12:00:00Z".to_owned())
        );
        assert_eq!(
            creation_time(None, Some("1700000000")).unwrap(),
            Some("2023-11-14T22:13:20Z".to_owned())
        );
        assert_eq!(creation_time(None, Some("")).unwrap(), None);
        assert_eq!(creation_time(None, None).unwrap(), None);
        assert!(creation_time(Some("yesterday"), None).is_err());
        let error = creation_time(None, Some("soon")).unwrap_err();
        assert!(error.to_string().contains("SOURCE_DATE_EPOCH"), "{error}");
    }
}
