//! `unpack --to containerd…` and `inventory --from containerd…` against a
//! containerd each test starts for itself (2.x, and bookworm's 1.6 where
//! its ctr behaves differently): full names, the pin label, the bundle's
//! config and diff IDs, a container that runs, a delta that builds on the
//! node's own layers or is refused with exit 8.

use std::path::Path;

use crate::engines;
use crate::support::cmd::{
    Run, airgap, airgap_clean_env, bundle_entries, bundle_manifest, workdir_with_keys,
};
use crate::support::containerd::{TestContainerd, Version};
use crate::support::engine::TestEngine;
use crate::support::fixtures;

const NAMESPACE: &str = "k8s.io";
const PIN: &str = "io.cri-containerd.pinned=pinned";
const TAGS: [&str; 3] = ["fixture/web:1", "fixture/worker:1", "fixture/worker:latest"];

fn pack(from: &TestEngine, dir: &Path, images: &[&str], output: &str, extra: &[&str]) {
    let mut args = vec![
        "--host", &from.host, "pack", "-q", "-o", output, "--key", "ops.pem",
    ];
    args.extend(images);
    args.extend(extra);
    airgap(dir, &args).success();
}

/// airgap with the node's ctr first on PATH and the test run's state dir.
fn airgap_on(node: &TestContainerd, dir: &Path, args: &[&str]) -> Run {
    airgap_clean_env(
        dir,
        args,
        &[
            ("PATH".into(), node.path()),
            (
                "AIRGAP_STATE_DIR".into(),
                crate::support::cmd::state_dir().display().to_string(),
            ),
        ],
    )
}

fn unpack(node: &TestContainerd, dir: &Path, bundle: &str, extra: &[&str]) -> Run {
    let to = node.address(NAMESPACE);
    let mut args = vec!["unpack", "-q", bundle, "--key", "ops.pub.pem", "--to", &to];
    args.extend(extra);
    airgap_on(node, dir, &args)
}

fn output_of(tag: &str) -> String {
    fixtures::fixtures()
        .into_iter()
        .find(|f| f.tags.iter().any(|t| t == tag))
        .unwrap()
        .output
}

/// Every tag arrived under its full name, pinned, as exactly the source's image.
fn assert_arrived(node: &TestContainerd, connected: &TestEngine, tags: &[&str], prefix: &str) {
    let images = node.images(NAMESPACE);
    for tag in tags {
        let full = format!("{prefix}{tag}");
        let (_, _, labels) = images
            .iter()
            .find(|(name, _, _)| *name == full)
            .unwrap_or_else(|| panic!("{full} is not on the node: {images:?}"));
        assert!(labels.contains(PIN), "{full} is not pinned: {labels}");
        let (config, layers) = node.config_and_layers(NAMESPACE, &full).unwrap();
        let (id, source_layers) = connected.inspect(tag).unwrap();
        assert_eq!(config, id, "{full}: config digest");
        assert_eq!(layers, source_layers, "{full}: diff IDs");
    }
}

fn unpack_pins_full_names_and_runs(version: Version) {
    let (_engines, [connected]) = engines!("a-connected");
    let Some(node) = TestContainerd::start(version) else {
        return;
    };
    fixtures::ensure(&connected);
    let (_keep, dir) = workdir_with_keys();
    pack(&connected, &dir, &TAGS, "apps.zst", &[]);

    unpack(&node, &dir, "apps.zst", &[]).success();
    assert_arrived(&node, &connected, &TAGS, "docker.io/");
    let printed = node.ctr(
        NAMESPACE,
        &["run", "--rm", "docker.io/fixture/web:1", "airgap-web"],
    );
    assert_eq!(printed.trim(), output_of("fixture/web:1"));

    // Again: nothing imported twice, the names stay.
    let again = unpack(&node, &dir, "apps.zst", &[]).success();
    assert!(
        again.stdout.contains("already present"),
        "second unpack: {}",
        again.stdout
    );
    // --prefix applies: the same images under a mirror's names, pinned too.
    unpack(&node, &dir, "apps.zst", &["--prefix", "mirror.local/ops"]).success();
    assert_arrived(&node, &connected, &TAGS, "mirror.local/ops/");
}

#[test]
fn unpack_into_containerd_2_pins_full_names_and_runs() {
    unpack_pins_full_names_and_runs(Version::Two);
}

#[test]
fn unpack_into_containerd_1_6_pins_full_names_and_runs() {
    unpack_pins_full_names_and_runs(Version::OneSix);
}

#[test]
fn a_delta_builds_on_the_nodes_own_layers_or_is_refused_with_exit_8() {
    let (_engines, [connected]) = engines!("a-connected");
    let Some(node) = TestContainerd::start(Version::Two) else {
        return;
    };
    let Some(bare) = TestContainerd::start(Version::Two) else {
        return;
    };
    fixtures::ensure(&connected);
    let (_keep, dir) = workdir_with_keys();
    pack(&connected, &dir, &["fixture/base:1"], "base.zst", &[]);
    unpack(&node, &dir, "base.zst", &[]).success();

    let from = node.address(NAMESPACE);
    airgap_on(
        &node,
        &dir,
        &["inventory", "--from", &from, "--output", "have.json"],
    )
    .success();
    let inventory: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("have.json")).unwrap()).unwrap();
    let (_, base_layers) = connected.inspect("fixture/base:1").unwrap();
    let listed = &inventory["images"][0];
    assert_eq!(listed["tags"][0], "docker.io/fixture/base:1", "{inventory}");
    assert_eq!(listed["layers"][0], base_layers[0].as_str(), "{inventory}");
    let carried = bundle_manifest(&dir.join("base.zst"));
    for layer in carried["images"][0]["layers"].as_array().unwrap() {
        assert_eq!(
            inventory["layerSizes"][layer["digest"].as_str().unwrap()],
            layer["size"],
            "the node's uncompressed blobs tell each layer's size: {inventory}"
        );
    }

    pack(
        &connected,
        &dir,
        &["fixture/web:1"],
        "delta.zst",
        &["--have", "have.json", "--no-patch"],
    );
    let base_blob = format!("blobs/sha256/{}", &base_layers[0]["sha256:".len()..]);
    assert!(
        !bundle_entries(&dir.join("delta.zst")).contains(&base_blob),
        "the delta leaves the base layer out"
    );

    let refused = unpack(&bare, &dir, "delta.zst", &[]).failure(8);
    let short = &base_layers[0]["sha256:".len().."sha256:".len() + 12];
    assert!(
        refused.stderr.contains(short),
        "the refusal names the missing layer {short}: {}",
        refused.stderr
    );
    assert!(
        bare.images(NAMESPACE).is_empty(),
        "nothing imported: {:?}",
        bare.images(NAMESPACE)
    );

    unpack(&node, &dir, "delta.zst", &[]).success();
    assert_arrived(&node, &connected, &["fixture/web:1"], "docker.io/");
    let printed = node.ctr(
        NAMESPACE,
        &["run", "--rm", "docker.io/fixture/web:1", "airgap-delta"],
    );
    assert_eq!(printed.trim(), output_of("fixture/web:1"));
}

#[test]
fn malformed_containerd_addresses_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    for to in ["containerd://relative.sock", "containerd?colour=blue"] {
        let run = airgap(dir.path(), &["unpack", "x.zst", "--to", to]).failure(2);
        assert!(run.stderr.contains("containerd"), "{to}: {}", run.stderr);
    }
}

#[test]
fn an_absent_socket_is_an_engine_failure_naming_it() {
    let (_keep, dir) = workdir_with_keys();
    // A real bundle: a file that is none is named before any target is reached.
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/bundles/v1.4-minimal.zst"
        ),
        dir.join("b.zst"),
    )
    .unwrap();
    let socket = dir.join("absent.sock");
    let to = format!("containerd://{}", socket.display());
    let run = airgap(&dir, &["inventory", "--from", &to]).failure(5);
    assert!(
        run.stderr.contains(&socket.display().to_string()) && run.stderr.contains("does not exist"),
        "{}",
        run.stderr
    );
    let key = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/bundles/v1.4-signer.pub.pem"
    );
    let run = airgap(&dir, &["unpack", "b.zst", "--key", key, "--to", &to]).failure(5);
    assert!(run.stderr.contains("does not exist"), "{}", run.stderr);
}

#[test]
fn a_2_x_ctr_imports_into_a_1_6_containerd() {
    let (_engines, [connected]) = engines!("a-connected");
    let Some(node) = TestContainerd::start(Version::OneSix) else {
        return;
    };
    fixtures::ensure(&connected);
    let (_keep, dir) = workdir_with_keys();
    pack(&connected, &dir, &["fixture/web:1"], "web.zst", &[]);
    // containerd 1.6 lacks the transfer service a 2.x ctr imports through by default.
    let to = node.address(NAMESPACE);
    airgap_clean_env(
        &dir,
        &[
            "unpack",
            "-q",
            "web.zst",
            "--key",
            "ops.pub.pem",
            "--to",
            &to,
        ],
        &[
            ("PATH".into(), node.path_with_ctr_of(Version::Two)),
            (
                "AIRGAP_STATE_DIR".into(),
                crate::support::cmd::state_dir().display().to_string(),
            ),
        ],
    )
    .success();
    assert_arrived(&node, &connected, &["fixture/web:1"], "docker.io/");
}
