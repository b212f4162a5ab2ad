//! A bundle named on the command line: a path, or `-` for standard input,
//! which is staged to a temporary file so it can be verified completely
//! before anything is done with it.

use std::path::{Path, PathBuf};

use airgap::verify::locate::Staged;

/// A bundle to read, staged if it came from standard input.
pub struct BundleInput {
    path: PathBuf,
    _staged: Option<Staged>,
}

impl BundleInput {
    /// Opens `named`; `-` stages standard input into `staging_dir` (default `$TMPDIR`).
    pub fn open(named: &Path, staging_dir: Option<&Path>) -> anyhow::Result<Self> {
        if named.as_os_str() != "-" {
            return Ok(Self {
                path: named.to_owned(),
                _staged: None,
            });
        }
        airgap::bundle::terminal::check_stdin_for_bundle().map_err(airgap::Error::from)?;
        let dir = staging_dir.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let staged = Staged::stage(&mut std::io::stdin(), &dir).map_err(airgap::Error::from)?;
        Ok(Self {
            path: staged.path().to_owned(),
            _staged: Some(staged),
        })
    }

    /// The file to read.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
