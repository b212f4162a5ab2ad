//! A throwaway registry on loopback (Debian's docker-registry), for the
//! `pack --pull` test: the fixture name `localhost:5000/…` points at it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running registry, stopped on drop.
pub struct Registry {
    child: Child,
    _storage: tempfile::TempDir,
}

impl Registry {
    /// Starts the registry on 127.0.0.1:5000; panics if it does not answer.
    pub fn start() -> Self {
        let storage = tempfile::tempdir().unwrap();
        let config = storage.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:5000\n",
                storage.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "docker-registry (Debian package docker-registry) runs; scripts/deps installs it",
            );
        let registry = Self {
            child,
            _storage: storage,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect("127.0.0.1:5000").is_err() {
            assert!(
                Instant::now() < deadline,
                "the registry did not start on 127.0.0.1:5000"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        registry
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
