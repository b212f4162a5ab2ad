//! The one blob store between the media and the bundle: every source hands
//! its layers to a [`queue::BlobStore`], which dedups them by digest and
//! streams or stages them ([`stage`] decompresses and hashes on the way)
//! for the bundle writer; sinks stage the layers they fetch here too, in
//! directories that are removed when dropped and on interrupt.

pub mod queue;
pub mod stage;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::digest::Digest;

/// An uncompressed layer a source has written to the staging directory and
/// hashed on the way.
#[derive(Debug)]
pub struct StagedLayer {
    /// The staged file; whoever receives the layer removes it.
    pub path: PathBuf,
    /// Digest of its content (its diff ID).
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

/// Layers staged in a directory of their own, by digest.
pub struct StagedLayers {
    dir: tempfile::TempDir,
    _registration: crate::files::cleanup::Registration,
    /// The staged files.
    pub layers: HashMap<Digest, StagedLayer>,
}

/// A staging directory could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot make a staging directory for layers in $TMPDIR")]
pub struct StagingError(#[source] pub std::io::Error);

impl StagedLayers {
    /// An empty set, in a new directory under `$TMPDIR`.
    pub fn none() -> Result<Self, StagingError> {
        let dir = tempfile::tempdir().map_err(StagingError)?;
        let registration = crate::files::cleanup::register(dir.path());
        Ok(Self {
            dir,
            _registration: registration,
            layers: HashMap::new(),
        })
    }

    /// Where the staged files are.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
