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
    assert!(run.stderr.contains("uncompressed tar"), "{}", run.stderr);

    fs::write(dir.path().join("empty.zst"), b"").unwrap();
    let run = airgap(dir.path(), &["inspect", "empty.zst"]).failure(3);
    assert!(run.stderr.contains("empty"), "{}", run.stderr);
}
