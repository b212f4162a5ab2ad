//! The bundle file format (bundle-spec/FORMAT.md): its constants, limits and
//! errors, a writer that produces it and a streaming reader that checks every
//! entry against the manifest as it passes. Trust decisions live in `verify`.

mod body;
pub mod in_place;
pub mod inspect;
pub mod layout;
pub mod leading;
pub mod manifest;
mod output_files;
pub mod parts;
pub mod reader;
pub mod seal;
pub mod tar_stream;
pub mod terminal;
pub mod writer;

use std::path::PathBuf;

use crate::display::{escape, escape_path};
use crate::error::kind::ErrorKind;

pub use manifest::{
    BundleImage, BundleManifest, COMPOSE_PREFIX, ComposeRecord, ComposeService, Entry, ImageOrigin,
    LayerPatch, SignatureEntry, SourceInfo, patch_entry,
};

/// Media type of `airgap/manifest.json`.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.airgap.bundle.manifest.v1+json";
/// The format version this airgap writes.
pub const FORMAT_VERSION: &str = "1.4";
/// The one major version this airgap reads.
pub const FORMAT_MAJOR: u32 = 1;
/// The format versions this airgap writes and reads, for `--version`.
pub fn format_versions() -> String {
    format!("bundle format {FORMAT_VERSION}; reads {FORMAT_MAJOR}.x")
}

/// Path of the manifest entry, always first.
pub const MANIFEST_PATH: &str = "airgap/manifest.json";
/// Path of the signature entry, second when present.
pub const SIGNATURE_PATH: &str = "airgap/manifest.json.sig";
/// Largest manifest a reader accepts (FORMAT.md 2.3).
pub const MANIFEST_LIMIT: u64 = 16 << 20;
/// Largest signature entry a reader accepts.
pub const SIGNATURE_LIMIT: u64 = 64 << 10;
/// log2 of the largest zstd window: plain `zstd -d` decodes up to 128 MiB.
pub const WINDOW_LOG_MAX: u32 = 27;
/// The context prefixed to the manifest bytes before signing (FORMAT.md 4).
pub const SIGNATURE_CONTEXT: &[u8] = b"airgap-bundle-manifest-v1\n";

/// Why a bundle could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// A file operation failed.
    #[error("{action} {}", escape_path(.path))]
    Io {
        /// What was being done (`writing`, `reading`, …).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The content could not be decompressed or parsed as tar: corrupted or cut short.
    #[error("the bundle is corrupt or truncated")]
    Corrupt(#[source] std::io::Error),
    /// The file is not an airgap bundle at all.
    #[error("not an airgap bundle: {}", escape(.reason))]
    NotABundle {
        /// What gave it away.
        reason: String,
    },
    /// A bundle of a major version this airgap does not read.
    #[error(
        "bundle format version {} is not supported (this airgap reads 1.x); use a newer airgap", escape(.found)
    )]
    UnsupportedVersion {
        /// The version the bundle declares.
        found: String,
    },
    /// The manifest is not valid JSON of the expected shape.
    #[error("the bundle manifest is malformed")]
    ManifestSyntax {
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// The manifest contradicts itself (FORMAT.md section 3 rules).
    #[error("the bundle manifest is inconsistent: {}", escape(.reason))]
    Inconsistent {
        /// Which rule broke.
        reason: String,
    },
    /// An entry path that could escape or is not allowed.
    #[error("entry path \"{}\" is not allowed", escape(.path))]
    UnsafePath {
        /// The path as found.
        path: String,
    },
    /// A link, directory, device or extension header.
    #[error("entry \"{}\" is a {kind}, not a regular file", escape(.path))]
    NotAFile {
        /// The entry's path.
        path: String,
        /// Its tar type.
        kind: String,
    },
    /// An entry other than the one the manifest lists next.
    #[error("unexpected entry \"{}\" where the manifest lists {}", escape(.found), escape(.expected))]
    UnexpectedEntry {
        /// The path found.
        found: String,
        /// What was expected (a path, or `the end of the bundle`).
        expected: String,
    },
    /// Entries listed in the manifest never came.
    #[error("the bundle ends before entry {} (and {more} more): it is truncated", escape(.path))]
    MissingEntry {
        /// The first missing path.
        path: String,
        /// How many more are missing.
        more: usize,
    },
    /// An entry's size differs from the manifest's.
    #[error("entry {} is {actual} bytes, the manifest says {expected}", escape(.path))]
    SizeMismatch {
        /// The entry.
        path: String,
        /// Declared by the manifest.
        expected: u64,
        /// Found in the tar header.
        actual: u64,
    },
    /// An entry's content differs from what the manifest says.
    #[error(
        "entry {} does not match its sha256 in the manifest: the bundle was altered or damaged", escape(.path)
    )]
    DigestMismatch {
        /// The entry.
        path: String,
    },
    /// A metadata entry above its size limit.
    #[error("entry {} is {size} bytes, above the {limit}-byte limit", escape(.path))]
    TooLarge {
        /// The entry.
        path: String,
        /// Its declared size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The output's filesystem lacks the space the bundle needs.
    #[error(transparent)]
    NoSpace(#[from] crate::files::space::NoSpace),
    /// Data after the end of the tar archive.
    #[error("the bundle has data after its end")]
    TrailingData,
    /// The file ends like a sealed bundle, but its seal cannot be read.
    #[error("the bundle's seal is malformed: {}", escape(.reason))]
    BadSeal {
        /// What is wrong with it.
        reason: String,
    },
}

impl BundleError {
    /// The kind of this error met reading a bundle: its bytes are at fault,
    /// unless a file could not be read at all (missing, not permitted, an
    /// I/O error of the medium) or the disk is full.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Io { source, .. } if !is_content_fault(source) => ErrorKind::Failure,
            Self::NoSpace(_) => ErrorKind::Failure,
            _ => ErrorKind::BundleInvalid,
        }
    }
}

/// Cut short, holding what it cannot, or a name that is not a regular file
/// where a bundle or its part should be.
fn is_content_fault(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{InvalidData, InvalidInput, IsADirectory, UnexpectedEof};
    matches!(
        error.kind(),
        UnexpectedEof | InvalidData | InvalidInput | IsADirectory
    )
}

/// Checks an entry path against FORMAT.md 2.2: relative, plain characters,
/// no empty, `.` or `..` components, at most 255 bytes.
pub fn check_entry_path(path: &str) -> Result<(), BundleError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/');
    let components_ok = path
        .split('/')
        .all(|c| !c.is_empty() && c != "." && c != "..");
    if path.is_empty() || path.len() > 255 || !path.chars().all(allowed) || !components_ok {
        return Err(BundleError::UnsafePath {
            path: path.to_owned(),
        });
    }
    Ok(())
}

/// Paths only the manifest and signature may use.
fn is_reserved_path(path: &str) -> bool {
    path == MANIFEST_PATH || path == SIGNATURE_PATH
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_odd_paths_are_refused() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "a/.",
            "a\\b",
            "a b",
            "ä",
            &"a".repeat(256),
        ] {
            assert!(check_entry_path(bad).is_err(), "{bad:?} accepted");
        }
        for good in [
            "oci-layout",
            "blobs/sha256/abc",
            "airgap/compose/compose.yaml",
            ".env",
        ] {
            assert!(check_entry_path(good).is_ok(), "{good:?} refused");
        }
    }
}
