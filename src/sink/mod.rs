//! Where verified images go. A sink only accepts a [`VerifiedBundle`], which
//! only `verify` can make, so nothing unverified reaches an engine.

pub mod daemon;
mod load_stream;

use crate::digest::Digest;
use crate::engine::EngineError;
use crate::progress::Progress;
use crate::verify::{VerifiedBundle, VerifyError};

pub use daemon::DaemonSink;

/// Where verified images go.
pub trait Sink {
    /// A stable identity of the target, keying its unpack record.
    fn target(&self) -> Result<String, SinkError>;

    /// True when `reference` names exactly `image` on the target.
    fn resolves(
        &self,
        reference: &str,
        image: &crate::bundle::BundleImage,
    ) -> Result<bool, SinkError>;

    /// Loads every image of `bundle` and restores its tags.
    fn load(
        &self,
        bundle: &VerifiedBundle,
        progress: &dyn Progress,
    ) -> Result<LoadReport, SinkError>;
}

/// What a load did, per image.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// One entry per bundle image, in bundle order.
    pub images: Vec<LoadedImage>,
}

/// One image after loading.
#[derive(Debug)]
pub struct LoadedImage {
    /// The tags restored, as the user spelled them.
    pub tags: Vec<String>,
    /// References that cannot be tags (digest references), reported not restored.
    pub untaggable: Vec<String>,
    /// The ID the engine gives the image.
    pub id: Digest,
    /// The image's config digest.
    pub config: Digest,
    /// True when the engine already had the image and nothing was sent.
    pub already_present: bool,
}

/// Why loading failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The bundle failed its second reading (changed or damaged since verified).
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// After loading, a reference resolves to something other than the bundle's image.
    #[error(
        "after loading, {reference} on the engine is {found}, not the bundle's image {expected}"
    )]
    Mismatch {
        /// The reference.
        reference: String,
        /// The bundle's config digest.
        expected: Digest,
        /// What the engine reports.
        found: String,
    },
    /// Writing the load stream failed.
    #[error("writing the load stream")]
    Stream(#[source] std::io::Error),
    /// A delta bundle builds on layers the engine does not hold.
    #[error("the engine lacks the layers this delta bundle builds on: {}", describe_missing(.missing))]
    BaseMissing {
        /// Each image and the layers it lacks.
        missing: Vec<MissingBase>,
    },
    /// Taking left-out layers or patch references from the engine failed.
    #[error("cannot take the layers the bundle builds on from the engine's images")]
    Extract(#[from] crate::extract::ExtractError),
    /// The engine's data root lacks the space the images need.
    #[error(transparent)]
    NoSpace(#[from] crate::space::NoSpace),
    /// A patch did not rebuild the layer the manifest names.
    #[error(
        "the patch for layer {layer} does not rebuild it: the engine's reference layer differs or the bundle is damaged"
    )]
    PatchMismatch {
        /// The layer.
        layer: Digest,
    },
}

/// An image of a delta bundle whose base is not on the engine.
#[derive(Debug, Clone)]
pub struct MissingBase {
    /// The image, as the bundle names it.
    pub image: String,
    /// The left-out layers it needs that the engine lacks as a chain.
    pub layers: Vec<Digest>,
}

fn describe_missing(missing: &[MissingBase]) -> String {
    missing
        .iter()
        .map(|m| {
            let layers: Vec<&str> = m.layers.iter().map(Digest::short).collect();
            format!("{} needs {}", m.image, layers.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl SinkError {
    /// The kind of this failure (see [`crate::Error::kind`]).
    pub fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            Self::Engine(_) | Self::Mismatch { .. } => ErrorKind::Engine,
            Self::Verify(error) => error.kind(),
            Self::BaseMissing { .. } => ErrorKind::BaseMissing,
            Self::Extract(error) => error.kind(),
            Self::Stream(_) | Self::NoSpace(_) | Self::PatchMismatch { .. } => ErrorKind::Failure,
        }
    }
}

impl From<crate::bundle::BundleError> for SinkError {
    fn from(error: crate::bundle::BundleError) -> Self {
        Self::Verify(VerifyError::Bundle(error))
    }
}
