//! Where each unfinished upload stands, kept across runs so that a push
//! cut by Ctrl-C, a network drop or a registry restart goes on from the
//! registry's offset. One small JSON file per registry under the unpack
//! state directory; read as hostile (a planted link is refused, its size
//! is bounded, and each location must point at the registry itself, which
//! [`super::Client::resolve`] checks where it is used).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::files::untrusted::{Links, read_bounded, write_atomic};

use super::RegistryError;

const STATE_LIMIT: u64 = 1 << 20;

/// Upload locations by `repository@digest`.
pub struct UploadState {
    path: PathBuf,
    locations: Mutex<BTreeMap<String, String>>,
}

impl UploadState {
    /// The state for `host` under `state_dir`; an unreadable or malformed
    /// file is started afresh (it only ever saves re-sending bytes).
    pub fn open(state_dir: &Path, host: &str) -> Self {
        let name: String = host
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = state_dir
            .join("registry-uploads")
            .join(format!("{name}.json"));
        let locations = read_bounded(&path, Links::Refuse, STATE_LIMIT, "upload state")
            .ok()
            .and_then(|bytes| serde_json::from_slice::<BTreeMap<String, String>>(&bytes).ok())
            .unwrap_or_default();
        Self {
            path,
            locations: Mutex::new(locations),
        }
    }

    /// The saved location of the upload of `digest` into `repository`.
    pub fn location(&self, repository: &str, digest: &str) -> Option<String> {
        self.locations
            .lock()
            .expect("state lock")
            .get(&key(repository, digest))
            .cloned()
    }

    /// Saves (or, with `None`, forgets) where an upload stands.
    pub fn save(
        &self,
        repository: &str,
        digest: &str,
        location: Option<&str>,
    ) -> Result<(), RegistryError> {
        let mut locations = self.locations.lock().expect("state lock");
        let key = key(repository, digest);
        match location {
            Some(location) => {
                locations.insert(key, location.to_owned());
            }
            None => {
                if locations.remove(&key).is_none() {
                    return Ok(());
                }
            }
        }
        let bytes = serde_json::to_vec_pretty(&*locations).expect("a map serialises");
        let failed = |source| RegistryError::Io {
            what: format!("saving the upload state {}", self.path.display()),
            source,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(failed)?;
        }
        write_atomic(&self.path, &bytes, 0o600).map_err(failed)
    }
}

fn key(repository: &str, digest: &str) -> String {
    format!("{repository}@{digest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_survive_a_reopen_and_a_planted_link_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let state = UploadState::open(dir.path(), "127.0.0.1:5000");
        state
            .save("a/b", "sha256:00", Some("/v2/a/b/blobs/uploads/u?_state=s"))
            .unwrap();
        let again = UploadState::open(dir.path(), "127.0.0.1:5000");
        assert_eq!(
            again.location("a/b", "sha256:00").as_deref(),
            Some("/v2/a/b/blobs/uploads/u?_state=s")
        );
        again.save("a/b", "sha256:00", None).unwrap();
        assert_eq!(
            UploadState::open(dir.path(), "127.0.0.1:5000").location("a/b", "sha256:00"),
            None
        );

        let elsewhere = dir.path().join("elsewhere.json");
        std::fs::write(&elsewhere, br#"{"a/b@sha256:00":"/v2/x"}"#).unwrap();
        let planted = dir.path().join("registry-uploads/h_1.json");
        std::fs::remove_file(&planted).ok();
        std::os::unix::fs::symlink(&elsewhere, &planted).unwrap();
        assert_eq!(
            UploadState::open(dir.path(), "h:1").location("a/b", "sha256:00"),
            None
        );
    }
}
