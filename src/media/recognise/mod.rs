//! What a file or directory holds, told by its content, never by its name:
//! an airgap bundle (whole, a part, a parts index or their directory), an
//! image archive of one of the kinds other tools write, a root filesystem
//! (`docker export`), or none of these; each with its outer compression.
//! Each kind comes with the one line a person needs: what it is and the
//! command that handles it.
//!
//! A file is read in one pass over its tar headers: bodies are skipped
//! (seeking in an uncompressed file, decoded as they stream otherwise, never
//! staged), and only small metadata is kept, at most [`scan::METADATA_LIMIT`]
//! bytes. The walk is bounded too, so a hostile file can neither hang it
//! nor exhaust memory.

mod dir;
mod line;
mod scan;
mod walk;

#[cfg(test)]
mod tests;

use std::io::{BufReader, Seek};
use std::path::{Path, PathBuf};

use crate::bundle::MANIFEST_PATH;
use crate::bundle::parts::{self, PartsIndex};
use crate::error::ErrorKind;
use crate::files::untrusted::{self, Links};
use crate::media::compression::{self, Compression};
use scan::{Consumed, Counting, Facts, ROOTFS_DIRS, Stopped};
use walk::{Input, Walker};

/// What a path holds, and how it is compressed.
#[derive(Clone, Debug)]
pub struct Recognised {
    /// The path as named.
    pub path: PathBuf,
    /// What it is.
    pub kind: Kind,
    /// Its outer compression (`None` for a directory).
    pub compression: Compression,
}

/// The kinds told apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A whole airgap bundle (or its tar, if not zstd-compressed).
    Bundle,
    /// One part of a split bundle, as its index beside it lists it.
    BundlePart {
        /// The bundle's name, from the index.
        bundle: String,
        /// Where the split bundle is named (its index without `.parts`).
        named: PathBuf,
        /// Which part, from 1.
        number: usize,
        /// Of how many.
        of: usize,
    },
    /// The index of a split bundle.
    PartsIndex {
        /// The bundle's name, from the index.
        bundle: String,
        /// Where the split bundle is named.
        named: PathBuf,
    },
    /// A directory holding a split bundle.
    PartsDirectory {
        /// The bundle's name, from its index.
        bundle: String,
    },
    /// `docker save` of Docker 24 or earlier: `manifest.json` naming `<id>/layer.tar`.
    DockerLegacy,
    /// `docker save` of Docker 25 or later: an OCI layout and `manifest.json`, layers uncompressed.
    DockerOci,
    /// `docker save` on the containerd image store: as Docker 25, with the layers as pulled.
    ContainerdSave {
        /// How the layers are compressed.
        layers: Compression,
    },
    /// `podman save`, skopeo `docker-archive:`: `manifest.json` naming `<hex>.tar` layers.
    DockerArchive,
    /// `podman save --format oci-archive`, skopeo `oci-archive:`.
    OciArchive,
    /// An OCI image layout directory (skopeo `oci:`, `airgap unpack --to oci:`).
    OciLayout,
    /// A skopeo `dir:` directory.
    SkopeoDir,
    /// A root filesystem: `docker export` output when `.dockerenv` is in it.
    RootFilesystem {
        /// `.dockerenv` is there: `docker export` made it.
        docker_export: bool,
    },
    /// A `docker save` from before Docker 1.10: `repositories` and `<id>/json` only.
    PreV110,
    /// None of the above.
    Other(Why),
}

/// Why something is neither a bundle nor an image archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Why {
    /// The file is empty.
    Empty,
    /// Not a tar; its first bytes.
    NotATar {
        /// Up to 8 of them.
        start: Vec<u8>,
    },
    /// A tar with no entries.
    EmptyTar,
    /// A tar of something else.
    OtherTar {
        /// Its first entry's path.
        first_entry: String,
    },
    /// Cut short or undecodable after this many entries.
    Damaged {
        /// Entries read before.
        entries: u64,
    },
    /// The walk hit its bounds before anything was found.
    Stopped(Stopped),
    /// A directory of neither kind.
    Directory,
}

impl Recognised {
    /// True for a bundle airgap reads: a whole zstd bundle, a part, an
    /// index or a directory of parts.
    pub fn is_bundle(&self) -> bool {
        match self.kind {
            Kind::Bundle => self.compression == Compression::Zstd,
            Kind::BundlePart { .. } | Kind::PartsIndex { .. } | Kind::PartsDirectory { .. } => true,
            _ => false,
        }
    }

    /// True for a bundle, or a zstd stream cut or damaged before its first
    /// entry, as a bundle cut short is: what it is cannot be told, and the
    /// bundle reader's own account of it stands.
    pub fn could_be_bundle(&self) -> bool {
        self.is_bundle()
            || (self.compression == Compression::Zstd
                && self.kind == Kind::Other(Why::Damaged { entries: 0 }))
    }

    /// True for the image archives `airgap pack --archive` takes.
    pub fn is_image_archive(&self) -> bool {
        matches!(
            self.kind,
            Kind::DockerLegacy
                | Kind::DockerOci
                | Kind::ContainerdSave { .. }
                | Kind::DockerArchive
                | Kind::OciArchive
                | Kind::OciLayout
                | Kind::SkopeoDir
        )
    }
}

impl std::fmt::Display for Recognised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&line::line(self))
    }
}

/// Why recognition failed, or refused a file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecogniseError {
    /// The path could not be opened or read.
    #[error("cannot read {}", crate::display::escape_path(.path))]
    Read {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// `--archive` names something that is not an image archive.
    #[error("{0}")]
    NotAnArchive(Box<Recognised>),
}

impl RecogniseError {
    /// A file that is not an image archive is a wrong command line (the
    /// line says which command takes it); one that cannot be read is this
    /// machine's trouble.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Read { .. } => ErrorKind::Failure,
            Self::NotAnArchive(_) => ErrorKind::Usage,
        }
    }
}

/// What `path` holds. A link at `path` is followed (the user typed it);
/// anything but a regular file or a directory is refused, unread.
pub fn recognise(path: &Path) -> Result<Recognised, RecogniseError> {
    let read_error = |source| RecogniseError::Read {
        path: path.to_owned(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(read_error)?;
    if metadata.is_dir() {
        return Ok(Recognised {
            path: path.to_owned(),
            kind: dir::recognise(path),
            compression: Compression::None,
        });
    }
    let file = untrusted::open_regular(path, Links::Follow).map_err(read_error)?;
    let (kind, compression) = recognise_file(path, file).map_err(read_error)?;
    Ok(Recognised {
        path: path.to_owned(),
        kind,
        compression,
    })
}

/// `path` if it is an image archive `airgap pack --archive` takes; what
/// it is otherwise, as the error.
pub fn check_archive(path: &Path) -> Result<Recognised, RecogniseError> {
    let found = recognise(path)?;
    if found.is_image_archive() {
        Ok(found)
    } else {
        Err(RecogniseError::NotAnArchive(Box::new(found)))
    }
}

/// The first bytes looked at before the tar walk.
const HEAD_LEN: usize = 512;

fn recognise_file(path: &Path, mut file: std::fs::File) -> std::io::Result<(Kind, Compression)> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok((Kind::Other(Why::Empty), Compression::None));
    }
    if let Some(part) = listed_part(path, len) {
        return Ok((part, Compression::None));
    }
    let head = compression::read_head(&mut file, HEAD_LEN)?;
    file.rewind()?;
    if let Some(index) = parts_index(path, &head, len) {
        return Ok((index, Compression::None));
    }
    let compression = Compression::sniff(&head);
    let consumed = Consumed::default();
    let input = if compression == Compression::None {
        Input::File {
            file: BufReader::with_capacity(64 << 10, file),
            len,
        }
    } else {
        let counted = Counting {
            inner: file,
            count: consumed.clone(),
        };
        match compression::decoded(counted) {
            Ok((_, reader)) => Input::Stream(Box::new(scan::Bounded {
                inner: reader,
                count: consumed.clone(),
            })),
            Err(_) => return Ok((Kind::Other(Why::Damaged { entries: 0 }), compression)),
        }
    };
    let mut walker = Walker::new(input);
    let counted = (compression != Compression::None).then_some(&consumed);
    let facts = scan::scan(&mut walker, counted, |first| first == MANIFEST_PATH);
    Ok((decide(&facts, &head), compression))
}

/// The part of a split bundle `path` is, if an index beside it lists a
/// part of its name and size.
fn listed_part(path: &Path, len: u64) -> Option<Kind> {
    let index_path = parts::find_index(path)?;
    let name = path.file_name()?.to_str()?;
    let numbered = name
        .rsplit_once('.')
        .is_some_and(|(_, n)| n.len() == 3 && n.bytes().all(|b| b.is_ascii_digit()));
    let Ok((index, _)) = PartsIndex::read(&index_path) else {
        // Named as a part, beside an index that cannot be used: the
        // bundle reader's account of that index is what to tell.
        return numbered.then(|| Kind::BundlePart {
            bundle: name_of_index(&index_path),
            named: index_path.with_extension(""),
            number: 0,
            of: 0,
        });
    };
    let number = index
        .parts
        .iter()
        .position(|part| part.name == name && part.size == len)?;
    Some(Kind::BundlePart {
        bundle: index.bundle,
        named: index_path.with_extension(""),
        number: number + 1,
        of: index.parts.len(),
    })
}

/// The bundle an index names by its own file name (`NAME.parts`).
pub(super) fn name_of_index(index: &Path) -> String {
    index
        .with_extension("")
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The split bundle whose index `path` is, if its content is one.
fn parts_index(path: &Path, head: &[u8], len: u64) -> Option<Kind> {
    if head.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') || len > 1 << 20 {
        return None;
    }
    let bytes = untrusted::read_bounded(path, Links::Follow, 1 << 20, "parts index").ok()?;
    let index = PartsIndex::parse(&bytes).ok()?;
    Some(Kind::PartsIndex {
        bundle: index.bundle,
        named: path.with_extension(""),
    })
}

/// The kind the facts of one walk show.
fn decide(facts: &Facts, head: &[u8]) -> Kind {
    let has = |name: &str| facts.top_files.contains_key(name);
    if facts.bundle_manifest || facts.first_entry.as_deref() == Some(MANIFEST_PATH) {
        return Kind::Bundle;
    }
    if facts.not_a_tar {
        return Kind::Other(Why::NotATar {
            start: head.iter().take(8).copied().collect(),
        });
    }
    if facts.damaged {
        return Kind::Other(Why::Damaged {
            entries: facts.entries,
        });
    }
    if has("oci-layout") && has("index.json") {
        if !has("manifest.json") {
            return Kind::OciArchive;
        }
        return match layer_compression(facts) {
            Compression::None => Kind::DockerOci,
            layers => Kind::ContainerdSave { layers },
        };
    }
    if has("manifest.json") {
        return docker_manifest_kind(facts);
    }
    if has("repositories") && facts.legacy_json > 0 {
        return Kind::PreV110;
    }
    let docker_export = facts.top_names.contains(".dockerenv");
    let rootfs_dirs = ROOTFS_DIRS
        .iter()
        .filter(|dir| facts.top_names.contains(**dir))
        .count();
    if docker_export || rootfs_dirs >= 3 {
        return Kind::RootFilesystem { docker_export };
    }
    if let Some(stopped) = facts.stopped {
        return Kind::Other(Why::Stopped(stopped));
    }
    match &facts.first_entry {
        None => Kind::Other(Why::EmptyTar),
        Some(first) => Kind::Other(Why::OtherTar {
            first_entry: first.clone(),
        }),
    }
}

/// The layers' paths `manifest.json` lists (`Layers` of each image).
fn manifest_layers(facts: &Facts) -> Vec<String> {
    let Some(Ok(serde_json::Value::Array(images))) = facts
        .top_files
        .get("manifest.json")
        .map(|bytes| serde_json::from_slice::<serde_json::Value>(bytes))
    else {
        return Vec::new();
    };
    images
        .iter()
        .filter_map(|image| image.get("Layers")?.as_array())
        .flatten()
        .filter_map(|layer| layer.as_str().map(str::to_owned))
        .collect()
}

/// Docker's own layout (`<id>/layer.tar`) or a docker-archive (`<hex>.tar`).
fn docker_manifest_kind(facts: &Facts) -> Kind {
    let layers = manifest_layers(facts);
    if layers.iter().any(|layer| layer.ends_with("/layer.tar")) {
        Kind::DockerLegacy
    } else if layers.iter().any(|layer| layer.starts_with("blobs/")) {
        Kind::DockerOci
    } else if !layers.is_empty() || facts.hex_tars > 0 {
        Kind::DockerArchive
    } else {
        Kind::DockerLegacy
    }
}

/// How an OCI archive's layers are compressed: by the first bytes of the
/// blobs `manifest.json` names, else by the media types of the manifests
/// found among the small blobs.
fn layer_compression(facts: &Facts) -> Compression {
    let by_magic = manifest_layers(facts)
        .iter()
        .filter_map(|path| {
            let digest = path.strip_prefix("blobs/")?.replacen('/', ":", 1);
            facts.blobs.get(&digest)
        })
        .copied()
        .find(|c| *c != Compression::None);
    if let Some(compression) = by_magic {
        return compression;
    }
    let media_types = facts
        .small_blobs
        .values()
        .filter_map(|bytes| serde_json::from_slice::<serde_json::Value>(bytes).ok())
        .filter_map(|manifest| manifest.get("layers")?.as_array().cloned())
        .flatten()
        .filter_map(|layer| layer.get("mediaType")?.as_str().map(str::to_owned))
        .collect::<Vec<_>>();
    if media_types.iter().any(|t| t.contains("zstd")) {
        Compression::Zstd
    } else if media_types.iter().any(|t| t.contains("gzip")) {
        Compression::Gzip
    } else {
        Compression::None
    }
}
