//! Files placed beside a bundle (parts index, its signature, the `.sha256`
//! companion) and standard input: something other than what airgap wrote
//! there — a FIFO, a huge file, a stream of zeros — is refused promptly by
//! name, or (the advisory `.sha256`) left out with a note, never waited on
//! or read whole. No engine is needed: the golden bundle is the honest one.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use crate::support::cmd::{airgap, state_dir};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/bundles");
const BUNDLE: &str = "v1.3-minimal.zst";
const KEY: &str = "v1.3-signer.pub.pem";

/// A directory with the golden bundle and its signer's key.
fn workdir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    fs::copy(Path::new(GOLDEN).join(BUNDLE), path.join(BUNDLE)).unwrap();
    fs::copy(Path::new(GOLDEN).join(KEY), path.join(KEY)).unwrap();
    (dir, path)
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The golden bundle as `shop.zst.001`… of 700 bytes with its (unsigned) index.
fn split_golden(dir: &Path) {
    let bytes = fs::read(Path::new(GOLDEN).join(BUNDLE)).unwrap();
    let parts: Vec<serde_json::Value> = bytes
        .chunks(700)
        .enumerate()
        .map(|(i, chunk)| {
            let name = format!("shop.zst.{:03}", i + 1);
            fs::write(dir.join(&name), chunk).unwrap();
            serde_json::json!({ "name": name, "size": chunk.len(), "sha256": sha256(chunk) })
        })
        .collect();
    let index = serde_json::json!({
        "mediaType": "application/vnd.airgap.parts.v1+json",
        "bundle": "shop.zst",
        "size": bytes.len(),
        "sha256": sha256(&bytes),
        "parts": parts,
    });
    fs::write(dir.join("shop.zst.parts"), index.to_string()).unwrap();
}

fn mkfifo(path: &Path) {
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        path,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
}

/// Waits for `child` at most `limit`; kills it and fails the test after.
fn finish_within(mut child: Child, limit: Duration) -> std::process::Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("airgap still ran after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn spawn(dir: &Path, args: &[&str], stdin: Stdio) -> Child {
    Command::new(env!("CARGO_BIN_EXE_airgap"))
        .args(args)
        .current_dir(dir)
        .env_remove("DOCKER_HOST")
        .env("AIRGAP_STATE_DIR", state_dir())
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

const SPLIT_VERIFY: &[&str] = &["verify", "shop.zst", "--key", KEY, "--allow-unsigned"];

#[test]
fn a_fifo_as_the_parts_index_signature_is_refused_promptly_by_name() {
    let (_dir, dir) = workdir();
    split_golden(&dir);
    airgap(&dir, SPLIT_VERIFY).success();

    mkfifo(&dir.join("shop.zst.parts.sig"));
    let output = finish_within(
        spawn(&dir, SPLIT_VERIFY, Stdio::null()),
        Duration::from_secs(10),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("shop.zst.parts.sig") && stderr.contains("FIFO"),
        "{stderr}"
    );
    assert!(stderr.contains("remove it"), "{stderr}");
}

#[test]
fn a_huge_parts_index_signature_is_refused_without_reading_it() {
    let (_dir, dir) = workdir();
    split_golden(&dir);
    let signature = fs::File::create(dir.join("shop.zst.parts.sig")).unwrap();
    signature.set_len(1 << 30).unwrap();
    let run = airgap(&dir, SPLIT_VERIFY).failure(3);
    assert!(
        run.stderr.contains("shop.zst.parts.sig") && run.stderr.contains("more than"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
}

#[test]
fn a_fifo_found_as_the_parts_index_of_a_directory_is_refused_promptly() {
    let (_dir, dir) = workdir();
    let parts = dir.join("media");
    fs::create_dir(&parts).unwrap();
    mkfifo(&parts.join("shop.zst.parts"));
    let output = finish_within(
        spawn(&dir, &["verify", "media", "--key", KEY], Stdio::null()),
        Duration::from_secs(10),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("shop.zst.parts") && stderr.contains("FIFO"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn a_sha256_companion_that_cannot_be_read_is_left_out_with_a_note() {
    let (_dir, dir) = workdir();
    let companion = dir.join(format!("{BUNDLE}.sha256"));
    mkfifo(&companion);
    let verify = ["verify", BUNDLE, "--key", KEY];
    let output = finish_within(spawn(&dir, &verify, Stdio::null()), Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("note:")
            && stderr.contains(".sha256 was not read")
            && stderr.contains("FIFO"),
        "{stderr}"
    );

    fs::remove_file(&companion).unwrap();
    fs::File::create(&companion)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let run = airgap(&dir, &verify).success();
    assert!(run.stderr.contains("more than"), "{}", run.stderr);

    // A companion that can be read still decides: a wrong checksum refuses.
    fs::write(&companion, format!("{}  {BUNDLE}\n", "0".repeat(64))).unwrap();
    let run = airgap(&dir, &verify).failure(3);
    assert!(
        run.stderr.contains("differs from its .sha256"),
        "{}",
        run.stderr
    );
}

fn listing(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn zeros_on_standard_input_are_refused_after_the_first_bytes() {
    let (_dir, dir) = workdir();
    let staging = tempfile::tempdir().unwrap();
    let args = [
        "verify",
        "-",
        "--key",
        KEY,
        "--staging-dir",
        staging.path().to_str().unwrap(),
    ];
    let mut child = spawn(&dir, &args, Stdio::piped());
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let zeros = vec![0u8; 1 << 16];
        let mut written = 0usize;
        while written < 64 << 20 {
            match stdin.write(&zeros) {
                Ok(n) => written += n,
                Err(_) => break,
            }
        }
        written
    });
    let output = finish_within(child, Duration::from_secs(10));
    let written = writer.join().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("standard input starts with 00 00 00 00"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    // What the pipe held when airgap stopped reading, no more.
    assert!(written < 1 << 20, "{written} bytes taken");
    assert!(listing(staging.path()).is_empty());
}

#[test]
fn a_bundle_on_standard_input_verifies_and_leaves_nothing_staged() {
    let (_dir, dir) = workdir();
    let staging = tempfile::tempdir().unwrap();
    let args = [
        "verify",
        "-",
        "--key",
        KEY,
        "--staging-dir",
        staging.path().to_str().unwrap(),
    ];
    let bundle = fs::File::open(dir.join(BUNDLE)).unwrap();
    let output = finish_within(spawn(&dir, &args, bundle.into()), Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("result:   VERIFIED"), "{stdout}");
    assert!(listing(staging.path()).is_empty());
}

/// A run killed while it stages (its writer is slow) leaves nothing behind,
/// and nothing is visible while it runs.
#[test]
fn a_run_killed_while_staging_leaves_nothing_in_the_staging_dir() {
    let (_dir, dir) = workdir();
    let staging = tempfile::tempdir().unwrap();
    let args = [
        "verify",
        "-",
        "--key",
        KEY,
        "--staging-dir",
        staging.path().to_str().unwrap(),
    ];
    let bundle = fs::read(dir.join(BUNDLE)).unwrap();
    let mut child = spawn(&dir, &args, Stdio::piped());
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&bundle[..bundle.len() / 2]).unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(child.try_wait().unwrap().is_none(), "airgap stopped early");
    assert!(listing(staging.path()).is_empty());
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);
    assert!(listing(staging.path()).is_empty());
}

/// `inventory --output` replaces a link planted at its name instead of
/// writing through it to the file the link points at.
#[test]
fn an_inventory_output_replaces_a_planted_link() {
    let (_lock, [engine]) = crate::engines!("a-offline");
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    fs::write(&victim, b"keep me").unwrap();
    std::os::unix::fs::symlink(&victim, dir.path().join("have.json")).unwrap();
    airgap(
        dir.path(),
        &["--host", &engine.host, "inventory", "--output", "have.json"],
    )
    .success();
    assert_eq!(fs::read(&victim).unwrap(), b"keep me");
    let written = dir.path().join("have.json");
    assert!(!fs::symlink_metadata(&written).unwrap().is_symlink());
    let inventory: serde_json::Value =
        serde_json::from_slice(&fs::read(&written).unwrap()).unwrap();
    assert_eq!(
        inventory["mediaType"],
        "application/vnd.airgap.inventory.v1+json"
    );
}
