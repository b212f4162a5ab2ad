//! Media: where images come from and where they go, one module per medium
//! offering the same verbs (as go-containerregistry has `daemon/`,
//! `tarball/`, `layout/`, `remote/`). A [`source::Source`] resolves what the
//! user asked for and exports it into the bundle's blob store; a
//! [`sink::Sink`] is handed finished images that only a verified bundle
//! makes.

pub mod archive;
pub mod combined;
pub mod compression;
pub mod containerd;
pub mod docker;
pub mod layout;
pub mod platform;
pub mod recognise;
pub mod registry;
pub mod rootfs;
pub mod sink;
pub mod source;
pub mod tar_guard;
