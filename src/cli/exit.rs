//! Exit codes, one table for the whole binary (documented in README.md).

use airgap::Error;
use airgap::record::RecordError;
use airgap::sink::SinkError;
use airgap::source::SourceError;
use airgap::verify::VerifyError;

/// Any failure not listed below.
pub const FAILURE: u8 = 1;
/// Bad command line (clap's own code).
#[allow(dead_code)]
pub const USAGE: u8 = 2;
/// The bundle is damaged, truncated, altered, or not a bundle.
pub const BUNDLE_INVALID: u8 = 3;
/// The bundle's signer is not trusted, its signature is invalid, or it is unsigned.
pub const UNTRUSTED: u8 = 4;
/// The container engine is unreachable or failed.
pub const ENGINE: u8 = 5;
/// Images named for packing do not exist.
pub const IMAGES_MISSING: u8 = 6;
/// The bundle would move tags back to older images (a rollback).
pub const DOWNGRADE: u8 = 7;
/// A delta bundle builds on layers the engine does not hold.
pub const BASE_MISSING: u8 = 8;

/// The exit code for `error`.
pub fn code(error: &anyhow::Error) -> u8 {
    let Some(error) = error.chain().find_map(|e| e.downcast_ref::<Error>()) else {
        return FAILURE;
    };
    match error {
        Error::Verify(verify) | Error::Sink(SinkError::Verify(verify)) => verify_code(verify),
        Error::Bundle(_) => BUNDLE_INVALID,
        Error::Engine(_)
        | Error::Sink(SinkError::Engine(_))
        | Error::Source(SourceError::Engine(_)) => ENGINE,
        Error::Sink(SinkError::Mismatch { .. }) => ENGINE,
        Error::Source(SourceError::Missing { .. }) => IMAGES_MISSING,
        Error::Record(RecordError::Downgrade { .. }) => DOWNGRADE,
        Error::Sink(SinkError::BaseMissing { .. }) => BASE_MISSING,
        _ => FAILURE,
    }
}

fn verify_code(error: &VerifyError) -> u8 {
    if error.is_trust_failure() {
        UNTRUSTED
    } else if matches!(error, VerifyError::Open { .. }) {
        FAILURE
    } else {
        BUNDLE_INVALID
    }
}

/// True when the failure is only that stdout's reader went away (`| head`).
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<super::output::StdoutClosed>()
        .is_some()
}

/// What to do about `error`, appended to its message; `None` where the
/// message already says it.
pub fn hint(error: &anyhow::Error) -> Option<&'static str> {
    use airgap::bundle::BundleError;
    use airgap::engine::EngineError;
    use airgap::keys::KeyError;
    let disk_full = error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::StorageFull)
    });
    if disk_full {
        return Some(
            "the disk is full; nothing half-written was kept: free space there or choose another location",
        );
    }
    let error = error.chain().find_map(|e| e.downcast_ref::<Error>())?;
    let verify = match error {
        Error::Verify(verify) | Error::Sink(SinkError::Verify(verify)) => Some(verify),
        _ => None,
    };
    if let Some(verify) = verify {
        return match verify {
            VerifyError::Unsigned => {
                Some("get a signed bundle, or pass --allow-unsigned to accept unsigned ones")
            }
            VerifyError::NoTrustedKeys { .. } => Some(
                "pass the signer's public key with --key, or install it in /etc/airgap/trusted.d",
            ),
            VerifyError::UntrustedSigner { .. } => {
                Some("pass the signer's public key with --key if you trust it")
            }
            VerifyError::BadSignature { .. } => {
                Some("do not use this bundle; get a fresh copy from the signer")
            }
            VerifyError::Bundle(
                BundleError::NotABundle { .. } | BundleError::UnsupportedVersion { .. },
            ) => None,
            VerifyError::Open { .. } => None,
            VerifyError::PartsMissing { .. } | VerifyError::PartsDamaged { .. } => {
                Some("copy those parts again; the others are fine")
            }
            _ => Some(
                "nothing was loaded; copy the bundle again and compare it with its .sha256 file",
            ),
        };
    }
    match error {
        Error::Source(SourceError::Missing { .. }) => {
            Some("nothing was written; build, pull or load those images first, or leave them out")
        }
        Error::Engine(EngineError::Unreachable { .. })
        | Error::Source(SourceError::Engine(EngineError::Unreachable { .. }))
        | Error::Sink(SinkError::Engine(EngineError::Unreachable { .. })) => {
            Some("start the engine, or point --host or DOCKER_HOST at it")
        }
        Error::Key(KeyError::Exists { .. }) => Some("choose another --output prefix"),
        Error::Sink(SinkError::BaseMissing { .. }) => Some(
            "nothing was loaded; unpack the full bundle first, or pack a delta against this site's airgap inventory",
        ),
        Error::Record(RecordError::Downgrade { .. }) => {
            Some("nothing was loaded; if you mean to roll back, pass --allow-downgrade")
        }
        _ => None,
    }
}
