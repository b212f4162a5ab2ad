//! `pack --from-registry REF…` against CNCF Distribution on loopback, with
//! no engine reachable: the bundle holds the images as pushed (config
//! digests, diff IDs) whatever the layers' compression and loads into
//! Docker 20.10 and a containerd image store; a multi-platform index gives
//! the platforms asked for and never its attestation; TLS with a private CA
//! and basic auth works and its refusals are one line; with `--since`, or an
//! inventory that states the sizes the site counted, only the layers the
//! site lacks are downloaded.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::cmd::{
    Run, airgap, bundle_manifest, run_with_stdin, state_dir, workdir_with_keys,
};
use crate::support::engine::Engines;
use crate::support::registry::{
    PASSWORD, Serving, TestRegistry, USER, bundle_of, push_images as push,
};
use crate::support::synthetic::{self, Image, layer};

/// Where no engine listens: a pull must not need one.
const NO_ENGINE: &str = "unix:///nonexistent/airgap-test/docker.sock";

/// Two images sharing a base layer, in two repositories.
fn images() -> Vec<Image> {
    let base = layer("base.txt", "shared base layer\n".repeat(1000));
    vec![
        Image::new("fixture/web:1", vec![base.clone(), layer("web.txt", "web")]),
        Image::new("fixture/api:1", vec![base, layer("api.txt", "api")]),
    ]
}

/// Runs airgap in `dir` with `stdin`, HOME at `dir` (no Docker config of
/// the host's) and DOCKER_HOST and --host naming a socket that does not exist.
fn airgap_without_engine(dir: &Path, args: &[&str], stdin: &str) -> Run {
    run_with_stdin(
        Command::new(env!("CARGO_BIN_EXE_airgap"))
            .arg("--host")
            .arg(NO_ENGINE)
            .args(args)
            .current_dir(dir)
            .env("DOCKER_HOST", NO_ENGINE)
            .env("AIRGAP_STATE_DIR", state_dir())
            .env("HOME", dir)
            .env_remove("DOCKER_CONFIG"),
        stdin,
    )
}

/// `pack --from-registry REFS… -o OUT` from the plain registry, with no engine.
fn pull(dir: &Path, registry: &TestRegistry, refs: &[String], extra: &[&str], out: &str) -> Run {
    let mut args = vec!["pack", "-q", "--key", "ops.pem", "--from-registry"];
    args.extend(refs.iter().map(String::as_str));
    args.extend(["--plain-http", registry.host.as_str(), "-o", out]);
    args.extend(extra);
    airgap_without_engine(dir, &args, "")
}

/// Each image of a bundle manifest as (first given reference, config
/// digest, layer digests, platform).
fn bundle_images(manifest: &serde_json::Value) -> Vec<(String, String, Vec<String>, String)> {
    manifest["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|image| {
            let platform = &image["platform"];
            (
                image["refs"][0]["given"].as_str().unwrap().to_owned(),
                image["config"]["digest"].as_str().unwrap().to_owned(),
                image["layers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l["digest"].as_str().unwrap().to_owned())
                    .collect(),
                format!(
                    "{}/{}",
                    platform["os"].as_str().unwrap(),
                    platform["architecture"].as_str().unwrap()
                ),
            )
        })
        .collect()
}

fn diff_ids(image: &Image) -> Vec<String> {
    image.layers.iter().map(|l| synthetic::digest(l)).collect()
}

/// `skopeo inspect --raw` of `reference` on the plain registry, and the
/// digest of those bytes.
fn raw_manifest(registry: &TestRegistry, reference: &str) -> (serde_json::Value, String) {
    let output = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{}/{reference}", registry.host))
        .output()
        .expect("skopeo runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (
        serde_json::from_slice(&output.stdout).unwrap(),
        synthetic::digest(&output.stdout),
    )
}

/// Blob GETs in the registry's log (HEAD and manifests left out).
fn blob_gets(registry: &TestRegistry) -> Vec<String> {
    registry
        .requests()
        .into_iter()
        .filter(|(method, uri, _)| method == "GET" && uri.contains("/blobs/sha256:"))
        .map(|(_, uri, _)| uri)
        .collect()
}

#[track_caller]
fn one_line_failure(run: Run, code: i32, says: &[&str]) {
    let run = run.failure(code);
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "not one line: {}", run.stderr);
    for said in says {
        assert!(lines[0].contains(said), "{said:?} missing: {}", lines[0]);
    }
}

#[test]
fn a_pull_needs_no_engine_and_gives_the_pushed_images_whatever_their_compression() {
    let Some(registry) = TestRegistry::start(Serving::Plain) else {
        return;
    };
    let (_keep, dir) = workdir_with_keys();
    let images = images();
    let mut refs = Vec::new();
    for compression in ["gzip", "zstd", "none"] {
        push(&dir, &registry, &images, compression, compression);
        refs.extend(
            images
                .iter()
                .map(|i| format!("{}/{compression}/{}", registry.host, i.tag)),
        );
    }
    let run = pull(&dir, &registry, &refs, &[], "pulled.zst").success();
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    let verified = airgap(&dir, &["verify", "pulled.zst", "--key", "ops.pub.pem"]).success();
    assert!(verified.stdout.contains("VERIFIED"), "{}", verified.stdout);
    let manifest = bundle_manifest(&dir.join("pulled.zst"));
    assert_eq!(manifest["source"]["kind"], "registry");
    // One image per config, named by all three references to it.
    let got = bundle_images(&manifest);
    assert_eq!(got.len(), images.len());
    for ((_, config, layers, platform), image) in got.iter().zip(&images) {
        assert_eq!(config, &synthetic::digest(&image.config), "{}", image.tag);
        assert_eq!(layers, &diff_ids(image), "{}", image.tag);
        assert_eq!(platform, "linux/amd64");
    }
    for (image, bundled) in images.iter().zip(manifest["images"].as_array().unwrap()) {
        let given: Vec<&str> = bundled["refs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["given"].as_str().unwrap())
            .collect();
        let expected: Vec<&String> = refs.iter().filter(|r| r.ends_with(&image.tag)).collect();
        assert_eq!(given, expected);
    }
    // Every image's origin is the registry's own manifest, with no index.
    let origins = manifest["origins"].as_array().unwrap();
    assert_eq!(origins.len(), refs.len());
    for (origin, reference) in origins.iter().zip(&refs) {
        let image = images.iter().find(|i| reference.ends_with(&i.tag)).unwrap();
        assert_eq!(origin["config"], synthetic::digest(&image.config).as_str());
        let repository_and_tag = reference
            .strip_prefix(&format!("{}/", registry.host))
            .unwrap();
        let (_, digest) = raw_manifest(&registry, repository_and_tag);
        assert_eq!(origin["manifest"], digest.as_str(), "{reference}");
        assert_eq!(origin["registry"], registry.host.as_str());
        assert!(origin.get("index").is_none(), "{origin}");
    }
    // The shared base layer is carried once.
    let carried = crate::support::cmd::bundle_entries(&dir.join("pulled.zst"));
    let base = synthetic::digest(&images[0].layers[0]);
    let hex = base.trim_start_matches("sha256:");
    assert_eq!(carried.iter().filter(|e| e.ends_with(hex)).count(), 1);
}

#[test]
fn a_pulled_bundle_loads_into_docker_and_a_containerd_store_as_pushed() {
    let Some(registry) = TestRegistry::start(Serving::Plain) else {
        return;
    };
    let Some((_engines, engines)) = Engines::get(["a-offline", "b"]) else {
        return;
    };
    let (_keep, dir) = workdir_with_keys();
    let images = images();
    push(&dir, &registry, &images, "site", "gzip");
    let refs: Vec<String> = images
        .iter()
        .map(|i| format!("{}/site/{}", registry.host, i.tag))
        .collect();
    pull(&dir, &registry, &refs, &[], "pulled.zst").success();
    for engine in &engines {
        engine.wipe();
        airgap(
            &dir,
            &[
                "--host",
                &engine.host,
                "unpack",
                "pulled.zst",
                "--key",
                "ops.pub.pem",
            ],
        )
        .success();
        for (image, reference) in images.iter().zip(&refs) {
            assert_eq!(
                engine.config_digest(reference),
                synthetic::digest(&image.config),
                "{reference} on {}",
                engine.name
            );
            let (_, layers) = engine.inspect(reference).expect("loaded");
            assert_eq!(layers, diff_ids(image), "{reference} on {}", engine.name);
        }
        engine.wipe();
    }
}

/// The layer of an image as a gzip blob.
fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// Writes `bytes` as a blob of the layout at `dir`; returns its descriptor.
fn blob(dir: &Path, media_type: &str, bytes: &[u8]) -> serde_json::Value {
    let digest = synthetic::digest(bytes);
    let path = dir
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    std::fs::write(path, bytes).unwrap();
    serde_json::json!({ "mediaType": media_type, "digest": digest, "size": bytes.len() })
}

/// An image manifest of `image` (layers gzip) in the layout; returns its descriptor.
fn image_manifest(dir: &Path, config: &[u8], layers: &[Vec<u8>]) -> serde_json::Value {
    let config = blob(dir, "application/vnd.oci.image.config.v1+json", config);
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .map(|l| blob(dir, "application/vnd.oci.image.layer.v1.tar+gzip", &gzip(l)))
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config,
        "layers": layers,
    });
    blob(
        dir,
        "application/vnd.oci.image.manifest.v1+json",
        &serde_json::to_vec(&manifest).unwrap(),
    )
}

/// A multi-platform image as an OCI layout: an amd64 image, an arm64 image
/// and an attestation manifest, under an index tagged `1`. Returns the
/// layout, the two images and the attestation manifest's digest.
fn multi_platform_layout(root: &Path) -> (PathBuf, [Image; 2], String) {
    let dir = root.join("multi");
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let base = layer("base.txt", "multi base\n".repeat(500));
    let amd = Image::new("multi:1", vec![base.clone(), layer("arch", "amd64")]);
    let mut arm = Image::new("multi:1", vec![base, layer("arch", "arm64")]);
    let mut config: serde_json::Value = serde_json::from_slice(&arm.config).unwrap();
    config["architecture"] = "arm64".into();
    config["variant"] = "v8".into();
    arm.config = serde_json::to_vec(&config).unwrap();
    let mut amd_descriptor = image_manifest(&dir, &amd.config, &amd.layers);
    amd_descriptor["platform"] = serde_json::json!({"os": "linux", "architecture": "amd64"});
    let mut arm_descriptor = image_manifest(&dir, &arm.config, &arm.layers);
    arm_descriptor["platform"] = serde_json::json!({"os": "linux", "architecture": "arm64"});
    // What BuildKit attaches: an in-toto statement in a manifest of its own.
    let statement = blob(
        &dir,
        "application/vnd.in-toto+json",
        br#"{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://spdx.dev/Document"}"#,
    );
    let attestation_config = blob(&dir, "application/vnd.oci.image.config.v1+json", b"{}");
    let attestation = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": attestation_config,
        "layers": [statement],
    });
    let mut attestation_descriptor = blob(
        &dir,
        "application/vnd.oci.image.manifest.v1+json",
        &serde_json::to_vec(&attestation).unwrap(),
    );
    let attestation_digest = attestation_descriptor["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    attestation_descriptor["platform"] =
        serde_json::json!({"os": "unknown", "architecture": "unknown"});
    attestation_descriptor["annotations"] = serde_json::json!({
        "vnd.docker.reference.type": "attestation-manifest",
        "vnd.docker.reference.digest": amd_descriptor["digest"],
    });
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [amd_descriptor, arm_descriptor, attestation_descriptor],
    });
    let mut index_descriptor = blob(
        &dir,
        "application/vnd.oci.image.index.v1+json",
        &serde_json::to_vec(&index).unwrap(),
    );
    index_descriptor["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "1"});
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [index_descriptor],
        }))
        .unwrap(),
    )
    .unwrap();
    (dir, [amd, arm], attestation_digest)
}

/// `skopeo copy --all` of the layout's index to `team/multi:1` of the plain `registry`.
fn copy_index_to(layout: &Path, registry: &TestRegistry) {
    let copied = Command::new("skopeo")
        .args(["copy", "--all", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:1", layout.display()))
        .arg(format!("docker://{}/team/multi:1", registry.host))
        .output()
        .expect("skopeo runs");
    assert!(
        copied.status.success(),
        "{}",
        String::from_utf8_lossy(&copied.stderr)
    );
}

#[test]
fn a_multi_platform_index_gives_the_platforms_asked_for_and_never_its_attestation() {
    let Some(registry) = TestRegistry::start(Serving::Plain) else {
        return;
    };
    let (_keep, dir) = workdir_with_keys();
    let (layout, [amd, arm], attestation) = multi_platform_layout(&dir);
    copy_index_to(&layout, &registry);
    let (index, index_digest) = raw_manifest(&registry, "team/multi:1");
    assert_eq!(index["manifests"].as_array().unwrap().len(), 3);
    let reference = vec![format!("{}/team/multi:1", registry.host)];
    let config = |image: &Image| synthetic::digest(&image.config);

    // arm64 is arm64/v8; the kernel's name for it is taken too.
    for platform in ["linux/arm64", "linux/arm64/v8", "linux/aarch64"] {
        pull(
            &dir,
            &registry,
            &reference,
            &["--platform", platform],
            "arm.zst",
        )
        .success();
        let manifest = bundle_manifest(&dir.join("arm.zst"));
        let got = bundle_images(&manifest);
        assert_eq!(got.len(), 1, "{platform}");
        assert_eq!(got[0].1, config(&arm), "{platform}");
        assert_eq!(got[0].2, diff_ids(&arm), "{platform}");
        assert_eq!(got[0].3, "linux/arm64", "{platform}");
        let origin = &manifest["origins"][0];
        assert_eq!(origin["index"], index_digest.as_str());
        assert_eq!(origin["manifest"], index["manifests"][1]["digest"]);
        assert_eq!(origin["platform"]["architecture"], "arm64");
    }
    airgap(&dir, &["verify", "arm.zst", "--key", "ops.pub.pem"]).success();

    // By default, the platform pack takes from archives: this machine's.
    pull(&dir, &registry, &reference, &[], "default.zst").success();
    let got = bundle_images(&bundle_manifest(&dir.join("default.zst")));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, config(&amd));

    let before = registry.requests().len();
    pull(&dir, &registry, &reference, &["--all-platforms"], "all.zst").success();
    let manifest = bundle_manifest(&dir.join("all.zst"));
    let got = bundle_images(&manifest);
    let configs: Vec<&str> = got.iter().map(|g| g.1.as_str()).collect();
    assert_eq!(configs, [config(&amd), config(&arm)]);
    let origins = manifest["origins"].as_array().unwrap();
    assert_eq!(origins.len(), 2);
    assert!(origins.iter().all(|o| o["index"] == index_digest.as_str()));
    airgap(&dir, &["verify", "all.zst", "--key", "ops.pub.pem"]).success();
    // The attestation was never asked for: not its manifest, not its blobs.
    let asked: Vec<String> = registry.requests()[before..]
        .iter()
        .map(|(_, uri, _)| uri.clone())
        .collect();
    assert!(
        !asked.iter().any(|uri| uri.contains(&attestation)),
        "{asked:?}"
    );
    assert!(
        !asked
            .iter()
            .any(|uri| uri.contains(&synthetic::digest(b"{}"))),
        "{asked:?}"
    );

    // A platform the index lacks: one line listing what it has.
    one_line_failure(
        pull(
            &dir,
            &registry,
            &reference,
            &["--platform", "linux/s390x"],
            "none.zst",
        ),
        1,
        &[
            "team/multi:1",
            "no linux/s390x image",
            "linux/amd64, linux/arm64",
        ],
    );
    assert!(!dir.join("none.zst").exists());
}

/// Packs `name` (a base layer, then one of its own) from the plain registry
/// into `out`, with `site` telling what the site holds, and checks that
/// only its own layer is downloaded and that the bundle requires the base
/// at its size; `sized` says where that size comes from, for the messages.
/// Returns the bundle's manifest.
#[track_caller]
fn pull_sparing_the_base(
    dir: &Path,
    registry: &TestRegistry,
    name: &str,
    base: &[u8],
    site: &[&str],
    out: &str,
    sized: &str,
) -> serde_json::Value {
    let (raw, _) = raw_manifest(registry, name);
    let base_blob = raw["layers"][0]["digest"].as_str().unwrap().to_owned();
    let own_blob = raw["layers"][1]["digest"].as_str().unwrap().to_owned();
    let before = blob_gets(registry).len();
    let reference = format!("{}/{name}", registry.host);
    pull(dir, registry, std::slice::from_ref(&reference), site, out).success();
    let fetched = blob_gets(registry)[before..].to_vec();
    assert!(
        !fetched.iter().any(|uri| uri.contains(&base_blob)),
        "the base layer the site holds was downloaded ({sized}): {fetched:?}"
    );
    assert!(
        fetched.iter().any(|uri| uri.contains(&own_blob)),
        "the new layer was not downloaded ({sized}): {fetched:?}"
    );
    let manifest = bundle_manifest(&dir.join(out));
    let required: Vec<&str> = manifest["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["digest"].as_str().unwrap())
        .collect();
    assert_eq!(required, [synthetic::digest(base)], "{sized}");
    assert_eq!(
        manifest["required"][0]["size"],
        base.len(),
        "the size of the layer not downloaded comes {sized}"
    );
    manifest
}

#[test]
fn with_since_only_the_layers_the_site_lacks_are_downloaded() {
    let Some(registry) = TestRegistry::start(Serving::Plain) else {
        return;
    };
    let (_keep, dir) = workdir_with_keys();
    let base = layer("base.txt", "a base the site holds\n".repeat(5000));
    let first = Image::new("fixture/app:1", vec![base.clone(), layer("app", "one")]);
    let second = Image::new("fixture/app:2", vec![base.clone(), layer("app", "two")]);
    push(&dir, &registry, &[first], "", "gzip");
    let one = vec![format!("{}/fixture/app:1", registry.host)];
    pull(&dir, &registry, &one, &[], "one.zst").success();

    push(&dir, &registry, std::slice::from_ref(&second), "", "gzip");
    let manifest = pull_sparing_the_base(
        &dir,
        &registry,
        "fixture/app:2",
        &base,
        &["--since", "one.zst"],
        "two.zst",
        "from the earlier bundle",
    );
    assert_eq!(bundle_images(&manifest)[0].2, diff_ids(&second));
    airgap(&dir, &["verify", "two.zst", "--key", "ops.pub.pem"]).success();
}

#[test]
fn with_an_inventory_alone_the_layers_the_site_counted_are_not_downloaded() {
    let Some(registry) = TestRegistry::start(Serving::Plain) else {
        return;
    };
    let Some((_engines, [site])) = Engines::get(["a-offline"]) else {
        return;
    };
    let (_keep, dir) = workdir_with_keys();
    let base = layer("base.txt", "a base the site holds\n".repeat(5000));
    let first = Image::new("fixture/app:1", vec![base.clone(), layer("app", "one")]);
    let second = Image::new("fixture/app:2", vec![base.clone(), layer("app", "two")]);
    push(&dir, &registry, std::slice::from_ref(&first), "", "gzip");
    let one = vec![format!("{}/fixture/app:1", registry.host)];
    pull(&dir, &registry, &one, &[], "one.zst").success();

    // The site: unpack, then take the inventory from the same state.
    site.wipe();
    let state = dir.join("site-state");
    let state_arg = state.to_str().unwrap();
    let on_site = |args: &[&str]| {
        let mut all = vec!["--host", site.host.as_str()];
        all.extend(args);
        airgap(&dir, &all)
    };
    on_site(&[
        "unpack",
        "-q",
        "one.zst",
        "--key",
        "ops.pub.pem",
        "--state-dir",
        state_arg,
    ])
    .success();
    on_site(&["inventory", "--state-dir", state_arg, "-o", "have.json"]).success();
    let inventory: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("have.json")).unwrap()).unwrap();
    assert_eq!(
        inventory["layerSizes"][synthetic::digest(&base)],
        base.len(),
        "the site counted the base layer when it arrived: {inventory}"
    );

    push(&dir, &registry, std::slice::from_ref(&second), "", "gzip");
    pull_sparing_the_base(
        &dir,
        &registry,
        "fixture/app:2",
        &base,
        &["--have", "have.json"],
        "two.zst",
        "from the site's inventory",
    );

    on_site(&[
        "unpack",
        "-q",
        "two.zst",
        "--key",
        "ops.pub.pem",
        "--state-dir",
        state_arg,
    ])
    .success();
    let reference = format!("{}/fixture/app:2", registry.host);
    assert_eq!(
        site.config_digest(&reference),
        synthetic::digest(&second.config)
    );
    assert_eq!(site.inspect(&reference).unwrap().1, diff_ids(&second));
    site.wipe();
}

#[test]
fn an_inventory_counts_the_layers_a_site_pulled_itself_so_a_pull_skips_them() {
    let Some(registry) = TestRegistry::start(Serving::Plain) else {
        return;
    };
    let Some((_engines, sites)) = Engines::get(["a-offline", "b", "podman"]) else {
        return;
    };
    let (_keep, dir) = workdir_with_keys();
    let base = layer("base.txt", "a base the site pulled itself\n".repeat(5000));
    let first = Image::new("fixture/own:1", vec![base.clone(), layer("own", "one")]);
    let second = Image::new("fixture/own:2", vec![base.clone(), layer("own", "two")]);
    push(&dir, &registry, &[first, second.clone()], "", "gzip");
    let reference = format!("{}/fixture/own:2", registry.host);
    for site in &sites {
        // Not by airgap: the engine's own pull (gzip layers; the containerd
        // store keeps them so, and exports them compressed).
        site.wipe();
        site.pull(&format!("{}/fixture/own:1", registry.host));
        let state = dir.join(format!("state-{}", site.name));
        let on_site = |args: &[&str]| {
            let mut all = vec!["--host", site.host.as_str(), "inventory"];
            all.extend(args);
            all.extend(["--state-dir", state.to_str().unwrap()]);
            airgap(&dir, &all)
        };
        let plain = on_site(&["--no-count-layers", "-o", "plain.json"]).success();
        assert!(
            plain.stderr.contains("2 layers have no size")
                && plain.stderr.contains("without --no-count-layers"),
            "{}: {}",
            site.name,
            plain.stderr
        );
        let counted = on_site(&["-o", "have.json"]).success();
        assert!(!counted.stderr.contains("no size"), "{}", counted.stderr);
        let inventory: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("have.json")).unwrap()).unwrap();
        assert_eq!(
            inventory["layerSizes"][synthetic::digest(&base)],
            base.len(),
            "{}: {inventory}",
            site.name
        );

        pull_sparing_the_base(
            &dir,
            &registry,
            "fixture/own:2",
            &base,
            &["--have", "have.json"],
            "own.zst",
            &format!("counted by {}", site.name),
        );
        airgap(
            &dir,
            &[
                "--host",
                &site.host,
                "unpack",
                "-q",
                "own.zst",
                "--key",
                "ops.pub.pem",
                "--state-dir",
                state.to_str().unwrap(),
            ],
        )
        .success();
        assert_eq!(
            site.config_digest(&reference),
            synthetic::digest(&second.config),
            "{}",
            site.name
        );
        assert_eq!(site.inspect(&reference).unwrap().1, diff_ids(&second));
        site.wipe();
    }
}

/// The engines' platform here: this machine's.
fn native_arch() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    }
}

#[test]
fn every_platform_unpacked_into_an_engine_leaves_the_name_on_the_engines_own() {
    let Some(registry) = TestRegistry::start(Serving::Plain) else {
        return;
    };
    let Some((_engines, engines)) = Engines::get(["a-offline", "b", "podman"]) else {
        return;
    };
    let (_keep, dir) = workdir_with_keys();
    let (layout, [amd, arm], _) = multi_platform_layout(&dir);
    copy_index_to(&layout, &registry);
    let reference = format!("{}/team/multi:1", registry.host);
    pull(
        &dir,
        &registry,
        std::slice::from_ref(&reference),
        &["--all-platforms"],
        "all.zst",
    )
    .success();
    // The bundle lists amd64 first: loaded in order, arm64 would keep the name.
    let (native, other) = match native_arch() {
        "arm64" => (&arm, "linux/amd64"),
        _ => (&amd, "linux/arm64"),
    };
    for engine in &engines {
        engine.wipe();
        let unpack = || {
            airgap(
                &dir,
                &[
                    "--host",
                    &engine.host,
                    "unpack",
                    "all.zst",
                    "--key",
                    "ops.pub.pem",
                ],
            )
        };
        if engine.name == "b" {
            // The containerd store filters unnamed images of other platforms
            // out of a load: refused before anything is loaded.
            let refused = unpack().failure(1);
            assert!(
                refused.stderr.contains("without a name")
                    && refused
                        .stderr
                        .contains(&format!("--platform linux/{}", native_arch()))
                    && refused.stderr.trim().lines().count() == 1,
                "{}",
                refused.stderr
            );
            assert!(engine.image_ids().is_empty(), "nothing loaded");
            continue;
        }
        let unpacked = unpack().success();
        assert_eq!(
            engine.config_digest(&reference),
            synthetic::digest(&native.config),
            "{}: the name is on the engine's own platform",
            engine.name
        );
        assert!(
            unpacked.stdout.contains(&format!("the {other}"))
                && unpacked.stdout.contains("image is loaded without it")
                && unpacked.stdout.contains("loaded an untagged image ("),
            "{}: {}",
            engine.name,
            unpacked.stdout
        );
        engine.wipe();
    }
}

#[test]
fn tls_with_a_private_ca_and_basic_auth_and_the_refusals_are_one_line() {
    let Some(registry) = TestRegistry::start(Serving::TlsAuth) else {
        return;
    };
    let (_keep, dir) = workdir_with_keys();
    let images = images();
    bundle_of(&dir, &images);
    let ca = registry.ca();
    let ca = ca.to_str().unwrap();
    let to = format!("registry://{}", registry.host);
    airgap_without_engine(
        &dir,
        &[
            "unpack",
            "b.zst",
            "--key",
            "ops.pub.pem",
            "--to",
            &to,
            "--registry-ca",
            ca,
            "--registry-user",
            USER,
            "--registry-password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    )
    .success();
    let web = format!("{}/fixture/web:1", registry.host);
    let pack = |extra: &[&str], stdin: &str| {
        let mut args = vec!["pack", "-q", "--key", "ops.pem", "--from-registry", &web];
        args.extend(extra);
        args.extend(["-o", "tls.zst"]);
        airgap_without_engine(&dir, &args, stdin)
    };
    let login = ["--registry-user", USER, "--registry-password-stdin"];
    let with_ca = |more: &[&'static str]| -> Vec<&str> {
        let mut args = vec!["--registry-ca", ca];
        args.extend(more);
        args
    };
    pack(&with_ca(&login), &format!("{PASSWORD}\n")).success();
    let got = bundle_images(&bundle_manifest(&dir.join("tls.zst")));
    assert_eq!(got[0].1, synthetic::digest(&images[0].config));
    assert_eq!(got[0].2, diff_ids(&images[0]));

    one_line_failure(
        pack(&with_ca(&login), "wrong\n"),
        5,
        &[
            &registry.host,
            "refused access",
            "--registry-user pusher",
            "check the user and password",
        ],
    );
    one_line_failure(
        pack(&login, &format!("{PASSWORD}\n")),
        5,
        &[&registry.host, "not trusted", "--registry-ca"],
    );
    // A repository and a tag the registry lacks: exit 6, as for an image an engine lacks.
    let missing_repository = format!("{}/fixture/nothing:1", registry.host);
    let missing_tag = format!("{}/fixture/web:9", registry.host);
    for (reference, cause) in [
        (&missing_repository, "no repository fixture/nothing"),
        (
            &missing_tag,
            "no such tag or digest in fixture/web, which holds 1",
        ),
    ] {
        let mut args = vec![
            "pack",
            "-q",
            "--key",
            "ops.pem",
            "--from-registry",
            reference,
        ];
        args.extend(with_ca(&login));
        args.extend(["-o", "missing.zst"]);
        one_line_failure(
            airgap_without_engine(&dir, &args, &format!("{PASSWORD}\n")),
            6,
            &[reference, cause, "skopeo list-tags"],
        );
    }
    // A registry that is not there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gone = format!("127.0.0.1:{port}/fixture/web:1");
    one_line_failure(
        airgap_without_engine(
            &dir,
            &[
                "pack",
                "-q",
                "--key",
                "ops.pem",
                "--from-registry",
                &gone,
                "-o",
                "gone.zst",
            ],
            "",
        ),
        5,
        &[
            &format!("127.0.0.1:{port}"),
            "cannot be reached",
            "check that it runs",
        ],
    );
    // A reference that names no registry is refused before anything is contacted.
    one_line_failure(
        airgap_without_engine(
            &dir,
            &[
                "pack",
                "-q",
                "--key",
                "ops.pem",
                "--from-registry",
                "fixture/web:1",
                "-o",
                "x.zst",
            ],
            "",
        ),
        2,
        &[
            "fixture/web:1",
            "names no registry",
            "HOST[:PORT]/REPOSITORY",
        ],
    );
}

#[test]
fn a_bundle_of_the_previous_format_still_verifies_and_unpacks() {
    let golden = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/bundles"
    ));
    let dir = tempfile::tempdir().unwrap();
    let run = airgap(
        dir.path(),
        &[
            "unpack",
            golden.join("v1.3-minimal.zst").to_str().unwrap(),
            "--key",
            golden.join("v1.3-signer.pub.pem").to_str().unwrap(),
            "--to",
            "oci:layout",
        ],
    )
    .success();
    assert!(run.stdout.contains("golden/app:1"), "{}", run.stdout);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("layout/index.json")).unwrap())
            .unwrap();
    let names: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .collect();
    assert!(
        names.iter().any(|n| n.ends_with("golden/app:1")),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.ends_with("golden/base:1")),
        "{names:?}"
    );
}

/// `skopeo inspect --config --raw` of `reference` for one architecture:
/// the config an engine of that platform pulls through the tag.
fn pulled_config(registry: &TestRegistry, reference: &str, architecture: &str) -> Vec<u8> {
    let output = Command::new("skopeo")
        .args(["inspect", "--config", "--raw", "--tls-verify=false"])
        .args(["--override-os", "linux", "--override-arch", architecture])
        .arg(format!("docker://{}/{reference}", registry.host))
        .output()
        .expect("skopeo runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

#[test]
fn the_platforms_of_one_index_are_pushed_under_an_index_of_their_own() {
    let Some(registry) = TestRegistry::start(Serving::Plain) else {
        return;
    };
    let (_keep, dir) = workdir_with_keys();
    let (layout, [amd, arm], _) = multi_platform_layout(&dir);
    copy_index_to(&layout, &registry);
    let (_, original) = raw_manifest(&registry, "team/multi:1");
    let reference = vec![format!("{}/team/multi:1", registry.host)];
    pull(&dir, &registry, &reference, &["--all-platforms"], "all.zst").success();
    airgap(&dir, &["verify", "all.zst", "--key", "ops.pub.pem"]).success();

    let unpack_to = |prefix: &str| {
        let to = format!("registry://{}/{prefix}", registry.host);
        airgap(
            &dir,
            &[
                "unpack",
                "all.zst",
                "--key",
                "ops.pub.pem",
                "--to",
                &to,
                "--plain-http",
                &registry.host,
            ],
        )
        .success();
    };
    unpack_to("site");
    let (index, digest) = raw_manifest(&registry, "site/team/multi:1");
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let architectures: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(architectures, ["amd64", "arm64"], "{index}");
    // The layers were compressed again, so the index is not the original...
    assert_ne!(digest, original);
    // ...but each platform pulls through the tag as packed.
    for (architecture, image) in [("amd64", &amd), ("arm64", &arm)] {
        let config = pulled_config(&registry, "site/team/multi:1", architecture);
        assert_eq!(synthetic::digest(&config), synthetic::digest(&image.config));
        let config: serde_json::Value = serde_json::from_slice(&config).unwrap();
        let pulled: Vec<&str> = config["rootfs"]["diff_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap())
            .collect();
        assert_eq!(pulled, diff_ids(image), "{architecture}");
    }
    // The same bundle gives the same index.
    unpack_to("again");
    assert_eq!(raw_manifest(&registry, "again/team/multi:1").1, digest);
}
