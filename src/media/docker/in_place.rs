//! The engine's image store read in place, whichever kind it is: Docker's
//! containerd content store (`content.rs`) or its overlay2 store
//! (`graph.rs`). Pack's export and the layers a delta takes from the engine
//! both ask here first, and fall back to the engine's export.

use crate::image::ImageRecord;
use crate::media::docker::engine::Engine;
use crate::media::docker::{content, graph};
use crate::media::layout::LayoutImage;
use crate::media::source::{LayerSink, ResolvedImage, SourceError};
use crate::progress::Progress;

/// Images found in the engine's store, ready to be read.
pub enum InPlace {
    /// In Docker's containerd content store (its reader holds an index:
    /// boxed, so the two kinds are about the same size).
    Content(Box<content::EngineContent>, Vec<LayoutImage>),
    /// In Docker's overlay2 store.
    Graph(graph::GraphStore, Vec<graph::GraphImage>),
}

impl InPlace {
    /// Every one of `images` in the engine's store, where this process can
    /// read it and every one of them is wholly there; `None` otherwise.
    pub fn find(engine: &Engine, images: &[ResolvedImage]) -> Result<Option<Self>, SourceError> {
        if let Some(store) = content::open(engine)?
            && let Some(found) = store.find(images)?
        {
            return Ok(Some(Self::Content(Box::new(store), found)));
        }
        if let Some(store) = graph::open(engine)?
            && let Some(found) = store.find(images)?
        {
            return Ok(Some(Self::Graph(store, found)));
        }
        Ok(None)
    }

    /// Hands every image's layers to `layers` and returns one record per
    /// distinct config, with every reference naming it.
    pub fn read(
        self,
        layers: &mut dyn LayerSink,
        progress: &dyn Progress,
    ) -> Result<Vec<ImageRecord>, SourceError> {
        match self {
            Self::Content(store, images) => store.read(images, layers, progress),
            Self::Graph(store, images) => store.read(images, layers, progress),
        }
    }
}

/// `images` as a log line names them: their references, else how many.
pub(super) fn named(images: &[ResolvedImage]) -> String {
    let refs: Vec<&String> = images
        .iter()
        .flat_map(|image| &image.refs)
        .map(|r| &r.given)
        .collect();
    match refs.is_empty() {
        true => format!("{} images", images.len()),
        false => crate::display::escape_all(refs, ", "),
    }
}

/// The size of every layer of `images`, from the tar headers Docker's
/// overlay2 store keeps, where this process can read that store (root);
/// `None` otherwise, or where one of them is not wholly there.
pub fn layer_sizes_in_place(
    engine: &Engine,
    images: &[ResolvedImage],
) -> Result<Option<Vec<(crate::digest::Digest, u64)>>, SourceError> {
    let Some(store) = graph::open(engine)? else {
        return Ok(None);
    };
    Ok(store
        .find(images)?
        .map(|found| graph::GraphStore::layer_sizes(&found)))
}
