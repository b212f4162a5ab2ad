//! Decides whether a bundle may be used: its signature by a trusted key, then
//! every entry's digest and size. A [`VerifiedBundle`] can only be made here,
//! and sinks accept nothing else, so nothing unverified reaches an engine.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::bundle::reader::{self, Head};
use crate::bundle::{BundleError, BundleManifest, Entry, SIGNATURE_CONTEXT};
use crate::keys::Fingerprint;
use crate::progress::{Progress, ProgressReader, Task};
pub use crate::trust::TrustPolicy;

/// Why a bundle was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The file could not be opened.
    #[error("cannot open bundle {path}")]
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
    /// The signature does not match the manifest: altered after signing.
    #[error("the bundle's signature by key {signer} is invalid: the manifest was altered")]
    BadSignature {
        /// The claimed signer.
        signer: Fingerprint,
    },
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
}

/// A bundle whose signature and every entry checked out.
#[derive(Debug)]
pub struct VerifiedBundle {
    path: PathBuf,
    head: Head,
    signer: Option<Fingerprint>,
    metadata: Vec<(String, Vec<u8>)>,
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
    pub fn manifest_digest(&self) -> crate::digest::Digest {
        crate::digest::Digest::of(&self.head.manifest_bytes)
    }

    /// The trusted key that signed it; `None` for an accepted unsigned bundle.
    pub fn signer(&self) -> Option<&Fingerprint> {
        self.signer.as_ref()
    }

    /// The bundle file.
    pub fn path(&self) -> &Path {
        &self.path
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
        let file = open(&self.path)?;
        let total = file.metadata().ok().map(|m| m.len());
        progress.start(task, total);
        let verified = &self.head.manifest_bytes;
        let check_head = |head: &Head| {
            if &head.manifest_bytes == verified {
                Ok(())
            } else {
                Err(E::from(VerifyError::ChangedSinceVerified))
            }
        };
        let result = reader::read(ProgressReader::new(file, progress), check_head, on_entry);
        progress.finish();
        result.map(|_| ())
    }
}

/// Verifies the bundle at `path`: signature first (before reading any
/// content), then every entry.
pub fn verify(
    path: &Path,
    policy: &TrustPolicy,
    progress: &dyn Progress,
) -> Result<VerifiedBundle, VerifyError> {
    let file = open(path)?;
    let total = file.metadata().ok().map(|m| m.len());
    progress.start(Task::Verifying, total);
    let mut signer = None;
    let mut metadata = Vec::new();
    let result = reader::read(
        ProgressReader::new(file, progress),
        |head: &Head| {
            signer = check_signature(head, policy)?;
            let metadata_size: u64 = head
                .manifest
                .entries
                .iter()
                .filter(|e| is_metadata(&e.path))
                .map(|e| e.size)
                .sum();
            if metadata_size > METADATA_LIMIT {
                return Err(BundleError::TooLarge {
                    path: "airgap/".into(),
                    size: metadata_size,
                    limit: METADATA_LIMIT,
                }
                .into());
            }
            Ok::<(), VerifyError>(())
        },
        |entry: &Entry, content: &mut dyn Read| {
            if is_metadata(&entry.path) {
                let mut bytes = Vec::with_capacity(entry.size as usize);
                content
                    .read_to_end(&mut bytes)
                    .map_err(BundleError::Corrupt)?;
                metadata.push((entry.path.clone(), bytes));
            }
            Ok(())
        },
    );
    progress.finish();
    let head = result?;
    Ok(VerifiedBundle {
        path: path.to_owned(),
        head,
        signer,
        metadata,
    })
}

/// Total size of the `airgap/` metadata entries kept in memory after verifying.
const METADATA_LIMIT: u64 = 64 << 20;

fn is_metadata(path: &str) -> bool {
    path.starts_with("airgap/")
}

/// Reads only the manifest and signature, checking nothing but their form:
/// for showing what a bundle claims to be, never for loading it.
pub fn read_head(path: &Path) -> Result<Head, VerifyError> {
    Ok(reader::read_head(open(path)?)?)
}

/// The fingerprint that signed the bundle, if any, checked against `policy`.
pub fn check_signature(
    head: &Head,
    policy: &TrustPolicy,
) -> Result<Option<Fingerprint>, VerifyError> {
    let Some(signature) = &head.signature else {
        return if policy.allow_unsigned {
            Ok(None)
        } else {
            Err(VerifyError::Unsigned)
        };
    };
    let signer = Fingerprint(signature.key.clone());
    if signature.algorithm != "ed25519" {
        return Err(VerifyError::BadSignature { signer });
    }
    let Some(key) = policy.keys.iter().find(|k| k.fingerprint() == &signer) else {
        return Err(if policy.keys.is_empty() {
            VerifyError::NoTrustedKeys { signer }
        } else {
            VerifyError::UntrustedSigner { signer }
        });
    };
    let bytes: Option<[u8; 64]> = hex::decode(&signature.signature)
        .ok()
        .and_then(|b| b.try_into().ok());
    let mut message = SIGNATURE_CONTEXT.to_vec();
    message.extend_from_slice(&head.manifest_bytes);
    match bytes {
        Some(bytes) if key.verifies(&message, &bytes) => Ok(Some(signer)),
        _ => Err(VerifyError::BadSignature { signer }),
    }
}

fn open(path: &Path) -> Result<File, VerifyError> {
    File::open(path).map_err(|source| VerifyError::Open {
        path: path.to_owned(),
        source,
    })
}
