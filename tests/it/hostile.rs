//! The hostile corpus (support/hostile.rs): every case is refused with a
//! one-line error and the right exit code, and none reaches the engine.

use std::path::Path;

use crate::engines;
use crate::support::cmd::{airgap, workdir_with_keys};
use crate::support::engine::TestEngine;
use crate::support::fixtures::{self, app_tags};
use crate::support::hostile::{self, Case};
use crate::support::synthetic::{self, Image, layer};

const CORPUS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/hostile");

fn other_key(dir: &Path) -> airgap::trust::keys::PrivateKey {
    airgap(dir, &["keygen", "--output", "other"]).success();
    airgap::trust::keys::PrivateKey::read(&dir.join("other.pem")).unwrap()
}

fn check(dir: &Path, case: &Case, command: &[&str]) {
    let file = format!("{}.zst", case.name);
    std::fs::write(dir.join(&file), &case.bytes).unwrap();
    if let Some(digest) = &case.companion {
        std::fs::write(
            dir.join(format!("{file}.sha256")),
            format!("{digest}  {file}\n"),
        )
        .unwrap();
    }
    let mut args = command.to_vec();
    args.extend([file.as_str(), "--key", "ops.pub.pem", "-q"]);
    if case.allow_unsigned {
        args.push("--allow-unsigned");
    }
    let run = airgap(dir, &args);
    assert!(
        case.codes.contains(&run.code),
        "{}: exit {} (want {:?}): {}",
        case.name,
        run.code,
        case.codes,
        run.stderr
    );
    assert!(
        run.stderr.starts_with("error: ") && run.stderr.lines().count() == 1,
        "{}: {}",
        case.name,
        run.stderr
    );
    assert!(
        run.stderr.contains(case.says),
        "{}: expected {:?} in {}",
        case.name,
        case.says,
        run.stderr
    );
    std::fs::remove_file(dir.join(&file)).unwrap();
    let _ = std::fs::remove_file(dir.join(format!("{file}.sha256")));
}

/// `save.tar` in `dir`: a `docker save` archive of two images sharing a base.
fn write_archive(dir: &Path) {
    let base = layer("etc/base", "base layer");
    let images = [
        Image::new(
            "fixture/one:1",
            vec![base.clone(), layer("one", "first app")],
        ),
        Image::new("fixture/two:1", vec![base, layer("two", "second app")]),
    ];
    std::fs::write(dir.join("save.tar"), synthetic::legacy_archive(&images)).unwrap();
}

/// Packs `images` from `save.tar` in `dir` into `output`, signed with `ops.pem`.
fn pack_archive(dir: &Path, images: &[&str], output: &str) {
    let mut pack = vec!["pack", "-q", "--archive", "save.tar"];
    pack.extend(images);
    pack.extend(["-o", output, "--key", "ops.pem"]);
    airgap(dir, &pack).success();
}

/// A policy trusting only the test key `ops.pub.pem` in `dir`.
fn trusting_ops(dir: &Path) -> airgap::verify::TrustPolicy {
    airgap::verify::TrustPolicy {
        keys: vec![airgap::trust::keys::PublicKey::read(&dir.join("ops.pub.pem")).unwrap()],
        allow_unsigned: false,
    }
}

#[test]
fn every_hostile_bundle_is_refused_by_verify() {
    let (_dir, dir) = workdir_with_keys();
    write_archive(&dir);
    pack_archive(&dir, &["fixture/one:1", "fixture/two:1"], "valid.zst");
    let valid = std::fs::read(dir.join("valid.zst")).unwrap();
    let key = airgap::trust::keys::PrivateKey::read(&dir.join("ops.pem")).unwrap();

    let other = other_key(&dir);
    let mut cases = hostile::crafted(&valid, &key, &other);
    cases.extend(hostile::sealed(&cases, &key));
    cases.extend(hostile::bad_seals(&valid, &key, &other));
    cases.extend(hostile::flipped(&valid, 64));
    cases.extend(hostile::truncated(&valid, 32));
    hostile::write(Path::new(CORPUS_DIR), &cases);
    for case in &cases {
        check(&dir, case, &["verify"]);
    }
    // The untouched bundle still verifies: the refusals are about the damage.
    airgap(&dir, &["verify", "valid.zst", "--key", "ops.pub.pem"]).success();
    admission_leaves_entries_to_the_load(&dir, &cases);
}

/// Admission by seal reads no entry past the head: these sealed cases,
/// bad only in their entries, are admitted, so when unpack refuses them
/// (never_reach below) it is the load's own checks that did.
fn admission_leaves_entries_to_the_load(dir: &Path, cases: &[Case]) {
    let policy = trusting_ops(dir);
    let bad_entries = [
        "content-altered",
        "size-mismatch",
        "missing-entry",
        "reordered",
        "unlisted-at-end",
        "symlink",
    ];
    for name in bad_entries {
        let name = format!("sealed-{name}");
        let case = cases.iter().find(|c| c.name == name).unwrap();
        let path = dir.join(format!("{name}.zst"));
        std::fs::write(&path, &case.bytes).unwrap();
        let progress = airgap::progress::NoProgress;
        assert!(
            airgap::verify::admit(&path, &policy, &progress).is_ok(),
            "{name} was refused on admission"
        );
        assert!(airgap::verify::verify(&path, &policy, &progress).is_err());
    }
}

/// Admission by seal reads no entry, so the load's own read is what stands
/// between a file swapped or damaged after admission and the engine.
#[test]
fn a_bundle_changed_after_admission_fails_the_read_that_loads_it() {
    use airgap::progress::{NoProgress, Task};
    use airgap::verify::{VerifyError, admit};
    let (_dir, dir) = workdir_with_keys();
    write_archive(&dir);
    for (output, wanted) in [("a.zst", "fixture/two:1"), ("b.zst", "fixture/one:1")] {
        pack_archive(&dir, &["fixture/one:1", wanted], output);
    }
    let policy = trusting_ops(&dir);
    let path = dir.join("a.zst");
    let original = std::fs::read(&path).unwrap();
    let read_again = |admitted: &airgap::verify::VerifiedBundle| {
        admitted.read_entries(&NoProgress, Task::Loading, |_, _| Ok::<(), VerifyError>(()))
    };

    let admitted = admit(&path, &policy, &NoProgress).unwrap();
    read_again(&admitted).unwrap();
    std::fs::copy(dir.join("b.zst"), &path).unwrap();
    assert!(matches!(
        read_again(&admitted),
        Err(VerifyError::ChangedSinceVerified)
    ));
    // A byte of the body, far past the head, flipped after admission.
    let mut damaged = original.clone();
    damaged[hostile::unsealed(&original).len() - 64] ^= 0x20;
    std::fs::write(&path, damaged).unwrap();
    assert!(read_again(&admitted).is_err());
}

#[test]
fn hostile_bundles_never_reach_the_engine() {
    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    never_reach(&connected, &offline);
}

/// The containerd store reads a load stream as it comes: one that is cut
/// off mid-way because an entry failed its check must leave nothing either.
#[test]
fn sealed_hostile_bundles_never_reach_the_containerd_store() {
    let (_lock, [connected, offline]) = engines!("a-connected", "b");
    never_reach(&connected, &offline);
}

/// Podman stages a load stream before it loads it; a cut one must leave nothing.
#[test]
fn sealed_hostile_bundles_never_reach_podman() {
    let (_lock, [connected, offline]) = engines!("a-connected", "podman");
    never_reach(&connected, &offline);
}

/// Every hostile case, unpacked into the empty `offline`, is refused with
/// nothing loaded; the sealed ones are admitted by their seal and must be
/// caught while they stream to the engine.
fn never_reach(connected: &TestEngine, offline: &TestEngine) {
    fixtures::ensure(connected);
    offline.wipe();
    let (_dir, dir) = workdir_with_keys();
    let mut pack = vec![
        "--host",
        &connected.host,
        "pack",
        "-q",
        "-o",
        "valid.zst",
        "--key",
        "ops.pem",
    ];
    let tags = app_tags();
    pack.extend(tags.iter().map(String::as_str));
    airgap(&dir, &pack).success();
    let valid = std::fs::read(dir.join("valid.zst")).unwrap();
    let key = airgap::trust::keys::PrivateKey::read(&dir.join("ops.pem")).unwrap();

    let other = other_key(&dir);
    let mut cases = hostile::crafted(&valid, &key, &other);
    cases.extend(hostile::sealed(&cases, &key));
    cases.extend(hostile::bad_seals(&valid, &key, &other));
    cases.extend(hostile::flipped(&valid, 48));
    cases.extend(hostile::truncated(&valid, 24));
    for case in &cases {
        check(&dir, case, &["--host", &offline.host, "unpack"]);
        assert!(
            offline.image_ids().is_empty(),
            "{} put images on the {} engine",
            case.name,
            offline.name
        );
    }
    // The untouched bundle loads: the refusals are about the damage.
    let unpack = [
        "--host",
        &offline.host,
        "unpack",
        "valid.zst",
        "--key",
        "ops.pub.pem",
    ];
    airgap(&dir, &unpack).success();
    assert!(!offline.image_ids().is_empty());
}
