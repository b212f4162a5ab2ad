//! The pack pipeline: plan → source → bundle. The source stages layers on
//! one thread while the bundle writer compresses them on another (and zstd
//! on its own workers), so receiving, hashing and compressing overlap.
//! No printing; the CLI reports.

pub mod survey;

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread;

use crate::bundle::BundleError;
use crate::bundle::in_place::head_room;
use crate::bundle::writer::{
    BundleWriter, Compression, Contents, MetadataEntry, Output, WrittenBundle,
};
use crate::bundle::{COMPOSE_PREFIX, ComposeRecord, ComposeService};
use crate::delta::{self, Site};
use crate::digest::Digest;
use crate::error::Error;
use crate::image::ImageRecord;
use crate::media::source::{LayerSink, Source, SourceError};
use crate::plan::Plan;
use crate::plan::PlanError;
use crate::plan::carry::CarriedProject;
use crate::progress::{Progress, Task};
use crate::store::StagedLayer;
use crate::trust::keys::PrivateKey;

/// Deliveries waiting for the compressor. A staged layer is a file on disk,
/// a streamed layer's piece is memory: the queue bounds temporary disk use to
/// four layers and memory to four pieces.
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
    let staging = writer.workdir().to_owned();
    let needs_staging = writer.needs_staging();
    let (sender, receiver) = sync_channel::<Delivery>(QUEUE);
    let (writer, records) = thread::scope(|scope| {
        let compressing = scope.spawn(move || compress(writer, &receiver));
        let mut queue = QueueSink {
            sender,
            staging,
            handed_over: HashSet::new(),
            needs_staging,
        };
        let records = source.export(&resolved, &mut queue, progress);
        drop(queue);
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
    });
    progress.finish();
    Ok(written?)
}

/// What the source hands the compressing thread: a staged layer, or a
/// streamed one announced by its digest and followed by its bytes.
enum Delivery {
    Staged(StagedLayer),
    Streamed { digest: Digest, size: u64 },
    Bytes(Vec<u8>),
}

/// Bytes of a streamed layer travel in pieces this large: big enough that
/// handing them across threads costs nothing next to compressing them.
const PIECE: u64 = 1 << 20;

/// Adds every delivered layer to the bundle. `None` when the source stopped
/// in the middle of a streamed layer (the source's own error says why).
fn compress(
    mut writer: BundleWriter,
    receiver: &Receiver<Delivery>,
) -> Result<Option<BundleWriter>, BundleError> {
    yield_to_the_export();
    while let Ok(delivery) = receiver.recv() {
        match delivery {
            Delivery::Staged(layer) => {
                writer.add_staged_layer(&layer.digest, layer.size, &layer.path)?;
            }
            Delivery::Streamed { digest, size } => {
                let mut bytes = StreamedBytes {
                    receiver,
                    piece: Vec::new(),
                    offset: 0,
                    remaining: size,
                    cut_short: false,
                };
                let added = writer.add_streamed_layer(&digest, size, &mut bytes);
                if bytes.cut_short {
                    return Ok(None);
                }
                added?;
            }
            Delivery::Bytes(_) => unreachable!("bytes come only after their layer"),
        }
    }
    Ok(Some(writer))
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

/// One streamed layer's bytes, read from the pieces that follow its announcement.
struct StreamedBytes<'a> {
    receiver: &'a Receiver<Delivery>,
    piece: Vec<u8>,
    offset: usize,
    remaining: u64,
    cut_short: bool,
}

impl Read for StreamedBytes<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        if self.offset == self.piece.len() {
            match self.receiver.recv() {
                Ok(Delivery::Bytes(piece)) => {
                    self.piece = piece;
                    self.offset = 0;
                }
                _ => {
                    self.cut_short = true;
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
            }
        }
        let available = &self.piece[self.offset..];
        let n = available.len().min(buf.len()).min(self.remaining as usize);
        buf[..n].copy_from_slice(&available[..n]);
        self.offset += n;
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Hands layers to the compressing thread.
struct QueueSink {
    sender: SyncSender<Delivery>,
    staging: PathBuf,
    handed_over: HashSet<Digest>,
    needs_staging: HashSet<Digest>,
}

impl QueueSink {
    fn send(&self, delivery: Delivery) -> Result<(), SourceError> {
        self.sender
            .send(delivery)
            .map_err(|_| SourceError::WriterStopped)
    }
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
        self.send(Delivery::Staged(layer))
    }

    fn takes_stream(&self, digest: &Digest) -> bool {
        !self.handed_over.contains(digest) && !self.needs_staging.contains(digest)
    }

    fn stream_layer(
        &mut self,
        digest: &Digest,
        size: u64,
        content: &mut dyn Read,
    ) -> Result<(), SourceError> {
        self.handed_over.insert(digest.clone());
        self.send(Delivery::Streamed {
            digest: digest.clone(),
            size,
        })?;
        let mut sent = 0;
        while sent < size {
            let mut piece = Vec::with_capacity(PIECE.min(size - sent) as usize);
            let read = content
                .take(PIECE)
                .read_to_end(&mut piece)
                .map_err(SourceError::Read)?;
            if read == 0 {
                return Err(SourceError::Read(std::io::ErrorKind::UnexpectedEof.into()));
            }
            sent += read as u64;
            self.send(Delivery::Bytes(piece))?;
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn writer_in(dir: &Path) -> BundleWriter {
        let compression = Compression {
            level: 1,
            threads: 0,
        };
        BundleWriter::create(&Output::File(dir.join("b.zst")), &compression, 0).unwrap()
    }

    #[test]
    fn a_streamed_layer_is_added_from_its_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let layer = b"0123456789".repeat(300_000);
        let digest = Digest::of(&layer);
        let (sender, receiver) = sync_channel(QUEUE);
        let mut sink = QueueSink {
            sender,
            staging: dir.path().to_owned(),
            handed_over: HashSet::new(),
            needs_staging: HashSet::new(),
        };
        thread::scope(|scope| {
            let compressing = scope.spawn(move || compress(writer_in(dir.path()), &receiver));
            assert!(sink.takes_stream(&digest));
            sink.stream_layer(&digest, layer.len() as u64, &mut &layer[..])
                .unwrap();
            assert!(!sink.takes_stream(&digest), "a layer streams once");
            drop(sink);
            let writer = compressing.join().unwrap().unwrap().expect("not cut short");
            assert!(writer.has_layer(&digest));
        });
    }

    #[test]
    fn a_layer_cut_short_leaves_the_source_to_explain() {
        let dir = tempfile::tempdir().unwrap();
        let (sender, receiver) = sync_channel(QUEUE);
        thread::scope(|scope| {
            let compressing = scope.spawn(move || compress(writer_in(dir.path()), &receiver));
            sender
                .send(Delivery::Streamed {
                    digest: Digest::of(b"x"),
                    size: 3 * PIECE,
                })
                .unwrap();
            sender
                .send(Delivery::Bytes(vec![0; PIECE as usize]))
                .unwrap();
            drop(sender);
            assert!(compressing.join().unwrap().unwrap().is_none());
        });
    }

    #[test]
    fn layers_a_delta_leaves_out_or_patches_are_staged_not_streamed() {
        let (sender, _receiver) = sync_channel(QUEUE);
        let patched = Digest::of(b"patched");
        let sink = QueueSink {
            sender,
            staging: PathBuf::new(),
            handed_over: HashSet::new(),
            needs_staging: HashSet::from([patched.clone()]),
        };
        assert!(!sink.takes_stream(&patched));
        assert!(sink.takes_stream(&Digest::of(b"other")));
    }
}
