//! The pack pipeline: plan → source → bundle. The source stages layers on
//! one thread while the bundle writer compresses them on another (and zstd
//! on its own workers), so receiving, hashing and compressing overlap.
//! No printing; the CLI reports.

pub mod survey;

use std::thread;

use crate::bundle::BundleError;
use crate::bundle::in_place::head_room;
use crate::bundle::writer::{
    BundleWriter, Compression, Contents, MetadataEntry, Output, WrittenBundle,
};
use crate::bundle::{COMPOSE_PREFIX, ComposeRecord, ComposeService};
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
    // Held until the bundle is written: patch references live in it.
    let _references = match &options.site {
        Some(site) => Some(delta::prepare(
            &mut writer,
            source,
            &resolved,
            site,
            options.patch,
            progress,
        )?),
        None => None,
    };
    let (mut store, deliveries) = blob_store(writer.workdir(), writer.needs_staging());
    store.leave_out(writer.left_out().clone());
    let (writer, records) = thread::scope(|scope| {
        let compressing = scope.spawn(move || compress(writer, deliveries));
        let records = source.export(&resolved, &mut store, progress);
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
    let records = records?;
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
    Ok(written?)
}

/// Adds every layer the store delivers to the bundle. `None` when the
/// source stopped in the middle of a streamed layer (the source's own error
/// says why).
fn compress(
    mut writer: BundleWriter,
    deliveries: Deliveries,
) -> Result<Option<BundleWriter>, BundleError> {
    yield_to_the_export();
    let complete = deliveries.consume(|arrival| match arrival {
        Arrival::Staged(layer) => writer.add_staged_layer(&layer.digest, layer.size, &layer.path),
        Arrival::Streamed {
            digest,
            size,
            content,
        } => writer.add_streamed_layer(&digest, size, content),
    })?;
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
