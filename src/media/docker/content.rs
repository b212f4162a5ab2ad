//! Docker's containerd image store, read where its bytes lie: where this
//! process can read the engine's containerd content store (as root, on the
//! engine's machine), images are read from there instead of exported, and
//! the layers a delta takes from the engine too. That engine's export
//! pushes every byte through containerd's gRPC, dockerd and its API, a
//! core's worth of CPU for as long as it runs; the store is only files.

use crate::display::escape;
use crate::image::ImageRecord;
use crate::media::containerd::{ContentStore, Ctr, Unreadable};
use crate::media::docker::engine::{Engine, EngineError};
use crate::media::layout::LayoutImage;
use crate::media::source::{LayerSink, ResolvedImage, SourceError};
use crate::progress::Progress;

/// The content store of an engine's containerd.
pub struct EngineContent {
    store: ContentStore,
}

/// The content store of `engine`'s containerd where the engine keeps its
/// images there and this process can read it; `None` otherwise (the reason
/// is logged).
pub fn open(engine: &Engine) -> Result<Option<EngineContent>, EngineError> {
    let Some(address) = engine.info()?.containerd else {
        return Ok(None);
    };
    let opened = Ctr::new(&address)
        .map_err(Unreadable::from)
        .and_then(|ctr| ContentStore::open(&ctr));
    match opened {
        Ok(store) => Ok(Some(EngineContent { store })),
        Err(reason) => {
            tracing::info!("engine: its containerd content store is not read ({reason})");
            Ok(None)
        }
    }
}

impl EngineContent {
    /// Each of `images` as the store holds it; `None` where one of them is
    /// not wholly there (the engine then exports them all).
    pub fn find(&self, images: &[ResolvedImage]) -> Result<Option<Vec<LayoutImage>>, SourceError> {
        let mut found = Vec::new();
        for image in images {
            let (Some(id), Some(diff_ids)) = (&image.id, &image.layers) else {
                return Ok(None);
            };
            let held = self
                .store
                .image(id, diff_ids, &image.refs)
                .map_err(|error| self.named(error))?;
            let Some(held) = held else {
                tracing::info!("engine: {id} is not wholly in its containerd content store");
                return Ok(None);
            };
            found.push(held);
        }
        tracing::info!(
            "engine: reading {} from its containerd content store {}",
            super::in_place::named(images),
            escape(&self.store.path().display().to_string())
        );
        Ok(Some(found))
    }

    /// Reads `images` into `layers`, as from an OCI layout.
    pub fn read(
        &self,
        images: Vec<LayoutImage>,
        layers: &mut dyn LayerSink,
        progress: &dyn Progress,
    ) -> Result<Vec<ImageRecord>, SourceError> {
        crate::media::layout::export_images(self.store.reader(), images, layers, progress)
            .map_err(|error| self.named(error))
    }

    /// An error reading the store as one that names it; failures that are
    /// not the store's (the bundle's disk, the writer) stay as they are.
    fn named(&self, error: SourceError) -> SourceError {
        let reason = match error {
            SourceError::Malformed { reason } => reason,
            SourceError::Read(error) => format!("reading a blob failed: {error}"),
            SourceError::LayerMismatch { .. } => error.to_string(),
            other => return other,
        };
        SourceError::StoreInPlace {
            store: "containerd content store",
            path: self.store.path().to_owned(),
            reason,
        }
    }
}
