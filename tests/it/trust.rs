//! Trust keys and trust directories from the command line: what is refused
//! before a bundle is even opened, and that an honest setup still verifies.
//! No engine is needed.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::cmd::{Run, airgap, airgap_clean_env};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/bundles");

/// An SPKI PEM of the identity point (`01 00…00`), a key of small order.
const WEAK_KEY: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n-----END PUBLIC KEY-----\n";

/// A work directory (mode 0755) with `b.zst`, a signed golden bundle, its
/// signer's public key `signer.pub.pem`, and a fresh pair `ops.pem` /
/// `ops.pub.pem`.
fn workdir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    let golden = Path::new(GOLDEN);
    fs::copy(golden.join("v1.3-minimal.zst"), path.join("b.zst")).unwrap();
    fs::copy(
        golden.join("v1.3-signer.pub.pem"),
        path.join("signer.pub.pem"),
    )
    .unwrap();
    airgap(&path, &["keygen", "--output", "ops"]).success();
    (dir, path)
}

/// A one-line error on stderr, with nothing else.
#[track_caller]
fn one_line_error(run: &Run) -> &str {
    let stderr = run.stderr.trim_end();
    assert!(
        stderr.starts_with("error: ") && !stderr.contains('\n'),
        "{stderr}"
    );
    stderr
}

#[test]
fn a_private_key_as_a_trust_key_is_refused_by_verify_unpack_and_inspect() {
    let (_dir, dir) = workdir();
    // Even at mode 0644, where it was once used silently.
    fs::set_permissions(dir.join("ops.pem"), fs::Permissions::from_mode(0o644)).unwrap();
    for command in ["verify", "unpack", "inspect"] {
        let run = airgap(&dir, &[command, "b.zst", "--key", "ops.pem"]).failure(1);
        let error = one_line_error(&run);
        assert!(
            error.contains("ops.pem is a private key") && error.contains("-pubout"),
            "{command}: {error}"
        );
    }
}

#[test]
fn a_private_key_in_a_trust_directory_is_refused_by_name() {
    let (_dir, dir) = workdir();
    let trusted = dir.join("trusted.d");
    fs::create_dir(&trusted).unwrap();
    fs::set_permissions(&trusted, fs::Permissions::from_mode(0o755)).unwrap();
    fs::copy(dir.join("signer.pub.pem"), trusted.join("signer.pem")).unwrap();
    let run = airgap(&dir, &["verify", "b.zst", "--trust-dir", "trusted.d"]).success();
    assert!(run.stdout.contains("result:   VERIFIED"), "{}", run.stdout);

    fs::copy(dir.join("ops.pem"), trusted.join("ops.pem")).unwrap();
    let run = airgap(&dir, &["verify", "b.zst", "--trust-dir", "trusted.d"]).failure(1);
    assert!(
        one_line_error(&run).contains("trusted.d/ops.pem is a private key"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_weak_public_key_is_refused() {
    let (_dir, dir) = workdir();
    fs::write(dir.join("weak.pub.pem"), WEAK_KEY).unwrap();
    let run = airgap(&dir, &["verify", "b.zst", "--key", "weak.pub.pem"]).failure(1);
    assert!(
        one_line_error(&run).contains("weak.pub.pem is a weak Ed25519 public key"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_device_or_a_fifo_as_a_key_is_refused_at_once() {
    let (_dir, dir) = workdir();
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        dir.join("fifo.pem"),
        rustix::fs::Mode::from_raw_mode(0o644),
    )
    .unwrap();
    for (key, what) in [("/dev/zero", "character device"), ("fifo.pem", "FIFO")] {
        let run = airgap_within(
            &dir,
            &["verify", "b.zst", "--key", key],
            Duration::from_secs(20),
        )
        .failure(1);
        assert!(one_line_error(&run).contains(what), "{key}: {}", run.stderr);
    }
}

#[test]
fn a_trust_directory_owned_by_another_account_is_refused() {
    if !rustix::process::geteuid().is_root() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "this test needs root in CI"
        );
        eprintln!("SKIPPED: needs root to give a directory to another account");
        return;
    }
    let (_dir, dir) = workdir();
    let trusted = dir.join("trusted.d");
    fs::create_dir(&trusted).unwrap();
    fs::set_permissions(&trusted, fs::Permissions::from_mode(0o755)).unwrap();
    fs::copy(dir.join("signer.pub.pem"), trusted.join("signer.pem")).unwrap();
    std::os::unix::fs::chown(&trusted, Some(65534), Some(65534)).unwrap();
    let run = airgap(&dir, &["verify", "b.zst", "--trust-dir", "trusted.d"]).failure(1);
    let error = one_line_error(&run);
    assert!(
        error.contains("trusted.d is owned by uid 65534") && error.contains("chown"),
        "{error}"
    );
}

#[test]
fn the_default_trust_directory_is_held_to_the_same_rules() {
    let (_dir, dir) = workdir();
    let home = dir.join("home");
    let trusted = home.join(".config/airgap/trusted.d");
    fs::create_dir_all(&trusted).unwrap();
    for path in [
        &home,
        &home.join(".config"),
        &home.join(".config/airgap"),
        &trusted,
    ] {
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::copy(dir.join("signer.pub.pem"), trusted.join("signer.pem")).unwrap();
    let vars = [("HOME".to_owned(), home.display().to_string())];
    let run = airgap_clean_env(&dir, &["verify", "b.zst"], &vars).success();
    assert!(run.stdout.contains("result:   VERIFIED"), "{}", run.stdout);

    fs::set_permissions(home.join(".config"), fs::Permissions::from_mode(0o777)).unwrap();
    let run = airgap_clean_env(&dir, &["verify", "b.zst"], &vars).failure(1);
    let error = one_line_error(&run);
    assert!(
        error.contains("home/.config, a parent of") && error.contains("chmod go-w"),
        "{error}"
    );
}

#[test]
fn pack_given_a_public_key_says_so() {
    let (_dir, dir) = workdir();
    let run = airgap(
        &dir,
        &[
            "pack",
            "-q",
            "busybox:latest",
            "-o",
            "x.zst",
            "--key",
            "ops.pub.pem",
        ],
    )
    .failure(1);
    let error = one_line_error(&run);
    assert!(
        error.contains("ops.pub.pem is a public key") && !error.contains("chmod"),
        "{error}"
    );
}

#[test]
fn the_fingerprint_of_a_private_key_is_its_public_half() {
    let (_dir, dir) = workdir();
    let fingerprint = |file: &str| {
        let run = airgap(&dir, &["key", "fingerprint", file]).success();
        run.stdout.split_whitespace().next().unwrap().to_owned()
    };
    assert_eq!(fingerprint("ops.pem"), fingerprint("ops.pub.pem"));
}

#[test]
fn openssl_reads_the_private_key_keygen_writes() {
    let (_dir, dir) = workdir();
    let output = match Command::new("openssl")
        .args(["pkey", "-in", "ops.pem", "-noout"])
        .current_dir(&dir)
        .output()
    {
        Ok(output) => output,
        Err(error) => {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "openssl is needed in CI (scripts/deps installs it): {error}"
            );
            eprintln!("SKIPPED: cannot run openssl: {error}");
            return;
        }
    };
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs airgap as [`airgap`] does, failing the test if it runs longer
/// than `limit` (it is killed then, so a hang cannot stall the suite).
fn airgap_within(dir: &Path, args: &[&str], limit: Duration) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_airgap"))
        .args(args)
        .current_dir(dir)
        .env_remove("DOCKER_HOST")
        .env("AIRGAP_STATE_DIR", crate::support::cmd::state_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("airgap runs");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("airgap {args:?} still ran after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
