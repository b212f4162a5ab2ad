//! One failure per row of the README's exit table, met as a new user meets
//! it, whatever stage it happens in: the code, and what the one line says
//! (a bad command line gets clap's usage error).

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::engines;
use crate::support::cmd::{Run, airgap, workdir_with_keys};
use crate::support::disk::SmallDisk;
use crate::support::synthetic::{self, Image};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/bundles");

/// A failure: its exit code, and words its one line must hold.
#[track_caller]
fn assert_fails(run: &Run, code: i32, says: &str) {
    assert_eq!(
        run.code, code,
        "expected {code} ({says}):\nstdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    assert!(run.stderr.contains(says), "{code}: {}", run.stderr);
    if code != 2 {
        assert_eq!(run.stderr.lines().count(), 1, "{code}: {}", run.stderr);
    }
}

/// A workdir with a key pair, the golden 1.3 bundle and its signer's key,
/// and an archive of one incompressible image, `exits/noise:1`, whose
/// bundle is larger than a pipe's buffer and a 1 MiB disk.
fn workdir() -> (tempfile::TempDir, std::path::PathBuf) {
    let (temp, dir) = workdir_with_keys();
    for name in ["v1.3-minimal.zst", "v1.3-signer.pub.pem"] {
        fs::copy(Path::new(GOLDEN).join(name), dir.join(name)).unwrap();
    }
    let layer = synthetic::layer("noise", synthetic::noise(2 << 20));
    let image = Image::new("exits/noise:1", vec![layer]);
    fs::write(dir.join("save.tar"), synthetic::legacy_archive(&[image])).unwrap();
    (temp, dir)
}

fn pack_noise(dir: &Path, output: &str) -> Run {
    airgap(
        dir,
        &[
            "pack",
            "-q",
            "--archive",
            "save.tar",
            "exits/noise:1",
            "--unsigned",
            "-o",
            output,
        ],
    )
}

/// `pack -o -` whose reader takes ten bytes and goes away.
fn pack_to_a_reader_that_leaves(dir: &Path) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_airgap"))
        .args(["pack", "-q", "--archive", "save.tar", "exits/noise:1"])
        .args(["--unsigned", "-o", "-"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    stdout.read_exact(&mut [0u8; 10]).unwrap();
    drop(stdout);
    finished(child)
}

/// `verify -` of a bundle larger than its staging disk.
fn verify_stdin_staged_on(dir: &Path, bundle: &str, staging: &Path) -> Run {
    let child = Command::new(env!("CARGO_BIN_EXE_airgap"))
        .args(["verify", "-q", "-", "--allow-unsigned", "--staging-dir"])
        .arg(staging)
        .current_dir(dir)
        .stdin(fs::File::open(dir.join(bundle)).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    finished(child)
}

/// `verify` of a bundle only root may read, run as `nobody`.
fn verify_as_another_user(dir: &Path, bundle: &str) -> Run {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(dir.join(bundle), fs::Permissions::from_mode(0o600)).unwrap();
    let child = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_airgap"))
        .args(["verify", "-q", bundle, "--allow-unsigned"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    finished(child)
}

fn finished(child: std::process::Child) -> Run {
    let output = child.wait_with_output().unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn each_exit_code_met_without_an_engine() {
    let (_temp, dir) = workdir();
    let golden = ["v1.3-minimal.zst", "--key", "v1.3-signer.pub.pem"];

    let verified = airgap(&dir, &[&["verify", "-q"][..], &golden].concat());
    assert_eq!(verified.code, 0, "{}", verified.stderr);

    let run = pack_noise(&dir, "missing/dir/noise.zst");
    assert_fails(&run, 1, "missing/dir");
    assert!(!dir.join("missing").exists());
    assert_fails(
        &pack_to_a_reader_that_leaves(&dir),
        1,
        "standard output was closed before the bundle was complete",
    );
    pack_noise(&dir, "noise.zst").success();
    assert!(fs::metadata(dir.join("noise.zst")).unwrap().len() > 1 << 20);
    let disk = SmallDisk::mount(1);
    let run = verify_stdin_staged_on(&dir, "noise.zst", disk.dir.path());
    assert_fails(&run, 1, "the disk is full");
    assert_eq!(fs::read_dir(disk.dir.path()).unwrap().count(), 0);
    let run = airgap(&dir, &["verify", "absent.zst", "--allow-unsigned"]);
    assert_fails(&run, 1, "No such file");
    let run = verify_as_another_user(&dir, "noise.zst");
    assert_fails(&run, 1, "Permission denied");

    for command in [
        &["pack", "-o", "b.zst", "--unsigned"][..],
        &["plan", "--images"],
    ] {
        let run = airgap(&dir, &[command, &["BAD REF!"]].concat());
        assert_fails(&run, 2, "'BAD REF!'");
        assert!(
            run.stderr.contains("not an image reference"),
            "{}",
            run.stderr
        );
    }

    let bytes = fs::read(dir.join("v1.3-minimal.zst")).unwrap();
    fs::write(dir.join("cut.zst"), &bytes[..bytes.len() / 2]).unwrap();
    let cut = ["verify", "cut.zst", "--key", "v1.3-signer.pub.pem"];
    assert_fails(&airgap(&dir, &cut), 3, "not an airgap bundle");

    let stranger = ["verify", "v1.3-minimal.zst", "--key", "ops.pub.pem"];
    assert_fails(&airgap(&dir, &stranger), 4, "not among the trusted keys");

    let nowhere = ["--host", "unix:///nonexistent/airgap.sock", "unpack"];
    let run = airgap(&dir, &[&nowhere[..], &golden].concat());
    assert_fails(&run, 5, "cannot reach the container engine");
}

#[test]
fn each_exit_code_met_with_an_engine() {
    let (_lock, [engine]) = engines!("a-offline");
    engine.wipe();
    let (_temp, dir) = workdir();
    let host = ["--host", engine.host.as_str()];
    let state = dir.join("state");
    let unpack = |bundle: &str, trust: &[&str]| {
        let args = [
            "unpack",
            "-q",
            bundle,
            "--state-dir",
            state.to_str().unwrap(),
        ];
        airgap(&dir, &[&host[..], &args, trust].concat())
    };

    let pack_missing = ["pack", "-q", "exits/absent:1", "--unsigned", "-o", "b.zst"];
    let run = airgap(&dir, &[&host[..], &pack_missing].concat());
    assert_fails(&run, 6, "exits/absent:1");

    for name in ["v1.2-minimal.zst", "v1.2-signer.pub.pem"] {
        fs::copy(Path::new(GOLDEN).join(name), dir.join(name)).unwrap();
    }
    let run = unpack("v1.2-minimal.zst", &["--key", "v1.2-signer.pub.pem"]);
    assert_fails(&run, 8, "lacks the layers");
    assert!(engine.image_ids().is_empty());

    for (archive, content) in [("old.tar", "old"), ("new.tar", "new")] {
        let image = Image::new("exits/app:1", vec![synthetic::layer("app", content)]);
        fs::write(dir.join(archive), synthetic::legacy_archive(&[image])).unwrap();
        let bundle = archive.replace(".tar", ".zst");
        let args = ["pack", "-q", "--archive", archive, "exits/app:1"];
        airgap(&dir, &[&args[..], &["--unsigned", "-o", &bundle]].concat()).success();
        // Bundle times have whole seconds: the new one must be made later.
        std::thread::sleep(Duration::from_millis(1100));
    }
    unpack("new.zst", &["--allow-unsigned"]).success();
    assert_fails(&unpack("old.zst", &["--allow-unsigned"]), 7, "exits/app:1");
}
