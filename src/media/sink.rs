//! Where verified images go. A sink only accepts [`FinishedImages`], which
//! only a [`VerifiedBundle`](crate::verify::VerifiedBundle) can make, and only `verify` makes one of those,
//! so nothing unverified reaches an engine.

use std::collections::HashSet;

use crate::bundle::BundleImage;
use crate::delta::finish::{FinishError, FinishedImages, MissingBase, describe_missing};
use crate::digest::Digest;
use crate::media::docker::engine::EngineError;
use crate::progress::Progress;
use crate::store::StagedLayers;
use crate::verify::VerifyError;

/// What a target holds and can take, asked once per unpack.
#[derive(Debug, Clone)]
pub struct Holdings {
    /// A stable identity of the target, keying its unpack record.
    pub target: String,
    /// The identity its record was kept under by earlier versions of
    /// airgap, where that differs (see `EngineInfo::former_id`): a record
    /// found only there is taken over.
    pub former_target: Option<String>,
    /// For each image of the bundle, in order: true when the target holds
    /// exactly that image already, so nothing of it is written again.
    pub present: Vec<bool>,
    /// True when the target takes an image without the layers it already
    /// holds (Docker's graph drivers); false when every image must arrive
    /// complete (containerd, Podman, an OCI layout, a registry).
    pub takes_absent_layers: bool,
}

/// Where verified images go. A sink is handed [`FinishedImages`], which only
/// a [`VerifiedBundle`](crate::verify::VerifiedBundle) can make, so nothing unverified reaches a target;
/// deltas, patches and absent layers are dealt with before it is called.
pub trait Sink {
    /// What the target holds of `images` and what it can take.
    fn holdings(&self, images: &[BundleImage]) -> Result<Holdings, SinkError>;

    /// The layer chains (bottom first) of every image the target holds;
    /// asked only for a delta, to check it holds what the delta builds on.
    fn layer_chains(&self) -> Result<Vec<Vec<Digest>>, SinkError>;

    /// Stages, from the target's own images, the layers with these digests
    /// (each checked against its digest): patch bases, and left-out layers
    /// a target that cannot take absent layers needs sent again.
    fn supply_layers(
        &self,
        digests: &HashSet<Digest>,
        progress: &dyn Progress,
    ) -> Result<StagedLayers, SinkError>;

    /// Writes the images.
    fn write(&self, images: &FinishedImages<'_>, progress: &dyn Progress) -> Result<(), SinkError>;

    /// Points every reference of `image`, which the target now holds, at it,
    /// and reports what it did.
    fn tag(&self, image: &BundleImage, already_present: bool) -> Result<LoadedImage, SinkError>;

    /// True when `reference` names exactly `image` on the target.
    fn resolves(&self, reference: &str, image: &BundleImage) -> Result<bool, SinkError>;

    /// Where the target holds one image per name (an engine), the platform
    /// a name several of the bundle's images share should point at: the
    /// target's own. `None` where a name can hold an image per platform (an
    /// index) or the target cannot tell.
    fn one_image_per_name(
        &self,
    ) -> Result<Option<crate::media::platform::WantedPlatform>, SinkError> {
        Ok(None)
    }

    /// The ID of the image `reference` names on the target now, where the
    /// target can tell: unpack reports the tags it moves away from another image.
    fn current_id(&self, _reference: &str) -> Result<Option<Digest>, SinkError> {
        Ok(None)
    }
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
        "after loading, {reference} on the target is {found}, not the bundle's image {expected}"
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
    /// A staging directory could not be made.
    #[error(transparent)]
    Staging(#[from] crate::store::StagingError),
    /// The medium failed on its own terms (a layout directory, a registry);
    /// its error says how.
    #[error("{target}: {source}")]
    Medium {
        /// The target, as the user named it.
        target: String,
        /// The medium's own error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// containerd failed (`unpack --to containerd…`).
    #[error(transparent)]
    Containerd(#[from] crate::media::containerd::ContainerdError),
    /// A registry failed (`unpack --to registry://…`).
    #[error(transparent)]
    Registry(#[from] crate::media::registry::RegistryError),
    /// The engine's data root lacks the space the images need.
    #[error(transparent)]
    NoSpace(#[from] crate::files::space::NoSpace),
    /// A patch did not rebuild the layer the manifest names.
    #[error(
        "the patch for layer {layer} does not rebuild it: the engine's reference layer differs or the bundle is damaged"
    )]
    PatchMismatch {
        /// The layer.
        layer: Digest,
    },
    /// An image for another platform that arrives with no name, which an
    /// engine on the containerd store filters out of a load.
    #[error(
        "the {platform} image {} cannot be loaded into Docker's containerd image store without a name (it filters out unnamed images of other platforms); pack the bundle with --platform {native}, or unpack it into a registry (--to registry://…), where every platform keeps the name",
        .config.short()
    )]
    ForeignUnnamed {
        /// Its platform.
        platform: String,
        /// Its config digest.
        config: Digest,
        /// The engine's platform.
        native: String,
    },
}

impl SinkError {
    /// The kind of this failure (see [`crate::Error::kind`]).
    pub fn kind(&self) -> crate::error::kind::ErrorKind {
        use crate::error::kind::ErrorKind;
        match self {
            Self::Engine(_) | Self::Mismatch { .. } => ErrorKind::Engine,
            Self::Verify(error) => error.kind(),
            Self::BaseMissing { .. } => ErrorKind::BaseMissing,
            Self::Registry(error) => error.kind(),
            Self::Containerd(error) => error.kind(),
            Self::Stream(_)
            | Self::NoSpace(_)
            | Self::PatchMismatch { .. }
            | Self::Staging(_)
            | Self::Medium { .. }
            | Self::ForeignUnnamed { .. } => ErrorKind::Failure,
        }
    }
}

impl From<crate::bundle::BundleError> for SinkError {
    fn from(error: crate::bundle::BundleError) -> Self {
        Self::Verify(VerifyError::Bundle(error))
    }
}

impl From<FinishError> for SinkError {
    fn from(error: FinishError) -> Self {
        match error {
            FinishError::BaseMissing { missing } => Self::BaseMissing { missing },
            FinishError::PatchMismatch { layer } => Self::PatchMismatch { layer },
            FinishError::Staging(error) => Self::Staging(error),
            FinishError::Stream(error) => Self::Stream(error),
        }
    }
}
