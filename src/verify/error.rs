//! Why a bundle was refused.

use std::path::PathBuf;

use crate::bundle::BundleError;
use crate::display::{escape, escape_all, escape_path};
use crate::error::kind::ErrorKind;
use crate::trust::keys::Fingerprint;

/// Why a bundle was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The file could not be opened.
    #[error("cannot open bundle {}", escape_path(.path))]
    Open {
        /// The bundle path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The bundle is damaged, altered or not a bundle.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// No signature, and unsigned bundles are not allowed.
    #[error("the bundle is not signed")]
    Unsigned,
    /// Signed, but by a key not among the trusted ones.
    #[error("the bundle is signed by key {signer}, which is not among the trusted keys")]
    UntrustedSigner {
        /// The signer's fingerprint.
        signer: Fingerprint,
    },
    /// Signed, but no key to check it with was given.
    #[error("the bundle is signed by key {signer}, and no trusted key is configured here")]
    NoTrustedKeys {
        /// The signer's fingerprint.
        signer: Fingerprint,
    },
    /// A signature (of the manifest, the seal or the parts index) does not match: altered after signing.
    #[error(
        "the bundle's signature by key {signer} is invalid: the bundle was altered after it was signed"
    )]
    BadSignature {
        /// The claimed signer.
        signer: Fingerprint,
    },
    /// Parts of a split bundle are absent or cut short.
    #[error("parts missing or incomplete: {}", escape_all(.parts, ", "))]
    PartsMissing {
        /// Their file names.
        parts: Vec<String>,
    },
    /// Parts of a split bundle whose content differs from the index.
    #[error("parts damaged: {}", escape_all(.parts, ", "))]
    PartsDamaged {
        /// Their file names.
        parts: Vec<String>,
    },
    /// The file's SHA-256 differs from the one its `.sha256` file records.
    #[error("{} differs from its .sha256 file: this copy is damaged", escape_path(.path))]
    ChecksumMismatch {
        /// The bundle file.
        path: PathBuf,
    },
    /// The bytes differ from those the seal's signer sealed.
    #[error(
        "{} differs from the bytes its signer sealed: this copy is damaged or was altered; copy it again from the original",
        escape(.bundle)
    )]
    SealMismatch {
        /// The bundle, as found.
        bundle: String,
    },
    /// A signed bundle of a version whose signed bundles always end with a
    /// seal, without one: the seal was cut off, with whatever it covered.
    #[error("the seal is missing: the bundle was cut or altered")]
    SealMissing,
    /// The file or directory holds something other than an airgap bundle,
    /// recognised by its content: the line says what and which command takes it.
    #[error("{0}")]
    Foreign(Box<crate::media::recognise::Recognised>),
    /// The file changed between verification and use.
    #[error("the bundle changed on disk after it was verified")]
    ChangedSinceVerified,
}

impl VerifyError {
    /// True when the refusal is about who signed, not about damage.
    pub fn is_trust_failure(&self) -> bool {
        matches!(
            self,
            Self::Unsigned
                | Self::UntrustedSigner { .. }
                | Self::NoTrustedKeys { .. }
                | Self::BadSignature { .. }
        )
    }

    /// Who is to blame: the signer's trust, the bundle's bytes, or (a file
    /// that cannot be opened) this machine.
    pub fn kind(&self) -> ErrorKind {
        match self {
            _ if self.is_trust_failure() => ErrorKind::Untrusted,
            Self::Open { .. } => ErrorKind::Failure,
            Self::Bundle(error) => error.kind(),
            _ => ErrorKind::BundleInvalid,
        }
    }
}
