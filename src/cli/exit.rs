//! Exit codes, one table for the whole binary (documented in README.md), and
//! how a failure is told.

use std::path::Path;

use airgap::Error;
use airgap::bundle::BundleError;
use airgap::error::ErrorKind;
use airgap::media::sink::SinkError;
use airgap::media::source::SourceError;
use airgap::verify::VerifyError;

/// Any failure not listed below.
pub const FAILURE: u8 = 1;
/// Bad command line (clap's own code).
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
    match kind(error) {
        ErrorKind::Failure => FAILURE,
        ErrorKind::Usage => USAGE,
        ErrorKind::BundleInvalid => BUNDLE_INVALID,
        ErrorKind::Untrusted => UNTRUSTED,
        ErrorKind::Engine => ENGINE,
        ErrorKind::ImagesMissing => IMAGES_MISSING,
        ErrorKind::Downgrade => DOWNGRADE,
        ErrorKind::BaseMissing => BASE_MISSING,
    }
}

fn kind(error: &anyhow::Error) -> ErrorKind {
    error
        .chain()
        .find_map(|e| e.downcast_ref::<Error>())
        .map_or(ErrorKind::Failure, Error::kind)
}

/// The one-line message for `error`, before its hint.
pub fn message(error: &anyhow::Error) -> String {
    if stdout_closed_early(error) {
        return "standard output was closed before the bundle was complete".into();
    }
    format!("{error:#}")
}

/// True when the bundle being written to standard output lost its reader
/// (`pack -o - | head`): what was read there is a cut bundle.
fn stdout_closed_early(error: &anyhow::Error) -> bool {
    let Some(error) = error.chain().find_map(|e| e.downcast_ref::<Error>()) else {
        return false;
    };
    let (Error::Bundle(BundleError::Io { path, source, .. })
    | Error::Source(SourceError::Store(BundleError::Io { path, source, .. }))) = error
    else {
        return false;
    };
    path == Path::new("-") && source.kind() == std::io::ErrorKind::BrokenPipe
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
    use airgap::media::docker::engine::EngineError;
    use airgap::unpack::record::RecordError;
    let disk_full = error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::StorageFull)
    });
    if stdout_closed_early(error) {
        return Some(
            "what was read there is a cut bundle, which verify and unpack refuse; keep the reader running to the end, or write to a file with -o FILE",
        );
    }
    if disk_full {
        return Some(
            "the disk is full; nothing half-written was kept: free space there or choose another location",
        );
    }
    if error.downcast_ref::<SinceBundle>().is_some() {
        // Pack only reads what an earlier bundle claims; nothing is loaded,
        // and a fresh copy of a wrong file would not help.
        return Some(
            "--since names a bundle this site has already unpacked, as it was delivered; name another, or leave --since out for a full bundle",
        );
    }
    let error = error.chain().find_map(|e| e.downcast_ref::<Error>())?;
    if let Some(key) = key_error(error) {
        return key_hint(key);
    }
    if let Error::Bundle(BundleError::Io { path, source, .. }) = error {
        return output_hint(path, source);
    }
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
            VerifyError::Open { .. } | VerifyError::Foreign(_) => None,
            VerifyError::Bundle(BundleError::Io { path, source, .. }) => io_hint(path, source),
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
        Error::Source(SourceError::NotInArchive { .. }) => Some(
            "nothing was written; name images the archives hold (airgap plan --archive F lists them), or leave the names out to pack everything",
        ),
        Error::Engine(EngineError::Unreachable { .. })
        | Error::Source(SourceError::Engine(EngineError::Unreachable { .. }))
        | Error::Sink(SinkError::Engine(EngineError::Unreachable { .. })) => {
            Some("start the engine, or point --host or DOCKER_HOST at it")
        }
        Error::Sink(SinkError::BaseMissing { .. }) => Some(
            "nothing was loaded; unpack the full bundle first, or pack a delta against this site's airgap inventory",
        ),
        Error::Record(RecordError::Downgrade { .. }) => {
            Some("nothing was loaded; if you mean to roll back, pass --allow-downgrade")
        }
        _ => None,
    }
}

/// Marks a failure to read a bundle named by `pack --since`, whose hint is
/// about choosing that bundle rather than about copying one.
#[derive(Debug, thiserror::Error)]
#[error("--since bundle {}", airgap::display::escape_path(.0))]
pub struct SinceBundle(pub std::path::PathBuf);

/// A bundle that could not be read: the OS error names the cause; the only
/// advice worth adding is for a directory named where a bundle was expected.
fn io_hint(path: &Path, error: &std::io::Error) -> Option<&'static str> {
    (error.kind() == std::io::ErrorKind::IsADirectory || path.is_dir()).then_some(
        "name the bundle file itself, or one part or the index of a split bundle; a directory is read only when it holds one split bundle",
    )
}

/// A bundle that could not be written: the two mistakes in naming `-o`.
fn output_hint(path: &Path, error: &std::io::Error) -> Option<&'static str> {
    match error.kind() {
        std::io::ErrorKind::NotFound if !path.exists() => {
            Some("that directory does not exist: create it, or name another with -o")
        }
        std::io::ErrorKind::IsADirectory => {
            Some("-o names a directory: name the bundle file to write in it, as -o DIR/NAME.zst")
        }
        _ => None,
    }
}

fn key_error(error: &Error) -> Option<&airgap::trust::keys::KeyError> {
    match error {
        Error::Key(key) | Error::Trust(airgap::trust::TrustError::Key(key)) => Some(key),
        _ => None,
    }
}

/// Key files are PEM; the common wrong one is the same key in DER.
fn key_hint(error: &airgap::trust::keys::KeyError) -> Option<&'static str> {
    use airgap::trust::keys::KeyError;
    let not_pem = match error {
        KeyError::Malformed { .. } => true,
        KeyError::Io { source, .. } => source.kind() == std::io::ErrorKind::InvalidData,
        KeyError::Exists { .. } => return Some("choose another --output prefix"),
        _ => false,
    };
    not_pem.then_some(
        "keys are PEM files (-----BEGIN PUBLIC KEY----- or -----BEGIN PRIVATE KEY-----); convert a DER key with openssl pkey [-pubin] -inform DER -in KEY -out KEY.pem",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECOPY: &str = "copy the bundle again";

    fn unreadable(kind: std::io::ErrorKind) -> anyhow::Error {
        let error = BundleError::Io {
            action: "reading",
            path: "bundles".into(),
            source: kind.into(),
        };
        Error::from(VerifyError::from(error)).into()
    }

    #[test]
    fn a_directory_named_as_the_bundle_is_not_a_bad_copy() {
        let error = unreadable(std::io::ErrorKind::IsADirectory);
        let hint = hint(&error).unwrap();
        assert!(
            !hint.contains(RECOPY) && hint.contains("name the bundle file"),
            "{hint}"
        );
        assert_eq!(code(&error), BUNDLE_INVALID);
        assert_eq!(
            super::hint(&unreadable(std::io::ErrorKind::PermissionDenied)),
            None
        );
    }

    #[test]
    fn a_bad_since_bundle_is_about_choosing_it() {
        let refused = BundleError::NotABundle {
            reason: "it is empty".into(),
        };
        let error = anyhow::Error::new(Error::from(VerifyError::from(refused)))
            .context(SinceBundle("old.zst".into()));
        let hint = hint(&error).unwrap();
        assert!(!hint.contains(RECOPY) && hint.contains("--since"), "{hint}");
        assert_eq!(code(&error), BUNDLE_INVALID);
        assert!(format!("{error:#}").starts_with("--since bundle old.zst: "));
    }

    #[test]
    fn a_key_that_is_not_pem_is_told_to_convert_it() {
        let error: anyhow::Error = Error::from(airgap::trust::keys::KeyError::Malformed {
            path: "ops.der".into(),
            expected: "public (SPKI)",
        })
        .into();
        let hint = hint(&error).unwrap();
        assert!(
            !hint.contains(RECOPY) && hint.contains("-inform DER"),
            "{hint}"
        );
    }

    #[test]
    fn every_kind_has_its_row_of_the_table() {
        let missing = SourceError::Missing {
            refs: vec!["x:1".into()],
        };
        let unsigned = SinkError::Verify(VerifyError::Unsigned);
        let base_missing = SinkError::BaseMissing { missing: vec![] };
        let cases: [(Error, u8); 5] = [
            (Error::from(missing), IMAGES_MISSING),
            (Error::from(unsigned), UNTRUSTED),
            (
                Error::from(airgap::unpack::restore::RestoreError::Sink(base_missing)),
                BASE_MISSING,
            ),
            (
                Error::from(airgap::media::docker::engine::EngineError::LoadFailed {
                    message: "no".into(),
                }),
                ENGINE,
            ),
            (
                Error::from(VerifyError::from(BundleError::TrailingData)),
                BUNDLE_INVALID,
            ),
        ];
        for (error, expected) in cases {
            let message = error.to_string();
            assert_eq!(code(&error.into()), expected, "{message}");
        }
        assert_eq!(code(&anyhow::anyhow!("anything else")), FAILURE);
    }

    #[test]
    fn a_bundle_cut_by_its_reader_is_told_in_words() {
        let error: anyhow::Error = Error::from(BundleError::Io {
            action: "writing",
            path: "-".into(),
            source: std::io::ErrorKind::BrokenPipe.into(),
        })
        .into();
        assert_eq!(code(&error), FAILURE);
        assert_eq!(
            message(&error),
            "standard output was closed before the bundle was complete"
        );
        assert!(hint(&error).unwrap().contains("-o FILE"));
    }

    #[test]
    fn an_output_in_a_missing_directory_is_told_to_make_it() {
        let error: anyhow::Error = Error::from(BundleError::Io {
            action: "creating a work directory in",
            path: "/nonexistent/dir".into(),
            source: std::io::ErrorKind::NotFound.into(),
        })
        .into();
        assert_eq!(code(&error), FAILURE);
        assert!(hint(&error).unwrap().contains("create it"));
        assert!(message(&error).contains("/nonexistent/dir"));
    }
}
