//! airgap moves container images into networks with no internet.
//!
//! Data flows one way:
//!
//! ```text
//!  plan ──▶ source ──▶ bundle ──▶ verify ──▶ sink
//!  what     engine /    signed      signature   engine
//!  to pack  archive     zstd file   + digests
//! ```
//!
//! - [`plan`]: compose files and image lists → image references.
//! - [`source`]: where images come from (an engine, a `docker save` archive).
//! - [`bundle`]: the on-disk format (bundle-spec/FORMAT.md), writer and streaming reader.
//! - [`verify`]: signature and digest checks; only it makes a [`verify::VerifiedBundle`].
//! - [`sink`]: where verified images go (an engine).
//!
//! [`pack()`] and [`unpack()`] glue the stages; the binary's `cli` module only
//! parses arguments and prints.

#![warn(missing_docs)]

pub mod beneath;
pub mod bundle;
pub mod cleanup;
pub mod delta;
pub mod digest;
pub mod display;
pub mod engine;
pub mod error;
pub mod extract;
pub mod image;
pub mod inspect;
pub mod inventory;
pub mod keys;
pub mod locate;
pub mod media;
pub mod pack;
pub mod patch;
pub mod plan;
pub mod progress;
pub mod record;
pub mod restore;
pub mod sink;
pub mod source;
pub mod space;
pub mod survey;
pub mod trust;
pub mod unpack;
pub mod untrusted;
pub mod verify;

pub use error::Error;
pub use pack::pack;
pub use unpack::unpack;
