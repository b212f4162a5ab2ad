//! Running the airgap binary.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// Result of one airgap run.
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Panics with the output unless the run succeeded.
    #[track_caller]
    pub fn success(self) -> Self {
        assert_eq!(
            self.code, 0,
            "airgap failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    /// Panics unless the run failed with `code`.
    #[track_caller]
    pub fn failure(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "expected exit code {code}:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Unpack records of this test run, kept out of the host's /var/lib/airgap.
pub fn state_dir() -> &'static Path {
    static STATE: OnceLock<tempfile::TempDir> = OnceLock::new();
    STATE.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

/// Runs airgap with `args` in `dir`, with no DOCKER_HOST inherited and the
/// test run's own state directory.
pub fn airgap(dir: &Path, args: &[&str]) -> Run {
    // Each run its own empty layer cache, so no test packs from what
    // another left (tests of the cache name theirs with --cache-dir).
    let cache = tempfile::tempdir().unwrap();
    let output: Output = Command::new(env!("CARGO_BIN_EXE_airgap"))
        .args(args)
        .current_dir(dir)
        .env_remove("DOCKER_HOST")
        .env_remove("SOURCE_DATE_EPOCH")
        .env("XDG_CACHE_HOME", cache.path())
        .env("AIRGAP_STATE_DIR", state_dir())
        .output()
        .expect("airgap runs");
    output.into()
}

/// `airgap --host HOST unpack -q BUNDLE --key ops.pub.pem` and `extra`, in `dir`.
pub fn unpack_into(dir: &Path, host: &str, bundle: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "--host",
        host,
        "unpack",
        "-q",
        bundle,
        "--key",
        "ops.pub.pem",
    ];
    args.extend(extra);
    airgap(dir, &args)
}

/// A fresh directory with a key pair `ops.pem` / `ops.pub.pem`.
pub fn workdir_with_keys() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    airgap(dir.path(), &["keygen", "--output", "ops"]).success();
    let path = dir.path().to_owned();
    (dir, path)
}

/// The bundle's manifest (its inner tar's first entry), as JSON.
pub fn bundle_manifest(bundle: &Path) -> serde_json::Value {
    let file = std::fs::File::open(bundle).unwrap();
    let mut archive = tar::Archive::new(zstd::stream::read::Decoder::new(file).unwrap());
    let entry = archive.entries().unwrap().next().unwrap().unwrap();
    serde_json::from_reader(entry).unwrap()
}

/// Paths of the entries in a bundle's inner tar, in order.
pub fn bundle_entries(bundle: &Path) -> Vec<String> {
    let file = std::fs::File::open(bundle).unwrap();
    let decoder = zstd::stream::read::Decoder::new(file).unwrap();
    let mut archive = tar::Archive::new(decoder);
    archive
        .entries()
        .unwrap()
        .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
        .collect()
}

/// Runs airgap with `args` in `dir` with a clean environment: only PATH,
/// HOME and `vars`, so no variable of the developer's shell changes the
/// result.
pub fn airgap_clean_env(dir: &Path, args: &[&str], vars: &[(String, String)]) -> Run {
    let cache = tempfile::tempdir().unwrap();
    let output: Output = Command::new(env!("CARGO_BIN_EXE_airgap"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::var_os("HOME").unwrap_or_default())
        .env("XDG_CACHE_HOME", cache.path())
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("airgap runs");
    output.into()
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// Runs `command` with `stdin` on its standard input (a password given with
/// --registry-password-stdin) and collects what it printed.
pub fn run_with_stdin(command: &mut Command, stdin: &str) -> Run {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("airgap runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap().into()
}

/// Writes, as a site's inventory, the images `bundle` holds (no configs,
/// no layer sizes).
pub fn write_inventory_of(bundle: &Path, inventory: &Path) {
    use airgap::delta::inventory::{
        INVENTORY_MEDIA_TYPE, Inventory, InventoryEngine, InventoryImage,
    };
    let head = airgap::verify::read_head(bundle).unwrap();
    let site = Inventory {
        media_type: INVENTORY_MEDIA_TYPE.into(),
        created: head.manifest.created.clone(),
        tool: "test".into(),
        engine: InventoryEngine {
            product: "Docker Engine".into(),
            store: airgap::media::docker::engine::ImageStore::Graph,
        },
        images: head
            .manifest
            .images
            .iter()
            .map(|image| InventoryImage {
                id: image.config.digest.clone(),
                tags: image.refs.iter().map(|r| r.given.clone()).collect(),
                layers: image.layers.iter().map(|l| l.digest.clone()).collect(),
            })
            .collect(),
        layer_sizes: Default::default(),
        configs: Default::default(),
    };
    std::fs::write(inventory, site.to_bytes()).unwrap();
}
