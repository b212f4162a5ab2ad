//! Updates that ship only what the site lacks: inventory → delta → unpack,
//! on each kind of engine, and a delta refused where its base is missing.

use std::collections::BTreeSet;
use std::path::Path;

use crate::engines;
use crate::support::cmd::{airgap, bundle_entries, workdir_with_keys};
use crate::support::engine::TestEngine;
use crate::support::fixtures;

const V1: [&str; 3] = ["fixture/app:1", "fixture/web:1", "fixture/worker:1"];
const V2: [&str; 3] = ["fixture/app:2", "fixture/web:1", "fixture/worker:1"];

fn pack(from: &TestEngine, dir: &Path, images: &[&str], output: &str, extra: &[&str]) {
    let mut args = vec![
        "--host", &from.host, "pack", "-q", "-o", output, "--key", "ops.pem",
    ];
    args.extend(images);
    args.extend(extra);
    airgap(dir, &args).success();
}

fn unpack(into: &TestEngine, dir: &Path, bundle: &str) -> crate::support::cmd::Run {
    crate::support::cmd::unpack_into(dir, &into.host, bundle, &[])
}

/// Layer blobs a bundle carries (blob entries that are not configs or manifests).
fn carried_layers(dir: &Path, bundle: &str) -> BTreeSet<String> {
    let manifest = airgap::verify::read_head(&dir.join(bundle))
        .unwrap()
        .manifest;
    let layers: BTreeSet<String> = manifest
        .images
        .iter()
        .flat_map(|i| &i.layers)
        .map(|l| l.digest.blob_path())
        .collect();
    bundle_entries(&dir.join(bundle))
        .into_iter()
        .filter(|e| layers.contains(e))
        .collect()
}

fn top_layer(engine: &TestEngine, image: &str) -> String {
    let (_, layers) = engine.inspect(image).unwrap();
    format!(
        "blobs/sha256/{}",
        layers.last().unwrap().trim_start_matches("sha256:")
    )
}

/// Same config and layers as on the connected engine (IDs differ on containerd stores).
fn assert_same_image(target: &TestEngine, connected: &TestEngine, image: &str) {
    let (id, layers) = connected.inspect(image).unwrap();
    let (_, target_layers) = target
        .inspect(image)
        .unwrap_or_else(|| panic!("{image} missing on {}", target.name));
    assert_eq!(target_layers, layers, "{image} on {}", target.name);
    assert_eq!(
        target.config_digest(image),
        id,
        "{image} on {}",
        target.name
    );
}

fn delta_round_trip(connected: &TestEngine, target: &TestEngine) {
    fixtures::ensure(connected);
    target.wipe();
    let (_dir, dir) = workdir_with_keys();
    pack(connected, &dir, &V1, "v1.zst", &[]);
    unpack(target, &dir, "v1.zst").success();
    airgap(
        &dir,
        &["--host", &target.host, "inventory", "--output", "have.json"],
    )
    .success();

    pack(connected, &dir, &V2, "full.zst", &[]);
    pack(
        connected,
        &dir,
        &V2,
        "delta.zst",
        &["--have", "have.json", "--no-patch"],
    );
    pack(
        connected,
        &dir,
        &V2,
        "since.zst",
        &["--since", "v1.zst", "--no-patch"],
    );
    let changed = BTreeSet::from([top_layer(connected, "fixture/app:2")]);
    assert_eq!(
        carried_layers(&dir, "delta.zst"),
        changed,
        "the delta carries only the changed layer"
    );
    assert_eq!(carried_layers(&dir, "since.zst"), changed);
    let size = |name: &str| std::fs::metadata(dir.join(name)).unwrap().len();
    assert!(
        size("delta.zst") * 5 < size("full.zst"),
        "delta {} vs full {}",
        size("delta.zst"),
        size("full.zst")
    );
    let inspect = airgap(&dir, &["inspect", "delta.zst"]).success().stdout;
    assert!(
        inspect.contains("(delta)") && inspect.contains("required on the target"),
        "{inspect}"
    );

    // The same update with the changed layer as a patch against app:1's.
    pack(connected, &dir, &V2, "patch.zst", &["--have", "have.json"]);
    assert_one_small_patch(&dir, "patch.zst", connected);

    let run = unpack(target, &dir, "patch.zst").success();
    assert!(
        run.stdout.contains("loaded fixture/app:2"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("already present fixture/web:1"),
        "{}",
        run.stdout
    );
    for image in V2 {
        assert_same_image(target, connected, image);
    }
    assert_eq!(target.run("fixture/app:2"), "airgap fixture: app 2");

    // The unpatched delta yields the same images (here: all already present).
    unpack(target, &dir, "delta.zst").success();
    assert_same_image(target, connected, "fixture/app:2");
}

/// The bundle carries no layer but one patch of a few kilobytes, for the
/// changed app layer, against app:1's layer.
fn assert_one_small_patch(dir: &Path, bundle: &str, connected: &TestEngine) {
    let manifest = airgap::verify::read_head(&dir.join(bundle))
        .unwrap()
        .manifest;
    assert!(
        carried_layers(dir, bundle).is_empty(),
        "{:?}",
        carried_layers(dir, bundle)
    );
    assert_eq!(manifest.patches.len(), 1, "{:?}", manifest.patches);
    let patch = &manifest.patches[0];
    assert_eq!(
        patch.layer.digest.blob_path(),
        top_layer(connected, "fixture/app:2")
    );
    assert_eq!(
        patch.base.digest.blob_path(),
        top_layer(connected, "fixture/app:1")
    );
    let entry = manifest
        .entries
        .iter()
        .find(|e| e.path == patch.entry)
        .unwrap();
    assert!(
        entry.size < 4096,
        "a one-line change shipped as a {}-byte patch",
        entry.size
    );
    assert!(patch.layer.size > 1_000_000);
}

#[test]
fn a_delta_updates_a_docker_20_10_site() {
    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    delta_round_trip(&connected, &offline);
}

#[test]
fn a_delta_updates_a_containerd_store_site_by_rebuilding_left_out_layers() {
    let (_lock, [connected, b]) = engines!("a-connected", "b");
    delta_round_trip(&connected, &b);
}

#[test]
fn a_delta_updates_a_podman_site_by_rebuilding_left_out_layers() {
    let (_lock, [connected, podman]) = engines!("a-connected", "podman");
    delta_round_trip(&connected, &podman);
}

#[test]
fn a_delta_on_a_site_without_its_base_is_refused_and_loads_nothing() {
    let (_lock, [connected, offline, containerd, podman]) =
        engines!("a-connected", "a-offline", "b", "podman");
    fixtures::ensure(&connected);
    let (_dir, dir) = workdir_with_keys();
    pack(&connected, &dir, &V1, "v1.zst", &[]);
    pack(&connected, &dir, &V2, "delta.zst", &["--since", "v1.zst"]);
    let required = airgap::verify::read_head(&dir.join("delta.zst"))
        .unwrap()
        .manifest
        .required;
    assert!(!required.is_empty());
    for site in [&offline, &containerd, &podman] {
        site.wipe();
        let run = unpack(site, &dir, "delta.zst").failure(8);
        assert!(
            run.stderr.contains("lacks the layers") && run.stderr.contains("fixture/app:2"),
            "{}: {}",
            site.host,
            run.stderr
        );
        for blob in &required {
            assert!(
                run.stderr.contains(blob.digest.short()),
                "{}: {} not named in {}",
                site.host,
                blob.digest,
                run.stderr
            );
        }
        assert!(site.image_ids().is_empty(), "{}", site.host);
    }
}

/// With the old image gone from the connected engine, the patch reference
/// comes from the earlier bundle named with --since.
#[test]
fn a_patch_can_be_made_against_a_layer_of_an_earlier_bundle() {
    patch_against_earlier_bundle(&[]);
}

/// The same, with the earlier bundle in parts: `--since` names it as
/// unpack would, and its layers are read across the parts.
#[test]
fn a_patch_can_be_made_against_a_layer_of_an_earlier_split_bundle() {
    patch_against_earlier_bundle(&["--split", "256K"]);
}

fn patch_against_earlier_bundle(earlier: &[&str]) {
    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    fixtures::ensure(&connected);
    offline.wipe();
    let (_dir, dir) = workdir_with_keys();
    pack(&connected, &dir, &V1, "v1.zst", earlier);
    if !earlier.is_empty() {
        assert!(
            dir.join("v1.zst.002").is_file(),
            "the earlier bundle is in parts"
        );
    }
    let expected_base = top_layer(&connected, "fixture/app:1");
    connected.docker(&["rmi", "fixture/app:1"]);
    pack(&connected, &dir, &V2, "patch.zst", &["--since", "v1.zst"]);
    let manifest = airgap::verify::read_head(&dir.join("patch.zst"))
        .unwrap()
        .manifest;
    assert_eq!(manifest.patches.len(), 1);
    assert_eq!(manifest.patches[0].base.digest.blob_path(), expected_base);

    unpack(&offline, &dir, "v1.zst").success();
    unpack(&offline, &dir, "patch.zst").success();
    assert_same_image(&offline, &connected, "fixture/app:2");
    // Put the fixture back for the other tests.
    fixtures::rebuild(&connected);
}

/// An unpack cut short at any point (Ctrl-C) finishes when run again, and
/// one that finds some images already there loads only the others.
#[test]
fn an_interrupted_unpack_finishes_on_rerun() {
    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    fixtures::ensure(&connected);
    let (_dir, dir) = workdir_with_keys();
    let all = [
        "fixture/app:1",
        "fixture/app:2",
        "fixture/web:1",
        "fixture/worker:1",
        "fixture/api:1",
    ];
    pack(&connected, &dir, &all, "all.zst", &[]);
    for delay in [50, 300, 700, 1200] {
        offline.wipe();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_airgap"))
            .args([
                "--host",
                &offline.host,
                "unpack",
                "-q",
                "all.zst",
                "--key",
                "ops.pub.pem",
            ])
            .current_dir(&dir)
            // The rerun below must find the record this run leaves.
            .env("AIRGAP_STATE_DIR", crate::support::cmd::state_dir())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay));
        let _ = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        child.wait().unwrap();
        let run = airgap(
            &dir,
            &[
                "--host",
                &offline.host,
                "unpack",
                "-q",
                "all.zst",
                "--key",
                "ops.pub.pem",
            ],
        )
        .success();
        for image in all {
            assert_same_image(&offline, &connected, image);
            assert!(run.stdout.contains(image), "{}", run.stdout);
        }
    }
    // A site that already has some of the images gets only the others.
    offline.wipe();
    pack(&connected, &dir, &all[..2], "some.zst", &[]);
    unpack(&offline, &dir, "some.zst").success();
    let run = unpack(&offline, &dir, "all.zst").success();
    assert!(
        run.stdout.contains("already present fixture/app:1")
            && run.stdout.contains("loaded fixture/web:1"),
        "{}",
        run.stdout
    );
}
