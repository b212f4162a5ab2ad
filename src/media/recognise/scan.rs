//! One pass over a tar's headers, keeping only what tells the kinds apart:
//! which marker files are at the top, a few small metadata files, and each
//! blob's size and first bytes. What is kept is bounded whatever the tar
//! holds, and so is the walk (entries, and decoded bytes against the bytes
//! of the file that were read).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::walk::{Header, WalkError, Walker};
use crate::bundle::MANIFEST_PATH;
use crate::media::compression::{Compression, MAGIC_LEN};

/// All metadata kept from one tar, at most.
pub const METADATA_LIMIT: u64 = 16 << 20;
/// A top-level metadata file (`manifest.json`, `index.json`, …) kept, at most.
const TOP_FILE_LIMIT: u64 = 4 << 20;
/// A blob small enough to be a manifest, index or config, kept to read
/// the layers' media types.
const SMALL_BLOB_LIMIT: u64 = 1 << 20;
/// Entries looked at: far more than any image archive holds, and enough
/// of a root filesystem to know it for one.
pub const ENTRY_LIMIT: u64 = 500_000;
/// Blobs whose size and first bytes are kept.
const BLOB_LIMIT: usize = 100_000;
/// Top-level names kept.
const TOP_NAME_LIMIT: usize = 10_000;
/// Decoded bytes allowed per byte of the file read, past the first GiB:
/// far above what real archives reach, low enough to stop a compression bomb.
pub const RATIO_LIMIT: u64 = 1000;
const RATIO_FREE: u64 = 1 << 30;

/// The top-level files whose content decides the kind.
const TOP_FILES: [&str; 5] = [
    "manifest.json",
    "index.json",
    "oci-layout",
    "repositories",
    "version",
];

/// Top-level directories of a root filesystem.
pub const ROOTFS_DIRS: [&str; 12] = [
    "bin", "boot", "dev", "etc", "home", "lib", "proc", "root", "sbin", "sys", "tmp", "usr",
];

/// Why a walk stopped before the end of the tar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// More entries than [`ENTRY_LIMIT`].
    Entries,
    /// Decoded data more than [`RATIO_LIMIT`] times the file read.
    Ratio,
}

/// What one pass found.
#[derive(Debug, Default)]
pub struct Facts {
    pub entries: u64,
    pub first_entry: Option<String>,
    /// Content of the [`TOP_FILES`] found (empty if over their bound).
    pub top_files: BTreeMap<String, Vec<u8>>,
    pub top_names: BTreeSet<String>,
    /// `<64 hex>.tar` files at the top (docker-archive layers).
    pub hex_tars: u64,
    /// `<64 hex>/layer.tar` and `<64 hex>/json` (legacy save).
    pub legacy_layers: u64,
    pub legacy_json: u64,
    /// How each blob's bytes start, by digest.
    pub blobs: BTreeMap<String, Compression>,
    /// Small JSON blobs (manifests, indexes, configs), by digest.
    pub small_blobs: BTreeMap<String, Vec<u8>>,
    pub whiteouts: u64,
    /// An airgap bundle's manifest, wherever it is in the tar.
    pub bundle_manifest: bool,
    pub stopped: Option<Stopped>,
    /// The walk met something that is not a tar header first.
    pub not_a_tar: bool,
    /// The data is cut short or cannot be decoded (after `entries` entries).
    pub damaged: bool,
    kept: u64,
}

/// The bytes of the file a decoder has read and the bytes it has decoded,
/// shared between the two sides of the decoder, for the ratio bound.
#[derive(Clone, Default)]
pub struct Consumed(Arc<Counts>);

#[derive(Default)]
struct Counts {
    read: AtomicU64,
    decoded: AtomicU64,
    over: AtomicBool,
}

impl Consumed {
    /// True once the decoded data outgrew [`RATIO_LIMIT`].
    fn over(&self) -> bool {
        self.0.over.load(Ordering::Relaxed)
    }
}

/// The file, as the decoder reads it: counted.
pub struct Counting<R> {
    pub inner: R,
    pub count: Consumed,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.0.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The decoded data: counted, and cut off (with an error the walk turns
/// into [`Stopped::Ratio`]) once it is more than [`RATIO_LIMIT`] times
/// the file read, past the first GiB. Checked here, not between entries,
/// since one entry's body can be all of a bomb.
pub struct Bounded<R> {
    pub inner: R,
    pub count: Consumed,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let counts = &self.count.0;
        let decoded = counts.decoded.load(Ordering::Relaxed);
        if decoded > RATIO_FREE && decoded / RATIO_LIMIT > counts.read.load(Ordering::Relaxed) {
            counts.over.store(true, Ordering::Relaxed);
            return Err(io::Error::other(
                "decoded data out of proportion to the file",
            ));
        }
        let n = self.inner.read(buf)?;
        counts.decoded.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Walks the whole tar (or up to its bounds); `stop_at_first` ends the
/// walk after the first entry when it decides the kind by itself.
pub fn scan(
    walker: &mut Walker<'_>,
    consumed: Option<&Consumed>,
    stop_at_first: impl Fn(&str) -> bool,
) -> Facts {
    let mut facts = Facts::default();
    loop {
        if facts.entries >= ENTRY_LIMIT {
            facts.stopped = Some(Stopped::Entries);
            break;
        }
        let header = match walker.next() {
            Ok(Some(header)) => header,
            Ok(None) => break,
            Err(error) => {
                facts.fail(error, consumed);
                break;
            }
        };
        let path = normalise(&header.path);
        facts.entries += 1;
        if facts.first_entry.is_none() {
            facts.first_entry = Some(path.clone());
            if stop_at_first(&path) {
                break;
            }
        }
        if let Err(error) = facts.note(walker, &header, &path) {
            facts.fail(error, consumed);
            break;
        }
    }
    facts
}

/// The path as archived, without a leading `./` or `/`.
fn normalise(path: &str) -> String {
    let mut path = path;
    loop {
        let before = path;
        path = path.trim_start_matches('/');
        if let Some(rest) = path.strip_prefix("./") {
            path = rest;
        }
        if path == before {
            break;
        }
    }
    path.trim_end_matches('/').to_owned()
}

fn is_hex64(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Facts {
    fn fail(&mut self, error: WalkError, consumed: Option<&Consumed>) {
        if consumed.is_some_and(Consumed::over) {
            self.stopped = Some(Stopped::Ratio);
            return;
        }
        match error {
            WalkError::NotATar if self.entries == 0 => self.not_a_tar = true,
            _ => self.damaged = true,
        }
    }

    fn note(
        &mut self,
        walker: &mut Walker<'_>,
        header: &Header,
        path: &str,
    ) -> Result<(), WalkError> {
        if path.is_empty() || path == "." {
            return Ok(());
        }
        if path == MANIFEST_PATH {
            self.bundle_manifest = true;
        }
        let parts: Vec<&str> = path.split('/').collect();
        if parts.last().is_some_and(|name| name.starts_with(".wh.")) {
            self.whiteouts += 1;
        }
        if self.top_names.len() < TOP_NAME_LIMIT {
            self.top_names.insert(parts[0].to_owned());
        }
        match parts.as_slice() {
            [name] if header.is_file() && TOP_FILES.contains(name) => {
                let content = if header.size <= TOP_FILE_LIMIT && self.room(header.size) {
                    walker.read_body(TOP_FILE_LIMIT)?
                } else {
                    Vec::new()
                };
                self.kept += content.len() as u64;
                self.top_files.insert((*name).to_owned(), content);
            }
            [name] if header.is_file() && name.strip_suffix(".tar").is_some_and(is_hex64) => {
                self.hex_tars += 1;
            }
            [id, "layer.tar"] if is_hex64(id) => self.legacy_layers += 1,
            [id, "json"] if is_hex64(id) => self.legacy_json += 1,
            ["blobs", algorithm, hex] if header.is_file() && self.blobs.len() < BLOB_LIMIT => {
                self.note_blob(walker, header, &format!("{algorithm}:{hex}"))?;
            }
            _ => {}
        }
        Ok(())
    }

    fn note_blob(
        &mut self,
        walker: &mut Walker<'_>,
        header: &Header,
        digest: &str,
    ) -> Result<(), WalkError> {
        let start = walker.read_body(MAGIC_LEN as u64)?;
        let compression = Compression::sniff(&start);
        if start.first() == Some(&b'{') && header.size <= SMALL_BLOB_LIMIT && self.room(header.size)
        {
            let mut content = start;
            content.extend(walker.read_body(SMALL_BLOB_LIMIT)?);
            self.kept += content.len() as u64;
            self.small_blobs.insert(digest.to_owned(), content);
        }
        self.blobs.insert(digest.to_owned(), compression);
        Ok(())
    }

    fn room(&self, size: u64) -> bool {
        self.kept.saturating_add(size) <= METADATA_LIMIT
    }
}
