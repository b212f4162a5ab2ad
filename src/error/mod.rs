//! The library's error: one variant per stage, each stage's own error inside,
//! and the one kind of failure each is ([`Error::kind`]).

pub mod kind;

pub use kind::ErrorKind;

use crate::bundle::BundleError;
use crate::delta::inventory::InventoryError;
use crate::image::rename::RenameError;
use crate::media::docker::engine::EngineError;
use crate::media::recognise::RecogniseError;
use crate::media::sink::SinkError;
use crate::media::source::SourceError;
use crate::plan::PlanError;
use crate::trust::TrustError;
use crate::trust::keys::KeyError;
use crate::unpack::record::RecordError;
use crate::unpack::restore::RestoreError;
use crate::verify::VerifyError;

/// Any failure of an airgap operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Working out the images failed.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Writing or reading the bundle format failed.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// An inventory could not be taken or read.
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    /// A key could not be used.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Trusted keys could not be loaded.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// The bundle was refused.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// Loading failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The unpack record refused the bundle or could not be used.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The carried compose project could not be restored.
    #[error(transparent)]
    Restore(#[from] RestoreError),
    /// Images could not be given the new names asked for.
    #[error(transparent)]
    Rename(#[from] RenameError),
    /// A file named as an image archive is something else.
    #[error(transparent)]
    Recognise(#[from] RecogniseError),
    /// A bundle was to flow through a terminal.
    #[error(transparent)]
    Terminal(#[from] crate::bundle::terminal::TerminalError),
    /// The layer cache could not be used.
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
    /// The creation time given is not one.
    #[error(transparent)]
    Created(#[from] crate::pack::InvalidTime),
}

impl Error {
    /// The kind of this failure. A full disk or a reader that went away is
    /// this machine's trouble wherever it was met, even inside a stage whose
    /// other errors blame the bundle; an engine's failure stays the engine's,
    /// whatever its connection reported.
    pub fn kind(&self) -> ErrorKind {
        match self.stage_kind() {
            ErrorKind::Engine => ErrorKind::Engine,
            _ if caused_by_local_io(self) => ErrorKind::Failure,
            kind => kind,
        }
    }

    fn stage_kind(&self) -> ErrorKind {
        match self {
            Self::Plan(error) => error.kind(),
            Self::Source(error) => error.kind(),
            // Outside verification a bundle error comes from writing one, or
            // from reading an earlier bundle named for a delta: no delivered
            // bundle is at fault.
            Self::Bundle(_) => ErrorKind::Failure,
            Self::Inventory(error) => error.kind(),
            Self::Key(_) | Self::Trust(_) => ErrorKind::Failure,
            Self::Verify(error) => error.kind(),
            Self::Sink(error) => error.kind(),
            Self::Record(error) => error.kind(),
            Self::Engine(_) => ErrorKind::Engine,
            Self::Restore(error) => error.kind(),
            Self::Rename(error) => error.kind(),
            Self::Recognise(error) => error.kind(),
            Self::Terminal(error) => error.kind(),
            Self::Cache(error) => error.kind(),
            Self::Created(_) => ErrorKind::Usage,
        }
    }
}

/// True when some cause of `error` is an I/O error that only this machine
/// can fix: a full disk or quota, a read-only filesystem, or the reader of
/// what was being written gone (a broken pipe happens only on writes).
fn caused_by_local_io(error: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind::{
        BrokenPipe, FileTooLarge, QuotaExceeded, ReadOnlyFilesystem, StorageFull,
    };
    std::iter::successors(Some(error), |cause| cause.source()).any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                StorageFull | QuotaExceeded | FileTooLarge | ReadOnlyFilesystem | BrokenPipe
            )
        })
    })
}

impl From<crate::media::containerd::ContainerdError> for Error {
    fn from(error: crate::media::containerd::ContainerdError) -> Self {
        Error::Sink(SinkError::Containerd(error))
    }
}

impl From<crate::media::registry::RegistryError> for Error {
    fn from(error: crate::media::registry::RegistryError) -> Self {
        Error::Sink(SinkError::Registry(error))
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;
    use crate::bundle::BundleError;

    fn io_error(action: &'static str, kind: io::ErrorKind) -> BundleError {
        BundleError::Io {
            action,
            path: "shop.zst".into(),
            source: kind.into(),
        }
    }

    fn read(error: BundleError) -> Error {
        Error::Verify(error.into())
    }

    fn failed_load(error: BundleError) -> Error {
        Error::Sink(SinkError::Verify(error.into()))
    }

    #[test]
    fn a_full_disk_is_a_failure_wherever_it_is_met() {
        use io::ErrorKind::StorageFull;
        for error in [
            read(io_error("staging the bundle in", StorageFull)),
            read(BundleError::Corrupt(StorageFull.into())),
            failed_load(BundleError::Corrupt(StorageFull.into())),
            Error::Bundle(io_error("writing", StorageFull)),
            Error::Source(SourceError::Stage {
                path: "blob-1".into(),
                source: StorageFull.into(),
            }),
            Error::Sink(SinkError::Stream(StorageFull.into())),
        ] {
            assert_eq!(error.kind(), ErrorKind::Failure, "{error:?}");
        }
    }

    #[test]
    fn a_bundle_that_cannot_be_read_is_not_a_damaged_one() {
        use io::ErrorKind::{NotFound, PermissionDenied, UnexpectedEof};
        assert_eq!(
            read(io_error("reading", NotFound)).kind(),
            ErrorKind::Failure
        );
        assert_eq!(
            failed_load(io_error("reading", PermissionDenied)).kind(),
            ErrorKind::Failure
        );
        assert_eq!(
            read(io_error("reading", UnexpectedEof)).kind(),
            ErrorKind::BundleInvalid
        );
        let damaged = BundleError::DigestMismatch {
            path: "blobs/sha256/00".into(),
        };
        assert_eq!(failed_load(damaged).kind(), ErrorKind::BundleInvalid);
    }

    #[test]
    fn the_bundle_being_written_is_never_the_one_at_fault() {
        let mismatch = || BundleError::DigestMismatch {
            path: "blobs/sha256/00".into(),
        };
        assert_eq!(Error::Bundle(mismatch()).kind(), ErrorKind::Failure);
        assert_eq!(
            Error::Source(SourceError::Store(mismatch())).kind(),
            ErrorKind::Failure
        );
        let closed = io_error("writing", io::ErrorKind::BrokenPipe);
        assert_eq!(Error::Bundle(closed).kind(), ErrorKind::Failure);
    }

    #[test]
    fn nested_errors_keep_their_kind() {
        let engine = || EngineError::LoadFailed {
            message: "no".into(),
        };
        assert_eq!(
            Error::Sink(SinkError::Engine(engine())).kind(),
            ErrorKind::Engine
        );
        assert_eq!(
            Error::Inventory(InventoryError::Engine(engine())).kind(),
            ErrorKind::Engine
        );
        let base_missing = SinkError::BaseMissing { missing: vec![] };
        assert_eq!(
            Error::Restore(RestoreError::Sink(base_missing)).kind(),
            ErrorKind::BaseMissing
        );
        let missing = SourceError::Missing {
            refs: vec!["x:1".into()],
        };
        assert_eq!(Error::Source(missing).kind(), ErrorKind::ImagesMissing);
        let untrusted = SinkError::Verify(VerifyError::Unsigned);
        assert_eq!(Error::Sink(untrusted).kind(), ErrorKind::Untrusted);
    }

    #[test]
    fn a_reference_typed_as_an_argument_is_a_usage_error() {
        let invalid = |origin: &str| {
            let source = crate::image::ImageRef::parse("BAD REF!").unwrap_err();
            Error::Plan(PlanError::Reference {
                origin: origin.into(),
                source,
            })
        };
        assert_eq!(invalid(crate::plan::COMMAND_LINE).kind(), ErrorKind::Usage);
        assert_eq!(invalid("list.txt:3").kind(), ErrorKind::Failure);
    }
}
