//! What a failure is, for the exit code: one kind per row of the README's
//! exit table, told by each stage's error about itself.

/// What a failure is, whatever stage met it: one kind per row of the
/// README's exit table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Anything not below: a file that cannot be read or written, a full
    /// disk, a malformed image export, a bad key.
    Failure,
    /// The command line names something invalid.
    Usage,
    /// The bundle is damaged, truncated, altered, or not a bundle.
    BundleInvalid,
    /// The bundle is unsigned, signed by a key not trusted, or its signature is invalid.
    Untrusted,
    /// The container engine is unreachable or failed.
    Engine,
    /// Images named for packing do not exist.
    ImagesMissing,
    /// The bundle would move tags back to older images.
    Downgrade,
    /// A delta bundle builds on layers the target does not hold.
    BaseMissing,
}
