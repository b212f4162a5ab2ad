//! airgap moves container images into networks with no internet.
//!
//! Data flows one way:
//!
//! ```text
//!  plan ──▶ source ──▶ store ──▶ bundle ──▶ verify ──▶ (delta) ──▶ sink
//!  what     a medium   staged    signed     signature   finished    a medium
//!  to pack  resolves   blobs     zstd file  + digests   images      writes
//! ```
//!
//! - [`plan`]: compose files and image lists → image references.
//! - [`media`]: one module per medium, each a source and/or a sink with the
//!   same verbs: [`media::docker`] (the Engine API), [`media::archive`]
//!   (`docker save` archives and the `docker load` stream), [`media::layout`]
//!   (OCI image layout directories).
//! - [`store`]: the one blob store every source writes through: dedup by digest,
//!   stage or stream, decompress and hash, hand over to the bundle writer.
//! - [`bundle`]: the on-disk format (bundle-spec/FORMAT.md), writer and streaming reader.
//! - [`verify`]: finding a bundle, its signature, seal and digests; only it
//!   makes a [`verify::VerifiedBundle`].
//! - [`delta`]: what a delta leaves out (connected side), and turning a
//!   verified bundle into complete images for any sink (isolated side).
//! - [`pack()`] and [`unpack()`] glue the stages; [`unpack`](mod@unpack) also keeps the
//!   rollback record and restores compose projects.
//! - [`trust`]: which keys are trusted; [`files`]: files others could have
//!   placed, and writing without following links.
//! - Core types: [`digest`], [`image`], [`display`] (escaping what a bundle
//!   says before it is shown), [`progress`], [`error`].
//!
//! The binary's `cli` module only parses arguments and prints.

#![warn(missing_docs)]

pub mod bundle;
pub mod cache;
pub mod delta;
pub mod digest;
pub mod display;
pub mod error;
pub mod files;
pub mod image;
pub mod media;
pub mod pack;
pub mod plan;
pub mod progress;
pub mod report;
pub mod store;
pub mod trust;
pub mod unpack;
pub mod verify;

pub use error::Error;
pub use pack::pack;
pub use unpack::unpack;
