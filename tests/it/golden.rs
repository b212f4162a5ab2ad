//! Bundles written by earlier airgap versions must keep verifying
//! (bundle-spec/FORMAT.md section 6). Each version's golden bundle lives in
//! tests/fixtures/bundles/ with the public key that signed it.

use std::path::Path;

use crate::support::cmd::airgap;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/bundles");

#[test]
fn every_golden_bundle_still_verifies() {
    let mut checked = 0;
    for entry in std::fs::read_dir(GOLDEN).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(version) = name.strip_suffix("-minimal.zst") else {
            continue;
        };
        let key = format!("{version}-signer.pub.pem");
        let run = airgap(Path::new(GOLDEN), &["verify", &name, "--key", &key]).success();
        assert!(
            run.stdout.contains("result:   VERIFIED"),
            "{name}: {}",
            run.stdout
        );
        // Sealed from 1.3 on; earlier bundles are admitted by a full read.
        let minor: u32 = version.strip_prefix("v1.").unwrap().parse().unwrap();
        let sealed = minor >= 3;
        assert_eq!(run.stdout.contains("[ok] seal"), sealed, "{name}");
        let policy = airgap::verify::TrustPolicy {
            keys: vec![
                airgap::trust::keys::PublicKey::read(&Path::new(GOLDEN).join(&key)).unwrap(),
            ],
            allow_unsigned: false,
        };
        let admitted =
            airgap::verify::admit(&path, &policy, &airgap::progress::NoProgress).unwrap();
        assert_eq!(admitted.manifest().format_version, &version[1..], "{name}");
        checked += 1;
    }
    assert!(checked >= 4, "golden bundles missing from {GOLDEN}");
}

#[test]
fn the_v1_0_golden_bundle_still_describes_its_images() {
    let run = airgap(Path::new(GOLDEN), &["inspect", "v1.0-minimal.zst"]).success();
    for expected in [
        "golden/base:1",
        "golden/app:1",
        "used by 2 images",
        "format:   1.0",
    ] {
        assert!(
            run.stdout.contains(expected),
            "{expected} missing: {}",
            run.stdout
        );
    }
}

#[test]
fn the_v1_1_golden_bundle_still_carries_its_compose_project() {
    let run = airgap(Path::new(GOLDEN), &["inspect", "v1.1-minimal.zst"]).success();
    for expected in [
        "format:   1.1",
        "compose project golden",
        "service app → golden/app:1",
        "file compose.yaml",
    ] {
        assert!(
            run.stdout.contains(expected),
            "{expected} missing: {}",
            run.stdout
        );
    }
}

#[test]
fn the_v1_2_golden_bundle_still_describes_its_patch() {
    let run = airgap(Path::new(GOLDEN), &["inspect", "v1.2-minimal.zst"]).success();
    for expected in [
        "format:   1.2 (delta)",
        "as a 571 B patch against",
        "required on the target",
    ] {
        assert!(
            run.stdout.contains(expected),
            "{expected} missing: {}",
            run.stdout
        );
    }
}
