//! Streaming bundle reader. It reads the manifest and signature first, hands
//! them to a caller's check (signature verification) before reading further,
//! then checks every entry against the manifest as it streams past: type,
//! path, size before the data, SHA-256 after it. Memory stays bounded by the
//! manifest limit whatever the bundle's size.

use std::io::{self, BufReader, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use crate::digest::HashingReader;
use crate::display::escape;

use super::manifest::{BundleManifest, Entry, SignatureEntry};
use super::{
    BundleError, MANIFEST_LIMIT, MANIFEST_PATH, SIGNATURE_LIMIT, SIGNATURE_PATH, WINDOW_LOG_MAX,
};

/// The manifest and signature at the front of a bundle.
#[derive(Clone, Debug)]
pub struct Head {
    /// The parsed, self-consistent manifest.
    pub manifest: BundleManifest,
    /// Its exact bytes, which the signature covers.
    pub manifest_bytes: Vec<u8>,
    /// The signature entry, if the bundle is signed.
    pub signature: Option<SignatureEntry>,
}

/// Zero bytes tolerated after the end-of-archive marker (tar record padding).
const TRAILER_LIMIT: u64 = 1 << 20;

/// Reads a bundle from `input`.
///
/// `check_head` runs before any content entry is read; an error from it stops
/// the read. `on_entry` gets each content entry in order with a reader over its
/// bytes; whatever it leaves unread is read (and hashed) afterwards, and the
/// entry's SHA-256 and size are checked before the next one is looked at.
/// An error means the bundle must not be used, whatever `on_entry` already did
/// with the entries before.
pub fn read<R, E>(
    input: R,
    check_head: impl FnOnce(&Head) -> Result<(), E>,
    mut on_entry: impl FnMut(&Entry, &mut dyn Read) -> Result<(), E>,
) -> Result<Head, E>
where
    R: Read + Send,
    E: From<BundleError>,
{
    with_archive(input, |mut archive| {
        let head = read_listed(&mut archive, check_head, |_| None, &mut on_entry)?;
        check_trailer(archive.into_inner())?;
        Ok(head)
    })
}

/// As [`read`], but stops after the last entry that `wanted` picks (giving
/// `on_entry` every entry up to it, checked as [`read`] checks them) and
/// looks no further: for the metadata at the front of a bundle whose bytes
/// are already proven (by its seal) to be the signer's.
pub fn read_leading<R, E>(
    input: R,
    check_head: impl FnOnce(&Head) -> Result<(), E>,
    wanted: impl Fn(&Entry) -> bool,
    mut on_entry: impl FnMut(&Entry, &mut dyn Read) -> Result<(), E>,
) -> Result<Head, E>
where
    R: Read + Send,
    E: From<BundleError>,
{
    let through = |head: &Head| {
        let entries = &head.manifest.entries;
        Some(entries.iter().rposition(wanted).map_or(0, |last| last + 1))
    };
    with_archive(input, |mut archive| {
        read_listed(&mut archive, check_head, through, &mut on_entry)
    })
}

/// Reads the head, has it checked, then the entries the manifest lists (the
/// first `through(head)` of them, or all and nothing after).
fn read_listed<E: From<BundleError>>(
    archive: &mut tar::Archive<Chunks>,
    check_head: impl FnOnce(&Head) -> Result<(), E>,
    through: impl FnOnce(&Head) -> Option<usize>,
    on_entry: &mut impl FnMut(&Entry, &mut dyn Read) -> Result<(), E>,
) -> Result<Head, E> {
    let mut entries = archive.entries().map_err(BundleError::Corrupt)?.raw(true);
    let (head, mut pending) = read_head_entries(&mut entries)?;
    check_head(&head)?;
    let listed = &head.manifest.entries;
    let through = through(&head);
    for (index, expected) in listed
        .iter()
        .take(through.unwrap_or(listed.len()))
        .enumerate()
    {
        let entry = match pending.take() {
            Some(entry) => Some(entry),
            None => entries.next().transpose().map_err(corrupt)?,
        };
        let Some(entry) = entry else {
            return Err(BundleError::MissingEntry {
                path: expected.path.clone(),
                more: listed.len() - index - 1,
            }
            .into());
        };
        read_entry(entry, expected, on_entry)?;
    }
    if through.is_none() {
        if let Some(extra) = entries.next().transpose().map_err(corrupt)? {
            return Err(BundleError::UnexpectedEntry {
                found: entry_path(&extra),
                expected: "the end of the bundle".into(),
            }
            .into());
        }
    }
    Ok(head)
}

/// Reads only the manifest and signature, without checking the signature:
/// for showing what a bundle claims, never for deciding to use it.
pub fn read_head<R: Read + Send>(input: R) -> Result<Head, BundleError> {
    with_archive(input, |mut archive| {
        let mut entries = archive.entries().map_err(BundleError::Corrupt)?.raw(true);
        Ok(read_head_entries(&mut entries)?.0)
    })
}

/// Decompressed chunks in flight between the decompressing thread and the
/// tar reader: enough to keep both busy, a few megabytes at most.
const CHUNKS_IN_FLIGHT: usize = 8;
const CHUNK: usize = 256 << 10;

/// Runs `work` on the tar inside `input`, decompressing on a thread of its
/// own so that decompression and hashing overlap on two cores.
fn with_archive<R, T, E>(
    input: R,
    work: impl FnOnce(tar::Archive<Chunks>) -> Result<T, E>,
) -> Result<T, E>
where
    R: Read + Send,
    E: From<BundleError>,
{
    let mut input = BufReader::with_capacity(1 << 20, input);
    sniff(&mut input)?;
    std::thread::scope(|scope| {
        let (sender, receiver) = sync_channel(CHUNKS_IN_FLIGHT);
        scope.spawn(move || decompress(input, sender));
        // Dropping the archive (on success or error) stops the decompressor.
        work(tar::Archive::new(Chunks {
            receiver,
            chunk: Vec::new(),
            position: 0,
        }))
    })
}

fn decompress(input: impl io::BufRead, sender: SyncSender<io::Result<Vec<u8>>>) {
    let decoder = zstd::stream::read::Decoder::with_buffer(input).and_then(|mut decoder| {
        decoder.window_log_max(WINDOW_LOG_MAX)?;
        Ok(decoder)
    });
    let mut decoder = match decoder {
        Ok(decoder) => decoder,
        Err(error) => {
            let _ = sender.send(Err(error));
            return;
        }
    };
    loop {
        let mut chunk = vec![0u8; CHUNK];
        match read_full(&mut decoder, &mut chunk) {
            Ok(0) => return,
            Ok(n) => {
                chunk.truncate(n);
                if sender.send(Ok(chunk)).is_err() {
                    return;
                }
            }
            Err(error) => {
                let _ = sender.send(Err(error));
                return;
            }
        }
    }
}

/// Fills `buffer` unless the input ends first; the count read.
fn read_full(input: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match input.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The decompressed stream, as the decompressing thread hands it over.
pub struct Chunks {
    receiver: Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    position: usize,
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.position == self.chunk.len() {
            match self.receiver.recv() {
                Ok(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.position = 0;
                }
                Ok(Err(error)) => return Err(error),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.position);
        buf[..n].copy_from_slice(&self.chunk[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}

type RawEntry<'a> = tar::Entry<'a, Chunks>;

/// Reads manifest and signature; returns the first content entry if the
/// bundle is unsigned (it was read while looking for the signature).
fn read_head_entries<'a>(
    entries: &mut tar::Entries<'a, Chunks>,
) -> Result<(Head, Option<RawEntry<'a>>), BundleError> {
    let first = entries
        .next()
        .transpose()
        .map_err(not_a_bundle)?
        .ok_or_else(|| BundleError::NotABundle {
            reason: "it is empty".into(),
        })?;
    if entry_path(&first) != MANIFEST_PATH {
        return Err(BundleError::NotABundle {
            reason: format!(
                "its first entry is \"{}\", not {MANIFEST_PATH}",
                escape(&entry_path(&first))
            ),
        });
    }
    let manifest_bytes = read_small(first, MANIFEST_LIMIT)?;
    let manifest = BundleManifest::parse(&manifest_bytes)?;

    let second = entries.next().transpose().map_err(corrupt)?;
    let (signature, pending) = match second {
        Some(entry) if entry_path(&entry) == SIGNATURE_PATH => {
            let bytes = read_small(entry, SIGNATURE_LIMIT)?;
            let signature: SignatureEntry =
                serde_json::from_slice(&bytes).map_err(|_| BundleError::Inconsistent {
                    reason: "the signature entry is malformed".into(),
                })?;
            (Some(signature), None)
        }
        other => (None, other),
    };
    Ok((
        Head {
            manifest,
            manifest_bytes,
            signature,
        },
        pending,
    ))
}

fn read_small<R: Read>(entry: tar::Entry<'_, R>, limit: u64) -> Result<Vec<u8>, BundleError> {
    let path = entry_path(&entry);
    check_regular(&entry, &path)?;
    let size = entry.size();
    if size > limit {
        return Err(BundleError::TooLarge { path, size, limit });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    entry.take(limit).read_to_end(&mut bytes).map_err(corrupt)?;
    if bytes.len() as u64 != size {
        return Err(BundleError::Corrupt(io::ErrorKind::UnexpectedEof.into()));
    }
    Ok(bytes)
}

fn read_entry<R: Read, E: From<BundleError>>(
    entry: tar::Entry<'_, R>,
    expected: &Entry,
    on_entry: &mut impl FnMut(&Entry, &mut dyn Read) -> Result<(), E>,
) -> Result<(), E> {
    let path = entry_path(&entry);
    check_regular(&entry, &path)?;
    if path != expected.path {
        return Err(BundleError::UnexpectedEntry {
            found: path,
            expected: expected.path.clone(),
        }
        .into());
    }
    if entry.size() != expected.size {
        return Err(BundleError::SizeMismatch {
            path,
            expected: expected.size,
            actual: entry.size(),
        }
        .into());
    }
    let mut hashing = HashingReader::new(entry);
    on_entry(expected, &mut hashing)?;
    io::copy(&mut hashing, &mut io::sink()).map_err(BundleError::Corrupt)?;
    let (digest, size) = hashing.finish();
    if size != expected.size {
        return Err(BundleError::Corrupt(io::ErrorKind::UnexpectedEof.into()).into());
    }
    if digest.hex() != expected.sha256 {
        return Err(BundleError::DigestMismatch { path }.into());
    }
    Ok(())
}

fn check_regular<R: Read>(entry: &tar::Entry<'_, R>, path: &str) -> Result<(), BundleError> {
    let kind = entry.header().entry_type();
    if kind != tar::EntryType::Regular {
        return Err(BundleError::NotAFile {
            path: path.to_owned(),
            kind: format!("{kind:?}"),
        });
    }
    Ok(())
}

/// After the first zero record the tar reader stopped at: at least one more
/// zero record (the marker is two), then only zero padding, then the end of
/// a complete zstd stream.
fn check_trailer(mut rest: impl Read) -> Result<(), BundleError> {
    let mut buffer = [0u8; 8192];
    let mut total = 0u64;
    loop {
        let n = rest.read(&mut buffer).map_err(BundleError::Corrupt)?;
        if n == 0 {
            break;
        }
        if buffer[..n].iter().any(|&b| b != 0) {
            return Err(BundleError::TrailingData);
        }
        total += n as u64;
        if total > TRAILER_LIMIT {
            return Err(BundleError::TrailingData);
        }
    }
    if total < 512 {
        return Err(BundleError::Corrupt(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the end-of-archive marker is missing",
        )));
    }
    Ok(())
}

fn entry_path<R: Read>(entry: &tar::Entry<'_, R>) -> String {
    String::from_utf8_lossy(&entry.path_bytes()).into_owned()
}

fn corrupt(error: io::Error) -> BundleError {
    BundleError::Corrupt(error)
}

/// Failing to read the very first tar header means the zstd stream holds
/// something other than a tar.
fn not_a_bundle(_: io::Error) -> BundleError {
    BundleError::NotABundle {
        reason: "its content is not a tar archive".into(),
    }
}

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const ZSTD_SKIPPABLE_MAGIC_HIGH: [u8; 3] = [0x2a, 0x4d, 0x18];

/// Names the common wrong files by their first bytes, so an operator who
/// hands over a `docker save` tar or a gzip learns what it is.
fn sniff(input: &mut impl io::BufRead) -> Result<(), BundleError> {
    let start = input.fill_buf().map_err(BundleError::Corrupt)?;
    if start.is_empty() {
        return Err(BundleError::NotABundle {
            reason: "the file is empty".into(),
        });
    }
    if start.starts_with(&ZSTD_MAGIC)
        || (start.len() >= 4 && start[1..4] == ZSTD_SKIPPABLE_MAGIC_HIGH)
    {
        return Ok(());
    }
    let reason = if start.starts_with(&[0x1f, 0x8b]) {
        "it is gzip-compressed (docker save | gzip output?), not zstd"
    } else if start.len() >= 262 && &start[257..262] == b"ustar" {
        "it is an uncompressed tar (docker save or docker export output?); load it with docker load, or pack it with airgap"
    } else {
        "it is not zstd-compressed"
    };
    Err(BundleError::NotABundle {
        reason: reason.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::FORMAT_VERSION;
    use crate::bundle::manifest::SourceInfo;
    use crate::digest::Digest;

    enum Raw<'a> {
        File(&'a str, &'a [u8]),
        Symlink(&'a str, &'a str),
    }

    fn manifest_for(files: &[(&str, &[u8])]) -> BundleManifest {
        let mut manifest = BundleManifest::new(
            "test".into(),
            "2026-01-01T00:00:00Z".into(),
            SourceInfo::default(),
        );
        manifest.entries = files
            .iter()
            .map(|(path, bytes)| Entry {
                path: (*path).into(),
                size: bytes.len() as u64,
                sha256: Digest::of(bytes).hex().into(),
            })
            .collect();
        manifest
    }

    fn raw_header(path: &str, size: u64, kind: tar::EntryType) -> tar::Header {
        let mut header = tar::Header::new_ustar();
        // Written byte by byte: tar's set_path refuses the hostile paths tested here.
        header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_size(size);
        header.set_mode(0o644);
        header.set_entry_type(kind);
        header.set_cksum();
        header
    }

    fn tar_of(manifest: &[u8], entries: &[Raw], trailer: &[u8]) -> Vec<u8> {
        let mut tar = Vec::new();
        super::super::tar_stream::append_bytes(&mut tar, MANIFEST_PATH, manifest).unwrap();
        for entry in entries {
            match entry {
                Raw::File(path, bytes) => {
                    tar.extend_from_slice(
                        raw_header(path, bytes.len() as u64, tar::EntryType::Regular).as_bytes(),
                    );
                    tar.extend_from_slice(bytes);
                    tar.resize(tar.len().div_ceil(512) * 512, 0);
                }
                Raw::Symlink(path, target) => {
                    let mut header = raw_header(path, 0, tar::EntryType::Symlink);
                    header.set_link_name(target).unwrap();
                    header.set_cksum();
                    tar.extend_from_slice(header.as_bytes());
                }
            }
        }
        tar.extend_from_slice(&[0u8; 1024]);
        tar.extend_from_slice(trailer);
        tar
    }

    fn compress(tar: &[u8]) -> Vec<u8> {
        zstd::encode_all(tar, 3).unwrap()
    }

    fn read_bundle(bytes: &[u8]) -> Result<Vec<String>, BundleError> {
        let mut seen = Vec::new();
        read(
            bytes,
            |_| Ok(()),
            |entry: &Entry, _: &mut dyn Read| {
                seen.push(entry.path.clone());
                Ok::<(), BundleError>(())
            },
        )?;
        Ok(seen)
    }

    const A: &[u8] = b"first entry";
    const B: &[u8] = b"second entry";

    fn valid_manifest() -> Vec<u8> {
        manifest_for(&[("a", A), ("b", B)]).to_bytes()
    }

    #[test]
    fn a_well_formed_bundle_yields_its_entries_in_order() {
        let bundle = compress(&tar_of(
            &valid_manifest(),
            &[Raw::File("a", A), Raw::File("b", B)],
            &[],
        ));
        assert_eq!(read_bundle(&bundle).unwrap(), ["a", "b"]);
    }

    #[test]
    fn an_unknown_major_version_is_refused_by_name() {
        let manifest = String::from_utf8(valid_manifest())
            .unwrap()
            .replace(&format!("\"{FORMAT_VERSION}\""), "\"2.0\"");
        let bundle = compress(&tar_of(
            manifest.as_bytes(),
            &[Raw::File("a", A), Raw::File("b", B)],
            &[],
        ));
        let error = read_bundle(&bundle).unwrap_err();
        assert!(
            matches!(&error, BundleError::UnsupportedVersion { found } if found == "2.0"),
            "{error}"
        );
    }

    #[test]
    fn a_later_minor_version_is_read() {
        let manifest = String::from_utf8(valid_manifest())
            .unwrap()
            .replace(&format!("\"{FORMAT_VERSION}\""), "\"1.7\"");
        let bundle = compress(&tar_of(
            manifest.as_bytes(),
            &[Raw::File("a", A), Raw::File("b", B)],
            &[],
        ));
        assert_eq!(read_bundle(&bundle).unwrap(), ["a", "b"]);
    }

    #[test]
    fn entries_not_in_the_manifest_are_refused() {
        let bundle = compress(&tar_of(
            &valid_manifest(),
            &[Raw::File("a", A), Raw::File("b", B), Raw::File("c", A)],
            &[],
        ));
        assert!(
            matches!(read_bundle(&bundle), Err(BundleError::UnexpectedEntry { found, .. }) if found == "c")
        );
    }

    #[test]
    fn reordered_entries_are_refused() {
        let bundle = compress(&tar_of(
            &valid_manifest(),
            &[Raw::File("b", B), Raw::File("a", A)],
            &[],
        ));
        assert!(matches!(
            read_bundle(&bundle),
            Err(BundleError::UnexpectedEntry { .. })
        ));
    }

    #[test]
    fn missing_entries_are_refused() {
        let bundle = compress(&tar_of(&valid_manifest(), &[Raw::File("a", A)], &[]));
        assert!(
            matches!(read_bundle(&bundle), Err(BundleError::MissingEntry { path, more: 0 }) if path == "b")
        );
    }

    #[test]
    fn wrong_sizes_and_contents_are_refused() {
        let bundle = compress(&tar_of(
            &valid_manifest(),
            &[Raw::File("a", A), Raw::File("b", b"second entrx")],
            &[],
        ));
        assert!(
            matches!(read_bundle(&bundle), Err(BundleError::DigestMismatch { path }) if path == "b")
        );
        let bundle = compress(&tar_of(
            &valid_manifest(),
            &[Raw::File("a", A), Raw::File("b", b"second")],
            &[],
        ));
        assert!(matches!(
            read_bundle(&bundle),
            Err(BundleError::SizeMismatch { .. })
        ));
    }

    #[test]
    fn links_are_refused_even_when_listed() {
        let manifest = manifest_for(&[("a", b"")]).to_bytes();
        let bundle = compress(&tar_of(&manifest, &[Raw::Symlink("a", "/etc/passwd")], &[]));
        assert!(matches!(
            read_bundle(&bundle),
            Err(BundleError::NotAFile { .. })
        ));
    }

    #[test]
    fn escaping_paths_are_refused_in_the_manifest() {
        for path in ["../evil", "/etc/cron.d/x", "a/../../b"] {
            let manifest = manifest_for(&[(path, A)]).to_bytes();
            let bundle = compress(&tar_of(&manifest, &[Raw::File(path, A)], &[]));
            assert!(
                matches!(read_bundle(&bundle), Err(BundleError::UnsafePath { .. })),
                "{path}"
            );
        }
    }

    #[test]
    fn duplicate_paths_are_refused() {
        let manifest = manifest_for(&[("a", A), ("a", A)]).to_bytes();
        let bundle = compress(&tar_of(
            &manifest,
            &[Raw::File("a", A), Raw::File("a", A)],
            &[],
        ));
        assert!(matches!(
            read_bundle(&bundle),
            Err(BundleError::Inconsistent { .. })
        ));
    }

    #[test]
    fn data_after_the_end_is_refused() {
        let bundle = compress(&tar_of(
            &valid_manifest(),
            &[Raw::File("a", A), Raw::File("b", B)],
            b"extra",
        ));
        assert!(matches!(
            read_bundle(&bundle),
            Err(BundleError::TrailingData)
        ));
    }

    #[test]
    fn an_oversized_manifest_is_refused_before_it_is_read() {
        let mut tar = raw_header(MANIFEST_PATH, MANIFEST_LIMIT + 1, tar::EntryType::Regular)
            .as_bytes()
            .to_vec();
        tar.extend_from_slice(&[b' '; 4096]);
        let bundle = compress(&tar);
        assert!(matches!(
            read_bundle(&bundle),
            Err(BundleError::TooLarge { .. })
        ));
    }

    #[test]
    fn frames_with_windows_above_128_mib_are_refused() {
        let tar = tar_of(
            &valid_manifest(),
            &[Raw::File("a", A), Raw::File("b", B)],
            &[],
        );
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        encoder.window_log(WINDOW_LOG_MAX + 1).unwrap();
        encoder.long_distance_matching(true).unwrap();
        std::io::Write::write_all(&mut encoder, &tar).unwrap();
        let bundle = encoder.finish().unwrap();
        assert!(read_bundle(&bundle).is_err());
    }

    #[test]
    fn a_missing_end_marker_is_truncation() {
        let mut tar = tar_of(
            &valid_manifest(),
            &[Raw::File("a", A), Raw::File("b", B)],
            &[],
        );
        tar.truncate(tar.len() - 1024);
        assert!(matches!(
            read_bundle(&compress(&tar)),
            Err(BundleError::Corrupt(_))
        ));
    }
}
