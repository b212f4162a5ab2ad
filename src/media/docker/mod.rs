//! The Docker Engine API (Docker, and Podman's Docker-compatible socket):
//! the client, images read from it as a source, images loaded into it as a
//! sink, and layers taken back out of it for deltas.

mod content;
pub mod engine;
pub mod extract;
mod graph;
mod in_place;
pub mod sink;
pub mod snapshot;
pub mod source;

pub use in_place::layer_sizes_in_place;
pub use sink::DaemonSink;
pub use source::DaemonSource;
