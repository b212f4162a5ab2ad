//! Bundles that must be refused, with the offline engine left untouched.

use std::fs;
use std::path::Path;

use crate::engines;
use crate::support::cmd::{airgap, workdir_with_keys};
use crate::support::engine::TestEngine;
use crate::support::fixtures::{self, app_tags};

/// Exit codes from README.md.
const BUNDLE_INVALID: i32 = 3;
const UNTRUSTED: i32 = 4;

fn pack(connected: &TestEngine, dir: &Path, extra: &[&str]) {
    fixtures::ensure(connected);
    let tags = app_tags();
    let mut args = vec![
        "--host",
        &connected.host,
        "pack",
        "--quiet",
        "--output",
        "shop.zst",
    ];
    args.extend(tags.iter().map(String::as_str));
    args.extend(extra);
    airgap(dir, &args).success();
}

fn unpack(offline: &TestEngine, dir: &Path, extra: &[&str]) -> crate::support::cmd::Run {
    let mut args = vec!["--host", &offline.host, "unpack", "shop.zst", "--quiet"];
    args.extend(extra);
    airgap(dir, &args)
}

#[test]
fn a_flipped_byte_is_refused_and_nothing_is_loaded() {
    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    offline.wipe();
    let (_dir, dir) = workdir_with_keys();
    pack(&connected, &dir, &["--key", "ops.pem"]);
    let path = dir.join("shop.zst");
    let mut bytes = fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fs::write(&path, bytes).unwrap();

    let run = unpack(&offline, &dir, &["--key", "ops.pub.pem"]).failure(BUNDLE_INVALID);
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
    assert_eq!(
        run.stderr.lines().count(),
        1,
        "one-line error expected: {}",
        run.stderr
    );
    assert!(
        offline.image_ids().is_empty(),
        "the offline engine got images from a damaged bundle"
    );
}

#[test]
fn a_truncated_bundle_is_refused_and_nothing_is_loaded() {
    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    offline.wipe();
    let (_dir, dir) = workdir_with_keys();
    pack(&connected, &dir, &["--key", "ops.pem"]);
    let path = dir.join("shop.zst");
    let length = fs::metadata(&path).unwrap().len();
    for keep in [length - 1, length * 3 / 4, length / 2] {
        let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(keep).unwrap();
        let run = unpack(&offline, &dir, &["--key", "ops.pub.pem"]).failure(BUNDLE_INVALID);
        // A signed 1.3 bundle cut anywhere has lost its seal, which is
        // refused before its entries are read.
        assert!(
            run.stderr.contains("truncated")
                || run.stderr.contains("corrupt")
                || run
                    .stderr
                    .contains("the seal is missing: the bundle was cut"),
            "{}",
            run.stderr
        );
        assert!(offline.image_ids().is_empty());
    }
}

#[test]
fn another_signers_bundle_is_refused_and_nothing_is_loaded() {
    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    offline.wipe();
    let (_dir, dir) = workdir_with_keys();
    pack(&connected, &dir, &["--key", "ops.pem"]);
    airgap(&dir, &["keygen", "--output", "other"]).success();

    let run = unpack(&offline, &dir, &["--key", "other.pub.pem"]).failure(UNTRUSTED);
    assert!(
        run.stderr.contains("not among the trusted keys"),
        "{}",
        run.stderr
    );
    let run = unpack(&offline, &dir, &[]).failure(UNTRUSTED);
    assert!(run.stderr.contains("--key"), "{}", run.stderr);
    assert!(offline.image_ids().is_empty());
}

#[test]
fn unsigned_bundles_need_allow_unsigned() {
    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    offline.wipe();
    let (_dir, dir) = workdir_with_keys();
    pack(&connected, &dir, &["--unsigned"]);

    let run = unpack(&offline, &dir, &["--key", "ops.pub.pem"]).failure(UNTRUSTED);
    assert!(run.stderr.contains("not signed"), "{}", run.stderr);
    assert!(offline.image_ids().is_empty());

    unpack(&offline, &dir, &["--allow-unsigned"]).success();
    for tag in app_tags() {
        assert_eq!(offline.inspect(&tag), connected.inspect(&tag), "{tag}");
    }
}

#[test]
fn a_missing_image_fails_before_anything_is_written() {
    let (_lock, [connected]) = engines!("a-connected");
    fixtures::ensure(&connected);
    let (_dir, dir) = workdir_with_keys();
    let run = airgap(
        &dir,
        &[
            "--host",
            &connected.host,
            "pack",
            "fixture/web:1",
            "nosuch/one:1",
            "nosuch/two:2",
            "--output",
            "shop.zst",
            "--key",
            "ops.pem",
        ],
    )
    .failure(6);
    assert!(
        run.stderr.contains("nosuch/one:1") && run.stderr.contains("nosuch/two:2"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("fixture/web:1"), "{}", run.stderr);
    let mut left: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["ops.pem", "ops.pub.pem"]);
}

/// A validly signed but older bundle must not move tags back (TUF's rollback).
#[test]
fn an_older_bundle_is_refused_as_a_downgrade_unless_allowed() {
    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    offline.wipe();
    let (_dir, dir) = workdir_with_keys();
    let state = tempfile::tempdir().unwrap();
    let state_arg = state.path().to_str().unwrap();
    fixtures::ensure(&connected);
    let pack = |output: &str| {
        airgap(
            &dir,
            &[
                "--host",
                &connected.host,
                "pack",
                "-q",
                "fixture/web:1",
                "-o",
                output,
                "--key",
                "ops.pem",
            ],
        )
        .success();
    };
    pack("old.zst");
    let old_id = connected.inspect("fixture/web:1").unwrap().0;
    fixtures::rebuild(&connected);
    let new_id = connected.inspect("fixture/web:1").unwrap().0;
    assert_ne!(old_id, new_id);
    pack("new.zst");
    let unpack = |bundle: &str, extra: &[&str]| {
        let mut args = vec![
            "--host",
            &offline.host,
            "unpack",
            "-q",
            bundle,
            "--key",
            "ops.pub.pem",
            "--state-dir",
            state_arg,
        ];
        args.extend(extra);
        airgap(&dir, &args)
    };

    unpack("new.zst", &[]).success();
    let run = unpack("old.zst", &[]).failure(7);
    assert!(
        run.stderr.contains("downgrade") && run.stderr.contains("fixture/web:1"),
        "{}",
        run.stderr
    );
    assert_eq!(
        offline.inspect("fixture/web:1").unwrap().0,
        new_id,
        "the tag did not move back"
    );

    let again = unpack("new.zst", &[]).success();
    assert!(again.stdout.contains("already applied"), "{}", again.stdout);

    unpack("old.zst", &["--allow-downgrade"]).success();
    assert_eq!(offline.inspect("fixture/web:1").unwrap().0, old_id);
}
