//! The Docker Engine API (Docker, and Podman's Docker-compatible socket):
//! the client, images read from it as a source, images loaded into it as a
//! sink, and layers taken back out of it for deltas.

mod content;
pub mod engine;
pub mod extract;
mod graph;
pub mod sink;
pub mod snapshot;
pub mod source;

pub use sink::DaemonSink;
pub use source::DaemonSource;

/// `images` as a log line names them: their references, else how many.
fn named(images: &[crate::media::source::ResolvedImage]) -> String {
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

/// The size of every layer of the images with these IDs and diff IDs,
/// from the tar headers Docker's overlay2 store keeps, where this process
/// can read that store (root); `None` otherwise, or where one of them is
/// not wholly there.
pub fn layer_sizes_in_place(
    engine: &engine::Engine,
    images: &[(crate::digest::Digest, Vec<crate::digest::Digest>)],
) -> Result<Option<Vec<(crate::digest::Digest, u64)>>, crate::media::source::SourceError> {
    let Some(store) = graph::open(engine)? else {
        return Ok(None);
    };
    let resolved: Vec<crate::media::source::ResolvedImage> = images
        .iter()
        .map(|(id, layers)| crate::media::source::ResolvedImage {
            refs: Vec::new(),
            id: Some(id.clone()),
            layers: Some(layers.clone()),
        })
        .collect();
    Ok(store
        .find(&resolved)?
        .map(|found| graph::GraphStore::layer_sizes(&found)))
}
