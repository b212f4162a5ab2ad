//! New names on arrival: `unpack --tag SRC=DST` and `--prefix PREFIX`. The
//! images arrive under the new names only, the rollback record and the
//! compose project follow them, and wrong arguments are refused before
//! anything is loaded.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::engines;
use crate::support::cmd::{Run, airgap, unpack_into, workdir_with_keys};
use crate::support::engine::TestEngine;
use crate::support::fixtures;

/// Exit codes from README.md.
const USAGE: i32 = 2;
const IMAGES_MISSING: i32 = 6;
const DOWNGRADE: i32 = 7;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/bundles");
const SHOP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/projects/shop");
const PREFIX: &str = "registry.local:5000/mirror";

fn pack(connected: &TestEngine, dir: &Path, output: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "--host",
        &connected.host,
        "pack",
        "-q",
        "-o",
        output,
        "--key",
        "ops.pem",
    ];
    args.extend(extra);
    airgap(dir, &args).success()
}

fn unpack(engine: &TestEngine, dir: &Path, bundle: &str, state: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["--state-dir", state.to_str().unwrap()];
    args.extend(extra);
    unpack_into(dir, &engine.host, bundle, &args)
}

/// Every `REPOSITORY:TAG` the engine holds, sorted.
fn repo_tags(engine: &TestEngine) -> Vec<String> {
    let mut tags: Vec<String> = engine
        .docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .lines()
        .filter(|line| !line.contains("<none>"))
        .map(str::to_owned)
        .collect();
    tags.sort();
    tags
}

/// Config digest and diff IDs, as the engine's own save tells them.
fn content(engine: &TestEngine, reference: &str) -> (String, Vec<String>) {
    let (_, diff_ids) = engine
        .inspect(reference)
        .unwrap_or_else(|| panic!("{reference} is not on {}", engine.name));
    (engine.config_digest(reference), diff_ids)
}

/// Packs fixture/web:1 and localhost:5000/fixture/tool:1.0 (a registry other
/// than Docker Hub), unpacks them into `target` with `--tag` for web and
/// `--prefix` for the rest, and checks they arrive under the new names only
/// and run.
fn renamed_images_arrive_under_the_new_names_only(connected: &TestEngine, target: &TestEngine) {
    fixtures::ensure(connected);
    target.wipe();
    let (_dir, dir) = workdir_with_keys();
    let state = tempfile::tempdir().unwrap();
    pack(
        connected,
        &dir,
        "two.zst",
        &["fixture/web:1", "localhost:5000/fixture/tool:1.0"],
    );
    let run = unpack(
        target,
        &dir,
        "two.zst",
        state.path(),
        &[
            "--prefix",
            PREFIX,
            "--tag",
            "docker.io/fixture/web:1=site/web:prod",
        ],
    )
    .success();
    assert!(
        run.stdout
            .contains("renamed: fixture/web:1 → site/web:prod"),
        "{}",
        run.stdout
    );
    let tool = format!("{PREFIX}/fixture/tool:1.0");
    assert_eq!(repo_tags(target), {
        let mut expected = vec!["site/web:prod".to_owned(), tool.clone()];
        expected.sort();
        expected
    });
    assert_eq!(
        content(target, "site/web:prod"),
        content(connected, "fixture/web:1")
    );
    assert_eq!(
        content(target, &tool),
        content(connected, "localhost:5000/fixture/tool:1.0")
    );
    assert_eq!(target.run("site/web:prod"), "airgap fixture: web");
    assert_eq!(target.run(&tool), "airgap fixture: tool");
}

#[test]
fn renamed_images_arrive_on_docker_20_10_under_the_new_names_only() {
    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    renamed_images_arrive_under_the_new_names_only(&connected, &offline);
}

#[test]
fn renamed_images_arrive_on_the_containerd_store_under_the_new_names_only() {
    let (_lock, [connected, b]) = engines!("a-connected", "b");
    renamed_images_arrive_under_the_new_names_only(&connected, &b);
}

#[test]
fn an_old_name_already_on_the_engine_is_left_alone() {
    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    fixtures::ensure(&connected);
    offline.wipe();
    let (_dir, dir) = workdir_with_keys();
    let state = tempfile::tempdir().unwrap();
    pack(&connected, &dir, "base.zst", &["fixture/base:1"]);
    pack(&connected, &dir, "web.zst", &["fixture/web:1"]);
    // The site's own fixture/web:1 is another image (the base).
    unpack(&offline, &dir, "base.zst", state.path(), &[]).success();
    offline.docker(&["tag", "fixture/base:1", "fixture/web:1"]);
    let site_web = offline.inspect("fixture/web:1").unwrap().0;

    unpack(
        &offline,
        &dir,
        "web.zst",
        state.path(),
        &["--prefix", PREFIX],
    )
    .success();
    assert_eq!(offline.inspect("fixture/web:1").unwrap().0, site_web);
    let renamed = format!("{PREFIX}/fixture/web:1");
    assert_eq!(
        content(&offline, &renamed),
        content(&connected, "fixture/web:1")
    );
    assert_eq!(offline.run(&renamed), "airgap fixture: web");
}

/// An unpack of the 1.3 golden bundle (golden/base:1, golden/app:1) into an
/// OCI layout: no engine is contacted.
fn golden_unpack(dir: &Path, extra: &[&str]) -> Run {
    let layout = dir.join("layout");
    let state = dir.join("state");
    let mut args = vec![
        "unpack".to_owned(),
        "-q".to_owned(),
        format!("{GOLDEN}/v1.3-minimal.zst"),
        "--key".to_owned(),
        format!("{GOLDEN}/v1.3-signer.pub.pem"),
        "--to".to_owned(),
        format!("oci:{}", layout.display()),
        "--state-dir".to_owned(),
        state.display().to_string(),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    airgap(dir, &args)
}

/// The names in the layout's index.
fn layout_names(dir: &Path) -> Vec<String> {
    let index = std::fs::read(dir.join("layout/index.json")).unwrap();
    let index: serde_json::Value = serde_json::from_slice(&index).unwrap();
    let mut names: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    names.sort();
    names
}

#[test]
fn an_oci_layout_gets_the_new_names_only_and_tag_wins_over_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let run = golden_unpack(
        dir.path(),
        &["--prefix", PREFIX, "--tag", "golden/app:1=site/app:1"],
    )
    .success();
    assert!(
        run.stdout
            .contains(&format!("renamed: golden/base:1 → {PREFIX}/golden/base:1")),
        "{}",
        run.stdout
    );
    assert_eq!(
        layout_names(dir.path()),
        vec![
            "docker.io/site/app:1".to_owned(),
            format!("{PREFIX}/golden/base:1")
        ]
    );
}

#[test]
fn wrong_renames_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let refused = |extra: &[&str], code: i32, needle: &str| {
        let run = golden_unpack(dir.path(), extra).failure(code);
        let first = run.stderr.lines().next().unwrap_or_default();
        assert!(first.contains(needle), "{extra:?}: {}", run.stderr);
        assert!(
            !dir.path().join("layout").exists(),
            "{extra:?} wrote the layout"
        );
    };
    // A SRC the bundle does not hold: the error lists what it holds.
    refused(
        &["--tag", "golden/web:1=site/web:1"],
        IMAGES_MISSING,
        "golden/base:1, golden/app:1",
    );
    refused(
        &[
            "--tag",
            "golden/app:1=site/x:1",
            "--tag",
            "golden/base:1=site/x:1",
        ],
        USAGE,
        "site/x:1",
    );
    // A --tag onto the name another image keeps.
    refused(
        &["--tag", "golden/app:1=golden/base:1"],
        USAGE,
        "two different images",
    );
    let long_prefix = format!("registry.local/{}", "p".repeat(230));
    refused(&["--prefix", &long_prefix], USAGE, "golden/base:1");
    refused(&["--tag", "golden/app:1"], USAGE, "SRC=DST");
    refused(
        &["--prefix", "registry.local/mirror:1"],
        USAGE,
        "registry path",
    );
    // inspect shows the same refusal for the same arguments.
    let run = airgap(
        dir.path(),
        &[
            "inspect",
            &format!("{GOLDEN}/v1.3-minimal.zst"),
            "--tag",
            "golden/web:1=site/web:1",
        ],
    )
    .failure(IMAGES_MISSING);
    assert!(run.stderr.contains("golden/app:1"), "{}", run.stderr);
}

#[test]
fn inspect_and_verify_show_both_names() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = format!("{GOLDEN}/v1.3-minimal.zst");
    let key = format!("{GOLDEN}/v1.3-signer.pub.pem");
    let renames = ["--prefix", PREFIX, "--tag", "golden/app:1=site/app:1"];
    let mut args = vec!["inspect", bundle.as_str()];
    args.extend(renames);
    let inspect = airgap(dir.path(), &args).success().stdout;
    assert!(
        inspect.contains(&format!("golden/base:1 → {PREFIX}/golden/base:1")),
        "{inspect}"
    );
    assert!(inspect.contains("golden/app:1 → site/app:1"), "{inspect}");

    let mut args = vec!["verify", "-q", bundle.as_str(), "--key", key.as_str()];
    args.extend(renames);
    let verify = airgap(dir.path(), &args).success().stdout;
    assert!(
        verify.contains("golden/app:1 → site/app:1  config"),
        "{verify}"
    );
    args.push("--json");
    let json: serde_json::Value =
        serde_json::from_str(&airgap(dir.path(), &args).success().stdout).unwrap();
    assert_eq!(json["images"][1]["arrivesAs"][0]["to"], "site/app:1");
}

#[test]
fn a_compose_project_in_a_layout_names_the_renamed_images_in_an_override() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    let run = airgap(
        dir.path(),
        &[
            "unpack",
            "-q",
            &format!("{GOLDEN}/v1.1-minimal.zst"),
            "--key",
            &format!("{GOLDEN}/v1.1-signer.pub.pem"),
            "--to",
            &format!("oci:{}", dir.path().join("layout").display()),
            "--state-dir",
            dir.path().join("state").to_str().unwrap(),
            "--compose-dir",
            site.to_str().unwrap(),
            "--prefix",
            PREFIX,
        ],
    )
    .success();
    assert!(run.stdout.contains("reads it by itself"), "{}", run.stdout);
    let written = std::fs::read_to_string(site.join("compose.override.yml")).unwrap();
    assert!(
        written.contains(&format!("image: \"{PREFIX}/golden/app:1\"")),
        "{written}"
    );
}

/// Two signed bundles of fixture/web:1, `old.zst` and (after a rebuild, an
/// image made later) `new.zst`, a delta with `--since old.zst`; returns the
/// new image's ID.
fn old_and_new_bundles(connected: &TestEngine, dir: &Path) -> String {
    fixtures::ensure(connected);
    pack(connected, dir, "old.zst", &["fixture/web:1"]);
    fixtures::rebuild(connected);
    // Bundle times have whole seconds: the new one must be made later.
    std::thread::sleep(Duration::from_millis(1100));
    pack(
        connected,
        dir,
        "new.zst",
        &["fixture/web:1", "--since", "old.zst"],
    );
    let inspect = airgap(dir, &["inspect", "new.zst"]).success().stdout;
    // A delta whose changed layer ships as a patch against the old one.
    assert!(inspect.contains("(delta)"), "{inspect}");
    assert!(inspect.contains("layers shipped as patches"), "{inspect}");
    connected.inspect("fixture/web:1").unwrap().0
}

#[test]
fn the_rollback_record_and_deltas_follow_the_new_names() {
    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    offline.wipe();
    let (_dir, dir) = workdir_with_keys();
    let state = tempfile::tempdir().unwrap();
    let new_id = old_and_new_bundles(&connected, &dir);
    let renamed = format!("{PREFIX}/fixture/web:1");
    let prefix = ["--prefix", PREFIX];

    unpack(&offline, &dir, "old.zst", state.path(), &prefix).success();
    // The delta builds on the old image's layers, whatever their names.
    unpack(&offline, &dir, "new.zst", state.path(), &prefix).success();
    assert_eq!(offline.inspect(&renamed).unwrap().0, new_id);
    assert_eq!(offline.run(&renamed), "airgap fixture: web");

    let run = unpack(&offline, &dir, "old.zst", state.path(), &prefix).failure(DOWNGRADE);
    assert!(run.stderr.contains(&renamed), "{}", run.stderr);
    assert_eq!(offline.inspect(&renamed).unwrap().0, new_id);
    // Under its own name the old bundle moves no tag the record knows.
    unpack(&offline, &dir, "old.zst", state.path(), &[]).success();
    assert_eq!(offline.inspect(&renamed).unwrap().0, new_id);
}

/// Docker Compose: $AIRGAP_COMPOSE (a docker-compose binary), else
/// `docker-compose` or `docker compose` on PATH. Missing fails in CI.
fn compose() -> Option<Vec<String>> {
    let works = |command: &[String]| {
        Command::new(&command[0])
            .args(&command[1..])
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let candidates: Vec<Vec<String>> = std::env::var("AIRGAP_COMPOSE")
        .ok()
        .filter(|c| !c.is_empty())
        .map(|c| vec![c])
        .into_iter()
        .chain([
            vec!["docker-compose".to_owned()],
            vec!["docker".to_owned(), "compose".to_owned()],
        ])
        .collect();
    if let Some(found) = candidates.into_iter().find(|c| works(c)) {
        return Some(found);
    }
    let message =
        "Docker Compose is not installed (scripts/deps installs it; or set AIRGAP_COMPOSE)";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{message}");
    }
    eprintln!("SKIPPED: {message}");
    None
}

fn run_compose(compose: &[String], engine: &TestEngine, site: &Path, args: &[&str]) -> String {
    let output = Command::new(&compose[0])
        .args(&compose[1..])
        .args(args)
        .current_dir(site)
        .env("DOCKER_HOST", &engine.host)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "compose {args:?}: {text}");
    text
}

#[test]
fn a_renamed_compose_project_runs_with_docker_compose_up_pull_never() {
    let Some(compose) = compose() else { return };
    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    fixtures::ensure(&connected);
    offline.wipe();
    let (_dir, dir) = workdir_with_keys();
    let state = tempfile::tempdir().unwrap();
    pack(&connected, &dir, "shop.zst", &[SHOP, "--with-env"]);
    let site: PathBuf = dir.join("site");
    let run = unpack(
        &offline,
        &dir,
        "shop.zst",
        state.path(),
        &["--prefix", PREFIX, "--compose-dir", site.to_str().unwrap()],
    )
    .success();
    assert!(
        run.stdout.contains("compose project shop"),
        "{}",
        run.stdout
    );
    assert!(
        repo_tags(&offline).iter().all(|t| t.starts_with(PREFIX)),
        "{:?}",
        repo_tags(&offline)
    );
    let up = run_compose(&compose, &offline, &site, &["up", "--pull", "never"]);
    run_compose(&compose, &offline, &site, &["down"]);
    for service in ["web", "api", "worker"] {
        assert!(
            up.contains(&format!("airgap fixture: {service}")),
            "{service}: {up}"
        );
    }
}
