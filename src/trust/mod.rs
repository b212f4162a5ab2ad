//! Which signers a site trusts: keys named one by one, and trust directories
//! of public keys (as apt's trusted.gpg.d). A directory or key another
//! account could change is refused (ssh's StrictModes rules), since whoever
//! can add or swap a file there can add a signer.

pub mod keys;

use std::fs;
use std::path::{Path, PathBuf};

use crate::files::untrusted::{InsecurePath, check_strict};
use crate::trust::keys::{KeyError, PublicKey};

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
    /// A trust directory, a key in it or a directory above them that
    /// another account could change.
    #[error(transparent)]
    Insecure(#[from] InsecurePath),
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
    pub fn trusts(&self, fingerprint: &crate::trust::keys::Fingerprint) -> bool {
        self.keys.iter().any(|k| k.fingerprint() == fingerprint)
    }
}

fn read_dir(dir: &Path) -> Result<Vec<PublicKey>, TrustError> {
    let unreadable = |source| TrustError::Unreadable {
        path: dir.to_owned(),
        source,
    };
    check_strict(dir)?;
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
            check_strict(path)?;
            Ok(PublicKey::read_found(path)?)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::trust::keys::PrivateKey;

    /// `base/trusted.d` (mode 0755) holding the public halves of `keys`,
    /// whose private halves stay in `base`.
    fn trust_dir(base: &Path, keys: &[&PrivateKey]) -> PathBuf {
        let dir = base.join("trusted.d");
        fs::create_dir(&dir).unwrap();
        set_mode(base, 0o755);
        set_mode(&dir, 0o755);
        for (n, key) in keys.iter().enumerate() {
            let (_, public) = key.write_pair(&base.join(format!("k{n}"))).unwrap();
            fs::copy(&public, dir.join(format!("k{n}.pem"))).unwrap();
        }
        dir
    }

    fn set_mode(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn load_dir(dir: &Path) -> Result<TrustPolicy, TrustError> {
        TrustPolicy::load(&[], &[dir.to_owned()], false)
    }

    /// Cases with another account's files need root to chown; under CI
    /// they must run, elsewhere they are skipped loudly.
    fn as_root() -> bool {
        if rustix::process::geteuid().is_root() {
            return true;
        }
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "this test needs root in CI"
        );
        eprintln!("SKIPPED: needs root to give a file to another account");
        false
    }

    const NOBODY: u32 = 65534;

    #[test]
    fn a_trust_directory_trusts_every_key_in_it() {
        let base = tempfile::tempdir().unwrap();
        let one = PrivateKey::generate().unwrap();
        let two = PrivateKey::generate().unwrap();
        let dir = trust_dir(base.path(), &[&one, &two]);
        let policy = load_dir(&dir).unwrap();
        assert!(policy.trusts(one.public().fingerprint()));
        assert!(policy.trusts(two.public().fingerprint()));
    }

    #[test]
    fn a_private_key_in_a_trust_directory_is_refused_by_name() {
        let base = tempfile::tempdir().unwrap();
        let dir = trust_dir(base.path(), &[]);
        PrivateKey::generate()
            .unwrap()
            .write_pair(&dir.join("ops"))
            .unwrap();
        let error = load_dir(&dir).unwrap_err();
        assert!(
            matches!(&error, TrustError::Key(KeyError::PrivateNotPublic { path }) if path == &dir.join("ops.pem")),
            "{error}"
        );
    }

    #[test]
    fn a_named_private_key_is_refused() {
        let base = tempfile::tempdir().unwrap();
        let (private, _) = PrivateKey::generate()
            .unwrap()
            .write_pair(&base.path().join("ops"))
            .unwrap();
        let error = TrustPolicy::load(&[private], &[], false).unwrap_err();
        assert!(
            matches!(error, TrustError::Key(KeyError::PrivateNotPublic { .. })),
            "{error}"
        );
    }

    #[test]
    fn a_group_writable_trust_directory_or_key_is_refused() {
        let base = tempfile::tempdir().unwrap();
        let dir = trust_dir(base.path(), &[&PrivateKey::generate().unwrap()]);
        set_mode(&dir.join("k0.pem"), 0o664);
        let error = load_dir(&dir).unwrap_err();
        assert!(
            matches!(&error, TrustError::Insecure(InsecurePath::Writable { path, .. }) if path.ends_with("trusted.d/k0.pem")),
            "{error}"
        );
        set_mode(&dir.join("k0.pem"), 0o644);
        set_mode(&dir, 0o775);
        let error = load_dir(&dir).unwrap_err();
        assert!(
            matches!(error, TrustError::Insecure(InsecurePath::Writable { .. })),
            "{error}"
        );
    }

    #[test]
    fn a_trust_directory_owned_by_another_account_is_refused() {
        if !as_root() {
            return;
        }
        let base = tempfile::tempdir().unwrap();
        let dir = trust_dir(base.path(), &[&PrivateKey::generate().unwrap()]);
        std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY)).unwrap();
        let error = load_dir(&dir).unwrap_err();
        assert!(
            matches!(&error, TrustError::Insecure(InsecurePath::Owner { path, owner: NOBODY, .. }) if path.ends_with("trusted.d")),
            "{error}"
        );
        assert!(error.to_string().contains("chown"), "{error}");
    }

    #[test]
    fn a_key_owned_by_another_account_is_refused() {
        if !as_root() {
            return;
        }
        let base = tempfile::tempdir().unwrap();
        let dir = trust_dir(base.path(), &[&PrivateKey::generate().unwrap()]);
        std::os::unix::fs::chown(dir.join("k0.pem"), Some(NOBODY), Some(NOBODY)).unwrap();
        let error = load_dir(&dir).unwrap_err();
        assert!(
            matches!(&error, TrustError::Insecure(InsecurePath::Owner { path, owner: NOBODY, .. }) if path.ends_with("trusted.d/k0.pem")),
            "{error}"
        );
    }

    #[test]
    fn a_parent_others_can_write_to_is_refused_unless_sticky() {
        let base = tempfile::tempdir().unwrap();
        let key = PrivateKey::generate().unwrap();
        let open = base.path().join("open");
        fs::create_dir(&open).unwrap();
        let dir = trust_dir(&open, &[&key]);
        set_mode(base.path(), 0o755);
        set_mode(&open, 0o777);
        let error = load_dir(&dir).unwrap_err();
        assert!(
            matches!(&error, TrustError::Insecure(InsecurePath::WritableParent { path, .. }) if path.ends_with("open")),
            "{error}"
        );
        set_mode(&open, 0o1777);
        assert!(load_dir(&dir).unwrap().trusts(key.public().fingerprint()));
    }

    #[test]
    fn a_link_or_a_fifo_in_a_trust_directory_is_refused_without_hanging() {
        let base = tempfile::tempdir().unwrap();
        let key = PrivateKey::generate().unwrap();
        let dir = trust_dir(base.path(), &[]);
        let (_, public) = key.write_pair(&base.path().join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(&public, dir.join("link.pem")).unwrap();
        let error = format!("{:#}", anyhow::Error::from(load_dir(&dir).unwrap_err()));
        assert!(
            error.contains("link.pem") && error.contains("symbolic link"),
            "{error}"
        );

        fs::remove_file(dir.join("link.pem")).unwrap();
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            dir.join("fifo.pem"),
            rustix::fs::Mode::from_raw_mode(0o644),
        )
        .unwrap();
        let error = format!("{:#}", anyhow::Error::from(load_dir(&dir).unwrap_err()));
        assert!(
            error.contains("fifo.pem") && error.contains("FIFO"),
            "{error}"
        );
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
