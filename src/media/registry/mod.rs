//! A registry as a sink (`unpack --to registry://HOST[:PORT][/PREFIX]`):
//! every verified image is pushed, blobs first (HEAD, then a
//! cross-repository mount, then a resumable chunked upload), then its
//! manifest exactly as airgap wrote it, then its tags.
//!
//! The HTTP client is reqwest (blocking, rustls): `access` (TLS, credentials,
//! token and Basic auth, retries) is the part `pack --from-registry` shares;
//! `upload` and `sink` are the push half; `manifest`, `pull` and `source`
//! the pull half (`pack --from-registry`).

pub mod access;
pub mod address;
mod compress;
mod credentials;
mod index;
mod interrupt;
pub mod manifest;
mod pull;
mod sink;
mod source;
mod state;
mod upload;

pub use access::{AccessOptions, Client};
pub use address::RegistryAddress;
pub use compress::PushCompression;
pub use credentials::Login;
pub use sink::RegistrySink;
pub use source::RegistrySource;

/// Why talking to a registry failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The `registry://` address is malformed.
    #[error("invalid registry address \"{given}\": {reason}")]
    InvalidAddress {
        /// What was given.
        given: String,
        /// Why it is refused.
        reason: String,
    },
    /// Two options contradict each other, or one names nothing usable.
    #[error("{0}")]
    Usage(String),
    /// A file the options name (a CA, the Docker config) cannot be used.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// No connection could be made, even after retrying.
    #[error(
        "registry {registry} cannot be reached ({cause}); check that it runs and that HOST:PORT is right"
    )]
    Unreachable {
        /// HOST[:PORT].
        registry: String,
        /// The last cause.
        cause: String,
    },
    /// The registry's certificate is not trusted.
    #[error(
        "registry {registry}: its TLS certificate is not trusted ({cause}); pass its CA with --registry-ca FILE"
    )]
    Tls {
        /// HOST[:PORT].
        registry: String,
        /// The TLS library's reason.
        cause: String,
    },
    /// The registry refused the credentials (or there were none).
    #[error("registry {registry} refused access ({status}) with {tried}; {next}")]
    Unauthorized {
        /// HOST[:PORT].
        registry: String,
        /// 401 or 403.
        status: u16,
        /// Which credential source was tried.
        tried: String,
        /// What to do.
        next: &'static str,
    },
    /// The registry answered something a push cannot go on from.
    #[error("registry {registry}: {what} answered {status}{detail}")]
    Refused {
        /// HOST[:PORT].
        registry: String,
        /// The request, in words.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The registry's error text, if any (with a leading `: `).
        detail: String,
    },
    /// The registry pointed elsewhere (a redirect, a token realm, an upload
    /// location on another host): nothing is sent anywhere but the registry named.
    #[error(
        "registry {registry} pointed to {url}, another address; airgap contacts only the registry named"
    )]
    Elsewhere {
        /// HOST[:PORT].
        registry: String,
        /// Where it pointed.
        url: String,
    },
    /// A registry redirected a download to another host over plain HTTP,
    /// where the blob is followed only over HTTPS.
    #[error(
        "registry {registry} redirected a download to {url}, another host over plain HTTP; airgap follows a redirect elsewhere only over HTTPS: serve the registry's storage over HTTPS"
    )]
    PlainRedirect {
        /// HOST[:PORT].
        registry: String,
        /// Where it redirected.
        url: String,
    },
    /// A TLS registry named a token service over plain HTTP, where the
    /// credentials would travel in clear text.
    #[error(
        "registry {registry} asks for credentials at {url} over plain HTTP; airgap sends credentials for a TLS registry only over TLS: fix the registry's token realm"
    )]
    PlainRealm {
        /// HOST[:PORT].
        registry: String,
        /// The realm.
        url: String,
    },
    /// A credential helper failed.
    #[error("credential helper docker-credential-{helper}: {reason}")]
    Helper {
        /// The helper's name.
        helper: String,
        /// Why.
        reason: String,
    },
    /// A reference would be pushed to another registry than the one named.
    #[error(
        "{reference} names another registry than {registry}: every image is pushed to the registry named in --to only"
    )]
    OtherRegistry {
        /// The reference.
        reference: String,
        /// HOST[:PORT].
        registry: String,
    },
    /// Reading or writing a local file (a compressed layer, the upload state).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The push was interrupted (Ctrl-C, SIGTERM) at a chunk boundary.
    #[error(
        "interrupted; run the same unpack again to resume: uploads go on from where they stopped"
    )]
    Interrupted,
    /// References the registry does not hold (each with why).
    #[error(
        "not in the registry: {}; check the reference (`skopeo list-tags docker://HOST/REPOSITORY` lists a repository's tags)",
        .refs.join(", ")
    )]
    NotFound {
        /// `REFERENCE (cause)`, escaped.
        refs: Vec<String>,
    },
    /// What a reference names cannot be packed (a manifest airgap does not
    /// read, a platform the index lacks, a blob that is not what it claims).
    #[error("{reference}: {reason}")]
    Unusable {
        /// The reference, escaped.
        reference: String,
        /// Why, and what to do.
        reason: String,
    },
    /// Some images could not be pushed; the others were.
    #[error("{}", describe_failures(*.failed, *.total, .failures))]
    ImagesFailed {
        /// How many failed.
        failed: usize,
        /// How many were to be pushed.
        total: usize,
        /// `image: why`, one per failed image.
        failures: Vec<String>,
    },
}

impl RegistryError {
    /// The kind of this failure (see [`crate::Error::kind`]): a registry
    /// that fails is treated as an engine that fails (exit code 5).
    pub fn kind(&self) -> crate::error::kind::ErrorKind {
        use crate::error::kind::ErrorKind;
        match self {
            Self::InvalidAddress { .. } | Self::Usage(_) | Self::OtherRegistry { .. } => {
                ErrorKind::Usage
            }
            Self::File { .. } | Self::Io { .. } | Self::Unusable { .. } => ErrorKind::Failure,
            Self::NotFound { .. } => ErrorKind::ImagesMissing,
            _ => ErrorKind::Engine,
        }
    }

    /// True when every further request would fail the same way, so the
    /// push stops rather than listing the same cause for every image.
    pub(crate) fn stops_everything(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. }
                | Self::Tls { .. }
                | Self::Unauthorized { status: 401, .. }
                | Self::Interrupted
                | Self::Elsewhere { .. }
                | Self::PlainRedirect { .. }
                | Self::PlainRealm { .. }
        )
    }
}

fn describe_failures(failed: usize, total: usize, failures: &[String]) -> String {
    let which = if failed == total {
        format!("none of the {total} images was pushed")
    } else {
        format!("{failed} of {total} images were not pushed (the others were)")
    };
    format!("{which}: {}", failures.join("; "))
}
