//! A private containerd for a test, as ../shared ENGINES.md describes it:
//! its own root, state and grpc+ttrpc sockets in a temporary directory, the
//! CRI plugin disabled, the `usr/bin` of its version first on PATH so it
//! finds its own shim. Dropping it stops it, kills the shims of containers
//! it ran and unmounts whatever it left mounted.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Which containerd.
#[derive(Clone, Copy, Debug)]
pub enum Version {
    /// Debian sid's 2.x, fetched by scripts/deps for engine B.
    Two,
    /// Debian bookworm's 1.6 (package containerd).
    OneSix,
}

impl Version {
    /// The folder holding its containerd, ctr and shim.
    fn bin(self) -> PathBuf {
        match self {
            Self::Two => PathBuf::from(
                std::env::var("AIRGAP_CACHE_DIR")
                    .unwrap_or_else(|_| "/var/cache/airgap-dev".into()),
            )
            .join("docker-sid/root/usr/bin"),
            Self::OneSix => PathBuf::from("/usr/bin"),
        }
    }

    fn config(self, dir: &Path) -> String {
        let d = dir.display();
        match self {
            Self::Two => format!(
                "version = 3\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
                 [grpc]\n  address = \"{d}/c.sock\"\n[ttrpc]\n  address = \"{d}/c.sock.ttrpc\"\n\
                 [plugins.\"io.containerd.grpc.v1.cri\"]\n  disable = true\n"
            ),
            Self::OneSix => format!(
                "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{d}/c.sock\"\n[ttrpc]\n  address = \"{d}/c.sock.ttrpc\"\n"
            ),
        }
    }
}

/// A running containerd, stopped on drop.
pub struct TestContainerd {
    child: Child,
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// Its grpc socket.
    pub socket: PathBuf,
}

impl TestContainerd {
    /// Starts `version`; `None` (after saying why) when its binaries are
    /// missing outside CI; in CI that fails the test.
    pub fn start(version: Version) -> Option<Self> {
        let bin = version.bin();
        if !bin.join("containerd").exists() || !bin.join("ctr").exists() {
            let message = format!(
                "containerd {version:?} is not installed in {} (scripts/deps fetches it)",
                bin.display()
            );
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{message}");
            }
            eprintln!("SKIPPED: {message}");
            return None;
        }
        // Short: unix socket paths end at 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("ctrd")
            .tempdir_in("/tmp")
            .unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(&config, version.config(dir.path())).unwrap();
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let child = Command::new(bin.join("containerd"))
            .arg("--config")
            .arg(&config)
            .env("PATH", path_with(&bin))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("containerd starts");
        let containerd = Self {
            child,
            socket: dir.path().join("c.sock"),
            dir,
            bin,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !containerd
            .ctr_output("default", &["version"])
            .status
            .success()
        {
            assert!(
                Instant::now() < deadline,
                "containerd {version:?} did not answer on {}: {}",
                containerd.socket.display(),
                std::fs::read_to_string(containerd.dir.path().join("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(containerd)
    }

    /// PATH with this containerd's folder first, for airgap to find its ctr.
    pub fn path(&self) -> String {
        path_with(&self.bin)
    }

    /// PATH with the folder of another version's ctr first.
    pub fn path_with_ctr_of(&self, version: Version) -> String {
        path_with(&version.bin())
    }

    /// `containerd://SOCKET?namespace=NS`.
    pub fn address(&self, namespace: &str) -> String {
        format!(
            "containerd://{}?namespace={namespace}",
            self.socket.display()
        )
    }

    /// Runs this version's ctr in `namespace`.
    pub fn ctr_output(&self, namespace: &str, args: &[&str]) -> Output {
        Command::new(self.bin.join("ctr"))
            .arg("--address")
            .arg(&self.socket)
            .args(["--namespace", namespace])
            .args(args)
            .env("PATH", self.path())
            .stdin(Stdio::null())
            .output()
            .expect("ctr runs")
    }

    /// Runs ctr; panics with its error output on failure.
    #[track_caller]
    pub fn ctr(&self, namespace: &str, args: &[&str]) -> String {
        let output = self.ctr_output(namespace, args);
        assert!(
            output.status.success(),
            "ctr {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Each image record: (name, target digest, labels).
    pub fn images(&self, namespace: &str) -> Vec<(String, String, String)> {
        self.ctr(namespace, &["images", "ls"])
            .lines()
            .skip(1)
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                Some((
                    (*fields.first()?).to_owned(),
                    (*fields.get(2)?).to_owned(),
                    (*fields.last()?).to_owned(),
                ))
            })
            .collect()
    }

    /// The config digest and diff IDs of the image record `name`, if any.
    pub fn config_and_layers(&self, namespace: &str, name: &str) -> Option<(String, Vec<String>)> {
        let (_, target, _) = self
            .images(namespace)
            .into_iter()
            .find(|(listed, _, _)| listed == name)?;
        let manifest: serde_json::Value =
            serde_json::from_slice(&self.blob(namespace, &target)).unwrap();
        let config = manifest["config"]["digest"].as_str().unwrap().to_owned();
        let parsed: serde_json::Value =
            serde_json::from_slice(&self.blob(namespace, &config)).unwrap();
        let layers = parsed["rootfs"]["diff_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap().to_owned())
            .collect();
        Some((config, layers))
    }

    /// A blob of the content store.
    pub fn blob(&self, namespace: &str, digest: &str) -> Vec<u8> {
        let output = self.ctr_output(namespace, &["content", "get", digest]);
        assert!(output.status.success(), "ctr content get {digest}");
        output.stdout
    }
}

fn path_with(bin: &Path) -> String {
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

impl Drop for TestContainerd {
    fn drop(&mut self) {
        let dir = self.dir.path().to_owned();
        signal("TERM", self.child.id());
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // The shims of containers it ran name its socket on their command line.
        for pid in shims_of(&dir) {
            signal("KILL", pid);
        }
        unmount_under(&dir);
    }
}

fn signal(name: &str, pid: u32) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status();
}

fn shims_of(dir: &Path) -> Vec<u32> {
    let mark = dir.display().to_string();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            (comm.starts_with("containerd-shim")
                && String::from_utf8_lossy(&cmdline).contains(&mark))
            .then_some(pid)
        })
        .collect()
}

/// Unmounts every mount at or under `dir`, deepest first.
fn unmount_under(dir: &Path) {
    let mark = dir.display().to_string();
    for _ in 0..5 {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut under: Vec<String> = mounts
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .map(|m| m.replace("\\040", " "))
            .filter(|m| m == &mark || m.starts_with(&format!("{mark}/")))
            .collect();
        if under.is_empty() {
            return;
        }
        under.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for mount in under {
            let unmounted = Command::new("umount").arg(&mount).status();
            if !unmounted.is_ok_and(|s| s.success()) {
                let _ = Command::new("umount").arg("-l").arg(&mount).status();
            }
        }
    }
}
