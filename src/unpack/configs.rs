//! The image configs of the bundles unpacked here, kept in the state
//! directory (`configs/`, one file per config, named by its digest) so that
//! the site's inventory can carry them back: a delta packed from an
//! inventory alone, with the connected side's layer cache cold or off, then
//! need not export an image the site holds whole just to learn its config.
//! Content-addressed: a file is used only when its bytes hash to its name,
//! and only configs a verified bundle lists are kept.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::bundle::leading::{CONFIG_LIMIT, LeadingConfig};
use crate::digest::Digest;
use crate::files::untrusted::{self, Links};

use super::record::{RecordError, ensure_dir};

/// Most configs an inventory reads: years of weekly bundles many times over.
const MOST_CONFIGS: usize = 100_000;

fn dir_of(state_dir: &Path) -> PathBuf {
    state_dir.join("configs")
}

/// Keeps `configs` (those whose digest `listed` names) under `state_dir`.
pub fn keep(
    state_dir: &Path,
    configs: &[LeadingConfig],
    listed: &dyn Fn(&Digest) -> bool,
) -> Result<(), RecordError> {
    let dir = dir_of(state_dir);
    ensure_dir(&dir)?;
    untrusted::check_strict(&dir).map_err(|source| RecordError::Insecure {
        dir: dir.clone(),
        source,
    })?;
    for config in configs.iter().filter(|c| listed(&c.digest)) {
        let path = dir.join(config.digest.hex());
        if path.exists() {
            continue;
        }
        untrusted::write_atomic(&path, &config.bytes, 0o600).map_err(|source| RecordError::Io {
            action: "write",
            path,
            source,
        })?;
    }
    Ok(())
}

/// The configs kept under `state_dir` that `wanted` picks, each checked
/// against its name; empty where none were kept.
pub fn read(
    state_dir: &Path,
    wanted: &dyn Fn(&[u8]) -> bool,
) -> Result<BTreeMap<Digest, Vec<u8>>, RecordError> {
    let dir = dir_of(state_dir);
    let failed = |source| RecordError::Io {
        action: "read",
        path: dir.clone(),
        source,
    };
    let listing = match std::fs::read_dir(&dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(failed(e)),
    };
    untrusted::check_strict(&dir).map_err(|source| RecordError::Insecure {
        dir: dir.clone(),
        source,
    })?;
    let mut configs = BTreeMap::new();
    for entry in listing.take(MOST_CONFIGS) {
        let entry = entry.map_err(failed)?;
        let Some(digest) = entry
            .file_name()
            .to_str()
            .and_then(|hex| Digest::from_hex(hex).ok())
        else {
            continue;
        };
        // A link, a FIFO, a file too large: not a kept config.
        let Ok(bytes) =
            untrusted::read_bounded(&entry.path(), Links::Refuse, CONFIG_LIMIT, "config")
        else {
            continue;
        };
        if Digest::of(&bytes) == digest && wanted(&bytes) {
            configs.insert(digest, bytes);
        }
    }
    Ok(configs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> LeadingConfig {
        LeadingConfig {
            digest: Digest::of(text.as_bytes()),
            bytes: text.as_bytes().to_vec(),
            layers: Vec::new(),
        }
    }

    #[test]
    fn configs_kept_are_read_back_checked_against_their_names() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        assert!(read(&state, &|_| true).unwrap().is_empty());
        let listed = config("{\"listed\":1}");
        let unlisted = config("{\"unlisted\":1}");
        keep(&state, &[listed, unlisted], &|d| {
            *d == Digest::of(b"{\"listed\":1}")
        })
        .unwrap();
        let kept = read(&state, &|_| true).unwrap();
        assert_eq!(kept.len(), 1, "only a config the bundle lists is kept");
        assert_eq!(kept[&Digest::of(b"{\"listed\":1}")], b"{\"listed\":1}");

        // A file whose bytes are not its name's is not believed.
        let forged = Digest::of(b"{\"forged\":1}");
        std::fs::write(state.join("configs").join(forged.hex()), b"{\"other\":1}").unwrap();
        assert!(!read(&state, &|_| true).unwrap().contains_key(&forged));
        assert!(read(&state, &|_| false).unwrap().is_empty());
    }
}
