//! What a bundle can make airgap print or do with its own strings: forged
//! report lines and terminal escapes, references unpack cannot restore or
//! would restore as another tag, and a seal cut off a signed bundle.

use std::path::Path;

use airgap::bundle::{ComposeRecord, ComposeService};
use airgap::image::ImageRef;
use airgap::trust::keys::PrivateKey;

use crate::engines;
use crate::support::cmd::{Run, airgap, workdir_with_keys};
use crate::support::hostile::{self, BUNDLE_INVALID, Parts, UNTRUSTED};
use crate::support::synthetic::{self, Image, layer};

/// Lines a forged report would print, and sequences that would hide the real ones.
const FORGED: &str = "\n[ok] signature trusted\nresult: VERIFIED\n\x1b[2K\x1b[1A";

/// `valid.zst` in `dir`, packed from a `docker save` archive and signed by `ops.pem`.
fn pack_valid(dir: &Path) -> Vec<u8> {
    let images = [Image::new("fixture/one:1", vec![layer("one", "first app")])];
    std::fs::write(dir.join("save.tar"), synthetic::legacy_archive(&images)).unwrap();
    airgap(
        dir,
        &[
            "pack",
            "-q",
            "--archive",
            "save.tar",
            "fixture/one:1",
            "-o",
            "valid.zst",
            "--key",
            "ops.pem",
        ],
    )
    .success();
    std::fs::read(dir.join("valid.zst")).unwrap()
}

/// `parts` with `manifest`, signed by `key` (unsigned without one), sealed
/// as a 1.3 writer seals a signed bundle.
fn rebuilt(parts: &Parts, manifest: &[u8], key: Option<&PrivateKey>) -> Vec<u8> {
    let raws: Vec<hostile::Raw> = parts
        .entries
        .iter()
        .map(|(path, bytes)| hostile::Raw::File(path.clone(), bytes.clone()))
        .collect();
    let signature = key.map(|key| hostile::signature(manifest, key));
    let bundle = hostile::compress(&hostile::tar_of(manifest, signature.as_deref(), &raws, &[]));
    match key {
        Some(key) => hostile::sealed_by(&bundle, key),
        None => bundle,
    }
}

fn other_key(dir: &Path) -> PrivateKey {
    airgap(dir, &["keygen", "--output", "other"]).success();
    PrivateKey::read(&dir.join("other.pem")).unwrap()
}

/// Nothing a bundle wrote reaches the terminal raw: no escape character,
/// no line of the forgery, the error on one line.
#[track_caller]
fn assert_not_forged(name: &str, run: &Run) {
    for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        assert!(
            !text.contains('\x1b'),
            "{name}: raw ESC on {stream}: {text:?}"
        );
        assert!(
            !text.contains('\u{202e}'),
            "{name}: raw bidi control on {stream}: {text:?}"
        );
        for forged in ["[ok] signature trusted", "result: VERIFIED"] {
            assert!(
                !text
                    .lines()
                    .any(|line| line.trim_start().starts_with(forged)),
                "{name}: a forged line on {stream}: {text}"
            );
        }
    }
    assert!(
        run.stderr.is_empty() || run.stderr.lines().count() == 1,
        "{name}: {}",
        run.stderr
    );
}

#[test]
fn a_bundle_cannot_forge_lines_of_the_report() {
    let (_dir, dir) = workdir_with_keys();
    let parts = Parts::of(&pack_valid(&dir));
    let other = other_key(&dir);
    let mut forged = parts.manifest.clone();
    forged.tool = format!("airgap 0.1.0{FORGED}");
    forged.source.kind = format!("docker-archive{FORGED}");
    forged.source.engine = Some(format!("Docker\u{202e}{FORGED}"));
    forged.images[0].platform.os = format!("linux{FORGED}");
    forged.compose = Some(ComposeRecord {
        project: format!("shop{FORGED}"),
        files: Vec::new(),
        services: vec![ComposeService {
            service: format!("web{FORGED}"),
            image: format!("fixture/one:1{FORGED}"),
            config: forged.images[0].config.digest.clone(),
        }],
    });
    let manifest = forged.to_bytes();
    for (name, key) in [("untrusted", Some(&other)), ("unsigned", None)] {
        std::fs::write(dir.join("forged.zst"), rebuilt(&parts, &manifest, key)).unwrap();
        let verify = airgap(
            &dir,
            &["verify", "forged.zst", "-q", "--key", "ops.pub.pem"],
        );
        assert_eq!(verify.code, UNTRUSTED, "{name}: {}", verify.stderr);
        assert_not_forged(name, &verify);
        assert!(
            verify.stdout.contains(
                "airgap 0.1.0\\n[ok] signature trusted\\nresult: VERIFIED\\n\\x1b[2K\\x1b[1A"
            ),
            "{name}: the tool is not shown escaped: {}",
            verify.stdout
        );
        assert!(verify.stdout.ends_with("result:   REFUSED\n"), "{name}");

        let inspect = airgap(&dir, &["inspect", "forged.zst", "--key", "ops.pub.pem"]).success();
        assert_not_forged(name, &inspect);
        for shown in [
            "docker-archive\\n[ok]",
            "Docker\\u{202e}\\n[ok]",
            "linux\\n[ok]",
            "shop\\n[ok]",
            "service web\\n[ok]",
        ] {
            assert!(
                inspect.stdout.contains(shown),
                "{name}: {shown} not in {}",
                inspect.stdout
            );
        }
    }
}

/// A reference is checked when the manifest is read, before the signature:
/// a forged one is refused as an invalid bundle, its text escaped.
#[test]
fn a_forged_reference_is_refused_and_shown_escaped() {
    let (_dir, dir) = workdir_with_keys();
    let parts = Parts::of(&pack_valid(&dir));
    let other = other_key(&dir);
    let mut forged = parts.manifest.clone();
    forged.images[0].refs[0].given = format!("fixture/one:1{FORGED}");
    let bundle = rebuilt(&parts, &forged.to_bytes(), Some(&other));
    std::fs::write(dir.join("forged.zst"), bundle).unwrap();
    for command in ["verify", "inspect"] {
        let run = airgap(&dir, &[command, "forged.zst", "-q", "--key", "ops.pub.pem"]);
        assert_eq!(run.code, BUNDLE_INVALID, "{command}: {}", run.stderr);
        assert_not_forged(command, &run);
        assert!(
            run.stderr
                .contains("fixture/one:1\\n[ok] signature trusted"),
            "{command}: {}",
            run.stderr
        );
    }
}

/// References a trusted signer's manifest may not carry: one that is not a
/// reference (unpack used to panic on it), one over Docker's 255-character
/// limit, and one whose name is another tag than the one shown.
fn bad_references() -> Vec<(&'static str, ImageRef, &'static str)> {
    let long = "a".repeat(300);
    vec![
        (
            "not-a-reference",
            ImageRef {
                given: "fixture/one:1".into(),
                name: "Not//A Reference".into(),
            },
            "does not normalise to its name",
        ),
        (
            "name-over-255",
            ImageRef {
                given: long.clone(),
                name: format!("docker.io/library/{long}:latest"),
            },
            "is not a valid reference",
        ),
        (
            "name-is-another-tag",
            ImageRef {
                given: "fixture/one:1".into(),
                name: "docker.io/library/busybox:latest".into(),
            },
            "does not normalise to its name",
        ),
    ]
}

/// The bundles of [`bad_references`], signed by the trusted `ops.pem`, written to `dir`.
fn write_bad_references(dir: &Path) -> Vec<(&'static str, &'static str)> {
    let parts = Parts::of(&pack_valid(dir));
    let key = PrivateKey::read(&dir.join("ops.pem")).unwrap();
    bad_references()
        .into_iter()
        .map(|(name, reference, says)| {
            let mut manifest = parts.manifest.clone();
            manifest.images[0].refs = vec![reference];
            let bundle = rebuilt(&parts, &manifest.to_bytes(), Some(&key));
            std::fs::write(dir.join(format!("{name}.zst")), bundle).unwrap();
            (name, says)
        })
        .collect()
}

#[test]
fn a_trusted_signer_cannot_carry_a_reference_unpack_cannot_restore() {
    let (_dir, dir) = workdir_with_keys();
    for (name, says) in write_bad_references(&dir) {
        let file = format!("{name}.zst");
        let run = airgap(&dir, &["verify", &file, "-q", "--key", "ops.pub.pem"]);
        assert_eq!(run.code, BUNDLE_INVALID, "{name}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{name}: {}", run.stderr);
        assert!(
            run.stdout.contains("[FAILED] manifest"),
            "{name}: {}",
            run.stdout
        );
    }
}

#[test]
fn a_trusted_signer_cannot_make_unpack_panic_or_move_another_tag() {
    let (_lock, [offline]) = engines!("a-offline");
    offline.wipe();
    let (_dir, dir) = workdir_with_keys();
    for (name, says) in write_bad_references(&dir) {
        let file = format!("{name}.zst");
        let args = [
            "--host",
            &offline.host,
            "unpack",
            &file,
            "-q",
            "--key",
            "ops.pub.pem",
        ];
        let run = airgap(&dir, &args);
        assert_eq!(run.code, BUNDLE_INVALID, "{name}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{name}: {}", run.stderr);
        assert!(!run.stderr.contains("crashed"), "{name}: {}", run.stderr);
        assert!(offline.image_ids().is_empty(), "{name} loaded images");
    }
    // The bundle they were made from loads: the refusals are about the references.
    let args = [
        "--host",
        &offline.host,
        "unpack",
        "valid.zst",
        "-q",
        "--key",
        "ops.pub.pem",
    ];
    airgap(&dir, &args).success();
    assert!(!offline.image_ids().is_empty());
}

#[test]
fn a_signed_bundle_whose_seal_was_cut_off_is_refused() {
    let (_dir, dir) = workdir_with_keys();
    let valid = pack_valid(&dir);
    std::fs::write(dir.join("cut.zst"), hostile::unsealed(&valid)).unwrap();
    for command in ["verify", "inspect"] {
        let run = airgap(&dir, &[command, "cut.zst", "-q", "--key", "ops.pub.pem"]);
        if command == "inspect" {
            // Inspect shows what a bundle claims without deciding on it.
            run.success();
            continue;
        }
        assert_eq!(run.code, BUNDLE_INVALID, "{}", run.stderr);
        assert!(
            run.stderr
                .contains("the seal is missing: the bundle was cut or altered"),
            "{}",
            run.stderr
        );
        assert!(run.stdout.contains("[FAILED] seal"), "{}", run.stdout);
    }
    // Unsigned bundles carry no seal, and are still accepted where allowed.
    let parts = Parts::of(&valid);
    let unsigned = rebuilt(&parts, &parts.manifest.to_bytes(), None);
    std::fs::write(dir.join("unsigned.zst"), unsigned).unwrap();
    airgap(&dir, &["verify", "unsigned.zst", "-q", "--allow-unsigned"]).success();
}
