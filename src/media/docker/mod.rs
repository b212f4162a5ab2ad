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
