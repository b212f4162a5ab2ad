//! Reads a `docker save` archive as it streams past, in any of the layouts
//! engines write: Docker ≤ 24's legacy one (`<id>/layer.tar`, duplicate layers
//! as symlinks), Docker 25+'s OCI layout with `manifest.json`, and Podman's
//! (`<diffid>.tar` files with symlinks). Blobs are staged on disk; layers the
//! caller expects go to the layer sink at once so compression overlaps the save.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use crate::bundle::layout::DockerLoadEntry;
use crate::digest::{Digest, HashingReader};
use crate::media::source::{LayerSink, SourceError};
use crate::media::tar_guard::TarGuard;
use crate::progress::{Progress, ProgressReader};
use crate::store::StagedLayer;

use crate::store::stage::{self, StagedBlob};

/// Largest metadata file (manifest.json, index.json, config) read into memory.
const METADATA_LIMIT: u64 = 16 << 20;

/// A file of the archive, by what became of it.
#[derive(Debug)]
pub enum ArchiveFile {
    /// A layer already handed to the layer sink.
    Layer {
        /// Its uncompressed digest.
        digest: Digest,
        /// Its uncompressed size.
        size: u64,
    },
    /// Staged on disk, not yet classified.
    Staged(StagedBlob),
}

/// Everything an archive held, once it has streamed past.
#[derive(Debug, Default)]
pub struct ArchiveContents {
    /// The `docker load` manifest.
    pub docker_manifest: Vec<DockerLoadEntry>,
    /// Files by normalised archive path.
    pub files: HashMap<String, ArchiveFile>,
    /// Links by normalised archive path, to normalised target paths.
    pub links: HashMap<String, String>,
}

/// Streams `input` (a `docker save` tar), staging blobs in `staging`.
/// Layers whose uncompressed digest is in `expected_layers` are handed to
/// `layers` as soon as they are staged. With `skim`, a layer the sink
/// [skims](LayerSink::skims) by its size is only hashed; one that then turns
/// out to be needed fails the read with [`SourceError::SkimmedNeeded`], and
/// the caller must read the archive again without `skim`.
pub fn read_archive(
    input: impl Read,
    staging: &Path,
    expected_layers: &HashSet<Digest>,
    layers: &mut dyn LayerSink,
    skim: bool,
    progress: &dyn Progress,
) -> Result<ArchiveContents, SourceError> {
    // tar reads headers 512 bytes at a time: from an archive file each read
    // would be a system call.
    let buffered = std::io::BufReader::with_capacity(1 << 20, input);
    let mut archive = tar::Archive::new(TarGuard::new(ProgressReader::new(buffered, progress)));
    let mut contents = ArchiveContents::default();
    let mut docker_manifest = None;
    for entry in archive.entries().map_err(SourceError::Read)? {
        let entry = entry.map_err(SourceError::Read)?;
        let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = normalise(Path::new(&raw_path))
            .ok_or_else(|| malformed(format!("entry path {raw_path:?}")))?;
        match entry.header().entry_type() {
            tar::EntryType::Directory => {}
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned());
                let target =
                    target.ok_or_else(|| malformed(format!("link {path} has no target")))?;
                let base = if entry.header().entry_type() == tar::EntryType::Symlink {
                    Path::new(&path)
                        .parent()
                        .unwrap_or(Path::new(""))
                        .join(&target)
                } else {
                    PathBuf::from(&target)
                };
                let target = normalise(&base)
                    .ok_or_else(|| malformed(format!("link {path} points outside")))?;
                contents.links.insert(path, target);
            }
            tar::EntryType::Regular => {
                if path == "manifest.json" {
                    let bytes = read_metadata(entry, &path)?;
                    let parsed: Vec<DockerLoadEntry> = serde_json::from_slice(&bytes)
                        .map_err(|e| malformed(format!("manifest.json: {e}")))?;
                    docker_manifest = Some(parsed);
                } else if is_ignored(&path) {
                    continue;
                } else if let Some(digest) = expected_named_layer(&path, expected_layers)
                    .filter(|d| needs_no_bytes(layers, d))
                {
                    let size = entry.size();
                    check_named_digest(&path, &hash_only(entry)?)?;
                    contents
                        .files
                        .insert(path, ArchiveFile::Layer { digest, size });
                } else if skim && layers.skims(entry.size()) && named_digest(&path).is_none() {
                    let size = entry.size();
                    let digest = hash_only(entry)?;
                    if !needs_no_bytes(layers, &digest) {
                        return Err(SourceError::SkimmedNeeded { digest });
                    }
                    contents
                        .files
                        .insert(path, ArchiveFile::Layer { digest, size });
                } else if let Some(digest) =
                    expected_named_layer(&path, expected_layers).filter(|d| layers.takes_stream(d))
                {
                    let size = entry.size();
                    let mut hashing = HashingReader::new(entry);
                    layers.stream_layer(&digest, size, &mut hashing)?;
                    check_named_digest(&path, &hashing.finish().0)?;
                    contents
                        .files
                        .insert(path, ArchiveFile::Layer { digest, size });
                } else {
                    // A name of its own: several exports (a combined
                    // source's members) stage into one directory, and a
                    // layer may wait there for its turn in the bundle.
                    let staged_path = tempfile::Builder::new()
                        .prefix("blob-")
                        .tempfile_in(staging)
                        .and_then(|t| t.into_temp_path().keep().map_err(|e| e.error))
                        .map_err(|source| SourceError::Stage {
                            path: staging.to_owned(),
                            source,
                        })?;
                    let staged =
                        stage::stage(entry, &staged_path).map_err(|source| SourceError::Stage {
                            path: staged_path.clone(),
                            source,
                        })?;
                    check_named_digest(&path, &staged.archived_digest)?;
                    let file = if expected_layers.contains(&staged.digest) {
                        hand_over(staged, layers)?
                    } else {
                        ArchiveFile::Staged(staged)
                    };
                    contents.files.insert(path, file);
                }
            }
            other => {
                return Err(malformed(format!(
                    "entry {path} has unexpected type {other:?}"
                )));
            }
        }
    }
    contents.docker_manifest = docker_manifest.ok_or_else(|| {
        malformed("it has no manifest.json (is it a docker save archive?)".into())
    })?;
    Ok(contents)
}

/// Gives a staged layer to the sink, or drops it if the sink has it.
pub fn hand_over(
    staged: StagedBlob,
    layers: &mut dyn LayerSink,
) -> Result<ArchiveFile, SourceError> {
    let file = ArchiveFile::Layer {
        digest: staged.digest.clone(),
        size: staged.size,
    };
    if layers.has_layer(&staged.digest) {
        let _ = fs::remove_file(&staged.path);
    } else {
        layers.put_layer(StagedLayer {
            path: staged.path,
            digest: staged.digest,
            size: staged.size,
        })?;
    }
    Ok(file)
}

impl ArchiveContents {
    /// Follows links to the file at `path`.
    pub fn resolve(&self, path: &str) -> Option<(&str, &ArchiveFile)> {
        let mut path = path;
        for _ in 0..16 {
            if let Some(file) = self.files.get_key_value(path) {
                return Some((file.0.as_str(), file.1));
            }
            path = self.links.get(path)?;
        }
        None
    }

    /// The staged blob whose archived bytes have `digest`.
    pub fn staged_with_digest(&self, digest: &Digest) -> Option<&StagedBlob> {
        self.files.values().find_map(|file| match file {
            ArchiveFile::Staged(staged) if &staged.archived_digest == digest => Some(staged),
            _ => None,
        })
    }

    /// Reads a staged metadata blob (config, manifest, index) into memory.
    pub fn read_staged(staged: &StagedBlob) -> Result<Vec<u8>, SourceError> {
        let stage_error = |source| SourceError::Stage {
            path: staged.path.clone(),
            source,
        };
        let file = fs::File::open(&staged.path).map_err(stage_error)?;
        let mut bytes = Vec::new();
        file.take(METADATA_LIMIT + 1)
            .read_to_end(&mut bytes)
            .map_err(stage_error)?;
        if bytes.len() as u64 > METADATA_LIMIT {
            return Err(malformed(format!(
                "metadata blob {} is larger than {METADATA_LIMIT} bytes",
                staged.digest
            )));
        }
        Ok(bytes)
    }

    /// Replaces a staged layer by its handed-over form.
    pub fn mark_handed_over(&mut self, path: &str, file: ArchiveFile) {
        self.files.insert(path.to_owned(), file);
    }
}

/// Engine bookkeeping files that carry nothing a bundle needs.
fn is_ignored(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    matches!(path, "repositories" | "oci-layout" | "index.json")
        || (path.contains('/') && !path.starts_with("blobs/") && matches!(name, "json" | "VERSION"))
}

/// The digest of an OCI layout blob that is an expected layer: its name
/// is its digest, so it need not be staged to learn it.
fn expected_named_layer(path: &str, expected_layers: &HashSet<Digest>) -> Option<Digest> {
    named_digest(path).filter(|digest| expected_layers.contains(digest))
}

/// True when the sink needs no bytes of the layer `digest` (the bundle
/// leaves it out, or has it already), so that it is only hashed.
fn needs_no_bytes(layers: &dyn LayerSink, digest: &Digest) -> bool {
    layers.is_left_out(digest) || layers.has_layer(digest)
}

/// The digest of a layer read without keeping its bytes.
fn hash_only(entry: impl Read) -> Result<Digest, SourceError> {
    let mut hashing = HashingReader::new(entry);
    std::io::copy(&mut hashing, &mut std::io::sink()).map_err(SourceError::Read)?;
    Ok(hashing.finish().0)
}

/// The digest a blob's path names (`blobs/sha256/<hex>`, `<hex>.json`), if any.
pub(super) fn named_digest(path: &str) -> Option<Digest> {
    path.strip_prefix("blobs/sha256/")
        .or_else(|| path.strip_suffix(".json").filter(|hex| !hex.contains('/')))
        .and_then(|hex| Digest::from_hex(hex).ok())
}

/// Blobs named after their digest must hash to that name (`archived`, the
/// digest of the bytes as the archive held them): the first check of the
/// engine's export.
fn check_named_digest(path: &str, archived: &Digest) -> Result<(), SourceError> {
    match named_digest(path) {
        Some(named) if &named != archived => Err(malformed(format!(
            "{path} does not hash to its name (it hashes to {archived})"
        ))),
        _ => Ok(()),
    }
}

fn read_metadata(entry: impl Read, path: &str) -> Result<Vec<u8>, SourceError> {
    let mut bytes = Vec::new();
    entry
        .take(METADATA_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(SourceError::Read)?;
    if bytes.len() as u64 > METADATA_LIMIT {
        return Err(malformed(format!(
            "{path} is larger than {METADATA_LIMIT} bytes"
        )));
    }
    Ok(bytes)
}

/// A relative path without `.` components, or `None` if it escapes.
pub(super) fn normalise(path: &Path) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

fn malformed(reason: String) -> SourceError {
    SourceError::Malformed { reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;

    /// Takes every layer as a stream and keeps what it was given.
    struct StreamingSink {
        staging: tempfile::TempDir,
        streamed: Vec<(Digest, Vec<u8>)>,
    }

    impl LayerSink for StreamingSink {
        fn staging_dir(&self) -> &Path {
            self.staging.path()
        }
        fn has_layer(&self, _: &Digest) -> bool {
            false
        }
        fn put_layer(&mut self, layer: StagedLayer) -> Result<(), SourceError> {
            panic!("layer {} was staged, not streamed", layer.digest)
        }
        fn takes_stream(&self, _: &Digest) -> bool {
            true
        }
        fn stream_layer(
            &mut self,
            digest: &Digest,
            size: u64,
            content: &mut dyn Read,
        ) -> Result<(), SourceError> {
            let mut bytes = Vec::new();
            content.read_to_end(&mut bytes).map_err(SourceError::Read)?;
            assert_eq!(bytes.len() as u64, size);
            self.streamed.push((digest.clone(), bytes));
            Ok(())
        }
    }

    /// An OCI-layout archive holding `content` under the name `named`, and
    /// a `manifest.json`.
    fn oci_archive(named: &Digest, content: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        crate::bundle::tar_stream::append_bytes(&mut out, &named.blob_path(), content).unwrap();
        crate::bundle::tar_stream::append_bytes(&mut out, "manifest.json", b"[]").unwrap();
        crate::bundle::tar_stream::finish(&mut out).unwrap();
        out
    }

    fn read_streaming(
        archive: &[u8],
        expected: &Digest,
    ) -> (Result<ArchiveContents, SourceError>, StreamingSink) {
        let mut sink = StreamingSink {
            staging: tempfile::tempdir().unwrap(),
            streamed: Vec::new(),
        };
        let staging = sink.staging.path().to_owned();
        let expected = HashSet::from([expected.clone()]);
        let read = read_archive(archive, &staging, &expected, &mut sink, false, &NoProgress);
        (read, sink)
    }

    #[test]
    fn an_expected_layer_named_by_its_digest_streams_through_unstaged() {
        let layer = b"layer bytes".repeat(1000);
        let digest = Digest::of(&layer);
        let (read, sink) = read_streaming(&oci_archive(&digest, &layer), &digest);
        let contents = read.unwrap();
        assert_eq!(sink.streamed, vec![(digest.clone(), layer.clone())]);
        assert!(matches!(
            contents.files.get(&digest.blob_path()),
            Some(ArchiveFile::Layer { digest: d, size }) if d == &digest && *size == layer.len() as u64
        ));
        assert_eq!(fs::read_dir(sink.staging.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_streamed_layer_that_does_not_hash_to_its_name_fails_the_read() {
        let layer = b"layer bytes".repeat(1000);
        let digest = Digest::of(&layer);
        let mut altered = layer.clone();
        altered[5000] ^= 1;
        let (read, _) = read_streaming(&oci_archive(&digest, &altered), &digest);
        let message = read.unwrap_err().to_string();
        assert!(message.contains("does not hash to its name"), "{message}");
    }

    /// Stages what it is given, skims layers of `skimmed` sizes and
    /// leaves out `left_out`.
    struct SkimmingSink {
        staging: tempfile::TempDir,
        skimmed: HashSet<u64>,
        left_out: HashSet<Digest>,
        staged: Vec<Digest>,
    }

    impl LayerSink for SkimmingSink {
        fn staging_dir(&self) -> &Path {
            self.staging.path()
        }
        fn has_layer(&self, digest: &Digest) -> bool {
            self.staged.contains(digest)
        }
        fn put_layer(&mut self, layer: StagedLayer) -> Result<(), SourceError> {
            self.staged.push(layer.digest);
            Ok(())
        }
        fn is_left_out(&self, digest: &Digest) -> bool {
            self.left_out.contains(digest)
        }
        fn skims(&self, size: u64) -> bool {
            self.skimmed.contains(&size)
        }
    }

    /// A legacy archive (`<id>/layer.tar`) of `layers`, and a `manifest.json`.
    fn legacy_archive(layers: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, layer) in layers.iter().enumerate() {
            let path = format!("{i:064x}/layer.tar");
            crate::bundle::tar_stream::append_bytes(&mut out, &path, layer).unwrap();
        }
        crate::bundle::tar_stream::append_bytes(&mut out, "manifest.json", b"[]").unwrap();
        crate::bundle::tar_stream::finish(&mut out).unwrap();
        out
    }

    fn read_skimming(
        archive: &[u8],
        left_out: &[u8],
        skim: bool,
    ) -> (Result<ArchiveContents, SourceError>, SkimmingSink) {
        let mut sink = SkimmingSink {
            staging: tempfile::tempdir().unwrap(),
            skimmed: HashSet::from([left_out.len() as u64]),
            left_out: HashSet::from([Digest::of(left_out)]),
            staged: Vec::new(),
        };
        let staging = sink.staging.path().to_owned();
        let read = read_archive(
            archive,
            &staging,
            &HashSet::new(),
            &mut sink,
            skim,
            &NoProgress,
        );
        (read, sink)
    }

    #[test]
    fn a_left_out_layer_of_a_known_size_is_only_hashed() {
        let (left_out, needed) = (b"left out".repeat(100), b"needed".repeat(100));
        let archive = legacy_archive(&[&left_out, &needed]);
        let (read, sink) = read_skimming(&archive, &left_out, true);
        let contents = read.unwrap();
        assert!(matches!(
            contents.files.get(&format!("{:064x}/layer.tar", 0)),
            Some(ArchiveFile::Layer { digest, size }) if *digest == Digest::of(&left_out) && *size == 800
        ));
        assert!(sink.staged.is_empty());
        let staged_files = fs::read_dir(sink.staging.path()).unwrap().count();
        assert_eq!(staged_files, 1, "only the needed layer is staged");
    }

    #[test]
    fn a_needed_layer_of_a_left_out_size_fails_a_skimming_read_but_not_a_staging_one() {
        let left_out = b"left out".repeat(100);
        let needed = b"needed!!".repeat(100);
        let archive = legacy_archive(&[&needed, &left_out]);
        let (read, _) = read_skimming(&archive, &left_out, true);
        assert!(
            matches!(read, Err(SourceError::SkimmedNeeded { ref digest }) if *digest == Digest::of(&needed)),
            "{read:?}"
        );
        let (read, _) = read_skimming(&archive, &left_out, false);
        let contents = read.unwrap();
        assert!(matches!(
            contents.files.get(&format!("{:064x}/layer.tar", 0)),
            Some(ArchiveFile::Staged(staged)) if staged.digest == Digest::of(&needed)
        ));
    }

    #[test]
    fn paths_normalise_and_escapes_are_caught() {
        assert_eq!(normalise(Path::new("./a/b")).as_deref(), Some("a/b"));
        assert_eq!(normalise(Path::new("a/x/../b")).as_deref(), Some("a/b"));
        assert_eq!(normalise(Path::new("a/../../b")), None);
        assert_eq!(normalise(Path::new("/etc/passwd")), None);
    }

    #[test]
    fn engine_bookkeeping_is_ignored_but_blobs_are_not() {
        assert!(is_ignored("repositories"));
        assert!(is_ignored("abc/json"));
        assert!(is_ignored("abc/VERSION"));
        assert!(!is_ignored("abc/layer.tar"));
        assert!(!is_ignored("blobs/sha256/abc"));
        assert!(!is_ignored("abc.json"));
    }
}
