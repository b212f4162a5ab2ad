//! Writes a bundle. Layers are compressed into body frames as they arrive;
//! the signed manifest can only be written once every digest is known, so at
//! the end a head frame (manifest, signature, metadata) goes in front of the
//! body (into room left for it, or by copying the body behind it) in a
//! temporary file beside the output, and the result is renamed into place:
//! a crash never leaves a plausible half bundle.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use zstd::stream::raw::CParameter;

use crate::cache::{CachedFrame, FrameIngest, LayerCache};
use crate::digest::{Digest, HashingReader, HashingWriter};
use crate::files::cleanup;
use crate::image::{BlobRef, ImageRecord};
use crate::trust::keys::{Fingerprint, PrivateKey};

use super::body::Body;
use super::in_place::{BodyFile, InPlaceFile};
use super::layout;
pub use super::layout::MetadataEntry;
use super::manifest::{
    BundleImage, BundleManifest, ComposeRecord, Entry, LayerPatch, SignatureEntry, SourceInfo,
};
use super::output_files::{file_name, parent_dir, set_readable, temp_beside, with_suffix};
use super::parts::{self, Part, PartWriter, PartsIndex};
use super::seal::{SEAL_CONTEXT, SEAL_MEDIA_TYPE, Seal};
use super::{
    BundleError, MANIFEST_PATH, SIGNATURE_CONTEXT, SIGNATURE_PATH, WINDOW_LOG_MAX, tar_stream,
};

/// Compression settings.
#[derive(Clone, Debug)]
pub struct Compression {
    /// zstd level, 1 to [`MAX_LEVEL`].
    pub level: i32,
    /// Worker threads for the body frame (0: compress on the calling thread).
    pub threads: u32,
}

/// The default level. Every layer is a frame of its own (see
/// `bundle::body`), which loses the matches across layers a single stream
/// finds. Level 5 with the tuning of `Compression::match_finder` and jobs
/// that see the data before them wins them back: 0.895 × and 0.874 ×
/// `docker save | zstd -3` on the two bench stacks (level 3: 0.93 × and
/// 0.90 ×). Level 6 was 1.3 % smaller for a quarter more CPU, which the
/// cold pack, CPU-bound on two cores, paid in time (docs/BENCHMARKS.md).
/// The layer cache keeps frames, so a layer pays this once.
pub const DEFAULT_LEVEL: i32 = 5;
/// The highest level offered. Above it zstd's match tables alone pass the
/// memory budget (200 MB for a whole pack), for bundles about 5% smaller.
pub const MAX_LEVEL: i32 = 16;
/// Bumped whenever a change here (window, jobs, match finder) changes the
/// bytes of a frame, so the layer cache never splices frames made otherwise.
const FRAME_SETTINGS: u32 = 2;
/// Every worker holds its own job buffers and match tables, so memory
/// grows with their number; past four the export, not compression, limits.
const MAX_DEFAULT_THREADS: u32 = 4;

impl Default for Compression {
    fn default() -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        Self {
            level: DEFAULT_LEVEL,
            threads: threads.min(MAX_DEFAULT_THREADS),
        }
    }
}

impl Compression {
    /// A name for what fixes a layer frame's bytes: zstd's version and
    /// these settings (any number of workers gives the same bytes, none
    /// does not). The layer cache keeps frames under it.
    pub fn frame_profile(&self) -> String {
        let one_thread = if self.threads == 0 { "-t0" } else { "" };
        format!(
            "zstd{}-l{}-r{FRAME_SETTINGS}{one_thread}",
            zstd::zstd_safe::version_number(),
            self.level
        )
    }

    /// zstd's window (log2 bytes), multithreading job size, and how much
    /// of the data before a job the job sees (zstd's overlap log, 9: all it
    /// can). Jobs far smaller than zstd's default (four windows) let every
    /// worker compress a single large layer; the overlap gives back part of
    /// what small jobs lose (frames 0.2–0.4 % smaller on the first bench
    /// stack), and 8 MiB jobs another 0.2 % over 4 MiB ones. With
    /// long-distance matching zstd's input buffer holds a whole window
    /// besides the jobs, so window and jobs are what memory follows: a pack
    /// peaked at 110–122 MB with 4 MiB jobs, 117–129 MB with 8 MiB and 150
    /// MB with 16 MiB; a 64 MiB window with 12 MiB jobs took 157 MB for one
    /// large layer (docs/BENCHMARKS.md).
    pub(super) fn window_and_job(&self) -> (u32, u32, u32) {
        (WINDOW_LOG_MAX - 2, 8 << 20, 9)
    }

    /// zstd parameters set on top of the level's own. (A larger
    /// long-distance table, which found matches between the layers of a
    /// single stream, only costs time within one layer's frame.)
    pub(super) fn match_finder(&self) -> Vec<CParameter> {
        // Long-distance matching looked a position up in 64 (128 at level 3)
        // by default, 9 % of a cold pack's CPU at level 6; one in 256 costs
        // 0.2 % in size on the bench stacks.
        let mut tuning = vec![CParameter::LdmHashRateLog(8)];
        match self.level {
            // Twice level 3's short-match table (half of level 4's) buys most
            // of the size level 4 has over level 3, at level 3's CPU.
            3 => tuning.push(CParameter::ChainLog(17)),
            // Twice level 5's hash table: 0.6 % smaller frames for 7 % more
            // CPU, where level 6 is 1.3 % smaller for 25 % more.
            5 => tuning.push(CParameter::HashLog(20)),
            _ => {}
        }
        tuning
    }
}

/// What goes into a bundle besides the layers already added.
pub struct Contents<'a> {
    /// The images, as the source recorded them.
    pub images: &'a [ImageRecord],
    /// Where they came from.
    pub source: SourceInfo,
    /// The signing key; `None` writes an unsigned bundle.
    pub key: Option<&'a PrivateKey>,
    /// The compose project, if the images were planned from one.
    pub compose: Option<ComposeRecord>,
    /// Extra metadata entries under `airgap/` (the compose project's files).
    pub files: Vec<MetadataEntry>,
    /// Where images pulled from a registry came from.
    pub origins: Vec<crate::bundle::ImageOrigin>,
}

/// A layer compressed before its turn (see [`BundleWriter::frame_aside`]).
pub struct FramedLayer {
    path: PathBuf,
    size: u64,
    keep: Option<FrameIngest>,
}

impl FramedLayer {
    /// Removes its file, for a layer that is never written.
    pub fn discard(self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// What was written.
#[derive(Debug)]
pub struct WrittenBundle {
    /// The bundle file (`-` for standard output).
    pub path: PathBuf,
    /// Its `sha256sum`-format companion, unless written to standard output.
    pub checksum_path: Option<PathBuf>,
    /// The parts, if the bundle was split.
    pub parts: Vec<Part>,
    /// SHA-256 of the whole bundle.
    pub sha256: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// The manifest written into it.
    pub manifest: BundleManifest,
    /// Fingerprint of the signing key; `None` if unsigned.
    pub signer: Option<Fingerprint>,
}

/// A bundle being written.
pub struct BundleWriter {
    output: Output,
    // Declared before `workdir` so it is deregistered only after removal.
    workdir: tempfile::TempDir,
    _workdir_registration: cleanup::Registration,
    body: Body,
    body_path: PathBuf,
    // Where layer frames are kept for later packs, and those waiting for
    // the bundle to be finished (only then is every layer known sound).
    frame_cache: Option<LayerCache>,
    pending_frames: Vec<(FrameIngest, u64)>,
    // The bundle's own file, when the body is written straight into it.
    in_place: Option<InPlaceFile>,
    body_entries: Vec<Entry>,
    layers: HashSet<Digest>,
    left_out: HashSet<Digest>,
    patch_bases: HashMap<Digest, (BlobRef, PathBuf)>,
    patches: Vec<LayerPatch>,
    created: Option<String>,
}

impl BundleWriter {
    /// Starts a bundle that will become `output`. Temporary files live in a
    /// hidden directory beside it (same filesystem, so the final rename is
    /// atomic). A bundle written to a file gets its body written straight
    /// into it, behind `head_room` bytes left for the head (0: none).
    pub fn create(
        output: &Output,
        compression: &Compression,
        head_room: u64,
    ) -> Result<Self, BundleError> {
        let dir = output.dir();
        let workdir = tempfile::Builder::new()
            .prefix(".airgap-pack-")
            .tempdir_in(&dir)
            .map_err(|source| BundleError::Io {
                action: "creating a work directory in",
                path: dir.clone(),
                source,
            })?;
        let (file, body_path, in_place) = match output {
            Output::File(path) if head_room > 0 => {
                let (spool, file) =
                    InPlaceFile::create(path, head_room).map_err(|source| BundleError::Io {
                        action: "creating a temporary file for",
                        path: path.clone(),
                        source,
                    })?;
                (file, spool.path().to_owned(), Some(spool))
            }
            _ => {
                let body_path = workdir.path().join("body.zst");
                // Read back at the end, when it is appended after the head.
                let file = File::options()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .open(&body_path)
                    .map_err(|source| BundleError::Io {
                        action: "writing",
                        path: body_path.clone(),
                        source,
                    })?;
                (BodyFile::plain(file), body_path, None)
            }
        };
        let body = Body::new(file, compression);
        let workdir_registration = cleanup::register(workdir.path());
        Ok(Self {
            output: output.clone(),
            workdir,
            _workdir_registration: workdir_registration,
            body,
            body_path,
            frame_cache: None,
            pending_frames: Vec::new(),
            in_place,
            body_entries: Vec::new(),
            layers: HashSet::new(),
            left_out: HashSet::new(),
            patch_bases: HashMap::new(),
            patches: Vec::new(),
            created: None,
        })
    }

    /// The creation time the manifest records (RFC 3339); without one,
    /// the time the bundle is finished. A fixed time makes the same images
    /// give the same bundle bytes.
    pub fn set_created(&mut self, created: String) {
        self.created = Some(created);
    }

    /// Keeps the frame of every layer written from now on in `cache`
    /// (once the bundle is finished), unless it has one already.
    pub fn keep_frames_in(&mut self, cache: LayerCache) {
        // Named after this writer's settings, whatever the cache was opened for.
        self.frame_cache = Some(cache.with_profile(self.body.frame_profile()));
    }

    /// Appends a layer's frame from the layer cache (checked when it was
    /// opened, made with this writer's settings), unless one with this
    /// digest is already in or the site holds it.
    pub fn add_cached_frame(
        &mut self,
        digest: &Digest,
        frame: &mut CachedFrame,
    ) -> Result<(), BundleError> {
        if !self.takes_layer(digest) {
            return Ok(());
        }
        let size = frame.size;
        self.splice_layer(digest, size, &mut frame.frame(), None)
    }

    /// Appends a layer's frame made with this writer's settings as it is,
    /// keeping it in the cache through `keep`.
    fn splice_layer(
        &mut self,
        digest: &Digest,
        size: u64,
        frame: &mut dyn Read,
        keep: Option<FrameIngest>,
    ) -> Result<(), BundleError> {
        self.body
            .splice(frame)
            .map_err(|source| self.body_error(source))?;
        self.keep_frame(keep, size);
        self.record_layer(digest.blob_path(), size, digest);
        Ok(())
    }

    /// The work directory, where callers may stage blobs too; removed with the writer.
    pub fn workdir(&self) -> &Path {
        self.workdir.path()
    }

    /// Layers the receiving site already holds: listed as required, not
    /// carried (a delta bundle).
    pub fn leave_out(&mut self, layers: HashSet<Digest>) {
        self.left_out = layers;
    }

    /// True when the layer is already in the bundle.
    pub fn has_layer(&self, digest: &Digest) -> bool {
        self.layers.contains(digest)
    }

    /// Appends a layer blob of `size` bytes unless one with this digest is
    /// already in; checks that `content` really hashes to `digest`.
    pub fn add_layer(
        &mut self,
        digest: &Digest,
        size: u64,
        content: &mut dyn Read,
    ) -> Result<(), BundleError> {
        if !self.takes_layer(digest) {
            return Ok(());
        }
        let path = digest.blob_path();
        let mut hashing = HashingReader::new(content);
        let mut keep = self.frame_ingest(digest);
        self.body
            .entry(&path, size, &mut hashing, keep_as_copy(&mut keep))
            .map_err(|source| self.body_error(source))?;
        let (actual, _) = hashing.finish();
        if &actual != digest {
            return Err(BundleError::DigestMismatch { path });
        }
        self.keep_frame(keep, size);
        self.record_layer(path, size, digest);
        Ok(())
    }

    fn record_layer(&mut self, path: String, size: u64, digest: &Digest) {
        self.body_entries.push(Entry {
            path,
            size,
            sha256: digest.hex().to_owned(),
        });
    }

    /// Appends a layer a source staged at `path` (and hashed while staging),
    /// then removes the file to keep temporary disk use to the queue.
    pub fn add_staged_layer(
        &mut self,
        digest: &Digest,
        size: u64,
        path: &Path,
    ) -> Result<(), BundleError> {
        let added = match self.patch_bases.get(digest).cloned() {
            Some((base, base_file))
                if !self.layers.contains(digest) && !self.left_out.contains(digest) =>
            {
                self.add_patch_or_layer(digest, size, path, &base, &base_file)
            }
            _ => self.add_layer_file(digest, size, path),
        };
        let _ = fs::remove_file(path);
        added
    }

    fn add_layer_file(
        &mut self,
        digest: &Digest,
        size: u64,
        path: &Path,
    ) -> Result<(), BundleError> {
        if !self.takes_layer(digest) {
            return Ok(());
        }
        let mut file = File::open(path).map_err(|source| BundleError::Io {
            action: "reading staged layer",
            path: path.to_owned(),
            source,
        })?;
        // The source hashed the layer as it wrote this private file; hashing
        // it again here would cost a second pass over every byte for nothing.
        self.append_layer(digest, size, &mut file)
    }

    /// Appends a layer as a source streams it, without staging it; the
    /// source checks its digest as it reads and fails the export (so this
    /// bundle is never finished) if it differs. Only layers
    /// [`Self::needs_staging`] says no to may come this way.
    pub fn add_streamed_layer(
        &mut self,
        digest: &Digest,
        size: u64,
        content: &mut dyn Read,
    ) -> Result<(), BundleError> {
        if !self.layers.insert(digest.clone()) {
            return Err(BundleError::Inconsistent {
                reason: format!("layer {digest} was streamed twice"),
            });
        }
        self.append_layer(digest, size, content)
    }

    fn append_layer(
        &mut self,
        digest: &Digest,
        size: u64,
        content: &mut dyn Read,
    ) -> Result<(), BundleError> {
        let entry = digest.blob_path();
        let mut keep = self.frame_ingest(digest);
        self.body
            .entry(&entry, size, content, keep_as_copy(&mut keep))
            .map_err(|source| self.body_error(source))?;
        self.keep_frame(keep, size);
        self.record_layer(entry, size, digest);
        Ok(())
    }

    /// Compresses a layer that came before its turn into a frame of its
    /// own in the work directory, so compression keeps pace with the
    /// export instead of waiting for the layers before it; spliced in at
    /// its turn by [`Self::add_framed_layer`], it gives the bytes
    /// compressing it then would. `content` is checked as for
    /// [`Self::add_staged_layer`] or [`Self::add_streamed_layer`].
    pub fn frame_aside(
        &mut self,
        digest: &Digest,
        size: u64,
        content: &mut dyn Read,
    ) -> Result<FramedLayer, BundleError> {
        let path = self.workdir.path().join(format!("frame-{}", digest.hex()));
        let io_error = |source| BundleError::Io {
            action: "compressing a layer into",
            path: path.clone(),
            source,
        };
        let mut keep = self.frame_ingest(digest);
        let mut out = BufWriter::new(File::create_new(&path).map_err(io_error)?);
        let written = self
            .body
            .frame_aside(
                &mut out,
                &digest.blob_path(),
                size,
                content,
                keep_as_copy(&mut keep),
            )
            .and_then(|()| out.flush());
        if let Err(source) = written {
            let _ = fs::remove_file(&path);
            return Err(io_error(source));
        }
        Ok(FramedLayer { path, size, keep })
    }

    /// Appends a layer [`Self::frame_aside`] compressed, unless one with
    /// this digest is already in or the site holds it; removes its file.
    pub fn add_framed_layer(
        &mut self,
        digest: &Digest,
        framed: FramedLayer,
    ) -> Result<(), BundleError> {
        let FramedLayer { path, size, keep } = framed;
        let added = match self.takes_layer(digest) {
            false => Ok(()),
            true => match File::open(&path) {
                Ok(mut file) => self.splice_layer(digest, size, &mut file, keep),
                Err(source) => Err(self.body_error(source)),
            },
        };
        let _ = fs::remove_file(&path);
        added
    }

    /// Where the frame of layer `digest` is to be copied, if the cache
    /// keeps frames and lacks this one; a cache that cannot take it costs
    /// only the next pack's time.
    fn frame_ingest(&self, digest: &Digest) -> Option<FrameIngest> {
        let cache = self.frame_cache.as_ref()?;
        if cache.has_layer(digest) {
            return None;
        }
        cache.frame_ingest(digest).ok()
    }

    fn keep_frame(&mut self, keep: Option<FrameIngest>, size: u64) {
        if let Some(ingest) = keep {
            self.pending_frames.push((ingest, size));
        }
    }

    /// Layers the receiving site holds, which the bundle lists as required.
    pub fn left_out(&self) -> &HashSet<Digest> {
        &self.left_out
    }

    /// Layers that must arrive staged: those left out (dropped unread) and
    /// those a patch is to be made of (which needs the whole file).
    pub fn needs_staging(&self) -> HashSet<Digest> {
        self.left_out
            .iter()
            .chain(self.patch_bases.keys())
            .cloned()
            .collect()
    }

    /// True the first time layer `digest` is offered, unless the site holds
    /// it: the bundle is to carry it now. Either way it counts as offered.
    fn takes_layer(&mut self, digest: &Digest) -> bool {
        self.layers.insert(digest.clone()) && !self.left_out.contains(digest)
    }

    /// True when `digest` is one of [`Self::needs_staging`].
    pub fn must_stay_staged(&self, digest: &Digest) -> bool {
        self.left_out.contains(digest) || self.patch_bases.contains_key(digest)
    }

    /// Layers to ship as patches when worth it: each layer digest with the
    /// site's older layer (and a local copy of it) to patch against.
    pub fn plan_patches(&mut self, bases: HashMap<Digest, (BlobRef, PathBuf)>) {
        self.patch_bases = bases;
    }

    fn add_patch_or_layer(
        &mut self,
        digest: &Digest,
        size: u64,
        path: &Path,
        base: &BlobRef,
        base_file: &Path,
    ) -> Result<(), BundleError> {
        let patch_file = self.workdir.path().join(format!("patch-{}", digest.hex()));
        let io_error = |source| BundleError::Io {
            action: "making a patch for",
            path: path.to_owned(),
            source,
        };
        let made = crate::delta::patch::make(path, base_file, &patch_file).map_err(io_error);
        let result = match made {
            Ok(Some(patch_size)) => {
                self.layers.insert(digest.clone());
                let entry = super::manifest::patch_entry(digest);
                let mut hashing = HashingReader::new(File::open(&patch_file).map_err(io_error)?);
                self.body
                    .entry(&entry, patch_size, &mut hashing, None)
                    .map_err(|source| self.body_error(source))?;
                let (sha256, _) = hashing.finish();
                self.body_entries.push(Entry {
                    path: entry.clone(),
                    size: patch_size,
                    sha256: sha256.hex().to_owned(),
                });
                self.patches.push(LayerPatch {
                    layer: BlobRef {
                        digest: digest.clone(),
                        size,
                    },
                    base: base.clone(),
                    entry,
                });
                Ok(())
            }
            Ok(None) => self.add_layer_file(digest, size, path),
            Err(error) => Err(error),
        };
        let _ = fs::remove_file(&patch_file);
        result
    }

    fn body_error(&self, source: io::Error) -> BundleError {
        BundleError::Io {
            action: "writing",
            path: self.body_path.clone(),
            source,
        }
    }

    /// Writes manifest, signature and metadata, then the layers, and renames
    /// the result into place with its `.sha256` file beside it.
    pub fn finish(mut self, contents: Contents<'_>) -> Result<WrittenBundle, BundleError> {
        let Contents {
            images,
            source,
            key,
            compose,
            files,
            origins,
        } = contents;
        for image in images {
            for layer in &image.layers {
                // A left-out layer need never have come: its image was not
                // exported, or a registry did not download it at all.
                if !self.layers.contains(&layer.digest) && !self.left_out.contains(&layer.digest) {
                    return Err(BundleError::Inconsistent {
                        reason: format!(
                            "layer {} of {} was never added",
                            layer.digest,
                            first_ref(image)
                        ),
                    });
                }
            }
        }
        let pending_frames = std::mem::take(&mut self.pending_frames);
        let body_file = self.body.finish().and_then(BodyFile::into_file);
        let mut body_file = body_file.map_err(|source| BundleError::Io {
            action: "writing",
            path: self.body_path.clone(),
            source,
        })?;

        let (mut metadata, bundle_images) = metadata_entries(images);
        metadata.extend(files);
        let mut manifest = BundleManifest::new(
            format!("airgap {}", env!("CARGO_PKG_VERSION")),
            self.created.clone().unwrap_or_else(now_rfc3339),
            source,
        );
        manifest.required = required_layers(&bundle_images, &self.left_out);
        manifest.images = bundle_images;
        manifest.compose = compose;
        manifest.patches = std::mem::take(&mut self.patches);
        manifest.origins = origins;
        manifest.entries = metadata
            .iter()
            .map(|m| Entry {
                path: m.path.clone(),
                size: m.bytes.len() as u64,
                sha256: Digest::of(&m.bytes).hex().to_owned(),
            })
            .chain(self.body_entries.iter().cloned())
            .collect();
        let manifest_bytes = manifest.to_bytes();
        let signature = key.map(|key| signature_entry(key, SIGNATURE_CONTEXT, &manifest_bytes));

        let head =
            head_frame(&manifest_bytes, signature.as_deref(), &metadata).map_err(|source| {
                BundleError::Io {
                    action: "compressing the head of",
                    path: self.output.path(),
                    source,
                }
            })?;
        let body_start = self.in_place.as_ref().map_or(0, InPlaceFile::head_room);
        let body_size = body_file
            .metadata()
            .map_err(|source| BundleError::Io {
                action: "reading",
                path: self.output.path(),
                source,
            })?
            .len()
            - body_start;
        let delivered = match self.in_place.take() {
            Some(spool) if spool.takes(head.len() as u64, body_size) => {
                deliver_in_place(spool, &head, &self.output.path(), key)?
            }
            // The head did not fit its room (or the body is too small to
            // carry the padding): copied behind the head, as without room.
            _ => {
                crate::files::space::ensure(&self.output.dir(), head.len() as u64 + body_size)?;
                body_file
                    .seek(io::SeekFrom::Start(body_start))
                    .map_err(|source| BundleError::Io {
                        action: "reading",
                        path: self.output.path(),
                        source,
                    })?;
                let assemble = |out: &mut dyn Write| -> io::Result<()> {
                    out.write_all(&head)?;
                    io::copy(&mut body_file, out)?;
                    Ok(())
                };
                deliver(&self.output, assemble, key)?
            }
        };
        for (frame, size) in pending_frames {
            // A cache that cannot take it costs only the next pack's time.
            let _ = frame.commit(size);
        }
        let signer = key.map(|k| k.public().fingerprint().clone());
        Ok(WrittenBundle {
            path: self.output.path(),
            checksum_path: delivered.checksum_path,
            sha256: delivered.sha256,
            size: delivered.size,
            parts: delivered.parts,
            manifest,
            signer,
        })
    }
}

fn keep_as_copy(keep: &mut Option<FrameIngest>) -> Option<&mut dyn Write> {
    keep.as_mut().map(|ingest| ingest as &mut dyn Write)
}

/// The head frame: manifest, signature, then the small metadata entries,
/// compressed hard (it is small) in a frame of its own, since it can only
/// be made once every layer is known but must come first.
fn head_frame(
    manifest: &[u8],
    signature: Option<&[u8]>,
    metadata: &[MetadataEntry],
) -> io::Result<Vec<u8>> {
    let mut tar = Vec::new();
    tar_stream::append_bytes(&mut tar, MANIFEST_PATH, manifest)?;
    if let Some(signature) = signature {
        tar_stream::append_bytes(&mut tar, SIGNATURE_PATH, signature)?;
    }
    for entry in metadata {
        tar_stream::append_bytes(&mut tar, &entry.path, &entry.bytes)?;
    }
    // Compressed in one call, so zstd sizes its window and tables to these
    // few kilobytes instead of allocating level 19's for an unknown length.
    let mut compressor = zstd::bulk::Compressor::new(19)?;
    compressor.set_parameter(CParameter::ChecksumFlag(true))?;
    compressor.compress(&tar)
}

/// Where a finished bundle goes.
#[derive(Clone, Debug)]
pub enum Output {
    /// One file, written under a temporary name beside it and renamed.
    File(PathBuf),
    /// Numbered parts of at most `part_size` bytes, with a signed index.
    Parts {
        /// The bundle path the parts are named after (`shop.zst` → `shop.zst.001`).
        path: PathBuf,
        /// Largest part.
        part_size: u64,
    },
    /// Standard output, for piping to the other side.
    Stdout,
}

impl Output {
    /// The bundle's path, or `-` for standard output.
    pub fn path(&self) -> PathBuf {
        match self {
            Self::File(path) | Self::Parts { path, .. } => path.clone(),
            Self::Stdout => PathBuf::from("-"),
        }
    }

    /// Where temporary files go: beside the output (so the final rename is
    /// atomic and the space check measures the right filesystem), or the
    /// temporary directory for standard output.
    pub fn dir(&self) -> PathBuf {
        match self {
            Self::File(path) | Self::Parts { path, .. } => parent_dir(path).to_owned(),
            Self::Stdout => std::env::temp_dir(),
        }
    }
}

struct Delivered {
    checksum_path: Option<PathBuf>,
    sha256: Digest,
    size: u64,
    parts: Vec<Part>,
}

/// Writes the bundle that `assemble` produces to `output`, under temporary
/// names until it is complete, with its `.sha256` file (and parts index).
fn deliver(
    output: &Output,
    assemble: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    key: Option<&PrivateKey>,
) -> Result<Delivered, BundleError> {
    let io_error = |action, source| BundleError::Io {
        action,
        path: output.path(),
        source,
    };
    match output {
        Output::File(path) => {
            let temp =
                temp_beside(path).map_err(|e| io_error("creating a temporary file for", e))?;
            let _registration = cleanup::register(temp.path());
            let mut out = HashingWriter::new(BufWriter::with_capacity(1 << 20, temp));
            write_sealed(&mut out, assemble, key).map_err(|e| io_error("writing", e))?;
            let (sha256, size, out) = out.finish();
            let temp = out
                .into_inner()
                .map_err(|e| io_error("writing", e.into_error()))?;
            put_in_place(temp, path, sha256, size)
        }
        Output::Parts { path, part_size } => {
            let mut writer = HashingWriter::new(PartWriter::new(path, *part_size));
            let result = write_sealed(&mut writer, assemble, key);
            let (sha256, size, writer) = writer.finish();
            result.map_err(|e| io_error("writing", e))?;
            let parts = writer.finish().map_err(|e| io_error("writing", e))?;
            let index = PartsIndex {
                media_type: parts::PARTS_MEDIA_TYPE.into(),
                bundle: file_name(path),
                size,
                sha256: sha256.clone(),
                parts: parts.clone(),
            };
            let index_bytes = index.to_bytes();
            if let Some(key) = key {
                let signature = signature_entry(key, parts::PARTS_SIGNATURE_CONTEXT, &index_bytes);
                let signature_path = parts::index_signature_path(path);
                write_atomically(&signature_path, &signature).map_err(|source| {
                    BundleError::Io {
                        action: "writing",
                        path: signature_path,
                        source,
                    }
                })?;
            }
            let index_path = parts::index_path(path);
            write_atomically(&index_path, &index_bytes).map_err(|source| BundleError::Io {
                action: "writing",
                path: index_path,
                source,
            })?;
            let lines: Vec<(String, &Digest)> =
                parts.iter().map(|p| (p.name.clone(), &p.sha256)).collect();
            let checksum_path = write_checksums(path, &lines)?;
            Ok(Delivered {
                checksum_path: Some(checksum_path),
                sha256,
                size,
                parts,
            })
        }
        Output::Stdout => {
            let stdout = io::stdout().lock();
            let mut out = HashingWriter::new(BufWriter::with_capacity(1 << 20, stdout));
            write_sealed(&mut out, assemble, key)
                .and_then(|()| out.flush())
                .map_err(|e| io_error("writing", e))?;
            let (sha256, size, _) = out.finish();
            Ok(Delivered {
                checksum_path: None,
                sha256,
                size,
                parts: Vec::new(),
            })
        }
    }
}

/// Completes a bundle whose body was written into its own file: the head
/// goes into the room left in front, the seal at the end.
fn deliver_in_place(
    spool: InPlaceFile,
    head: &[u8],
    path: &Path,
    key: Option<&PrivateKey>,
) -> Result<Delivered, BundleError> {
    let (sha256, size, temp) = spool
        .complete(head, |sha256, size| {
            key.map(|key| seal_frame(key, sha256, size))
        })
        .map_err(|source| BundleError::Io {
            action: "writing",
            path: path.to_owned(),
            source,
        })?;
    put_in_place(temp, path, sha256, size)
}

/// Makes a complete temporary bundle of `size` bytes durable and readable,
/// renames it to `path` and writes its `.sha256` file.
fn put_in_place(
    temp: tempfile::NamedTempFile,
    path: &Path,
    sha256: Digest,
    size: u64,
) -> Result<Delivered, BundleError> {
    let io_error = |action, source| BundleError::Io {
        action,
        path: path.to_owned(),
        source,
    };
    set_readable(temp.as_file()).map_err(|e| io_error("writing", e))?;
    temp.as_file()
        .sync_all()
        .map_err(|e| io_error("syncing", e))?;
    temp.persist(path)
        .map_err(|e| io_error("renaming into place", e.error))?;
    let checksum_path = write_checksums(path, &[(file_name(path), &sha256)])?;
    Ok(Delivered {
        checksum_path: Some(checksum_path),
        sha256,
        size,
        parts: Vec::new(),
    })
}

/// Writes what `assemble` makes, then, for a signed bundle, the seal over
/// every byte of it (FORMAT.md 2.4).
fn write_sealed<W: Write>(
    out: &mut HashingWriter<W>,
    assemble: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    key: Option<&PrivateKey>,
) -> io::Result<()> {
    assemble(out)?;
    let Some(key) = key else {
        return Ok(());
    };
    let (sha256, size) = out.so_far();
    out.write_all(&seal_frame(key, &sha256, size))
}

/// The seal over `size` bytes hashing to `sha256`, as its skippable frame.
fn seal_frame(key: &PrivateKey, sha256: &Digest, size: u64) -> Vec<u8> {
    Seal {
        media_type: SEAL_MEDIA_TYPE.into(),
        signature: sign(key, SEAL_CONTEXT, &Seal::statement(sha256, size)),
        size,
        sha256: sha256.clone(),
    }
    .to_frame()
}

/// Writes `<path>.sha256` in `sha256sum` format, one line per file.
fn write_checksums(path: &Path, files: &[(String, &Digest)]) -> Result<PathBuf, BundleError> {
    let checksum_path = with_suffix(path, ".sha256");
    let text: String = files
        .iter()
        .map(|(name, digest)| format!("{}  {name}\n", digest.hex()))
        .collect();
    write_atomically(&checksum_path, text.as_bytes()).map_err(|source| BundleError::Io {
        action: "writing",
        path: checksum_path.clone(),
        source,
    })?;
    sync_dir(parent_dir(path));
    Ok(checksum_path)
}

/// The left-out layers the images use, each once, in image order.
fn required_layers(images: &[BundleImage], left_out: &HashSet<Digest>) -> Vec<BlobRef> {
    let mut seen = HashSet::new();
    images
        .iter()
        .flat_map(|i| &i.layers)
        .filter(|l| left_out.contains(&l.digest) && seen.insert(&l.digest))
        .cloned()
        .collect()
}

/// The layout files, then configs and image manifests, and the manifest's
/// view of each image.
fn metadata_entries(images: &[ImageRecord]) -> (Vec<MetadataEntry>, Vec<BundleImage>) {
    let manifests: Vec<Vec<u8>> = images.iter().map(layout::image_manifest).collect();
    let bundle_images: Vec<BundleImage> = images
        .iter()
        .zip(&manifests)
        .map(|(image, manifest)| BundleImage {
            refs: image.refs.clone(),
            platform: image.platform.clone(),
            manifest: BlobRef {
                digest: Digest::of(manifest),
                size: manifest.len() as u64,
            },
            config: BlobRef {
                digest: image.config_digest.clone(),
                size: image.config.len() as u64,
            },
            layers: image.layers.clone(),
        })
        .collect();
    let mut entries = layout::layout_entries(&bundle_images);
    let blobs = images
        .iter()
        .map(|i| (&i.config_digest, i.config.as_slice()))
        .chain(
            bundle_images
                .iter()
                .zip(&manifests)
                .map(|(b, m)| (&b.manifest.digest, m.as_slice())),
        );
    entries.extend(layout::blob_entries(blobs));
    (entries, bundle_images)
}

/// `key`'s signature over `context` followed by `signed` (FORMAT.md 4).
fn sign(key: &PrivateKey, context: &[u8], signed: &[u8]) -> SignatureEntry {
    let mut message = context.to_vec();
    message.extend_from_slice(signed);
    SignatureEntry {
        algorithm: "ed25519".into(),
        key: key.public().fingerprint().0.clone(),
        signature: hex::encode(key.sign(&message)),
    }
}

/// A signature entry's bytes, as stored in the bundle and beside parts.
fn signature_entry(key: &PrivateKey, context: &[u8], signed: &[u8]) -> Vec<u8> {
    let entry = sign(key, context, signed);
    let mut bytes = serde_json::to_vec_pretty(&entry).expect("signature entries always serialise");
    bytes.push(b'\n');
    bytes
}

fn first_ref(image: &ImageRecord) -> &str {
    image
        .refs
        .first()
        .map_or("(unnamed image)", |r| r.given.as_str())
}

/// The current time as bundles and records write it (RFC 3339, UTC, seconds).
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("0 is a valid nanosecond");
    now.format(&time::format_description::well_known::Rfc3339)
        .expect("UTC times always format")
}

fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut temp = tempfile::NamedTempFile::new_in(parent_dir(path))?;
    let _registration = cleanup::register(temp.path());
    temp.write_all(contents)?;
    temp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o644))?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Makes the renames durable; failure here loses nothing already written.
fn sync_dir(dir: &Path) {
    if let Ok(dir) = fs::File::open(dir) {
        let _ = dir.sync_all();
    }
}
