//! Streaming bundle reader. It reads the manifest and signature first, hands
//! them to a caller's check (signature verification) before reading further,
//! then checks every entry against the manifest as it streams past: type,
//! path, size before the data, SHA-256 after it. Memory stays bounded by the
//! manifest limit whatever the bundle's size.

use std::io::{self, BufReader, Read};

use crate::digest::HashingReader;

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
    R: Read,
    E: From<BundleError>,
{
    let mut archive = open_archive(input)?;
    let head = {
        let mut entries = archive.entries().map_err(BundleError::Corrupt)?.raw(true);
        let head = read_head_entries(&mut entries)?;
        check_head(&head.0)?;
        let (head, mut pending) = head;
        for (index, expected) in head.manifest.entries.iter().enumerate() {
            let entry = match pending.take() {
                Some(entry) => Some(entry),
                None => entries.next().transpose().map_err(corrupt)?,
            };
            let Some(entry) = entry else {
                return Err(BundleError::MissingEntry {
                    path: expected.path.clone(),
                    more: head.manifest.entries.len() - index - 1,
                }
                .into());
            };
            read_entry(entry, expected, &mut on_entry)?;
        }
        if let Some(extra) = entries.next().transpose().map_err(corrupt)? {
            return Err(BundleError::UnexpectedEntry {
                found: entry_path(&extra),
                expected: "the end of the bundle".into(),
            }
            .into());
        }
        head
    };
    check_trailer(archive.into_inner())?;
    Ok(head)
}

/// Reads only the manifest and signature, without checking the signature:
/// for showing what a bundle claims, never for deciding to use it.
pub fn read_head<R: Read>(input: R) -> Result<Head, BundleError> {
    let mut archive = open_archive(input)?;
    let mut entries = archive.entries().map_err(BundleError::Corrupt)?.raw(true);
    Ok(read_head_entries(&mut entries)?.0)
}

type Decoder<R> = zstd::stream::read::Decoder<'static, BufReader<R>>;

fn open_archive<R: Read>(input: R) -> Result<tar::Archive<Decoder<R>>, BundleError> {
    let mut input = BufReader::with_capacity(1 << 20, input);
    sniff(&mut input)?;
    let mut decoder =
        zstd::stream::read::Decoder::with_buffer(input).map_err(BundleError::Corrupt)?;
    decoder
        .window_log_max(WINDOW_LOG_MAX)
        .map_err(BundleError::Corrupt)?;
    Ok(tar::Archive::new(decoder))
}

type RawEntry<'a, R> = tar::Entry<'a, Decoder<R>>;

/// Reads manifest and signature; returns the first content entry if the
/// bundle is unsigned (it was read while looking for the signature).
fn read_head_entries<'a, R: Read>(
    entries: &mut tar::Entries<'a, Decoder<R>>,
) -> Result<(Head, Option<RawEntry<'a, R>>), BundleError> {
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
                "its first entry is {:?}, not {MANIFEST_PATH}",
                entry_path(&first)
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
