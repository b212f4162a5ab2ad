//! The two passes over an image archive file, plain or compressed. Pass 1
//! reads the tar headers and keeps only small metadata (`manifest.json`,
//! `index.json`, manifests, configs), skipping layer bodies (by seeking in a
//! plain file, by decoding past them in a compressed one). Pass 2 streams
//! exactly the wanted layers into the layer sink. Nothing is decompressed
//! to disk whole.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek};
use std::path::Path;

use crate::digest::{Digest, HashingReader};
use crate::files::untrusted::{Links, open_regular};
use crate::media::compression::{self, Compression};
use crate::media::source::{LayerSink, SourceError};
use crate::media::tar_guard::TarGuard;
use crate::progress::{Progress, ProgressReader};
use crate::store::StagedLayer;
use crate::store::stage;

use super::contents::{named_digest, normalise};

/// Largest metadata file (manifest.json, index.json, manifest, config) kept.
pub const METADATA_LIMIT: u64 = 16 << 20;

/// Most metadata kept from one archive in all.
const METADATA_TOTAL_LIMIT: u64 = 256 << 20;

/// What pass 1 found in a tar.
#[derive(Debug, Default)]
pub struct Scanned {
    /// How the file is compressed as a whole.
    pub compression: Option<Compression>,
    /// Regular files by normalised path, with their size.
    pub files: HashMap<String, u64>,
    /// Links by normalised path, to normalised targets.
    pub links: HashMap<String, String>,
    /// The small metadata files, by normalised path.
    pub metadata: HashMap<String, Vec<u8>>,
    /// The size of each compressed file once decompressed, by normalised
    /// path, where the scan was asked to count them.
    pub decompressed: HashMap<String, u64>,
}

impl Scanned {
    /// Follows links from `path` to a regular file's path.
    pub fn resolve<'s>(&'s self, path: &'s str) -> Option<&'s str> {
        let mut path = path;
        for _ in 0..16 {
            if let Some((found, _)) = self.files.get_key_value(path) {
                return Some(found.as_str());
            }
            path = self.links.get(path)?;
        }
        None
    }

    /// The metadata file at `path`: `Ok(None)` where nothing is there, an
    /// error where a file is there but was too large to be metadata.
    pub fn metadata(&self, path: &str) -> Result<Option<&[u8]>, SourceError> {
        let Some(found) = self.resolve(path) else {
            return Ok(None);
        };
        match self.metadata.get(found) {
            Some(bytes) => Ok(Some(bytes)),
            None => Err(malformed(format!(
                "{path} is not a metadata file of at most {METADATA_LIMIT} bytes"
            ))),
        }
    }
}

/// Opens the archive file the user named and tells its compression.
fn open(path: &Path) -> Result<(File, Compression), SourceError> {
    let mut file = open_regular(path, Links::Follow).map_err(SourceError::Read)?;
    let head =
        compression::read_head(&mut file, compression::MAGIC_LEN).map_err(SourceError::Read)?;
    file.rewind().map_err(SourceError::Read)?;
    Ok((file, Compression::sniff(&head)))
}

/// Pass 1 over the tar at `path`.
pub fn scan(path: &Path) -> Result<Scanned, SourceError> {
    let (file, compression) = open(path)?;
    let mut scanned = if compression == Compression::None {
        let mut archive = tar::Archive::new(TarGuard::new(BufReader::with_capacity(1 << 16, file)));
        let entries = archive
            .entries_with_seek()
            .map_err(|e| not_tar(e, compression))?;
        scan_entries(entries, compression, false)?
    } else {
        let (_, decoded) = compression::decoded(file).map_err(SourceError::Read)?;
        let mut archive = tar::Archive::new(TarGuard::new(decoded));
        let entries = archive.entries().map_err(|e| not_tar(e, compression))?;
        scan_entries(entries, compression, false)?
    };
    scanned.compression = Some(compression);
    Ok(scanned)
}

/// The uncompressed size of every layer of every image in the image
/// archive `input` streams (an engine's export), by diff ID. A compressed
/// layer is decompressed to count it (nothing is written anywhere); the
/// others are their tar entry's size.
pub fn count_layers(input: impl Read) -> Result<HashMap<Digest, u64>, SourceError> {
    let buffered = BufReader::with_capacity(1 << 20, input);
    let mut archive = tar::Archive::new(TarGuard::new(buffered));
    let entries = archive
        .entries()
        .map_err(|e| not_tar(e, Compression::None))?;
    let scanned = scan_entries(entries, Compression::None, true)?;
    let catalogue = super::catalogue::of_tar(&scanned)?;
    let mut sizes = HashMap::new();
    for image in catalogue.images {
        for layer in image.layers {
            let Some(path) = layer.path else { continue };
            let size = scanned
                .decompressed
                .get(&path)
                .copied()
                .unwrap_or(layer.size);
            sizes.insert(layer.wanted.diff_id, size);
        }
    }
    Ok(sizes)
}

fn scan_entries<R: Read>(
    entries: tar::Entries<'_, R>,
    compression: Compression,
    count_decompressed: bool,
) -> Result<Scanned, SourceError> {
    let mut scanned = Scanned::default();
    let mut kept = 0u64;
    for entry in entries {
        let mut entry = entry.map_err(|e| not_tar(e, compression))?;
        let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = normalise(Path::new(&raw_path))
            .ok_or_else(|| malformed(format!("entry path {raw_path}")))?;
        if path == crate::bundle::MANIFEST_PATH {
            // A bundle's inside reads as an archive too, but it is carried
            // to the site whole, verified, not packed again unverified.
            return Err(malformed("it is an airgap bundle".into()));
        }
        let kind = entry.header().entry_type();
        match kind {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .ok_or_else(|| malformed(format!("link {path} has no target")))?;
                let base = if kind == tar::EntryType::Symlink {
                    Path::new(&path)
                        .parent()
                        .unwrap_or(Path::new(""))
                        .join(&target)
                } else {
                    Path::new(&target).to_owned()
                };
                let target = normalise(&base)
                    .ok_or_else(|| malformed(format!("link {path} points outside")))?;
                scanned.links.insert(path, target);
            }
            tar::EntryType::Regular => {
                let size = entry.size();
                match read_if_metadata(&mut entry, &path, size)? {
                    Start::Metadata(bytes) => {
                        kept += bytes.len() as u64;
                        if kept > METADATA_TOTAL_LIMIT {
                            return Err(malformed(format!(
                                "it holds more than {METADATA_TOTAL_LIMIT} bytes of metadata"
                            )));
                        }
                        scanned.metadata.insert(path.clone(), bytes);
                    }
                    Start::Other { head } if count_decompressed => {
                        let (compression, mut decoded) =
                            compression::decoded_here(io::Cursor::new(head).chain(&mut entry))
                                .map_err(SourceError::Read)?;
                        if compression != Compression::None {
                            let counted = io::copy(&mut decoded, &mut io::sink()).map_err(|e| {
                                malformed(format!("{path} does not decompress: {e}"))
                            })?;
                            scanned.decompressed.insert(path.clone(), counted);
                        }
                    }
                    Start::Other { .. } => {}
                }
                scanned.files.insert(path, size);
            }
            _ => {}
        }
    }
    Ok(scanned)
}

/// What [`read_if_metadata`] found at the start of an entry.
enum Start {
    /// The whole entry: it is metadata.
    Metadata(Vec<u8>),
    /// Something else; `head` is what was read of it.
    Other { head: Vec<u8> },
}

/// The whole entry if it is small metadata: the files image archives keep
/// their descriptions in by name, or a blob that is JSON (a layer is a tar
/// or compressed, and never starts with `{`).
fn read_if_metadata(entry: &mut impl Read, path: &str, size: u64) -> Result<Start, SourceError> {
    let named = matches!(
        path,
        "manifest.json" | "index.json" | "oci-layout" | "version"
    ) || (path.ends_with(".json") && !path.contains('/'));
    let blob = path.starts_with("blobs/") && size <= METADATA_LIMIT;
    if !named && !blob {
        return Ok(Start::Other { head: Vec::new() });
    }
    let mut first = [0u8; 1];
    let read = entry.read(&mut first).map_err(SourceError::Read)?;
    if blob && !named && (read == 0 || first[0] != b'{') {
        return Ok(Start::Other {
            head: first[..read].to_vec(),
        });
    }
    if size > METADATA_LIMIT {
        return Err(malformed(format!(
            "{path} is larger than {METADATA_LIMIT} bytes"
        )));
    }
    let mut bytes = first[..read].to_vec();
    entry
        .take(METADATA_LIMIT)
        .read_to_end(&mut bytes)
        .map_err(SourceError::Read)?;
    Ok(Start::Metadata(bytes))
}

/// A layer pass 2 is to deliver.
#[derive(Clone, Debug)]
pub struct WantedLayer {
    /// The config's diff ID for it.
    pub diff_id: Digest,
    /// The digest its path names (an OCI blob), checked against the bytes.
    pub named: Option<Digest>,
}

/// What pass 2 did with a wanted layer: its uncompressed digest and size
/// (a digest other than the diff ID means it was not handed over).
pub type Delivered = HashMap<String, (Digest, u64)>;

/// Pass 2: streams the layers at the `wanted` paths (resolved, regular
/// files) into `layers`, stopping once all have passed.
pub fn deliver(
    path: &Path,
    wanted: &HashMap<String, WantedLayer>,
    layers: &mut dyn LayerSink,
    progress: &dyn Progress,
) -> Result<Delivered, SourceError> {
    let (file, compression) = open(path)?;
    let mut delivered = Delivered::new();
    if wanted.is_empty() {
        return Ok(delivered);
    }
    let counted = ProgressReader::new(file, progress);
    let (_, decoded) = compression::decoded(counted).map_err(SourceError::Read)?;
    let mut archive = tar::Archive::new(TarGuard::new(decoded));
    for entry in archive.entries().map_err(|e| not_tar(e, compression))? {
        let entry = entry.map_err(|e| not_tar(e, compression))?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(path) = normalise(Path::new(&raw_path)) else {
            continue;
        };
        let Some(layer) = wanted.get(&path) else {
            continue;
        };
        let size = entry.size();
        let result = deliver_layer(entry, size, &path, layer, layers)?;
        delivered.insert(path, result);
        if delivered.len() == wanted.len() {
            break;
        }
    }
    Ok(delivered)
}

/// Hands one layer to `layers`: streamed where it is a plain tar named by
/// its diff ID and the sink takes streams, staged (and decompressed)
/// otherwise. Returns its uncompressed digest and size.
pub fn deliver_layer(
    content: impl Read,
    size: u64,
    path: &str,
    layer: &WantedLayer,
    layers: &mut dyn LayerSink,
) -> Result<(Digest, u64), SourceError> {
    if layer.named.as_ref() == Some(&layer.diff_id) && layers.takes_stream(&layer.diff_id) {
        let mut hashing = HashingReader::new(content);
        layers.stream_layer(&layer.diff_id, size, &mut (&mut hashing).take(size))?;
        let (actual, read) = hashing.finish();
        if read != size {
            return Err(malformed(format!("{path} ends early")));
        }
        return Ok((actual, size));
    }
    let staged_path = tempfile::Builder::new()
        .prefix("archive-")
        .tempfile_in(layers.staging_dir())
        .and_then(|t| t.into_temp_path().keep().map_err(|e| e.error))
        .map_err(|source| SourceError::Stage {
            path: layers.staging_dir().to_owned(),
            source,
        })?;
    let staged = stage::stage(content, &staged_path).map_err(|source| {
        let _ = std::fs::remove_file(&staged_path);
        match source.kind() {
            io::ErrorKind::InvalidData
            | io::ErrorKind::InvalidInput
            | io::ErrorKind::UnexpectedEof => {
                malformed(format!("{path} does not decompress: {source}"))
            }
            _ => SourceError::Stage {
                path: staged_path.clone(),
                source,
            },
        }
    })?;
    let discard = |error: SourceError| {
        let _ = std::fs::remove_file(&staged_path);
        Err(error)
    };
    if let Some(named) = layer.named.as_ref().or(named_digest(path).as_ref()) {
        if named != &staged.archived_digest {
            return discard(malformed(format!(
                "{path} does not hash to its name (it hashes to {})",
                staged.archived_digest
            )));
        }
    }
    let result = (staged.digest.clone(), staged.size);
    if staged.digest != layer.diff_id || layers.has_layer(&staged.digest) {
        let _ = std::fs::remove_file(&staged_path);
    } else {
        layers.put_layer(StagedLayer {
            path: staged.path,
            digest: staged.digest,
            size: staged.size,
        })?;
    }
    Ok(result)
}

/// A tar error, escaped (a file that is no tar gives binary in it).
fn not_tar(error: io::Error, compression: Compression) -> SourceError {
    if error.kind() == io::ErrorKind::Other || error.kind() == io::ErrorKind::InvalidData {
        // The tar reader's message quotes the bytes it choked on: noise.
        malformed(format!(
            "it is not an image archive: {}, its content is not a readable tar",
            compression.adjective()
        ))
    } else {
        SourceError::Read(error)
    }
}

fn malformed(reason: String) -> SourceError {
    SourceError::Malformed { reason }
}
