//! The physical handoff: split bundles, pipes, reports, full disks.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::engines;
use crate::support::cmd::{airgap, unpack_into, workdir_with_keys};
use crate::support::disk::SmallDisk;
use crate::support::fixtures::{self, app_tags};
use crate::support::synthetic;

fn pack_split(host: &str, dir: &Path) -> Vec<String> {
    let tags = app_tags();
    let mut args = vec![
        "--host",
        host,
        "pack",
        "-q",
        "-o",
        "out/shop.zst",
        "--split",
        "256K",
        "--key",
        "ops.pem",
    ];
    args.extend(tags.iter().map(String::as_str));
    fs::create_dir_all(dir.join("out")).unwrap();
    airgap(dir, &args).success();
    listing(&dir.join("out"))
        .into_iter()
        .filter(|n| n.starts_with("shop.zst.0"))
        .collect()
}

#[test]
fn a_bundle_split_into_small_parts_verifies_and_unpacks_from_any_part() {
    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    fixtures::ensure(&connected);
    offline.wipe();
    let (_dir, dir) = workdir_with_keys();
    let parts = pack_split(&connected.host, &dir);
    assert!(parts.len() >= 3, "{parts:?}");
    assert_eq!(parts[0], "shop.zst.001");
    for part in &parts {
        assert!(fs::metadata(dir.join("out").join(part)).unwrap().len() <= 256 << 10);
    }
    let check = Command::new("sha256sum")
        .args(["-c", "shop.zst.sha256"])
        .current_dir(dir.join("out"))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    for named in [
        "out/shop.zst",
        "out/shop.zst.001",
        "out/shop.zst.002",
        "out",
    ] {
        airgap(&dir, &["verify", named, "--key", "ops.pub.pem"]).success();
    }
    unpack_into(&dir, &offline.host, "out/shop.zst.002", &[]).success();
    for tag in app_tags() {
        assert_eq!(offline.inspect(&tag), connected.inspect(&tag), "{tag}");
    }
}

#[test]
fn a_missing_or_damaged_part_is_named_and_nothing_is_loaded() {
    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    fixtures::ensure(&connected);
    offline.wipe();
    let (_dir, dir) = workdir_with_keys();
    pack_split(&connected.host, &dir);
    let part = |n: &str| dir.join("out").join(format!("shop.zst.{n}"));
    let unpack = [
        "--host",
        &offline.host,
        "unpack",
        "-q",
        "out/shop.zst",
        "--key",
        "ops.pub.pem",
    ];

    fs::rename(part("002"), dir.join("aside")).unwrap();
    let run = airgap(&dir, &unpack).failure(3);
    assert!(
        run.stderr.contains("missing") && run.stderr.contains("shop.zst.002"),
        "{}",
        run.stderr
    );
    fs::rename(dir.join("aside"), part("002")).unwrap();

    let mut bytes = fs::read(part("003")).unwrap();
    bytes[1000] ^= 0x55;
    fs::write(part("003"), bytes).unwrap();
    let run = airgap(&dir, &unpack).failure(3);
    assert!(
        run.stderr.contains("damaged") && run.stderr.contains("shop.zst.003"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("shop.zst.002"), "{}", run.stderr);
    assert!(offline.image_ids().is_empty());
}

#[test]
fn a_bundle_piped_from_pack_to_unpack_crosses_between_engine_kinds() {
    let (_lock, [connected, b]) = engines!("a-connected", "b");
    fixtures::ensure(&connected);
    b.wipe();
    let (_dir, dir) = workdir_with_keys();
    let airgap_bin = env!("CARGO_BIN_EXE_airgap");
    let script = format!(
        "'{airgap_bin}' -H '{}' pack -q fixture/web:1 fixture/app:1 -o - --key ops.pem | '{airgap_bin}' -H '{}' unpack - --key ops.pub.pem --state-dir state",
        connected.host, b.host
    );
    let output = Command::new("sh")
        .args(["-c", &script])
        .current_dir(&dir)
        .env_remove("DOCKER_HOST")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("loaded fixture/app:1"));
    for tag in ["fixture/web:1", "fixture/app:1"] {
        assert_eq!(
            b.config_digest(tag),
            connected.inspect(tag).unwrap().0,
            "{tag}"
        );
    }
    let left: Vec<_> = fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".airgap-stdin-")
        })
        .collect();
    assert!(left.is_empty(), "staged bundles left behind: {left:?}");
}

#[test]
fn verify_reports_every_check_and_the_failed_one() {
    let (_lock, [connected]) = engines!("a-connected");
    fixtures::ensure(&connected);
    let (_dir, dir) = workdir_with_keys();
    airgap(
        &dir,
        &[
            "--host",
            &connected.host,
            "pack",
            "-q",
            "fixture/web:1",
            "-o",
            "b.zst",
            "--key",
            "ops.pem",
        ],
    )
    .success();
    let run = airgap(&dir, &["verify", "b.zst", "--key", "ops.pub.pem", "--json"]).success();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["verified"], true);
    let sha256 = fs::read_to_string(dir.join("b.zst.sha256")).unwrap();
    assert_eq!(
        report["sha256"].as_str().unwrap(),
        format!("sha256:{}", &sha256[..64])
    );
    let checks: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(
        checks,
        [
            "format",
            "manifest",
            "signature",
            "entries",
            "end",
            "seal",
            "checksum"
        ]
    );
    assert_eq!(
        report["images"][0]["config"],
        connected.inspect("fixture/web:1").unwrap().0
    );
    let text = airgap(&dir, &["verify", "b.zst", "--key", "ops.pub.pem"])
        .success()
        .stdout;
    assert!(
        text.contains("result:   VERIFIED") && text.contains("trusted here"),
        "{text}"
    );

    airgap(&dir, &["keygen", "-o", "other"]).success();
    let fingerprint = airgap(&dir, &["key", "fingerprint", "ops.pub.pem"])
        .success()
        .stdout;
    // `sha256sum`-like: the fingerprint, then the file.
    let fingerprint = fingerprint.split_whitespace().next().unwrap();
    assert!(fingerprint.starts_with("sha256:"), "{fingerprint}");
    let inspected = |key: &str| {
        airgap(&dir, &["inspect", "b.zst", "--key", key])
            .success()
            .stdout
    };
    let text = inspected("ops.pub.pem");
    assert!(
        text.contains(&format!("signer:   {fingerprint} (trusted here")),
        "{text}"
    );
    let text = inspected("other.pub.pem");
    assert!(
        text.contains(&format!("signer:   {fingerprint} (not trusted here)")),
        "{text}"
    );

    let run = airgap(
        &dir,
        &["verify", "b.zst", "--key", "other.pub.pem", "--json"],
    )
    .failure(4);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["verified"], false);
    let failed: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["signature"]);
    // A refused report still says who signed it.
    assert_eq!(report["signer"].as_str(), Some(fingerprint));
}

/// Packs the application fixtures from `host` into `output`, signed with ops.pem.
fn pack_apps(host: &str, dir: &Path, output: &str, extra: &[&str]) -> crate::support::cmd::Run {
    let tags = app_tags();
    let mut args = vec![
        "--host", host, "pack", "-q", "--key", "ops.pem", "-o", output,
    ];
    args.extend(extra);
    args.extend(tags.iter().map(String::as_str));
    airgap(dir, &args)
}

/// The bundle (1.1 MB) does not fit, nor do the layers the export stages
/// beside it; read in place, nothing is staged.
#[test]
fn a_pack_onto_a_too_small_filesystem_fails_cleanly_leaving_nothing() {
    let (_lock, [connected]) = engines!("a-connected");
    fixtures::ensure(&connected);
    let (_dir, dir) = workdir_with_keys();
    for extra in [&[][..], &["--engine-export"]] {
        let disk = SmallDisk::mount(1);
        let output = disk.dir.path().join("shop.zst");
        let run = pack_apps(&connected.host, &dir, output.to_str().unwrap(), extra).failure(1);
        assert!(run.stderr.contains("space"), "{extra:?}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        let left: Vec<_> = fs::read_dir(disk.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{extra:?}: left behind: {left:?}");
    }
}

/// Ctrl-C at any moment of a pack, split or not, leaves no temporary file
/// and no partial bundle: only what was there before.
#[test]
fn a_pack_interrupted_at_any_point_leaves_nothing_behind() {
    let (_dir, dir) = workdir_with_keys();
    // Incompressible, so that a high level keeps pack busy for a second or two.
    let layer = synthetic::layer("noise", synthetic::noise(32 << 20));
    let image = synthetic::Image::new("noise/app:1", vec![layer]);
    fs::write(dir.join("save.tar"), synthetic::legacy_archive(&[image])).unwrap();
    fs::create_dir(dir.join("out")).unwrap();
    let before = listing(&dir.join("out"));
    for split in [None, Some("4M")] {
        let mut args = vec![
            "pack",
            "-q",
            "--archive",
            "save.tar",
            "--level",
            "15",
            "--key",
            "ops.pem",
            "-o",
            "out/noise.zst",
            "noise/app:1",
        ];
        if let Some(size) = split {
            args.extend(["--split", size]);
        }
        let started = std::time::Instant::now();
        airgap(&dir, &args).success();
        let whole = started.elapsed();
        for entry in fs::read_dir(dir.join("out")).unwrap() {
            fs::remove_file(entry.unwrap().path()).unwrap();
        }
        for tenth in 1..10 {
            let mut child = Command::new(env!("CARGO_BIN_EXE_airgap"))
                .args(&args)
                .current_dir(&dir)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(whole * tenth / 10);
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            child.wait().unwrap();
            let after = listing(&dir.join("out"));
            let moment = format!("split {split:?}, at {tenth}/10 of {whole:?}: {after:?}");
            assert!(after.iter().all(|f| !f.starts_with('.')), "{moment}");
            if after != before {
                // The signal came after the last rename: the bundle is whole.
                airgap(
                    &dir,
                    &["verify", "-q", "out/noise.zst", "--key", "ops.pub.pem"],
                )
                .success();
                for entry in fs::read_dir(dir.join("out")).unwrap() {
                    fs::remove_file(entry.unwrap().path()).unwrap();
                }
            }
        }
    }
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Standard input staged onto a disk too small for it: a clear error, the
/// staging area cleaned up, and nothing reaches the engine.
#[test]
fn an_unpack_from_stdin_onto_a_too_small_staging_disk_fails_cleanly() {
    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    fixtures::ensure(&connected);
    offline.wipe();
    let (_dir, dir) = workdir_with_keys();
    pack_apps(&connected.host, &dir, "shop.zst", &[]).success();
    let disk = SmallDisk::mount(1);
    let bundle = fs::File::open(dir.join("shop.zst")).unwrap();
    assert!(bundle.metadata().unwrap().len() > 1 << 20);
    let run = Command::new(env!("CARGO_BIN_EXE_airgap"))
        .args([
            "--host",
            &offline.host,
            "unpack",
            "-q",
            "-",
            "--key",
            "ops.pub.pem",
            "--staging-dir",
            disk.dir.path().to_str().unwrap(),
        ])
        .current_dir(&dir)
        .env("AIRGAP_STATE_DIR", dir.join("state"))
        .stdin(bundle)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("space"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(listing(disk.dir.path()).is_empty());
    assert!(offline.image_ids().is_empty());
}
