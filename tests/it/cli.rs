//! The command line itself: keys, usage errors, and the messages people see.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::support::cmd::airgap;

#[test]
fn keygen_writes_a_private_key_only_its_owner_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let run = airgap(dir.path(), &["keygen", "--output", "ops"]).success();
    assert!(
        run.stdout.contains("fingerprint: sha256:"),
        "{}",
        run.stdout
    );
    let mode = |name: &str| {
        fs::metadata(dir.path().join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("ops.pem"), 0o600);
    assert_eq!(mode("ops.pub.pem"), 0o644);
    assert!(
        fs::read_to_string(dir.path().join("ops.pem"))
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    assert!(
        fs::read_to_string(dir.path().join("ops.pub.pem"))
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );
    airgap(dir.path(), &["keygen", "--output", "ops"]).failure(1);
}

#[test]
fn a_readable_private_key_is_refused_for_signing() {
    let dir = tempfile::tempdir().unwrap();
    airgap(dir.path(), &["keygen", "--output", "ops"]).success();
    fs::set_permissions(
        dir.path().join("ops.pem"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let run = airgap(
        dir.path(),
        &[
            "pack",
            "x:1",
            "--output",
            "b.zst",
            "--key",
            "ops.pem",
            "--archive",
            "none.tar",
        ],
    );
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("chmod 600"), "{}", run.stderr);
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    airgap(dir.path(), &["pack", "x:1"]).failure(2);
    airgap(dir.path(), &["unpack"]).failure(2);
    airgap(dir.path(), &["frobnicate"]).failure(2);
}

#[test]
fn foreign_files_are_named_for_what_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(2);
    header.set_cksum();
    tar.append_data(&mut header, "manifest.json", &b"[]"[..])
        .unwrap();
    fs::write(dir.path().join("save.tar"), tar.into_inner().unwrap()).unwrap();
    let run = airgap(dir.path(), &["verify", "save.tar", "--allow-unsigned"]).failure(3);
    assert!(
        run.stderr.contains("save.tar is a docker save archive"),
        "{}",
        run.stderr
    );

    fs::write(dir.path().join("empty.zst"), b"").unwrap();
    let run = airgap(dir.path(), &["inspect", "empty.zst"]).failure(3);
    assert!(run.stderr.contains("empty"), "{}", run.stderr);
}

/// The advice printed after an error that no copy of a bundle would fix.
const RECOPY: &str = "copy the bundle again";

const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/bundles/v1.3-minimal.zst"
);

#[test]
fn a_directory_of_bundles_named_as_the_bundle_is_not_a_bad_copy() {
    let dir = tempfile::tempdir().unwrap();
    let bundles = dir.path().join("bundles");
    fs::create_dir(&bundles).unwrap();
    for name in ["a.zst", "b.zst"] {
        fs::copy(GOLDEN, bundles.join(name)).unwrap();
    }
    let run = airgap(dir.path(), &["verify", "bundles", "--allow-unsigned"]);
    assert_ne!(run.code, 0);
    assert!(!run.stderr.contains(RECOPY), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
}

#[test]
fn a_der_key_is_told_to_be_converted_not_to_recopy_the_bundle() {
    let dir = tempfile::tempdir().unwrap();
    airgap(dir.path(), &["keygen", "--output", "ops"]).success();
    let pem = fs::read_to_string(dir.path().join("ops.pub.pem")).unwrap();
    let base64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64_decode(&base64);
    fs::write(dir.path().join("ops.der"), der).unwrap();
    fs::copy(GOLDEN, dir.path().join("golden.zst")).unwrap();
    for command in ["verify", "inspect"] {
        let run = airgap(dir.path(), &[command, "golden.zst", "--key", "ops.der"]);
        assert_ne!(run.code, 0, "{command}");
        assert!(!run.stderr.contains(RECOPY), "{command}: {}", run.stderr);
        assert!(
            run.stderr.contains("-inform DER"),
            "{command}: {}",
            run.stderr
        );
    }
}

#[test]
fn a_bad_since_bundle_is_about_choosing_it_not_copying_it() {
    let (_lock, [connected]) = crate::engines!("a-connected");
    let dir = tempfile::tempdir().unwrap();
    airgap(dir.path(), &["keygen", "--output", "ops"]).success();
    fs::write(dir.path().join("old.zst"), b"not a bundle").unwrap();
    let run = airgap(
        dir.path(),
        &[
            "--host",
            &connected.host,
            "pack",
            "-q",
            "fixture/app:1",
            "--since",
            "old.zst",
            "--key",
            "ops.pem",
            "-o",
            "delta.zst",
        ],
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(!run.stderr.contains(RECOPY), "{}", run.stderr);
    assert!(
        run.stderr.contains("--since bundle old.zst"),
        "{}",
        run.stderr
    );
}

fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut count = 0;
    let mut bytes = Vec::new();
    for c in text.bytes().filter(|&c| c != b'=') {
        let value = ALPHABET.iter().position(|&a| a == c).unwrap() as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            bytes.push((bits >> count) as u8);
        }
    }
    bytes
}
