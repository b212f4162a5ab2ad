//! The local file system, held at arm's length: files others could have
//! placed ([`untrusted`]), writing beneath a directory without following
//! links ([`beneath`]), free space ([`space`]), and temporary files removed
//! on interrupt ([`cleanup`]).

pub mod beneath;
pub mod cleanup;
pub mod space;
pub mod untrusted;
