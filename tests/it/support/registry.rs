//! A throwaway registry on loopback (Debian's docker-registry), for the
//! `pack --pull` test: the fixture name `localhost:5000/…` points at it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::cmd::airgap;
use super::synthetic::{self, Image};

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

/// How a [`TestRegistry`] is served.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Serving {
    /// Plain HTTP, no auth.
    Plain,
    /// TLS from a test CA, bcrypt htpasswd basic auth (user `pusher`, password [`PASSWORD`]).
    TlsAuth,
    /// Plain HTTP, bearer tokens from a token service on another loopback
    /// port that takes the same user and password (Harbor's and most
    /// hosted registries' scheme).
    Token,
    /// TLS from a test CA whose token service is plain HTTP: credentials
    /// would travel in clear text.
    TlsPlainToken,
}

/// The password of the TLS registry's user `pusher`.
pub const PASSWORD: &str = "s3cret-push";
/// The TLS registry's user.
pub const USER: &str = "pusher";

/// CNCF Distribution on a free loopback port, filesystem storage in a
/// temporary directory and a fixed `http.secret` (so uploads survive a
/// restart); its access log (stderr) goes to a file tests count requests in.
/// `None` (after saying why) when the binary is missing outside CI.
pub struct TestRegistry {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// How it is served.
    pub serving: Serving,
    restarts: u32,
    token_service: Option<Child>,
}

fn registry_binary() -> Option<std::path::PathBuf> {
    for candidate in ["/usr/bin/docker-registry", "/usr/local/bin/docker-registry"] {
        if std::path::Path::new(candidate).exists() {
            return Some(candidate.into());
        }
    }
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl TestRegistry {
    /// Starts a registry served as `serving`.
    pub fn start(serving: Serving) -> Option<Self> {
        if registry_binary().is_none() {
            let message = "docker-registry is not installed (scripts/deps installs it)";
            assert!(!std::env::var("CI").is_ok_and(|v| v == "true"), "{message}");
            eprintln!("skipped: {message}");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let host = format!("127.0.0.1:{}", free_port());
        let mut token_service = None;
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n  secret: a-fixed-test-secret\n",
            dir.path().join("data").display()
        );
        if serving == Serving::TlsAuth {
            make_tls(dir.path());
            let hash = bcrypt::hash(PASSWORD, 4).unwrap();
            std::fs::write(dir.path().join("htpasswd"), format!("{USER}:{hash}\n")).unwrap();
            config += &format!(
                "  tls:\n    certificate: {0}/server.pem\n    key: {0}/server.key\nauth:\n  htpasswd:\n    realm: test\n    path: {0}/htpasswd\n",
                dir.path().display()
            );
        }
        if matches!(serving, Serving::Token | Serving::TlsPlainToken) {
            if serving == Serving::TlsPlainToken {
                make_tls(dir.path());
                config += &format!(
                    "  tls:\n    certificate: {0}/server.pem\n    key: {0}/server.key\n",
                    dir.path().display()
                );
            }
            let realm = format!("127.0.0.1:{}", free_port());
            config += &format!(
                "auth:\n  token:\n    realm: http://{realm}/token\n    service: airgap-test\n    issuer: airgap-test-issuer\n    rootcertbundle: {}/token.pem\n",
                dir.path().display()
            );
            token_service = Some(start_token_service(dir.path(), &realm));
        }
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let mut registry = Self {
            child: None,
            dir,
            host,
            serving,
            restarts: 0,
            token_service,
        };
        registry.spawn();
        Some(registry)
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.log_path(self.restarts)).unwrap();
        let child = Command::new(registry_binary().unwrap())
            .arg("serve")
            .arg(self.dir.path().join("config.yml"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("docker-registry runs");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&self.host).is_err() {
            assert!(
                Instant::now() < deadline,
                "the registry did not start on {}",
                self.host
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_path(&self, run: u32) -> std::path::PathBuf {
        self.dir.path().join(format!("registry-{run}.log"))
    }

    /// Kills the registry (SIGKILL) and starts it again on the same port and storage.
    pub fn restart(&mut self) {
        self.stop();
        self.restarts += 1;
        self.spawn();
    }

    /// Kills the registry.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// What the token service was asked for, one `ACCOUNT SCOPE…` line per
    /// request (`-` no credentials, `!wrong` wrong ones).
    pub fn token_requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("token.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The test CA's certificate (TLS only).
    pub fn ca(&self) -> std::path::PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A directory skopeo's --cert-dir takes (holds ca.crt).
    pub fn cert_dir(&self) -> std::path::PathBuf {
        let dir = self.dir.path().join("certs.d");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(self.ca(), dir.join("ca.crt")).unwrap();
        dir
    }

    /// Where uploads in progress are kept.
    pub fn storage(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// Every completed request since the registry last (re)started, as
    /// `(method, uri, status)`.
    pub fn requests(&self) -> Vec<(String, String, u16)> {
        let text = std::fs::read_to_string(self.log_path(self.restarts)).unwrap_or_default();
        text.lines()
            .filter(|l| l.contains("response completed"))
            .filter_map(|line| {
                let field = |name: &str| {
                    let start = line.find(&format!(" {name}="))? + name.len() + 2;
                    let rest = &line[start..];
                    let end = rest.find(' ').unwrap_or(rest.len());
                    Some(rest[..end].trim_matches('"').to_owned())
                };
                Some((
                    field("http.request.method")?,
                    field("http.request.uri")?,
                    field("http.response.status")?.parse().ok()?,
                ))
            })
            .collect()
    }

    /// Requests that send blob bytes or start an upload (POST, PATCH, PUT of blobs).
    pub fn uploads(&self) -> Vec<(String, String, u16)> {
        self.requests()
            .into_iter()
            .filter(|(method, uri, _)| {
                uri.contains("/blobs/uploads/")
                    && matches!(method.as_str(), "POST" | "PATCH" | "PUT")
            })
            .collect()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.stop();
        if let Some(mut service) = self.token_service.take() {
            let _ = service.kill();
            let _ = service.wait();
        }
    }
}

/// The token service (tests/it/support/token_server.py: Basic auth, RS256
/// tokens with an `x5c` header the registry's `rootcertbundle` trusts) on
/// `address`, started with its signing key and certificate made in `dir`.
fn start_token_service(dir: &std::path::Path, address: &str) -> Child {
    let output = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes"])
        .args(["-keyout", "token.key", "-out", "token.pem", "-days", "2"])
        .args(["-subj", "/CN=airgap test token issuer"])
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(output.status.success(), "openssl: {output:?}");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/it/support/token_server.py"
    );
    let port = address.rsplit(':').next().unwrap();
    let child = Command::new("python3")
        .arg(script)
        .args([port, "token.key", "token.pem", USER, PASSWORD])
        .args(["airgap-test-issuer", "token.log"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("python3 runs the token service");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(address).is_err() {
        assert!(
            Instant::now() < deadline,
            "the token service did not start on {address}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// A test CA and a server certificate for 127.0.0.1 signed by it, with openssl.
fn make_tls(dir: &std::path::Path) {
    make_test_tls(dir, "127.0.0.1", "server");
}

/// A test CA (`ca.pem`) and a certificate for the address `ip` signed by
/// it (`STEM.pem`, key `STEM.key`), made with openssl in `dir`.
pub fn make_test_tls(dir: &std::path::Path, ip: &str, stem: &str) {
    let run = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    let (key, csr, cert) = (
        format!("{stem}.key"),
        format!("{stem}.csr"),
        format!("{stem}.pem"),
    );
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        ],
        &["-subj", "/CN=airgap test CA"],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &["-nodes", "-keyout", &key, "-out", &csr],
        &["-subj", &format!("/CN={ip}")],
    ]
    .concat());
    std::fs::write(
        dir.join("ext.cnf"),
        format!("subjectAltName=IP:{ip}\nbasicConstraints=CA:FALSE\n"),
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        &cert,
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

/// A signed bundle `b.zst` of `images` in `dir` (which holds the keys of
/// `workdir_with_keys`), packed from a docker-save archive with no engine.
pub fn bundle_of(dir: &Path, images: &[Image]) -> PathBuf {
    std::fs::write(dir.join("images.tar"), synthetic::legacy_archive(images)).unwrap();
    airgap(
        dir,
        &[
            "pack",
            "-q",
            "--key",
            "ops.pem",
            "--archive",
            "images.tar",
            "-o",
            "b.zst",
        ],
    )
    .success();
    dir.join("b.zst")
}

/// Pushes `images` (through [`bundle_of`]) under `registry://HOST/PREFIX`
/// (`registry://HOST` for an empty prefix) of the plain-HTTP `registry`,
/// layers compressed as `compression` says.
pub fn push_images(
    dir: &Path,
    registry: &TestRegistry,
    images: &[Image],
    prefix: &str,
    compression: &str,
) {
    bundle_of(dir, images);
    let to = match prefix {
        "" => format!("registry://{}", registry.host),
        _ => format!("registry://{}/{prefix}", registry.host),
    };
    airgap(
        dir,
        &[
            "unpack",
            "b.zst",
            "--key",
            "ops.pub.pem",
            "--to",
            &to,
            "--plain-http",
            &registry.host,
            "--push-compression",
            compression,
        ],
    )
    .success();
}
