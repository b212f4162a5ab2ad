//! Decides whether a bundle may be used: its signature by a trusted key, then
//! every entry's digest and size, and its seal where it has one; or, to
//! admit it for loading, only its seal and head (`sealed`). A
//! [`VerifiedBundle`] can only be made here, and sinks accept nothing else,
//! so nothing unverified reaches an engine.

mod error;
pub mod locate;
mod sealed;
mod signature;

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::bundle::reader::{self, Head};
use crate::bundle::{BundleError, BundleManifest, Entry};
use crate::digest::{Digest, HashingReader};
use crate::display::escape;
use crate::progress::{Progress, ProgressReader, Task};
pub use crate::trust::TrustPolicy;
use crate::trust::keys::Fingerprint;
use crate::verify::locate::Location;
pub use error::VerifyError;
pub use sealed::admit;
pub use signature::{check_signature, check_signed};

/// A bundle proven to be what a trusted signer wrote: every entry checked,
/// or (admitted by its seal) every byte. Either way [`Self::read_entries`]
/// checks every entry as it passes, before it is used.
#[derive(Debug)]
pub struct VerifiedBundle {
    location: Location,
    head: Head,
    signer: Option<Fingerprint>,
    metadata: Vec<(String, Vec<u8>)>,
    sha256: Digest,
}

impl VerifiedBundle {
    /// The verified manifest.
    pub fn manifest(&self) -> &BundleManifest {
        &self.head.manifest
    }

    /// The verified `airgap/` metadata entries (a carried compose project),
    /// kept in memory from the verifying read.
    pub fn metadata(&self) -> &[(String, Vec<u8>)] {
        &self.metadata
    }

    /// SHA-256 of the manifest bytes: the identity of this bundle.
    pub fn manifest_digest(&self) -> Digest {
        Digest::of(&self.head.manifest_bytes)
    }

    /// SHA-256 of the bundle as read (all parts together).
    pub fn sha256(&self) -> &Digest {
        &self.sha256
    }

    /// The trusted key that signed it; `None` for an accepted unsigned bundle.
    pub fn signer(&self) -> Option<&Fingerprint> {
        self.signer.as_ref()
    }

    /// Where the bundle is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Reads the bundle again, giving each entry to `on_entry`. Every entry is
    /// hashed again as it passes, and the manifest must be byte-identical to
    /// the verified one, so a file swapped or damaged since verification fails
    /// here; callers must treat such an error as "nothing is trustworthy".
    pub fn read_entries<E: From<VerifyError> + From<BundleError>>(
        &self,
        progress: &dyn Progress,
        task: Task,
        on_entry: impl FnMut(&Entry, &mut dyn Read) -> Result<(), E>,
    ) -> Result<(), E> {
        let input = self.location.open()?;
        progress.start(task, self.location.size());
        let verified = &self.head.manifest_bytes;
        let check_head = |head: &Head| {
            if &head.manifest_bytes == verified {
                Ok(())
            } else {
                Err(E::from(VerifyError::ChangedSinceVerified))
            }
        };
        let result = reader::read(ProgressReader::new(input, progress), check_head, on_entry);
        progress.finish();
        result.map(|_| ())
    }
}

/// One check of a verification, for the report a person can file.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    /// What was checked.
    pub check: &'static str,
    /// Whether it held.
    pub passed: bool,
    /// Details, or why it failed.
    pub detail: String,
}

/// What verifying found, whether or not it succeeded.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// What was verified, as named.
    pub bundle: String,
    /// Its size, where known.
    pub size: Option<u64>,
    /// SHA-256 of the whole bundle, if it was read to the end.
    pub sha256: Option<Digest>,
    /// Number of parts, for a split bundle.
    pub parts: usize,
    /// The signer's fingerprint, if signed.
    pub signer: Option<Fingerprint>,
    /// Whether the signer is trusted here and the signature valid.
    pub signer_trusted: bool,
    /// The format version.
    pub format_version: Option<String>,
    /// When the bundle was made, by what.
    pub created: Option<String>,
    /// The writer.
    pub tool: Option<String>,
    /// The images.
    pub images: Vec<ReportImage>,
    /// Every check, in the order made.
    pub checks: Vec<Check>,
}

/// One image in a [`Report`].
#[derive(Clone, Debug, Serialize)]
pub struct ReportImage {
    /// Its references.
    pub refs: Vec<String>,
    /// Config digest (image ID on graph-driver engines and Podman).
    pub config: Digest,
    /// Manifest digest (image ID on Docker's containerd image store).
    pub manifest: Digest,
    /// OS/architecture.
    pub platform: String,
}

impl Report {
    fn check(&mut self, check: &'static str, passed: bool, detail: impl Into<String>) {
        self.checks.push(Check {
            check,
            passed,
            detail: detail.into(),
        });
    }
}

/// Verifies the bundle named by `named` (a file, or a split bundle's name,
/// part or directory): signature first (before reading any content), then
/// every entry.
pub fn verify(
    named: &Path,
    policy: &TrustPolicy,
    progress: &dyn Progress,
) -> Result<VerifiedBundle, VerifyError> {
    verify_with_report(named, policy, progress).1
}

/// As [`verify`], also returning a report of every check made.
pub fn verify_with_report(
    named: &Path,
    policy: &TrustPolicy,
    progress: &dyn Progress,
) -> (Report, Result<VerifiedBundle, VerifyError>) {
    let mut report = Report {
        bundle: named.display().to_string(),
        ..Report::default()
    };
    let result = Location::find(named, Some(policy))
        .and_then(|found| run(found, policy, progress, &mut report))
        .map_err(|error| recognised(named, error));
    if let Err(error) = &result {
        let check = match error {
            VerifyError::Open { .. } => "readable",
            VerifyError::PartsMissing { .. } | VerifyError::PartsDamaged { .. } => "parts",
            e if e.is_trust_failure() => "signature",
            VerifyError::ChecksumMismatch { .. } => "checksum",
            VerifyError::SealMismatch { .. }
            | VerifyError::SealMissing
            | VerifyError::Bundle(BundleError::BadSeal { .. }) => "seal",
            VerifyError::Bundle(BundleError::UnsupportedVersion { .. }) => "format",
            _ if report.format_version.is_none() => "manifest",
            _ if !report.checks.iter().any(|c| c.check == "entries") => "entries",
            _ => "end",
        };
        report.check(check, false, escape(&anyhow_like(error)).into_owned());
    }
    (report, result)
}

/// The error with its causes, as one line.
fn anyhow_like(error: &VerifyError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text += &format!(": {cause}");
        source = cause.source();
    }
    text
}

/// The full verification: every entry decompressed and checked.
fn run(
    location: Location,
    policy: &TrustPolicy,
    progress: &dyn Progress,
    report: &mut Report,
) -> Result<VerifiedBundle, VerifyError> {
    report.size = location.size();
    if let Location::Parts { index, .. } = &location {
        report.parts = index.parts.len();
        report.check(
            "parts",
            true,
            format!(
                "{} parts present with their sizes, index signature accepted",
                index.parts.len()
            ),
        );
    }
    let seal = location.seal()?;
    tracing::info!(
        "verify: reading {} ({} bytes, {})",
        escape(&location.describe()),
        location
            .size()
            .map_or_else(|| "size unknown".to_owned(), |s| s.to_string()),
        if seal.is_some() {
            "sealed: hashed against its signed seal"
        } else {
            "unsealed: every entry checked"
        }
    );
    let mut input = match &seal {
        Some((seal, _)) => HashingReader::marking(location.open()?, seal.size),
        None => HashingReader::new(location.open()?),
    };
    progress.start(Task::Verifying, location.size());
    let mut signer = None;
    let mut metadata = Vec::new();
    let mut entries = 0usize;
    let result = reader::read(
        ProgressReader::new(&mut input, progress),
        |head: &Head| {
            signer = check_head(head, policy, report)?;
            // After the head, so that a refusal still reports who signed what.
            match &seal {
                Some((seal, _)) => sealed::check_signature(seal, policy)?,
                None => sealed::check_not_stripped(head)?,
            }
            Ok::<(), VerifyError>(())
        },
        |entry: &Entry, content: &mut dyn Read| {
            entries += 1;
            keep_metadata(&mut metadata, entry, content)
        },
    );
    progress.finish();
    let head = result.map_err(|error| explained(error, &location))?;
    tracing::info!(
        entries,
        "verify: every entry matches its size and SHA-256; signer {}",
        signer.as_ref().map_or_else(
            || "none (unsigned, allowed)".to_owned(),
            ToString::to_string
        )
    );
    let sealed_digest = input.marked().cloned();
    let (sha256, _) = input.finish();
    report.check("entries", true, format!("{entries} entries, each with the size and SHA-256 the manifest lists, in order, none missing or extra"));
    report.check("end", true, "the archive ends cleanly, nothing after it");
    if let Some((seal, _)) = &seal {
        sealed::check_digest(seal, sealed_digest.as_ref(), &location)?;
        report.check("seal", true, sealed::describe(seal));
    }
    check_companion(&location, &sha256, report)?;
    report.sha256 = Some(sha256.clone());
    Ok(VerifiedBundle {
        location,
        head,
        signer,
        metadata,
        sha256,
    })
}

/// `error`, unless a part of a split bundle differs from its index: that
/// explains any failure to read the bundle best, and names what to copy again.
fn explained(error: VerifyError, location: &Location) -> VerifyError {
    let damaged = location.damaged_parts();
    if damaged.is_empty() {
        error
    } else {
        VerifyError::PartsDamaged { parts: damaged }
    }
}

/// Checks the bundle against the `.sha256` file beside it, if there is one.
fn check_companion(
    location: &Location,
    sha256: &Digest,
    report: &mut Report,
) -> Result<(), VerifyError> {
    let Location::File(path) = location else {
        return Ok(());
    };
    let Some(recorded) = recorded_checksum(path) else {
        return Ok(());
    };
    if &recorded != sha256 {
        return Err(VerifyError::ChecksumMismatch { path: path.clone() });
    }
    report.check(
        "checksum",
        true,
        "the file's SHA-256 matches its .sha256 file",
    );
    Ok(())
}

/// Checks what the head says before any content is read, noting each check
/// in `report`: format, consistency (checked as it was parsed), the
/// signature, and the size of the metadata kept in memory. The signer.
fn check_head(
    head: &Head,
    policy: &TrustPolicy,
    report: &mut Report,
) -> Result<Option<Fingerprint>, VerifyError> {
    let manifest = &head.manifest;
    report.format_version = Some(manifest.format_version.clone());
    report.created = Some(manifest.created.clone());
    report.tool = Some(manifest.tool.clone());
    report.images = manifest
        .images
        .iter()
        .map(|i| ReportImage {
            refs: i.refs.iter().map(|r| r.given.clone()).collect(),
            config: i.config.digest.clone(),
            manifest: i.manifest.digest.clone(),
            platform: i.platform.to_string(),
        })
        .collect();
    report.signer = head.signature.as_ref().map(|s| Fingerprint(s.key.clone()));
    report.check(
        "format",
        true,
        format!("version {} is supported", escape(&manifest.format_version)),
    );
    report.check(
        "manifest",
        true,
        format!(
            "consistent: {} images, {} entries",
            manifest.images.len(),
            manifest.entries.len()
        ),
    );
    let signer = check_signature(head, policy)?;
    report.signer_trusted = signer.is_some();
    report.check(
        "signature",
        true,
        match &signer {
            Some(signer) => format!("valid, by trusted key {signer}"),
            None => "none; unsigned bundle accepted (--allow-unsigned)".into(),
        },
    );
    check_metadata_size(manifest)?;
    Ok(signer)
}

/// The SHA-256 that `<bundle>.sha256` (as pack writes it, in `sha256sum`
/// format) records for the bundle, if that file is there. Content checks
/// cannot see every damaged byte: zstd ignores some bits (padding of its
/// bit streams), so a copy can differ and still decode to the signed content.
///
/// The file is advisory (the signature and seal decide), so one that cannot
/// be used (not a regular file, a link, larger than checksums for thousands
/// of parts, not text) does not block an otherwise valid bundle: it is left
/// out with a note on standard error saying why.
fn recorded_checksum(path: &Path) -> Option<Digest> {
    use crate::files::untrusted::{Links, read_string_bounded};
    /// A line is some 80 bytes per file; this is room for thousands of parts.
    const CHECKSUM_FILE_LIMIT: u64 = 1 << 20;
    let name = path.file_name()?.to_str()?;
    let mut companion = path.as_os_str().to_owned();
    companion.push(".sha256");
    let companion = PathBuf::from(companion);
    let text = match read_string_bounded(
        &companion,
        Links::Refuse,
        CHECKSUM_FILE_LIMIT,
        "checksum file",
    ) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            eprintln!(
                "note: {} was not read ({e}); the bundle is checked without it; remove it, or copy it again from the original",
                companion.display()
            );
            return None;
        }
    };
    text.lines().find_map(|line| {
        let (hex, file) = line.split_once(char::is_whitespace)?;
        (file.trim_start().trim_start_matches('*') == name)
            .then(|| Digest::from_hex(hex).ok())
            .flatten()
    })
}

/// Total size of the `airgap/` metadata entries kept in memory after verifying.
const METADATA_LIMIT: u64 = 64 << 20;

fn is_metadata(path: &str) -> bool {
    path.starts_with("airgap/")
}

/// Keeps `entry` in `metadata` if it is an `airgap/` one.
fn keep_metadata(
    metadata: &mut Vec<(String, Vec<u8>)>,
    entry: &Entry,
    content: &mut dyn Read,
) -> Result<(), VerifyError> {
    if is_metadata(&entry.path) {
        let mut bytes = Vec::with_capacity(entry.size as usize);
        content
            .read_to_end(&mut bytes)
            .map_err(BundleError::Corrupt)?;
        metadata.push((entry.path.clone(), bytes));
    }
    Ok(())
}

fn check_metadata_size(manifest: &BundleManifest) -> Result<(), VerifyError> {
    let size = manifest
        .entries
        .iter()
        .filter(|e| is_metadata(&e.path))
        .fold(0u64, |total, e| total.saturating_add(e.size));
    if size > METADATA_LIMIT {
        return Err(BundleError::TooLarge {
            path: "airgap/".into(),
            size,
            limit: METADATA_LIMIT,
        }
        .into());
    }
    Ok(())
}

/// Reads only the manifest and signature, checking nothing but their form:
/// for showing what a bundle claims to be, never for loading it.
pub fn read_head(named: &Path) -> Result<Head, VerifyError> {
    Location::find(named, None)
        .and_then(|location| read_head_from(location.open()?))
        .map_err(|error| recognised(named, error))
}

/// `error`, or, where `named` turns out to hold something other than an
/// airgap bundle, what it holds and the command that takes it. Run only
/// once reading a bundle failed, so bundles are read at full speed; a
/// refusal about who signed is about a bundle and kept as it is.
pub fn recognised(named: &Path, error: VerifyError) -> VerifyError {
    if error.is_trust_failure() || named.as_os_str() == "-" {
        return error;
    }
    match crate::media::recognise::recognise(named) {
        Ok(found) if !found.could_be_bundle() => VerifyError::Foreign(Box::new(found)),
        _ => error,
    }
}

/// Reads only the manifest and signature from `input`.
pub fn read_head_from(input: impl Read + Send) -> Result<Head, VerifyError> {
    Ok(reader::read_head(input)?)
}
