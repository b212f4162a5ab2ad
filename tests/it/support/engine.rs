//! The real engines scripts/test starts, reached through the docker CLI.

use std::process::Command;
use std::sync::{Mutex, MutexGuard};

/// Engines are shared by all tests: one test at a time may use them.
static ENGINES: Mutex<()> = Mutex::new(());

/// One engine, by its API address.
pub struct TestEngine {
    /// `unix:///…/docker.sock`
    pub host: String,
    /// The scripts/engines name, for messages.
    pub name: &'static str,
}

/// Holds the engines for one test; returns `None` (after saying why) when an
/// engine is not configured outside CI, and panics in CI.
pub struct Engines {
    _guard: MutexGuard<'static, ()>,
}

impl Engines {
    /// Locks the engines and returns the ones named, or `None` to skip.
    pub fn get<const N: usize>(names: [&'static str; N]) -> Option<(Self, [TestEngine; N])> {
        let guard = ENGINES
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut engines = Vec::new();
        for name in names {
            let variable = format!("AIRGAP_TEST_{}", name.to_uppercase().replace('-', "_"));
            match std::env::var(&variable) {
                Ok(host) if !host.is_empty() => engines.push(TestEngine { host, name }),
                _ => {
                    let message = format!(
                        "{variable} is not set: engine {name} is not running (use scripts/test or make test)"
                    );
                    if std::env::var("CI").is_ok_and(|v| v == "true") {
                        panic!("{message}");
                    }
                    eprintln!("SKIPPED: {message}");
                    return None;
                }
            }
        }
        let engines: [TestEngine; N] = engines.try_into().unwrap_or_else(|_| unreachable!());
        Some((Self { _guard: guard }, engines))
    }
}

/// The same as `Engines::get`, returning from the test when it yields `None`.
#[macro_export]
macro_rules! engines {
    ($($name:literal),+) => {
        match $crate::support::engine::Engines::get([$($name),+]) {
            Some(engines) => engines,
            None => return,
        }
    };
}

impl TestEngine {
    /// Runs the docker CLI against this engine; panics with its stderr on failure.
    pub fn docker(&self, args: &[&str]) -> String {
        let output = self.docker_output(args);
        assert!(
            output.status.success(),
            "docker {} on {} failed: {}",
            args.join(" "),
            self.name,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("docker prints UTF-8")
    }

    /// Runs the docker CLI and returns its output whatever the status.
    pub fn docker_output(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .arg("-H")
            .arg(&self.host)
            .args(args)
            .env_remove("DOCKER_HOST")
            .output()
            .expect("the docker CLI runs")
    }

    /// Removes every container and image.
    pub fn wipe(&self) {
        let containers = self.docker(&["ps", "-aq"]);
        let containers: Vec<&str> = containers.split_whitespace().collect();
        if !containers.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(containers);
            self.docker(&args);
        }
        for _ in 0..5 {
            let images = self.image_ids();
            if images.is_empty() {
                return;
            }
            let mut args = vec!["rmi", "-f"];
            args.extend(images.iter().map(String::as_str));
            let _ = self.docker_output(&args);
        }
        assert!(
            self.image_ids().is_empty(),
            "{} still has images after wipe",
            self.name
        );
    }

    /// IDs of every image, dangling ones included.
    pub fn image_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .docker(&["images", "-aq", "--no-trunc"])
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// The engine's own pull. Podman's Docker-compatible API insists on
    /// TLS for a registry not in its registries.conf, so Podman pulls
    /// through its own API (`podman --remote`), which takes --tls-verify=false.
    pub fn pull(&self, reference: &str) {
        if self.name != "podman" {
            self.docker(&["pull", reference]);
            return;
        }
        let output = std::process::Command::new("podman")
            .args([
                "--remote",
                "--url",
                &self.host,
                "pull",
                "--tls-verify=false",
                reference,
            ])
            .output()
            .expect("podman runs");
        assert!(
            output.status.success(),
            "podman pull {reference}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// ID and RootFS diff IDs of `reference`, or `None` if absent.
    pub fn inspect(&self, reference: &str) -> Option<(String, Vec<String>)> {
        let output = self.docker_output(&["image", "inspect", reference]);
        if !output.status.success() {
            return None;
        }
        let inspected: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let image = &inspected[0];
        let layers = image["RootFS"]["Layers"].as_array().unwrap();
        Some((
            image["Id"].as_str().unwrap().to_owned(),
            layers
                .iter()
                .map(|l| l.as_str().unwrap().to_owned())
                .collect(),
        ))
    }

    /// The config digest of `reference`, read from the engine's own save
    /// (the ID is the manifest digest on containerd image stores).
    pub fn config_digest(&self, reference: &str) -> String {
        let script = format!(
            "docker -H '{}' save '{reference}' | tar -xO manifest.json",
            self.host
        );
        let output = Command::new("sh")
            .arg("-c")
            .arg(script)
            .env_remove("DOCKER_HOST")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "saving {reference}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let manifest: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let config = manifest[0]["Config"]
            .as_str()
            .expect("manifest.json has a Config");
        let hex = config
            .trim_start_matches("blobs/sha256/")
            .trim_end_matches(".json");
        format!("sha256:{hex}")
    }

    /// What a container of `reference` prints, run without network.
    pub fn run(&self, reference: &str) -> String {
        self.docker(&["run", "--rm", "--network", "none", reference])
            .trim()
            .to_owned()
    }
}
