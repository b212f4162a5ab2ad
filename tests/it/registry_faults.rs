//! Issue 18's behaviours under faults, against CNCF Distribution behind a
//! fault-injecting proxy (tests/it/support/fault_proxy.py) and a private
//! containerd: a blob download cut in its middle resumes with a `Range`
//! request from the byte it stopped at; a blob redirect elsewhere is refused
//! over plain HTTP and followed over HTTPS without credentials (one on the
//! registry itself keeps them); a containerd delta takes its left-out layers
//! from the node's gzip layer blobs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::engines;
use crate::support::cmd::{
    Run, airgap, airgap_clean_env, bundle_entries, bundle_manifest, run_with_stdin, state_dir,
    workdir_with_keys,
};
use crate::support::containerd::{TestContainerd, Version};
use crate::support::registry::{PASSWORD, Serving, TestRegistry, USER, make_test_tls, push_images};
use crate::support::synthetic::{self, Image, layer, noise};

/// Where no engine listens: a pull must not need one.
const NO_ENGINE: &str = "unix:///nonexistent/airgap-test/docker.sock";
/// Blobs above this size are cut on their first GET (the big layer, not the config).
const CUT_ABOVE: usize = 1 << 20;

/// A small layer and a 6 MiB one of noise (gzip cannot shrink it).
fn big_image() -> Image {
    Image::new(
        "fixture/big:1",
        vec![
            layer("small.txt", "small"),
            layer("big.bin", noise(6 << 20)),
        ],
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// tests/it/support/fault_proxy.py in front of a registry, stopped on drop.
struct FaultProxy {
    child: Child,
    dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`, the address airgap is given as the registry.
    host: String,
}

impl FaultProxy {
    fn start(registry: &TestRegistry, options: &[String]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let host = format!("127.0.0.1:{}", free_port());
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/it/support/fault_proxy.py"
        );
        let child = Command::new("python3")
            .arg(script)
            .args(["--listen", &host, "--upstream", &registry.host, "--log"])
            .arg(dir.path().join("proxy.log"))
            .args(options)
            .stdout(Stdio::null())
            // A client hanging up mid-answer makes the server print a
            // traceback; kept out of the test's output.
            .stderr(std::fs::File::create(dir.path().join("proxy.err")).unwrap())
            .spawn()
            .expect("python3 runs the fault proxy");
        let proxy = Self { child, dir, host };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&proxy.host).is_err() {
            assert!(Instant::now() < deadline, "the fault proxy did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        proxy
    }

    /// Every logged line (see fault_proxy.py).
    fn log(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("proxy.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `pack --from-registry HOST/site/fixture/big:1` with no engine reachable,
/// HOME at `dir` (no Docker config of the host's), `extra` options and
/// `stdin`, into `out`.
fn pull(dir: &Path, host: &str, extra: &[&str], stdin: &str, out: &str) -> Run {
    let reference = format!("{host}/site/fixture/big:1");
    run_with_stdin(
        Command::new(env!("CARGO_BIN_EXE_airgap"))
            .args(["--host", NO_ENGINE, "pack", "-q", "--key", "ops.pem"])
            .args(["--from-registry", &reference, "-o", out])
            .args(extra)
            .current_dir(dir)
            .env("DOCKER_HOST", NO_ENGINE)
            .env("AIRGAP_STATE_DIR", state_dir())
            .env("HOME", dir)
            .env_remove("DOCKER_CONFIG"),
        stdin,
    )
}

/// The bundle verifies and holds exactly `image`: its config digest and diff IDs.
#[track_caller]
fn assert_holds(dir: &Path, bundle: &str, image: &Image) {
    let verified = airgap(dir, &["verify", bundle, "--key", "ops.pub.pem"]).success();
    assert!(verified.stdout.contains("VERIFIED"), "{}", verified.stdout);
    let manifest = bundle_manifest(&dir.join(bundle));
    let images = manifest["images"].as_array().unwrap();
    assert_eq!(images.len(), 1, "{manifest}");
    assert_eq!(
        images[0]["config"]["digest"],
        synthetic::digest(&image.config).as_str()
    );
    let layers: Vec<&str> = images[0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    let diff_ids: Vec<String> = image.layers.iter().map(|l| synthetic::digest(l)).collect();
    assert_eq!(layers, diff_ids);
}

/// The names of the files in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

#[test]
fn a_dropped_blob_download_resumes_from_the_byte_it_stopped_at() {
    let Some(registry) = TestRegistry::start(Serving::Plain) else {
        return;
    };
    let (_keep, dir) = workdir_with_keys();
    let image = big_image();
    push_images(
        &dir,
        &registry,
        std::slice::from_ref(&image),
        "site",
        "gzip",
    );
    let proxy = FaultProxy::start(&registry, &["--cut-above".into(), CUT_ABOVE.to_string()]);

    pull(
        &dir,
        &proxy.host,
        &["--plain-http", &proxy.host],
        "",
        "pulled.zst",
    )
    .success();

    let log = proxy.log();
    let cuts: Vec<&String> = log.iter().filter(|l| l.starts_with("cut ")).collect();
    assert_eq!(cuts.len(), 1, "one blob is cut: {log:#?}");
    // "cut PATH at SENT of TOTAL"
    let fields: Vec<&str> = cuts[0].split(' ').collect();
    let (path, sent, total) = (fields[1], fields[3], fields[5]);
    let sent: u64 = sent.parse().unwrap();
    let total: u64 = total.parse().unwrap();
    assert!(sent > 0 && sent < total, "{}", cuts[0]);
    let gets: Vec<&String> = log
        .iter()
        .filter(|l| l.starts_with(&format!("registry GET {path} ")))
        .collect();
    assert_eq!(
        gets,
        [
            &format!("registry GET {path} range=- auth=no"),
            &format!("registry GET {path} range=bytes={sent}- auth=no"),
        ],
        "the second GET asks for the rest from the byte the first stopped at: {log:#?}"
    );
    assert_holds(&dir, "pulled.zst", &image);
}

#[test]
fn a_blob_redirect_elsewhere_over_plain_http_is_refused_and_nothing_is_written() {
    let Some(registry) = TestRegistry::start(Serving::Plain) else {
        return;
    };
    let (_keep, dir) = workdir_with_keys();
    push_images(&dir, &registry, &[big_image()], "site", "gzip");
    // The other host serves the same registry: followed, the pull would succeed.
    let elsewhere = format!("127.0.0.2:{}", free_port());
    let proxy = FaultProxy::start(
        &registry,
        &[
            "--redirect".into(),
            format!("http://{elsewhere}"),
            "--elsewhere".into(),
            elsewhere.clone(),
        ],
    );

    let before = listing(&dir);
    let refused = pull(
        &dir,
        &proxy.host,
        &["--plain-http", &proxy.host],
        "",
        "pulled.zst",
    )
    .failure(5);
    let lines: Vec<&str> = refused
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "not one line: {}", refused.stderr);
    for said in [
        proxy.host.as_str(),
        &format!("http://{elsewhere}/"),
        "HTTPS",
    ] {
        assert!(lines[0].contains(said), "{said:?} missing: {}", lines[0]);
    }
    assert_eq!(listing(&dir), before, "no bundle, no temporary file left");
    let log = proxy.log();
    assert!(
        log.iter().any(|l| l.contains("/blobs/sha256:")),
        "a blob was asked for: {log:#?}"
    );
    assert!(
        !log.iter().any(|l| l.starts_with("elsewhere ")),
        "nothing was sent to the other host: {log:#?}"
    );
}

/// A test CA and a certificate for 127.0.0.2 signed by it, in `dir`:
/// (ca.pem, cert, key).
fn tls_for_elsewhere(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    make_test_tls(dir, "127.0.0.2", "storage");
    (
        dir.join("ca.pem"),
        dir.join("storage.pem"),
        dir.join("storage.key"),
    )
}

#[test]
fn a_blob_redirect_keeps_credentials_on_the_registry_and_sends_none_elsewhere() {
    let Some(registry) = TestRegistry::start(Serving::Plain) else {
        return;
    };
    let (_keep, dir) = workdir_with_keys();
    let image = big_image();
    push_images(
        &dir,
        &registry,
        std::slice::from_ref(&image),
        "site",
        "gzip",
    );
    let (ca, cert, key) = tls_for_elsewhere(&dir);
    let ca = ca.display().to_string();
    let login = ["--registry-user", USER, "--registry-password-stdin"];
    let password = format!("{PASSWORD}\n");
    // The proxy asks for Basic credentials, so airgap sends them to it.
    let credentials = |options: &mut Vec<String>| {
        options.extend(["--user".into(), USER.into(), "--password".into()]);
        options.push(PASSWORD.into());
    };

    // Elsewhere over HTTPS: followed, with no credentials.
    let elsewhere = format!("127.0.0.2:{}", free_port());
    let mut options = vec![
        "--redirect".into(),
        format!("https://{elsewhere}"),
        "--elsewhere".into(),
        elsewhere.clone(),
        "--cert".into(),
        cert.display().to_string(),
        "--key".into(),
        key.display().to_string(),
    ];
    credentials(&mut options);
    let proxy = FaultProxy::start(&registry, &options);
    let mut args = vec!["--plain-http", &proxy.host, "--registry-ca", &ca];
    args.extend(login);
    pull(&dir, &proxy.host, &args, &password, "elsewhere.zst").success();
    assert_holds(&dir, "elsewhere.zst", &image);
    let log = proxy.log();
    let redirected: Vec<&String> = log
        .iter()
        .filter(|l| l.starts_with("registry GET") && l.contains("/blobs/sha256:"))
        .collect();
    let followed: Vec<&String> = log.iter().filter(|l| l.starts_with("elsewhere ")).collect();
    // The config and both layers.
    assert_eq!(redirected.len(), 3, "{log:#?}");
    assert!(
        redirected.iter().all(|l| l.ends_with("auth=yes")),
        "the registry got the credentials: {log:#?}"
    );
    assert_eq!(followed.len(), 3, "every redirect was followed: {log:#?}");
    assert!(
        followed
            .iter()
            .all(|l| l.contains("?redirected=1") && l.ends_with("auth=no")),
        "no credentials went elsewhere: {log:#?}"
    );
    drop(proxy);

    // On the registry itself: followed with its credentials.
    let mut options = vec!["--redirect".into(), "self".into()];
    credentials(&mut options);
    let proxy = FaultProxy::start(&registry, &options);
    let mut args = vec!["--plain-http", &proxy.host];
    args.extend(login);
    pull(&dir, &proxy.host, &args, &password, "same.zst").success();
    assert_holds(&dir, "same.zst", &image);
    let log = proxy.log();
    let followed: Vec<&String> = log
        .iter()
        .filter(|l| l.starts_with("registry GET") && l.contains("?redirected=1"))
        .collect();
    assert_eq!(followed.len(), 3, "every redirect was followed: {log:#?}");
    assert!(
        followed.iter().all(|l| l.ends_with("auth=yes")),
        "the registry's own redirect keeps the credentials: {log:#?}"
    );
}

/// A TestContainerd node's ctr first on PATH and the test run's state dir.
fn airgap_on(node: &TestContainerd, dir: &Path, args: &[&str]) -> Run {
    airgap_clean_env(
        dir,
        args,
        &[
            ("PATH".into(), node.path()),
            ("AIRGAP_STATE_DIR".into(), state_dir().display().to_string()),
        ],
    )
}

#[test]
fn a_containerd_delta_takes_left_out_layers_from_the_nodes_gzip_blobs() {
    const NAMESPACE: &str = "k8s.io";
    let (_engines, [connected]) = engines!("a-connected");
    let Some(node) = TestContainerd::start(Version::Two) else {
        return;
    };
    crate::support::fixtures::ensure(&connected);
    let (_keep, dir) = workdir_with_keys();

    // The node pulled the base image as registries serve it: gzip layers.
    let save = dir.join("base.tar");
    connected.docker(&["save", "-o", save.to_str().unwrap(), "fixture/base:1"]);
    let copied = Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-compress-format", "gzip"])
        .arg(format!("docker-archive:{}", save.display()))
        .arg(format!(
            "oci-archive:{}:docker.io/fixture/base:1",
            dir.join("base-oci.tar").display()
        ))
        .output()
        .expect("skopeo runs");
    assert!(
        copied.status.success(),
        "{}",
        String::from_utf8_lossy(&copied.stderr)
    );
    let archive = dir.join("base-oci.tar");
    node.ctr(NAMESPACE, &["images", "import", archive.to_str().unwrap()]);
    let (_, base_layers) = connected.inspect("fixture/base:1").unwrap();
    let (_, node_layers) = node
        .config_and_layers(NAMESPACE, "docker.io/fixture/base:1")
        .expect("the base image is on the node");
    assert_eq!(node_layers, base_layers);
    // The premise: the content store holds the layers only compressed.
    let content = node.ctr(NAMESPACE, &["content", "ls", "-q"]);
    for diff_id in &base_layers {
        assert!(
            !content.contains(diff_id.as_str()),
            "{diff_id} is in the content store uncompressed"
        );
    }
    let target = node
        .images(NAMESPACE)
        .into_iter()
        .find(|(name, _, _)| name == "docker.io/fixture/base:1")
        .unwrap()
        .1;
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&node.blob(NAMESPACE, &target)).unwrap();
    if manifest.get("manifests").is_some() {
        let child = manifest["manifests"][0]["digest"]
            .as_str()
            .unwrap()
            .to_owned();
        manifest = serde_json::from_slice(&node.blob(NAMESPACE, &child)).unwrap();
    }
    for layer in manifest["layers"].as_array().unwrap() {
        let blob = node.blob(NAMESPACE, layer["digest"].as_str().unwrap());
        assert_eq!(&blob[..2], [0x1f, 0x8b], "a gzip layer: {layer}");
    }

    let from = node.address(NAMESPACE);
    airgap_on(
        &node,
        &dir,
        &["inventory", "--from", &from, "--output", "have.json"],
    )
    .success();
    let inventory: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("have.json")).unwrap()).unwrap();
    airgap(
        &dir,
        &[
            "--host",
            &connected.host,
            "pack",
            "-q",
            "-o",
            "delta.zst",
            "--key",
            "ops.pem",
            "fixture/web:1",
            "--have",
            "have.json",
            "--no-patch",
        ],
    )
    .success();
    let required = &bundle_manifest(&dir.join("delta.zst"))["required"];
    for layer in required.as_array().unwrap() {
        assert_eq!(
            inventory["layerSizes"][layer["digest"].as_str().unwrap()],
            layer["size"],
            "the node counted each gzip layer's size as the engine exports it: {inventory}"
        );
    }
    assert_eq!(required.as_array().unwrap().len(), base_layers.len());
    let carried = bundle_entries(&dir.join("delta.zst"));
    for diff_id in &base_layers {
        let entry = format!("blobs/sha256/{}", &diff_id["sha256:".len()..]);
        assert!(!carried.contains(&entry), "the delta leaves {diff_id} out");
    }

    airgap_on(
        &node,
        &dir,
        &[
            "unpack",
            "-q",
            "delta.zst",
            "--key",
            "ops.pub.pem",
            "--to",
            &from,
        ],
    )
    .success();
    let (config, layers) = node
        .config_and_layers(NAMESPACE, "docker.io/fixture/web:1")
        .expect("the delta's image is on the node");
    let (id, web_layers) = connected.inspect("fixture/web:1").unwrap();
    assert_eq!(config, id, "config digest");
    assert_eq!(layers, web_layers, "diff IDs");
    let printed = node.ctr(
        NAMESPACE,
        &[
            "run",
            "--rm",
            "docker.io/fixture/web:1",
            "airgap-gzip-delta",
        ],
    );
    let expected = crate::support::fixtures::fixtures()
        .into_iter()
        .find(|f| f.tags.iter().any(|t| t == "fixture/web:1"))
        .unwrap()
        .output;
    assert_eq!(printed.trim(), expected);
}
