//! The library's error: one variant per stage, each stage's own error inside.

use crate::bundle::BundleError;
use crate::delta::inventory::InventoryError;
use crate::media::docker::engine::EngineError;
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
}
