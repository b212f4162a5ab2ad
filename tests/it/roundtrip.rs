//! Pack on one engine, unpack on another: same images, same tags, and they run.

use std::path::Path;
use std::process::Command;

use crate::engines;
use crate::support::cmd::{airgap, bundle_entries, unpack_into, workdir_with_keys};
use crate::support::engine::TestEngine;
use crate::support::fixtures::{self, app_tags};

fn pack(from: &TestEngine, dir: &Path, tags: &[String]) {
    let mut args = vec!["--host", &from.host, "pack", "--quiet"];
    args.extend(tags.iter().map(String::as_str));
    args.extend(["--output", "shop.zst", "--key", "ops.pem"]);
    airgap(dir, &args).success();
}

fn unpack(into: &TestEngine, dir: &Path) -> String {
    unpack_into(dir, &into.host, "shop.zst", &[])
        .success()
        .stdout
}

/// Every fixture runs on `engine` and prints its line.
fn assert_fixtures_run(engine: &TestEngine) {
    for fixture in fixtures::fixtures().into_iter().skip(1) {
        for tag in &fixture.tags {
            assert_eq!(engine.run(tag), fixture.output, "{tag} on {}", engine.name);
        }
    }
}

#[test]
fn a_to_a_keeps_image_ids_diff_ids_and_tags_and_stores_the_base_once() {
    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    fixtures::ensure(&connected);
    offline.wipe();
    let (_dir, dir) = workdir_with_keys();
    let tags = app_tags();
    assert!(tags.len() >= 4);
    pack(&connected, &dir, &tags);

    // The base layer all fixtures share is one entry, not one per image.
    let (_, base_layers) = connected.inspect("fixture/base:1").unwrap();
    let base_entry = format!(
        "blobs/sha256/{}",
        base_layers[0].trim_start_matches("sha256:")
    );
    let entries = bundle_entries(&dir.join("shop.zst"));
    assert_eq!(
        entries.iter().filter(|e| **e == base_entry).count(),
        1,
        "{entries:?}"
    );
    assert_eq!(entries[0], "airgap/manifest.json");
    assert_eq!(entries[1], "airgap/manifest.json.sig");

    let report = unpack(&offline, &dir);
    for tag in &tags {
        assert!(
            report.contains(tag.as_str()),
            "{tag} not reported: {report}"
        );
        let expected = connected.inspect(tag).unwrap();
        assert_eq!(offline.inspect(tag), Some(expected), "{tag}");
    }
    assert_fixtures_run(&offline);
}

#[test]
fn a_to_b_keeps_configs_diff_ids_and_tags() {
    let (_lock, [connected, b]) = engines!("a-connected", "b");
    fixtures::ensure(&connected);
    b.wipe();
    let (_dir, dir) = workdir_with_keys();
    let tags = app_tags();
    pack(&connected, &dir, &tags);
    unpack(&b, &dir);
    for tag in &tags {
        let (a_id, a_layers) = connected.inspect(tag).unwrap();
        let (_, b_layers) = b
            .inspect(tag)
            .unwrap_or_else(|| panic!("{tag} missing on b"));
        assert_eq!(b_layers, a_layers, "{tag}");
        assert_eq!(b.config_digest(tag), a_id, "{tag}");
    }
    assert_fixtures_run(&b);
}

#[test]
fn b_to_a_keeps_configs_diff_ids_and_tags() {
    let (_lock, [b, offline]) = engines!("b", "a-offline");
    // b may hold images loaded by another test; build its own fixtures.
    fixtures::rebuild(&b);
    offline.wipe();
    let (_dir, dir) = workdir_with_keys();
    let tags = app_tags();
    pack(&b, &dir, &tags);
    unpack(&offline, &dir);
    for tag in &tags {
        let (_, b_layers) = b.inspect(tag).unwrap();
        let (a_id, a_layers) = offline
            .inspect(tag)
            .unwrap_or_else(|| panic!("{tag} missing on a-offline"));
        assert_eq!(a_layers, b_layers, "{tag}");
        assert_eq!(a_id, b.config_digest(tag), "{tag}");
    }
    assert_fixtures_run(&offline);
}

#[test]
fn unpacking_again_loads_nothing_and_keeps_everything() {
    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    fixtures::ensure(&connected);
    offline.wipe();
    let (_dir, dir) = workdir_with_keys();
    pack(&connected, &dir, &app_tags());
    unpack(&offline, &dir);
    let before = offline.image_ids();
    let again = unpack(&offline, &dir);
    assert!(!again.contains("\nloaded "), "{again}");
    assert!(again.contains("already present"), "{again}");
    assert_eq!(offline.image_ids(), before);
}

#[test]
fn plain_zstd_and_docker_load_read_the_bundle_without_airgap() {
    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    fixtures::ensure(&connected);
    offline.wipe();
    let (_dir, dir) = workdir_with_keys();
    let tags = app_tags();
    pack(&connected, &dir, &tags);

    let script = format!("zstd -dc shop.zst | docker -H '{}' load", offline.host);
    let output = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for tag in &tags {
        assert_eq!(offline.inspect(tag), connected.inspect(tag), "{tag}");
    }
    assert_fixtures_run(&offline);
}

#[test]
fn skopeo_reads_the_inner_tar_as_an_oci_layout() {
    let (_lock, [connected]) = engines!("a-connected");
    fixtures::ensure(&connected);
    let (_dir, dir) = workdir_with_keys();
    pack(&connected, &dir, &app_tags());
    let script = "mkdir layout && zstd -dc shop.zst | tar -x -C layout";
    assert!(
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(&dir)
            .status()
            .unwrap()
            .success()
    );

    let output = Command::new("skopeo")
        .args(["inspect", "oci:layout:docker.io/fixture/web:1"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let inspected: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let (_, layers) = connected.inspect("fixture/web:1").unwrap();
    let skopeo_layers: Vec<String> = inspected["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(skopeo_layers, layers);
}
