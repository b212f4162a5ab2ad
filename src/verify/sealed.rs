//! Admission of a sealed bundle (FORMAT.md 5.1): its seal's signature, then
//! the SHA-256 of every byte before the seal, then the head. That proves the
//! file is exactly what a trusted signer wrote at the cost of hashing the
//! compressed bytes, where a full verify decompresses and hashes all content;
//! the load that follows still checks every entry as it streams past.

use std::io::{self, BufReader};

use crate::bundle::reader::{self, Head};
use crate::bundle::seal::{SEAL_CONTEXT, Seal};
use crate::bundle::{BundleError, Entry};
use crate::digest::{Digest, HashingReader};
use crate::progress::{Progress, ProgressReader, Task};
use crate::verify::locate::Location;

use super::{
    Report, TrustPolicy, VerifiedBundle, VerifyError, check_companion, check_head, check_signed,
    explained, is_metadata, keep_metadata,
};

/// Decides whether the bundle named by `named` may be loaded: by its seal
/// when it has one, else by a full verify. What comes back is as safe to load
/// as a fully verified bundle, since loading reads it through
/// [`VerifiedBundle::read_entries`], which checks every entry again.
pub fn admit(
    named: &std::path::Path,
    policy: &TrustPolicy,
    progress: &dyn Progress,
) -> Result<VerifiedBundle, VerifyError> {
    admit_bundle(named, policy, progress).map_err(|error| super::recognised(named, error))
}

fn admit_bundle(
    named: &std::path::Path,
    policy: &TrustPolicy,
    progress: &dyn Progress,
) -> Result<VerifiedBundle, VerifyError> {
    let location = Location::find(named, Some(policy))?;
    let mut report = Report::default();
    let Some((seal, _)) = location.seal()? else {
        return super::run(location, policy, progress, &mut report);
    };
    check_signature(&seal, policy)?;

    let mut input = HashingReader::marking(location.open()?, seal.size);
    progress.start(Task::Verifying, location.size());
    let read = io::copy(
        &mut BufReader::with_capacity(1 << 20, ProgressReader::new(&mut input, progress)),
        &mut io::sink(),
    );
    progress.finish();
    if let Err(source) = read {
        return Err(unreadable(&location, source));
    }
    check_digest(&seal, input.marked(), &location)?;
    let (sha256, _) = input.finish();
    check_companion(&location, &sha256, &mut report)?;

    let mut signer = None;
    let mut metadata = Vec::new();
    let head = reader::read_leading(
        location.open()?,
        |head| {
            signer = check_head(head, policy, &mut report)?;
            Ok::<(), VerifyError>(())
        },
        |entry: &Entry| is_metadata(&entry.path),
        |entry, content| keep_metadata(&mut metadata, entry, content),
    )?;
    Ok(VerifiedBundle {
        location,
        head,
        signer,
        metadata,
        sha256,
    })
}

/// The seal is a trusted key's signature of what it states.
pub(super) fn check_signature(seal: &Seal, policy: &TrustPolicy) -> Result<(), VerifyError> {
    check_signed(
        &seal.signed_bytes(),
        Some(&seal.signature),
        SEAL_CONTEXT,
        policy,
    )
    .map(|_| ())
}

/// Format minor version from which a signed bundle always ends with a seal.
const SEALED_SINCE_MINOR: u32 = 3;

/// A bundle without a seal is refused when its head shows that its signer
/// sealed it: a signed manifest of format 1.3 or later. Without this, cutting
/// the seal off would turn a sealed bundle into one read as an older writer's.
pub(super) fn check_not_stripped(head: &Head) -> Result<(), VerifyError> {
    if head.signature.is_some() && head.manifest.format_minor() >= SEALED_SINCE_MINOR {
        return Err(VerifyError::SealMissing);
    }
    Ok(())
}

/// The bytes before the seal hashed to what it states.
pub(super) fn check_digest(
    seal: &Seal,
    found: Option<&Digest>,
    location: &Location,
) -> Result<(), VerifyError> {
    if found == Some(&seal.sha256) {
        return Ok(());
    }
    let mismatch = VerifyError::SealMismatch {
        bundle: location.describe(),
    };
    Err(explained(mismatch, location))
}

/// The report's line for a seal that held.
pub(super) fn describe(seal: &Seal) -> String {
    format!(
        "the {} bytes before it are exactly those trusted key {} sealed",
        seal.size, seal.signature.key
    )
}

fn unreadable(location: &Location, source: io::Error) -> VerifyError {
    let error = BundleError::Io {
        action: "reading",
        path: location.describe().into(),
        source,
    };
    explained(error.into(), location)
}
