//! The pack pipeline: plan → source → bundle. The source stages layers on
//! one thread while the bundle writer compresses them on another (and zstd
//! on its own workers), so receiving, hashing and compressing overlap.
//! No printing; the CLI reports.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread;

use crate::bundle::writer::{
    BundleWriter, Compression, Contents, MetadataEntry, Output, WrittenBundle,
};
use crate::bundle::{COMPOSE_PREFIX, ComposeRecord, ComposeService};
use crate::delta::{self, Site};
use crate::digest::Digest;
use crate::error::Error;
use crate::image::ImageRecord;
use crate::keys::PrivateKey;
use crate::plan::Plan;
use crate::plan::PlanError;
use crate::plan::carry::CarriedProject;
use crate::progress::{Progress, Task};
use crate::source::{LayerSink, Source, SourceError, StagedLayer};

/// Staged layers waiting for the compressor; each is a file on disk, so the
/// queue bounds temporary disk use, not memory.
const QUEUE: usize = 4;

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
    source.check(&plan.images)?;
    let files = match &options.compose {
        Some(project) => read_project_files(project)?,
        None => Vec::new(),
    };
    let mut writer = BundleWriter::create(&options.output, &options.compression)?;
    // Held until the bundle is written: patch references live in it.
    let _references = match &options.site {
        Some(site) => Some(delta::prepare(
            &mut writer,
            source,
            &plan.images,
            site,
            options.patch,
            progress,
        )?),
        None => None,
    };
    let staging = writer.workdir().to_owned();
    let (sender, receiver) = sync_channel::<StagedLayer>(QUEUE);
    let (writer, records) = thread::scope(|scope| {
        let compressing = scope.spawn(move || {
            for layer in receiver {
                writer.add_staged_layer(&layer.digest, layer.size, &layer.path)?;
            }
            Ok::<_, crate::bundle::BundleError>(writer)
        });
        let mut queue = QueueSink {
            sender,
            staging,
            handed_over: HashSet::new(),
        };
        let records = source.export(&plan.images, &mut queue, progress);
        drop(queue);
        let writer = compressing
            .join()
            .expect("the compressing thread does not panic");
        (writer, records)
    });
    // A writer failure (disk full) is the cause of any send failure the source saw.
    let writer = writer?;
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
    });
    progress.finish();
    Ok(written?)
}

/// Hands staged layers to the compressing thread.
struct QueueSink {
    sender: SyncSender<StagedLayer>,
    staging: PathBuf,
    handed_over: HashSet<Digest>,
}

impl LayerSink for QueueSink {
    fn staging_dir(&self) -> &Path {
        &self.staging
    }

    fn has_layer(&self, digest: &Digest) -> bool {
        self.handed_over.contains(digest)
    }

    fn put_layer(&mut self, layer: StagedLayer) -> Result<(), SourceError> {
        self.handed_over.insert(layer.digest.clone());
        self.sender
            .send(layer)
            .map_err(|_| SourceError::WriterStopped)
    }
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
