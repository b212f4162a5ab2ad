//! `airgap plan` against an engine, and `pack --pull`.

use crate::engines;
use crate::support::cmd::{airgap, workdir_with_keys};
use crate::support::fixtures;
use crate::support::registry::Registry;

const SHOP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/projects/shop");

#[test]
fn plan_reports_layers_sizes_sharing_and_missing_images() {
    let (_lock, [connected]) = engines!("a-connected");
    fixtures::ensure(&connected);
    let (_dir, dir) = workdir_with_keys();
    let run = airgap(
        &dir,
        &[
            "--host",
            &connected.host,
            "plan",
            SHOP,
            "nosuch/image:1",
            "--json",
        ],
    )
    // The report is printed, then plan fails as pack would (issue 19).
    .failure(6);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let images = report["images"].as_array().unwrap();
    let references: Vec<&str> = images
        .iter()
        .map(|i| i["reference"].as_str().unwrap())
        .collect();
    assert_eq!(
        references,
        [
            "fixture/web:1",
            "fixture/api:1",
            "fixture/worker:latest",
            "nosuch/image:1"
        ]
    );
    assert_eq!(images[0]["services"][0], "web");
    assert_eq!(report["missing"][0], "nosuch/image:1");

    let (_, base) = connected.inspect("fixture/base:1").unwrap();
    let shared = report["sharedLayers"].as_array().unwrap();
    assert_eq!(shared.len(), 1);
    assert_eq!(shared[0]["digest"], base[0].as_str());
    assert_eq!(shared[0]["usedBy"].as_array().unwrap().len(), 3);
    let base_size = shared[0]["size"].as_u64().unwrap();
    let total = report["totalSize"].as_u64().unwrap();
    let deduplicated = report["deduplicatedSize"].as_u64().unwrap();
    assert_eq!(
        total - deduplicated,
        2 * base_size,
        "the base counts once after deduplication"
    );

    let text = airgap(
        &dir,
        &["--host", &connected.host, "plan", SHOP, "nosuch/image:1"],
    )
    .failure(6)
    .stdout;
    assert!(text.contains("nosuch/image:1: MISSING"), "{text}");
    assert!(
        text.contains("used by fixture/web:1, fixture/api:1, fixture/worker:latest"),
        "{text}"
    );
}

#[test]
fn pack_pull_fetches_what_the_engine_lacks_through_the_engine() {
    let (_lock, [connected]) = engines!("a-connected");
    fixtures::ensure(&connected);
    let _registry = Registry::start();
    let tool = "localhost:5000/fixture/tool:1.0";
    let (expected_id, _) = connected.inspect(tool).unwrap();
    connected.docker(&["push", tool]);
    connected.docker(&["rmi", tool]);
    assert!(connected.inspect(tool).is_none());

    let (_dir, dir) = workdir_with_keys();
    let pack = [
        "--host",
        &connected.host,
        "pack",
        "-q",
        tool,
        "fixture/web:1",
        "-o",
        "b.zst",
        "--key",
        "ops.pem",
    ];
    let run = airgap(&dir, &pack).failure(6);
    assert!(run.stderr.contains(tool), "{}", run.stderr);
    let run = airgap(&dir, &[&pack[..], &["--pull"]].concat()).success();
    assert!(
        run.stderr.contains(&format!("pulled {tool}")),
        "{}",
        run.stderr
    );
    assert_eq!(connected.inspect(tool).unwrap().0, expected_id);
    let run = airgap(
        &dir,
        &[
            "--host",
            &connected.host,
            "pack",
            "-q",
            "localhost:5000/fixture/nothere:1",
            "--pull",
            "-o",
            "c.zst",
            "--unsigned",
        ],
    );
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(!dir.join("c.zst").exists());
}
