//! Which signers a site trusts: keys named one by one, and trust directories
//! of public keys (as apt's trusted.gpg.d). A directory others can write to
//! is refused, since anyone who can add a file there can add a signer.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::keys::{KeyError, PublicKey};

/// Trust directories used when neither keys nor directories are named.
pub fn default_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("/etc/airgap/trusted.d")];
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        dirs.push(Path::new(&home).join(".config/airgap/trusted.d"));
    }
    dirs
}

/// Which signers to accept.
#[derive(Clone, Debug, Default)]
pub struct TrustPolicy {
    /// Keys whose signatures are accepted.
    pub keys: Vec<PublicKey>,
    /// Accept bundles with no signature at all.
    pub allow_unsigned: bool,
}

/// Why trusted keys could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// A key file is unusable.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A trust directory could not be read.
    #[error("cannot read trust directory {path}")]
    Unreadable {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A trust directory (or a key in it) others may write to.
    #[error(
        "{path} is writable by group or others (mode {mode:o}), so anyone could add a trusted key; run chmod go-w on it"
    )]
    Writable {
        /// The directory or file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

impl TrustPolicy {
    /// Trusts `keys` and every `*.pem` in `dirs`. With neither given, the
    /// default directories that exist are used: naming a key on the command
    /// line means trusting exactly that key.
    pub fn load(
        keys: &[PathBuf],
        dirs: &[PathBuf],
        allow_unsigned: bool,
    ) -> Result<Self, TrustError> {
        let mut policy = Self {
            allow_unsigned,
            ..Self::default()
        };
        for path in keys {
            policy.keys.push(PublicKey::read(path)?);
        }
        let defaults;
        let dirs = if keys.is_empty() && dirs.is_empty() {
            defaults = default_dirs()
                .into_iter()
                .filter(|d| d.is_dir())
                .collect::<Vec<_>>();
            &defaults
        } else {
            dirs
        };
        for dir in dirs {
            policy.keys.extend(read_dir(dir)?);
        }
        Ok(policy)
    }

    /// True when `fingerprint` belongs to a trusted key.
    pub fn trusts(&self, fingerprint: &crate::keys::Fingerprint) -> bool {
        self.keys.iter().any(|k| k.fingerprint() == fingerprint)
    }
}

fn read_dir(dir: &Path) -> Result<Vec<PublicKey>, TrustError> {
    let unreadable = |source| TrustError::Unreadable {
        path: dir.to_owned(),
        source,
    };
    check_not_writable(dir)?;
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(unreadable)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(unreadable)?;
    paths.retain(|p| p.extension().is_some_and(|e| e == "pem"));
    paths.sort();
    paths
        .iter()
        .map(|path| {
            check_not_writable(path)?;
            Ok(PublicKey::read(path)?)
        })
        .collect()
}

fn check_not_writable(path: &Path) -> Result<(), TrustError> {
    let metadata = fs::metadata(path).map_err(|source| TrustError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(TrustError::Writable {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PrivateKey;

    #[test]
    fn a_trust_directory_trusts_every_key_in_it() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let one = PrivateKey::generate().unwrap();
        let two = PrivateKey::generate().unwrap();
        one.write_pair(&dir.path().join("one")).unwrap();
        two.write_pair(&dir.path().join("two")).unwrap();
        // The private halves are in the directory too; they still only add their public keys.
        let policy = TrustPolicy::load(&[], &[dir.path().to_owned()], false).unwrap();
        assert!(policy.trusts(one.public().fingerprint()));
        assert!(policy.trusts(two.public().fingerprint()));
    }

    #[test]
    fn a_group_writable_trust_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o775)).unwrap();
        let error = TrustPolicy::load(&[], &[dir.path().to_owned()], false).unwrap_err();
        assert!(matches!(error, TrustError::Writable { .. }));
    }

    #[test]
    fn a_named_key_alone_is_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let key = PrivateKey::generate().unwrap();
        let (_, public) = key.write_pair(&dir.path().join("k")).unwrap();
        let policy = TrustPolicy::load(&[public], &[], false).unwrap();
        assert_eq!(policy.keys.len(), 1);
    }
}
