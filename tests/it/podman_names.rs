//! Podman as a full sink and source under its own naming: a docker load
//! stream's images arrive there as `localhost/NAME`, and a short name
//! resolves to `localhost/NAME` first. After unpack the bundle's references
//! resolve as written, short and full (`docker.io/…`); pack from Podman
//! takes `localhost/x:1` and its short spelling `x:1`, saying that the
//! short one arrives as written.

use crate::engines;
use crate::support::cmd::{airgap, unpack_into, workdir_with_keys};
use crate::support::engine::TestEngine;
use crate::support::fixtures;

fn assert_same(target: &TestEngine, written: &str, source: &TestEngine, original: &str) {
    let (id, layers) = target
        .inspect(written)
        .unwrap_or_else(|| panic!("{written}: No such image on {}", target.name));
    let (source_id, source_layers) = source.inspect(original).unwrap();
    assert_eq!(id, source_id, "{written} on {}", target.name);
    assert_eq!(layers, source_layers, "{written} on {}", target.name);
}

fn output_of(tag: &str) -> String {
    fixtures::fixtures()
        .into_iter()
        .find(|f| f.tags.iter().any(|t| t == tag))
        .unwrap()
        .output
}

#[test]
fn after_unpack_into_podman_the_bundles_references_resolve_as_written() {
    let (_engines, [connected, podman]) = engines!("a-connected", "podman");
    fixtures::ensure(&connected);
    connected.docker(&["tag", "fixture/web:1", "ux/web:1.0"]);
    let (_keep, dir) = workdir_with_keys();
    airgap(
        &dir,
        &[
            "--host",
            &connected.host,
            "pack",
            "-q",
            "-o",
            "ux.zst",
            "--key",
            "ops.pem",
            "ux/web:1.0",
            "fixture/worker:1",
        ],
    )
    .success();
    connected.docker(&["rmi", "ux/web:1.0"]);
    podman.wipe();
    for _ in 0..2 {
        unpack_into(&dir, &podman.host, "ux.zst", &[]).success();
        for (written, original) in [
            ("docker.io/ux/web:1.0", "fixture/web:1"),
            ("ux/web:1.0", "fixture/web:1"),
            ("docker.io/fixture/worker:1", "fixture/worker:1"),
            ("fixture/worker:1", "fixture/worker:1"),
        ] {
            assert_same(&podman, written, &connected, original);
        }
    }
    assert_eq!(
        podman.run("docker.io/ux/web:1.0"),
        output_of("fixture/web:1")
    );
}

#[test]
fn pack_from_podman_takes_localhost_names_in_both_spellings() {
    let (_engines, [podman, offline]) = engines!("podman", "a-offline");
    fixtures::ensure(&podman);
    podman.docker(&["tag", "fixture/web:1", "localhost/ux/lw:1"]);
    podman.docker(&["tag", "fixture/worker:1", "localhost/ux/lk:1"]);
    let (_keep, dir) = workdir_with_keys();
    let packed = airgap(
        &dir,
        &[
            "--host",
            &podman.host,
            "pack",
            "-q",
            "-o",
            "local.zst",
            "--key",
            "ops.pem",
            "localhost/ux/lw:1",
            "ux/lk:1",
        ],
    )
    .success();
    // The short name is said to be Podman's local image, arriving as written.
    assert!(
        packed.stderr.contains(
            "note: ux/lk:1 is Podman's localhost/ux/lk:1; it arrives as ux/lk:1 (docker.io/ux/lk:1)"
        ),
        "{}",
        packed.stderr
    );
    assert_eq!(
        packed.stderr.matches("note:").count(),
        1,
        "{}",
        packed.stderr
    );
    offline.wipe();
    unpack_into(&dir, &offline.host, "local.zst", &[]).success();
    assert_same(&offline, "localhost/ux/lw:1", &podman, "localhost/ux/lw:1");
    assert_same(&offline, "ux/lk:1", &podman, "localhost/ux/lk:1");
    podman.docker(&["rmi", "localhost/ux/lw:1", "localhost/ux/lk:1"]);
}
