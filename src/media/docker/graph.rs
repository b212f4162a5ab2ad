//! Docker's overlay2 graph driver, read where its bytes lie. Where this
//! process can read the engine's data root (as root, on the engine's
//! machine), an image's config comes from `image/overlay2/imagedb`, and each
//! layer is rebuilt byte for byte from the files of its overlay2 `diff`
//! directory and the tar headers Docker kept when it registered the layer
//! (`tar-split.json.gz` in `image/overlay2/layerdb`), as Docker's own export
//! rebuilds it. That export stages the whole of itself on disk before its
//! first byte, which is what a cold pack from these engines waited for.
//!
//! Nothing read here is believed: the config is checked against its digest
//! and each layer against its diff ID as it streams; every name beneath a
//! `diff` directory is opened without following a link or leaving the
//! directory, regular files only, read no further than its header says.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};

use base64::Engine as _;
use rustix::fs::{Mode, OFlags, ResolveFlags};
use serde::Deserialize;

use crate::digest::{Digest, HashingReader};
use crate::image::{BlobRef, ConfigSummary, ImageRecord, ImageRef, Platform};
use crate::media::docker::engine::{Engine, EngineError, ImageStore};
use crate::media::layout::dir::LayoutDir;
use crate::media::source::{LayerSink, ResolvedImage, SourceError};
use crate::progress::{Progress, ProgressReader, Task};
use crate::store::StagedLayer;

/// Largest config, `diff` or `cache-id` file read.
const SMALL_FILE_LIMIT: u64 = 16 << 20;
/// Largest tar-split file read (compressed; a layer of a million files
/// keeps far less).
const TAR_SPLIT_LIMIT: u64 = 1 << 30;

/// The image store of an engine on the overlay2 graph driver.
pub struct GraphStore {
    /// `<data root>/image/overlay2`: configs and layer records.
    images: LayoutDir,
    /// `<data root>/overlay2`: each layer's files.
    layers: LayoutDir,
}

/// One image as the store holds it.
pub struct GraphImage {
    refs: Vec<ImageRef>,
    config: Vec<u8>,
    config_digest: Digest,
    platform: Platform,
    layers: Vec<GraphLayer>,
}

/// One layer: its record and its files.
struct GraphLayer {
    diff_id: Digest,
    /// `layerdb/sha256/<chain ID>`.
    record: LayoutDir,
    /// `overlay2/<cache ID>/diff`.
    files: LayoutDir,
    /// The size of the layer's tar, from its headers.
    size: u64,
}

/// The store of `engine` where it keeps its images with the overlay2 graph
/// driver and this process can read it; `None` otherwise (the reason is
/// logged).
pub fn open(engine: &Engine) -> Result<Option<GraphStore>, EngineError> {
    // A rootless engine's data root is its user's, but the files in its
    // layers belong to subordinate IDs that user may not read: only root is
    // sure to read every one, and a file that cannot be read fails the pack.
    if !rustix::process::geteuid().is_root() {
        return Ok(None);
    }
    let info = engine.info()?;
    let (ImageStore::Graph, Some(root), Some("overlay2")) = (
        info.store,
        info.local_data_root.as_ref(),
        info.graph_driver.as_deref(),
    ) else {
        return Ok(None);
    };
    let opened = LayoutDir::open(root).and_then(|root| {
        Ok(GraphStore {
            images: root.subdir(&["image", "overlay2"], None)?,
            layers: root.subdir(&["overlay2"], None)?,
        })
    });
    match opened {
        Ok(store) => Ok(Some(store)),
        Err(error) => {
            tracing::info!("engine: its overlay2 store is not read ({error})");
            Ok(None)
        }
    }
}

impl GraphStore {
    /// Each of `images` as the store holds it; `None` where one of them is
    /// not wholly there (the engine then exports them all).
    pub fn find(&self, images: &[ResolvedImage]) -> Result<Option<Vec<GraphImage>>, SourceError> {
        let mut found = Vec::new();
        for image in images {
            let (Some(id), Some(diff_ids)) = (&image.id, &image.layers) else {
                return Ok(None);
            };
            match self.image(id, diff_ids, &image.refs)? {
                Some(held) => found.push(held),
                None => {
                    tracing::info!("engine: {id} is not wholly in its overlay2 store");
                    return Ok(None);
                }
            }
        }
        tracing::info!(
            "engine: reading {} from its overlay2 store {}",
            super::in_place::named(images),
            crate::display::escape(&self.images.path().display().to_string())
        );
        Ok(Some(found))
    }

    fn image(
        &self,
        id: &Digest,
        diff_ids: &[Digest],
        refs: &[ImageRef],
    ) -> Result<Option<GraphImage>, SourceError> {
        let Ok(configs) = self.images.subdir(&["imagedb", "content", "sha256"], None) else {
            return Ok(None);
        };
        let Some(config) = read_small(&configs, id.hex()) else {
            return Ok(None);
        };
        if &Digest::of(&config) != id {
            return Err(self.damaged(format!("the config of {id} does not hash to its ID")));
        }
        let summary = ConfigSummary::parse(&config)
            .map_err(|e| self.damaged(format!("the config of {id} is not an image config: {e}")))?;
        if summary.rootfs.diff_ids != diff_ids {
            return Ok(None);
        }
        let mut layers = Vec::new();
        for (diff_id, chain_id) in diff_ids.iter().zip(chain_ids(diff_ids)) {
            match self.layer(diff_id, &chain_id)? {
                Some(layer) => layers.push(layer),
                None => return Ok(None),
            }
        }
        Ok(Some(GraphImage {
            refs: refs.to_vec(),
            config_digest: id.clone(),
            platform: summary.platform,
            config,
            layers,
        }))
    }

    /// Layer `diff_id` at `chain_id`, where its record names that layer, a
    /// directory of files and its tar headers.
    fn layer(
        &self,
        diff_id: &Digest,
        chain_id: &Digest,
    ) -> Result<Option<GraphLayer>, SourceError> {
        let Ok(record) = self
            .images
            .subdir(&["layerdb", "sha256", chain_id.hex()], None)
        else {
            return Ok(None);
        };
        let recorded =
            read_small(&record, "diff").map(|d| String::from_utf8_lossy(&d).into_owned());
        if recorded.as_deref().map(str::trim) != Some(diff_id.as_str()) {
            return Ok(None);
        }
        let Some(cache_id) = read_small(&record, "cache-id") else {
            return Ok(None);
        };
        let cache_id = String::from_utf8_lossy(&cache_id).trim().to_owned();
        // A name Docker made (64 hex digits), so it names nothing but a child.
        if cache_id.len() != 64 || !cache_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let Ok(files) = self.layers.subdir(&[&cache_id, "diff"], None) else {
            return Ok(None);
        };
        let size = match tar_size(&record) {
            Ok(size) => size,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                return Err(self.damaged(format!("the tar headers of layer {diff_id}: {error}")));
            }
        };
        Ok(Some(GraphLayer {
            diff_id: diff_id.clone(),
            record,
            files,
            size,
        }))
    }

    /// The tar size of every layer of `images`, from the headers Docker
    /// kept (no layer is read).
    pub fn layer_sizes(images: &[GraphImage]) -> Vec<(Digest, u64)> {
        images
            .iter()
            .flat_map(|image| &image.layers)
            .map(|layer| (layer.diff_id.clone(), layer.size))
            .collect()
    }

    /// Hands every image's layers to `layers` and returns one record per
    /// distinct config, with every reference naming it.
    pub fn read(
        &self,
        images: Vec<GraphImage>,
        layers: &mut dyn LayerSink,
        progress: &dyn Progress,
    ) -> Result<Vec<ImageRecord>, SourceError> {
        let total = images
            .iter()
            .flat_map(|image| &image.layers)
            .map(|layer| layer.size)
            .sum();
        progress.start(Task::Saving, Some(total));
        let records = self.hand_over(images, layers, progress);
        progress.finish();
        records
    }

    fn hand_over(
        &self,
        images: Vec<GraphImage>,
        layers: &mut dyn LayerSink,
        progress: &dyn Progress,
    ) -> Result<Vec<ImageRecord>, SourceError> {
        let mut records: Vec<ImageRecord> = Vec::new();
        for mut image in images {
            if ImageRecord::add_refs_to(&mut records, &image.config_digest, &mut image.refs) {
                continue;
            }
            let name = image
                .refs
                .first()
                .map_or_else(String::new, ToString::to_string);
            for (index, layer) in image.layers.iter().enumerate() {
                self.hand_over_layer(layer, layers, progress)
                    .map_err(|error| match error {
                        Handed::Differs(actual) => self.damaged(
                            SourceError::LayerMismatch {
                                image: name.clone(),
                                index,
                                expected: layer.diff_id.clone(),
                                actual,
                            }
                            .to_string(),
                        ),
                        Handed::Unreadable(reason) => self.damaged(format!(
                            "layer {index} of {name} ({}) cannot be rebuilt: {reason}",
                            layer.diff_id
                        )),
                        Handed::Failed(error) => error,
                    })?;
            }
            records.push(ImageRecord {
                refs: image.refs,
                config: image.config,
                config_digest: image.config_digest,
                platform: image.platform,
                layers: image
                    .layers
                    .iter()
                    .map(|l| BlobRef {
                        digest: l.diff_id.clone(),
                        size: l.size,
                    })
                    .collect(),
            });
        }
        Ok(records)
    }

    fn hand_over_layer(
        &self,
        layer: &GraphLayer,
        layers: &mut dyn LayerSink,
        progress: &dyn Progress,
    ) -> Result<(), Handed> {
        let digest = &layer.diff_id;
        if layers.has_layer(digest) || layers.is_left_out(digest) {
            progress.advance(layer.size);
            return Ok(());
        }
        let tar = Reassembled::new(&layer.record, &layer.files)
            .map_err(|e| Handed::Unreadable(format!("its tar headers: {e}")))?;
        let mut content = HashingReader::new(ProgressReader::new(tar, progress));
        if layers.takes_stream(digest) {
            layers
                .stream_layer(digest, layer.size, &mut (&mut content).take(layer.size))
                .map_err(|error| match error {
                    SourceError::Read(error) => Handed::Unreadable(error.to_string()),
                    other => Handed::Failed(other),
                })?;
        } else {
            let path = layers
                .staging_dir()
                .join(format!("overlay2-{}", digest.hex()));
            let staged = crate::store::stage::stage(&mut content, &path).map_err(|error| {
                let _ = std::fs::remove_file(&path);
                match error.kind() {
                    io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => {
                        Handed::Unreadable(error.to_string())
                    }
                    _ => Handed::Failed(SourceError::Stage {
                        path: path.clone(),
                        source: error,
                    }),
                }
            })?;
            if &staged.digest != digest {
                let _ = std::fs::remove_file(&path);
                return Err(Handed::Differs(staged.digest));
            }
            layers
                .put_layer(StagedLayer {
                    path,
                    digest: staged.digest,
                    size: staged.size,
                })
                .map_err(Handed::Failed)?;
        }
        let (actual, read) = content.finish();
        if &actual != digest || read != layer.size {
            return Err(Handed::Differs(actual));
        }
        Ok(())
    }

    /// The store holds something other than what it says.
    fn damaged(&self, reason: String) -> SourceError {
        SourceError::StoreInPlace {
            store: "overlay2 store",
            path: self.images.path().to_owned(),
            reason,
        }
    }
}

/// Why a layer was not handed over.
enum Handed {
    /// Its content does not hash to its diff ID (it hashes to this).
    Differs(Digest),
    /// Its bytes cannot be rebuilt (a file absent, shorter than its header
    /// says, reached through a link; its headers unreadable): why.
    Unreadable(String),
    /// Anything else.
    Failed(SourceError),
}

/// The chain ID of each layer: the first layer's diff ID, then the digest
/// of the one below's chain ID, a space and the layer's diff ID.
fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut chain: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match chain.last() {
            None => diff_id.clone(),
            Some(below) => Digest::of(format!("{below} {diff_id}").as_bytes()),
        };
        chain.push(next);
    }
    chain
}

/// A small regular file beneath `dir`, whole; `None` where it is absent,
/// not a regular file or too large.
fn read_small(dir: &LayoutDir, name: &str) -> Option<Vec<u8>> {
    dir.read_file(name, SMALL_FILE_LIMIT, "image store record")
        .ok()
}

/// One entry of a tar-split file (github.com/vbatts/tar-split): a run of
/// the tar's own bytes (headers, padding), or a file's content, to be read
/// from the layer's files by name.
#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "type")]
    kind: u8,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    name_raw: Option<String>,
    #[serde(default)]
    size: Option<i64>,
    #[serde(default)]
    payload: Option<String>,
}

const FILE_ENTRY: u8 = 1;
const SEGMENT_ENTRY: u8 = 2;
/// Longest tar-split line: a segment holds a header or two and padding.
const LINE_LIMIT: u64 = 64 << 20;

/// A record's tar-split file, one JSON entry per line.
struct TarSplit {
    lines: BufReader<flate2::bufread::MultiGzDecoder<BufReader<io::Take<File>>>>,
    line: Vec<u8>,
}

impl TarSplit {
    fn open(record: &LayoutDir) -> io::Result<Self> {
        let file = record.open_file("tar-split.json.gz")?;
        let compressed = BufReader::new(file.take(TAR_SPLIT_LIMIT));
        Ok(Self {
            lines: BufReader::with_capacity(
                256 << 10,
                flate2::bufread::MultiGzDecoder::new(compressed),
            ),
            line: Vec::new(),
        })
    }

    fn next(&mut self) -> io::Result<Option<Entry>> {
        loop {
            self.line.clear();
            let read = (&mut self.lines)
                .take(LINE_LIMIT)
                .read_until(b'\n', &mut self.line)?;
            if read == 0 {
                return Ok(None);
            }
            if read as u64 == LINE_LIMIT && !self.line.ends_with(b"\n") {
                return Err(invalid("a tar-split line is too long".into()));
            }
            if self.line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return serde_json::from_slice(&self.line)
                .map(Some)
                .map_err(|e| invalid(format!("unreadable tar-split: {e}")));
        }
    }
}

fn invalid(reason: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason)
}

fn segment(entry: &Entry) -> io::Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(entry.payload.as_deref().unwrap_or_default())
        .map_err(|e| invalid(format!("a tar-split segment is not base64: {e}")))
}

/// A segment's length, from its base64 text without decoding it.
fn segment_len(entry: &Entry) -> io::Result<u64> {
    let text = entry.payload.as_deref().unwrap_or_default().as_bytes();
    if text.len() % 4 != 0 {
        return Err(invalid("a tar-split segment is not base64".into()));
    }
    let padding = text.iter().rev().take_while(|&&b| b == b'=').count().min(2);
    Ok((text.len() / 4 * 3 - padding) as u64)
}

fn file_size(entry: &Entry) -> io::Result<u64> {
    u64::try_from(entry.size.unwrap_or(0))
        .map_err(|_| invalid("a tar-split file entry has a negative size".into()))
}

/// The size of the tar the record's headers rebuild.
fn tar_size(record: &LayoutDir) -> io::Result<u64> {
    let mut entries = TarSplit::open(record)?;
    let mut size = 0u64;
    while let Some(entry) = entries.next()? {
        size += match entry.kind {
            SEGMENT_ENTRY => segment_len(&entry)?,
            FILE_ENTRY => file_size(&entry)?,
            other => return Err(invalid(format!("unknown tar-split entry type {other}"))),
        };
    }
    Ok(size)
}

/// A layer's tar, rebuilt as it is read.
struct Reassembled<'a> {
    entries: TarSplit,
    files: &'a LayoutDir,
    current: Piece,
}

enum Piece {
    Bytes(io::Cursor<Vec<u8>>),
    /// A file's content, with the name to report and what is still owed.
    File(File, String, u64),
    Done,
}

impl<'a> Reassembled<'a> {
    fn new(record: &LayoutDir, files: &'a LayoutDir) -> io::Result<Self> {
        Ok(Self {
            entries: TarSplit::open(record)?,
            files,
            current: Piece::Bytes(io::Cursor::new(Vec::new())),
        })
    }

    /// Moves to the next entry with bytes; `Done` after the last.
    fn advance(&mut self) -> io::Result<()> {
        loop {
            let Some(entry) = self.entries.next()? else {
                self.current = Piece::Done;
                return Ok(());
            };
            match entry.kind {
                SEGMENT_ENTRY => {
                    self.current = Piece::Bytes(io::Cursor::new(segment(&entry)?));
                    return Ok(());
                }
                FILE_ENTRY => {
                    let size = file_size(&entry)?;
                    if size == 0 {
                        continue;
                    }
                    let name = entry_name(&entry)?;
                    let file = open_beneath(self.files, &name)?;
                    self.current = Piece::File(file, name, size);
                    return Ok(());
                }
                other => return Err(invalid(format!("unknown tar-split entry type {other}"))),
            }
        }
    }
}

impl Read for Reassembled<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = match &mut self.current {
                Piece::Done => return Ok(0),
                Piece::Bytes(bytes) => bytes.read(buf)?,
                Piece::File(file, name, owed) => {
                    let wanted = buf.len().min(usize::try_from(*owed).unwrap_or(usize::MAX));
                    let n = file.read(&mut buf[..wanted])?;
                    if n == 0 && *owed > 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!(
                                "{} is shorter than its tar header says",
                                crate::display::escape(name)
                            ),
                        ));
                    }
                    *owed -= n as u64;
                    n
                }
            };
            if n > 0 {
                return Ok(n);
            }
            self.advance()?;
        }
    }
}

/// A file entry's name as the tar holds it (`name_raw` where it is not UTF-8).
fn entry_name(entry: &Entry) -> io::Result<String> {
    match (&entry.name_raw, &entry.name) {
        (Some(raw), _) if !raw.is_empty() => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(raw)
                .map_err(|e| invalid(format!("a tar-split name is not base64: {e}")))?;
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        }
        (_, Some(name)) => Ok(name.clone()),
        _ => Err(invalid("a tar-split file entry has no name".into())),
    }
}

/// Opens regular file `name` (a tar member's name) beneath `dir` for
/// reading, never through a link and never outside it.
fn open_beneath(dir: &LayoutDir, name: &str) -> io::Result<File> {
    let relative = name.trim_start_matches("./").trim_start_matches('/');
    let shown = || crate::display::escape(name).into_owned();
    let fd = rustix::fs::openat2(
        dir.fd(),
        relative,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|errno| invalid(format!("{}: {errno}", shown())))?;
    let kind = rustix::fs::FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode);
    if kind != rustix::fs::FileType::RegularFile {
        return Err(invalid(format!("{} is not a regular file", shown())));
    }
    rustix::fs::fcntl_setfl(&fd, OFlags::empty())?;
    Ok(File::from(fd))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::Path;

    use super::*;

    #[test]
    fn a_chain_id_is_the_digest_of_the_one_below_a_space_and_the_diff_id() {
        let (a, b, c) = (Digest::of(b"a"), Digest::of(b"b"), Digest::of(b"c"));
        let chain = chain_ids(&[a.clone(), b.clone(), c.clone()]);
        let second = Digest::of(format!("{a} {b}").as_bytes());
        let third = Digest::of(format!("{second} {c}").as_bytes());
        assert_eq!(chain, [a, second, third]);
    }

    /// A layer's record and files: the tar-split of `pieces` (bytes, or a
    /// file's name and content) gzipped, and each file written beneath.
    fn layer(pieces: &[(&str, &[u8])]) -> (tempfile::TempDir, Vec<u8>) {
        let temp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(temp.path().join("diff/etc")).unwrap();
        let mut json = String::new();
        let mut tar = Vec::new();
        for (position, (name, bytes)) in pieces.iter().enumerate() {
            let payload = base64::engine::general_purpose::STANDARD.encode(bytes);
            if name.is_empty() {
                json +=
                    &format!("{{\"type\":2,\"payload\":\"{payload}\",\"position\":{position}}}\n");
            } else {
                std::fs::write(temp.path().join("diff").join(name), bytes).unwrap();
                json += &format!(
                    "{{\"type\":1,\"name\":\"{name}\",\"size\":{},\"payload\":null,\"position\":{position}}}\n",
                    bytes.len()
                );
            }
            tar.extend_from_slice(bytes);
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(json.as_bytes()).unwrap();
        std::fs::write(temp.path().join("tar-split.json.gz"), gz.finish().unwrap()).unwrap();
        (temp, tar)
    }

    fn rebuild(temp: &Path) -> io::Result<Vec<u8>> {
        let record = LayoutDir::open(temp)?;
        let files = record.subdir(&["diff"], None)?;
        let mut out = Vec::new();
        Reassembled::new(&record, &files)?.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn a_layer_is_rebuilt_from_its_headers_and_files_with_the_size_they_tell() {
        let (temp, tar) = layer(&[
            ("", b"header one"),
            ("etc/hostname", b"airgap\n"),
            ("", b"pad+header two="),
            ("etc/empty", b""),
            // Segments of every length modulo 3: base64 with 0, 1 and 2 `=`.
            ("", b"x"),
            ("", b"end-archive"),
        ]);
        assert_eq!(rebuild(temp.path()).unwrap(), tar);
        let record = LayoutDir::open(temp.path()).unwrap();
        assert_eq!(tar_size(&record).unwrap(), tar.len() as u64);
    }

    #[test]
    fn a_name_through_a_link_or_out_of_the_layer_is_not_read() {
        for name in ["link/hostname", "../outside", "etc/../../outside"] {
            let (temp, _) = layer(&[("", b"header"), ("etc/hostname", b"airgap\n")]);
            std::fs::write(temp.path().join("outside"), b"secret\n").unwrap();
            std::os::unix::fs::symlink(temp.path().join("diff/etc"), temp.path().join("diff/link"))
                .unwrap();
            // The same record, its file entry renamed.
            let json = format!(
                "{{\"type\":1,\"name\":\"{name}\",\"size\":7,\"payload\":null,\"position\":0}}\n"
            );
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(json.as_bytes()).unwrap();
            std::fs::write(temp.path().join("tar-split.json.gz"), gz.finish().unwrap()).unwrap();
            let error = rebuild(temp.path()).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{name}: {error}");
        }
    }

    #[test]
    fn a_file_shorter_than_its_header_says_is_an_error() {
        let (temp, _) = layer(&[("", b"header"), ("etc/hostname", b"airgap\n")]);
        std::fs::write(temp.path().join("diff/etc/hostname"), b"air").unwrap();
        let error = rebuild(temp.path()).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof, "{error}");
    }
}
