//! Files other tools write, made on this machine by each tool, recognised
//! by content whatever their names: `inspect` and `unpack` name what each
//! is and the command that takes it (exit 3, one line), and `pack
//! --archive` refuses what is not an image archive (exit 2, one line, no
//! raw bytes).

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::engines;
use crate::support::cmd::{airgap, workdir_with_keys};
use crate::support::engine::TestEngine;
use crate::support::fixtures;

const TAG: &str = "fixture/web:1";

/// True when `tool` runs; outside CI a missing tool skips the test loudly,
/// in CI it fails it.
fn have(tool: &str) -> bool {
    let found = Command::new(tool).arg("--version").output().is_ok();
    if !found {
        let message = format!("{tool} is not installed (scripts/deps installs it)");
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{message}");
        }
        eprintln!("SKIPPED: {message}");
    }
    found
}

#[track_caller]
fn run(command: &mut Command) {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// podman with its own storage in `dir`, so no other store is touched.
fn podman(dir: &Path) -> Command {
    let mut command = Command::new("podman");
    command
        .arg("--root")
        .arg(dir.join("root"))
        .arg("--runroot")
        .arg(dir.join("run"))
        .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
        .env_remove("CONTAINER_HOST");
    command
}

/// `tool -c FROM > TO` in `dir`.
fn compress(dir: &Path, tool: &str, from: &str, to: &str) {
    let out = fs::File::create(dir.join(to)).unwrap();
    let status = Command::new(tool)
        .args(["-c", from])
        .current_dir(dir)
        .stdout(Stdio::from(out))
        .status()
        .unwrap();
    assert!(status.success(), "{tool} {from}");
}

/// The one line for `file`, as the error of a command.
#[track_caller]
fn assert_one_line(stderr: &str, expected: &str) {
    assert_eq!(stderr, format!("error: {expected}\n"));
}

/// Every file the tools on this machine write, with the line each must get.
fn made_here(dir: &Path, connected: &TestEngine, containerd: &TestEngine) -> Vec<(String, String)> {
    fixtures::ensure(connected);
    fixtures::ensure(containerd);
    let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();

    connected.docker(&["save", TAG, "-o", &path("docker20.tar")]);
    containerd.docker(&["save", TAG, "-o", &path("docker28.tar")]);
    let container = connected.docker(&["create", TAG]);
    let container = container.trim();
    connected.docker(&["export", container, "-o", &path("export.tar")]);
    connected.docker(&["rm", container]);

    let store = tempfile::tempdir().unwrap();
    run(podman(store.path()).args(["load", "-q", "-i", &path("docker20.tar")]));
    run(podman(store.path()).args(["save", "-q", "-o", &path("podman.tar"), TAG]));
    run(podman(store.path()).args([
        "save",
        "-q",
        "--format",
        "oci-archive",
        "-o",
        &path("podman-oci.tar"),
        TAG,
    ]));
    for target in [
        "oci-archive:skopeo-oci.tar:fixture/web:1",
        "oci:layout:fixture/web:1",
        "dir:skopeo-dir",
    ] {
        run(Command::new("skopeo")
            .args(["copy", "--quiet", "docker-archive:docker20.tar", target])
            .current_dir(dir));
    }
    compress(dir, "gzip", "docker20.tar", "docker20.tar.gz");
    // Named as a bundle would be: the name does not count.
    compress(dir, "zstd", "docker28.tar", "shop.zst");
    compress(dir, "xz", "podman.tar", "podman.tar.xz");
    compress(dir, "bzip2", "skopeo-oci.tar", "skopeo-oci.tar.bz2");
    compress(dir, "gzip", "export.tar", "export.tar.gz");
    compress(dir, "zstd", "export.tar", "export.tar.zst");

    let pack = |f: &str| format!("pack it with airgap pack --archive {f}");
    let import = |f: &str| {
        format!(
            "not an image: make it one with airgap pack --import {f}=REPO:TAG --change 'CMD [\"…\"]'"
        )
    };
    let containerd_save = "docker save archive of the containerd image store (Docker 25 or later, nerdctl or ctr; gzip-compressed layers)";
    let lines = [
        (
            "docker20.tar",
            format!(
                "a docker save archive (Docker 24 or earlier): {}",
                pack("docker20.tar")
            ),
        ),
        (
            "docker20.tar.gz",
            format!(
                "a gzip-compressed docker save archive (Docker 24 or earlier): {}",
                pack("docker20.tar.gz")
            ),
        ),
        (
            "docker28.tar",
            format!("a {containerd_save}: {}", pack("docker28.tar")),
        ),
        (
            "shop.zst",
            format!("a zstd-compressed {containerd_save}: {}", pack("shop.zst")),
        ),
        (
            "podman.tar",
            format!(
                "a docker-archive (podman save or skopeo docker-archive:): {}",
                pack("podman.tar")
            ),
        ),
        (
            "podman.tar.xz",
            format!(
                "an xz-compressed docker-archive (podman save or skopeo docker-archive:): {}",
                pack("podman.tar.xz")
            ),
        ),
        (
            "podman-oci.tar",
            format!(
                "an OCI archive (podman save --format oci-archive or skopeo oci-archive:): {}",
                pack("podman-oci.tar")
            ),
        ),
        (
            "skopeo-oci.tar",
            format!(
                "an OCI archive (podman save --format oci-archive or skopeo oci-archive:): {}",
                pack("skopeo-oci.tar")
            ),
        ),
        (
            "skopeo-oci.tar.bz2",
            format!(
                "a bzip2-compressed OCI archive (podman save --format oci-archive or skopeo oci-archive:): {}",
                pack("skopeo-oci.tar.bz2")
            ),
        ),
        (
            "layout",
            format!("an OCI image layout directory: {}", pack("layout")),
        ),
        (
            "skopeo-dir",
            format!(
                "a skopeo dir: directory (one image): {}",
                pack("skopeo-dir")
            ),
        ),
        (
            "export.tar",
            format!(
                "a root filesystem (docker export output), {}",
                import("export.tar")
            ),
        ),
        (
            "export.tar.gz",
            format!(
                "a gzip-compressed root filesystem (docker export output), {}",
                import("export.tar.gz")
            ),
        ),
        (
            "export.tar.zst",
            format!(
                "a zstd-compressed root filesystem (docker export output), {}",
                import("export.tar.zst")
            ),
        ),
    ];
    lines
        .into_iter()
        .map(|(file, what)| (file.to_owned(), format!("{file} is {what}")))
        .collect()
}

#[test]
fn every_kind_the_tools_here_write_is_named_with_its_command() {
    if !have("podman") || !have("skopeo") {
        return;
    }
    let (_lock, [connected, containerd, engine]) = engines!("a-connected", "b", "a-offline");
    let (_temp, dir) = workdir_with_keys();
    let cases = made_here(&dir, &connected, &containerd);
    for (file, line) in &cases {
        let inspected = airgap(&dir, &["inspect", file]).failure(3);
        assert_one_line(&inspected.stderr, line);
        assert_eq!(inspected.stdout, "");
        let unpacked = airgap(
            &dir,
            &[
                "--host",
                &engine.host,
                "unpack",
                "-q",
                file,
                "--allow-unsigned",
            ],
        )
        .failure(3);
        assert_one_line(&unpacked.stderr, line);
    }
    // verify prints its report, then the same line as the error.
    let verified = airgap(&dir, &["verify", "export.tar.gz", "--allow-unsigned"]).failure(3);
    assert!(
        verified.stdout.contains("result:   REFUSED"),
        "{}",
        verified.stdout
    );
    let (_, line) = cases.iter().find(|(f, _)| f == "export.tar.gz").unwrap();
    assert_one_line(&verified.stderr, line);
}

#[test]
fn pack_archive_refuses_what_is_not_an_image_archive_in_one_printable_line() {
    let (_temp, dir) = workdir_with_keys();
    let golden = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/bundles/v1.3-minimal.zst"
    );
    fs::copy(golden, dir.join("images.tar.gz")).unwrap();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let random: Vec<u8> = (0..64 << 10)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    fs::write(dir.join("random.tar"), &random).unwrap();
    fs::write(dir.join("junk"), &random).unwrap();
    compress(&dir, "gzip", "junk", "junk.tar.gz");
    compress(&dir, "zstd", "junk", "junk.tar.zst");
    let mut rootfs = tar::Builder::new(Vec::new());
    for entry in [".dockerenv", "bin/sh", "etc/hosts", "usr/lib/x"] {
        let mut header = tar::Header::new_ustar();
        header.set_size(0);
        header.set_mode(0o644);
        rootfs.append_data(&mut header, entry, &[][..]).unwrap();
    }
    fs::write(dir.join("export.tar"), rootfs.into_inner().unwrap()).unwrap();

    let start =
        |what: &str| format!("{:02x} {:02x} {:02x}", random[0], random[1], random[2]) + what;
    let cases = [
        ("images.tar.gz", "images.tar.gz is an airgap bundle: check it with airgap verify images.tar.gz and load it with airgap unpack images.tar.gz".to_owned()),
        ("export.tar", "export.tar is a root filesystem (docker export output), not an image: make it one with airgap pack --import export.tar=REPO:TAG --change 'CMD [\"…\"]'".to_owned()),
        ("random.tar", format!("random.tar is neither an airgap bundle nor an image archive: it is not zstd-, gzip-, xz- or bzip2-compressed and not a tar (it starts with {}", start(""))),
        ("junk.tar.gz", "junk.tar.gz is gzip-compressed, but what it holds is not a tar: neither an airgap bundle nor an image archive".to_owned()),
        ("junk.tar.zst", "junk.tar.zst is zstd-compressed, but what it holds is not a tar: neither an airgap bundle nor an image archive".to_owned()),
    ];
    for (file, line) in cases {
        let run = airgap(
            &dir,
            &[
                "pack",
                "-q",
                "--archive",
                file,
                "app:1",
                "-o",
                "b.zst",
                "--unsigned",
            ],
        )
        .failure(2);
        assert!(
            run.stderr.starts_with(&format!("error: {line}")),
            "{}",
            run.stderr
        );
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(
            run.stderr.trim_end().chars().all(|c| !c.is_control()),
            "raw bytes printed: {:?}",
            run.stderr
        );
        assert!(!dir.join("b.zst").exists());
    }
}

#[test]
fn pack_archive_still_takes_a_docker_save() {
    let (_lock, [connected]) = engines!("a-connected");
    fixtures::ensure(&connected);
    let (_temp, dir) = workdir_with_keys();
    connected.docker(&["save", TAG, "-o", dir.join("save.tar").to_str().unwrap()]);
    airgap(
        &dir,
        &[
            "pack",
            "-q",
            "--archive",
            "save.tar",
            TAG,
            "-o",
            "b.zst",
            "--key",
            "ops.pem",
        ],
    )
    .success();
    airgap(&dir, &["verify", "-q", "b.zst", "--key", "ops.pub.pem"]).success();
}
