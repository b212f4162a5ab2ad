//! Free-space checks, made where the need is known, so a full disk is a
//! clear error before writing rather than a failure halfway.

use std::path::{Path, PathBuf};

/// Not enough free space.
#[derive(Debug, thiserror::Error)]
#[error("not enough free space in {path}: {needed} bytes needed, {available} available")]
pub struct NoSpace {
    /// The directory checked.
    pub path: PathBuf,
    /// Bytes needed.
    pub needed: u64,
    /// Bytes available to this user.
    pub available: u64,
}

/// Bytes available to this user on the filesystem holding `dir`, if it can
/// be known.
pub fn available(dir: &Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(dir).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Fails if the filesystem holding `dir` has less than `needed` bytes free;
/// passes where free space cannot be known.
pub fn ensure(dir: &Path, needed: u64) -> Result<(), NoSpace> {
    match available(dir) {
        Some(available) if available < needed => Err(NoSpace {
            path: dir.to_owned(),
            needed,
            available,
        }),
        _ => Ok(()),
    }
}
