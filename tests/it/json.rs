//! `--json` documents (docs/JSON.md), `-v` logging and "say what changed"
//! (issue 19): each document parses and holds the real values; unpack
//! reports what it loaded, what was there and the tags it moved.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::engines;
use crate::support::cmd::{airgap, workdir_with_keys};
use crate::support::engine::TestEngine;
use crate::support::fixtures;
use crate::support::synthetic::{self, Image, digest, layer};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/bundles");

/// stdout as one JSON document of `schema` (anything else on stdout fails
/// the parse).
#[track_caller]
fn document(stdout: &str, schema: &str) -> Value {
    let value: Value = serde_json::from_str(stdout)
        .unwrap_or_else(|e| panic!("not one JSON document ({e}):\n{stdout}"));
    assert_eq!(value["schema"], schema, "{stdout}");
    value
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

#[test]
fn inspect_and_verify_documents_hold_the_bundles_values() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = format!("{GOLDEN}/v1.1-minimal.zst");
    let key = format!("{GOLDEN}/v1.1-signer.pub.pem");
    let manifest = airgap::verify::read_head(Path::new(&bundle))
        .unwrap()
        .manifest;
    let fingerprint = airgap(dir.path(), &["key", "fingerprint", &key])
        .success()
        .stdout;

    let run = airgap(dir.path(), &["inspect", &bundle, "--key", &key, "--json"]).success();
    assert_eq!(run.stderr, "", "--json prints no human text");
    let inspect = document(&run.stdout, "airgap/inspect/1");
    assert_eq!(inspect["formatVersion"], "1.1");
    assert_eq!(inspect["kind"], "full");
    assert_eq!(inspect["signer"]["trust"], "trusted");
    assert!(
        fingerprint.contains(inspect["signer"]["fingerprint"].as_str().unwrap()),
        "{fingerprint}"
    );
    let images = inspect["images"].as_array().unwrap();
    assert_eq!(images.len(), manifest.images.len());
    for (shown, image) in images.iter().zip(&manifest.images) {
        assert_eq!(strings(&shown["refs"]), [image.refs[0].given.as_str()]);
        assert_eq!(shown["config"], image.config.digest.as_str());
        assert_eq!(shown["manifest"], image.manifest.digest.as_str());
        let size: u64 = image.layers.iter().map(|l| l.size).sum();
        assert_eq!(shown["size"], size);
        assert_eq!(
            shown["layers"].as_array().unwrap().len(),
            image.layers.len()
        );
        assert_eq!(
            shown["layers"][0]["digest"],
            image.layers[0].digest.as_str()
        );
    }
    assert_eq!(inspect["sharedLayers"][0]["usedBy"], 2);
    assert_eq!(inspect["compose"]["project"], "golden");
    // Without the key, the same signer is reported as not trusted here.
    let untrusted = airgap(dir.path(), &["inspect", &bundle, "--json"]).success();
    assert_eq!(
        document(&untrusted.stdout, "airgap/inspect/1")["signer"]["trust"],
        "untrusted"
    );

    let run = airgap(dir.path(), &["verify", &bundle, "--key", &key, "--json"]).success();
    assert_eq!(run.stderr, "", "--json prints no human text");
    let verify = document(&run.stdout, "airgap/verify/1");
    assert_eq!(verify["verified"], true);
    assert_eq!(verify["size"], fs::metadata(&bundle).unwrap().len());
    let sha256 = fs::read_to_string(format!("{bundle}.sha256")).unwrap();
    assert_eq!(verify["sha256"], format!("sha256:{}", &sha256[..64]));
    assert_eq!(verify["images"][1]["refs"][0], "golden/app:1");
    assert_eq!(
        verify["images"][1]["config"],
        manifest.images[1].config.digest.as_str()
    );
    assert!(
        verify["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["passed"] == true)
    );
}

#[test]
fn a_refused_verify_still_prints_its_document_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = format!("{GOLDEN}/v1.1-minimal.zst");
    let (_keys, keys) = workdir_with_keys();
    let other = keys.join("ops.pub.pem");
    let run = airgap(
        dir.path(),
        &[
            "verify",
            &bundle,
            "--key",
            other.to_str().unwrap(),
            "--json",
        ],
    )
    .failure(4);
    let verify = document(&run.stdout, "airgap/verify/1");
    assert_eq!(verify["verified"], false);
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
    // inspect and the other commands print no document when they fail.
    let run = airgap(dir.path(), &["inspect", "nosuch.zst", "--json"]).failure(1);
    assert_eq!(run.stdout, "");
}

fn archive_images() -> Vec<Image> {
    vec![
        Image::new("t/base:1", vec![layer("base", "the base")]),
        Image::new(
            "t/app:1",
            vec![layer("base", "the base"), layer("app", "app one")],
        ),
    ]
}

#[test]
fn plan_documents_list_the_archives_images_with_ids_and_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let images = archive_images();
    fs::write(
        dir.path().join("save.tar"),
        synthetic::legacy_archive(&images),
    )
    .unwrap();

    let run = airgap(
        dir.path(),
        &[
            "plan",
            "--archive",
            "save.tar",
            "t/app:1",
            "t/base:1",
            "--json",
        ],
    )
    .success();
    assert_eq!(run.stderr, "", "--json prints no summary");
    let plan = document(&run.stdout, "airgap/plan/1");
    let app = &plan["images"][0];
    assert_eq!(app["reference"], "t/app:1");
    assert_eq!(app["id"], digest(&images[1].config));
    let layers: Vec<&str> = app["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    assert_eq!(
        layers,
        [digest(&images[1].layers[0]), digest(&images[1].layers[1])]
    );
    assert_eq!(
        app["layers"][1]["size"],
        images[1].layers[1].len() as u64,
        "{}",
        run.stdout
    );
    assert_eq!(
        plan["sharedLayers"][0]["digest"],
        digest(&images[0].layers[0])
    );
    assert_eq!(
        plan["totalSize"].as_u64().unwrap() - plan["deduplicatedSize"].as_u64().unwrap(),
        images[0].layers[0].len() as u64
    );

    let run = airgap(dir.path(), &["plan", "--archive", "save.tar", "--json"]).success();
    let catalogue = document(&run.stdout, "airgap/plan-archive/1");
    let ids: Vec<&str> = catalogue["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&digest(&images[1].config).as_str()), "{ids:?}");

    // Human output ends with one summary line, on stderr, unless -q.
    let run = airgap(dir.path(), &["plan", "--archive", "save.tar", "t/app:1"]).success();
    let summary: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("summary: "))
        .collect();
    assert_eq!(summary.len(), 1, "{}", run.stderr);
    assert!(summary[0].contains("1 image, 2 layers"), "{}", summary[0]);
    let run = airgap(
        dir.path(),
        &["plan", "-q", "--archive", "save.tar", "t/app:1"],
    )
    .success();
    assert!(!run.stderr.contains("summary: "), "{}", run.stderr);
}

#[test]
fn verbose_pack_logs_the_layer_a_delta_leaves_out_and_is_silent_without_v() {
    let (_lock, [connected]) = engines!("a-connected");
    fixtures::ensure(&connected);
    let (_dir, dir) = workdir_with_keys();
    let pack = |extra: &[&str], image: &str, output: &str| {
        let mut args = vec![
            "--host",
            &connected.host,
            "pack",
            "-o",
            output,
            "--key",
            "ops.pem",
            image,
        ];
        args.extend(extra);
        airgap(&dir, &args).success()
    };
    pack(&["-q"], "fixture/app:1", "v1.zst");

    let (_, layers) = connected.inspect("fixture/app:2").unwrap();
    let base_short = &layers[0]["sha256:".len()..][..12];
    let quiet = pack(
        &["-q", "--since", "v1.zst", "--no-patch"],
        "fixture/app:2",
        "d1.zst",
    );
    assert_eq!(quiet.stderr, "", "-q without -v prints nothing on stderr");
    let plain = pack(
        &["--since", "v1.zst", "--no-patch"],
        "fixture/app:2",
        "d2.zst",
    );
    assert!(
        !plain.stderr.contains("INFO") && !plain.stderr.contains("left out:"),
        "no log lines without -v:\n{}",
        plain.stderr
    );
    let verbose = pack(
        &["-v", "-q", "--since", "v1.zst", "--no-patch"],
        "fixture/app:2",
        "d3.zst",
    );
    let decision = verbose
        .stderr
        .lines()
        .find(|l| l.contains("left out:"))
        .unwrap_or_else(|| panic!("no decision logged:\n{}", verbose.stderr));
    assert!(decision.contains(" INFO "), "{decision}");
    assert!(decision.contains(base_short), "{decision}");
    assert!(decision.contains("fixture/app:2"), "{decision}");
    // Exported, or read in place from the engine's store (as root).
    assert!(
        verbose.stderr.contains("engine: save fixture/app:2")
            || verbose
                .stderr
                .contains("engine: reading fixture/app:2 from its"),
        "the engine call is logged:\n{}",
        verbose.stderr
    );
    assert!(
        !verbose.stderr.contains("DEBUG"),
        "-v is info only:\n{}",
        verbose.stderr
    );
    let debug = pack(
        &["-vv", "-q", "--since", "v1.zst", "--no-patch"],
        "fixture/app:2",
        "d4.zst",
    );
    assert!(debug.stderr.contains("DEBUG"), "{}", debug.stderr);
    assert!(
        !debug.stderr.contains("hyper"),
        "only airgap's own events:\n{}",
        debug.stderr
    );
    assert_eq!(
        verbose.stdout.lines().count(),
        quiet.stdout.lines().count(),
        "logging goes to stderr only"
    );
}

fn unpack_json(target: &TestEngine, dir: &Path, bundle: &str) -> Value {
    let run = airgap(
        dir,
        &[
            "--host",
            &target.host,
            "unpack",
            bundle,
            "--key",
            "ops.pub.pem",
            "--json",
        ],
    )
    .success();
    document(&run.stdout, "airgap/unpack/1")
}

/// On `target`: a first unpack loads; a tag that named another image
/// before is reported moved, with that image's ID; a second run finds the
/// image present; the ID is of the kind the engine reports.
fn unpack_reports_what_changed(connected: &TestEngine, target: &TestEngine, id_kind: &str) {
    fixtures::ensure(connected);
    target.wipe();
    let (_dir, dir) = workdir_with_keys();
    for (image, bundle) in [("fixture/web:1", "web.zst"), ("fixture/app:1", "app.zst")] {
        airgap(
            &dir,
            &[
                "--host",
                &connected.host,
                "pack",
                "-q",
                "-o",
                bundle,
                "--key",
                "ops.pem",
                image,
            ],
        )
        .success();
    }
    unpack_json(target, &dir, "web.zst");
    // fixture/app:1 names the web image on the target before the unpack.
    target.docker(&["tag", "fixture/web:1", "fixture/app:1"]);
    let web_id = target.docker(&["image", "inspect", "-f", "{{.Id}}", "fixture/web:1"]);
    let web_id = web_id.trim();

    let first = unpack_json(target, &dir, "app.zst");
    let image = &first["images"][0];
    assert_eq!(image["status"], "loaded", "{first}");
    assert_eq!(strings(&image["tags"]), ["fixture/app:1"]);
    assert_eq!(image["config"], connected.config_digest("fixture/app:1"));
    assert_eq!(image["idKind"], id_kind, "{first}");
    let expected_id = if id_kind == "manifest" {
        image["manifest"].clone()
    } else {
        image["config"].clone()
    };
    assert_eq!(image["id"], expected_id);
    assert_eq!(
        image["movedTags"],
        serde_json::json!([{"tag": "fixture/app:1", "previousId": web_id}]),
        "{first}"
    );
    let now = target.docker(&["image", "inspect", "-f", "{{.Id}}", "fixture/app:1"]);
    assert_eq!(now.trim(), image["id"].as_str().unwrap());

    let second = unpack_json(target, &dir, "app.zst");
    assert_eq!(second["images"][0]["status"], "already-present", "{second}");
    assert_eq!(second["images"][0]["movedTags"], serde_json::json!([]));
    assert!(second["previouslyApplied"].is_string(), "{second}");

    // People read the same: the moved tag and, on a containerd store, the kind of ID.
    target.docker(&["tag", "fixture/web:1", "fixture/app:1"]);
    let human = airgap(
        &dir,
        &[
            "--host",
            &target.host,
            "unpack",
            "-q",
            "app.zst",
            "--key",
            "ops.pub.pem",
        ],
    )
    .success()
    .stdout;
    let web_short = &web_id["sha256:".len()..][..12];
    assert!(
        human.contains(&format!("moved fixture/app:1 here from image {web_short}")),
        "{human}"
    );
    assert_eq!(
        human.contains("the manifest digest"),
        id_kind == "manifest",
        "{human}"
    );

    let run = airgap(&dir, &["--host", &target.host, "inventory", "--json"]).success();
    let inventory = document(&run.stdout, "airgap/inventory/1");
    assert!(inventory["written"].is_null());
    assert!(
        inventory["images"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == expected_id && strings(&i["tags"]).contains(&"fixture/app:1")),
        "{inventory}"
    );
    assert!(
        inventory["inventory"]["mediaType"].is_string(),
        "{inventory}"
    );
    let run = airgap(
        &dir,
        &[
            "--host",
            &target.host,
            "inventory",
            "-o",
            "have.json",
            "--json",
        ],
    )
    .success();
    let written = document(&run.stdout, "airgap/inventory/1");
    assert_eq!(written["written"], "have.json");
    assert!(written.get("inventory").is_none());
    assert!(dir.join("have.json").exists());
}

#[test]
fn unpack_json_on_docker_20_10_reports_loads_moved_tags_and_config_ids() {
    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    unpack_reports_what_changed(&connected, &offline, "config");
}

#[test]
fn unpack_json_on_a_containerd_store_reports_manifest_ids() {
    let (_lock, [connected, b]) = engines!("a-connected", "b");
    unpack_reports_what_changed(&connected, &b, "manifest");
}
