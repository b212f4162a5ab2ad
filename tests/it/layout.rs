//! OCI image layout directories with the tools that read and write them:
//! a layout airgap writes is taken by skopeo and `podman load`, and one
//! skopeo writes (gzip layers) packs and unpacks to the same images.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use airgap::digest::Digest;
use airgap::image::{BlobRef, ImageRecord, ImageRef, Platform};
use airgap::media::layout::LayoutWriter;

use crate::engines;
use crate::support::cmd::{airgap, workdir_with_keys};
use crate::support::engine::TestEngine;
use crate::support::fixtures;
use crate::support::synthetic::{self, layer};

const TAGS: [&str; 4] = [
    "fixture/web:1",
    "fixture/api:1",
    "fixture/worker:1",
    "fixture/worker:latest",
];

/// True when `tool` runs; outside CI a missing tool skips the test loudly,
/// in CI it fails it.
fn have(tool: &str) -> bool {
    let found = Command::new(tool).arg("--version").output().is_ok();
    if !found {
        let message = format!("{tool} is not installed (scripts/deps installs it)");
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{message}");
        }
        eprintln!("SKIPPED: {message}");
    }
    found
}

#[track_caller]
fn run(command: &mut Command) -> Vec<u8> {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The bundle's inner tar: (path, content) pairs.
fn bundle_files(bundle: &Path) -> HashMap<String, Vec<u8>> {
    let decoder = zstd::stream::read::Decoder::new(fs::File::open(bundle).unwrap()).unwrap();
    let mut archive = tar::Archive::new(decoder);
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let mut entry = entry.unwrap();
            let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let mut content = Vec::new();
            entry.read_to_end(&mut content).unwrap();
            (path, content)
        })
        .collect()
}

/// Writes the images of `bundle` (itself an OCI layout inside) into the
/// layout at `dir` with the writer, as an unpack would; with `only`, just
/// the image of that full reference.
fn write_layout(bundle: &Path, dir: &Path, only: Option<&str>) {
    let files = bundle_files(bundle);
    let mut writer = LayoutWriter::open(dir).unwrap();
    for (path, content) in &files {
        if let Some(hex) = path.strip_prefix("blobs/sha256/") {
            let blob = BlobRef {
                digest: Digest::from_hex(hex).unwrap(),
                size: content.len() as u64,
            };
            writer.put_blob(&blob, &mut &content[..]).unwrap();
        }
    }
    let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
    for entry in index["manifests"].as_array().unwrap() {
        let name = entry["annotations"]["io.containerd.image.name"]
            .as_str()
            .unwrap();
        if only.is_some_and(|only| only != name) {
            continue;
        }
        let manifest = BlobRef {
            digest: entry["digest"].as_str().unwrap().parse().unwrap(),
            size: entry["size"].as_u64().unwrap(),
        };
        // The platform an unpack knows from the config, as it would pass it.
        let blob = |digest: &serde_json::Value| {
            let digest: Digest = digest.as_str().unwrap().parse().unwrap();
            &files[&digest.blob_path()]
        };
        let image: serde_json::Value = serde_json::from_slice(blob(&entry["digest"])).unwrap();
        let config: Platform = serde_json::from_slice(blob(&image["config"]["digest"])).unwrap();
        writer.add_image(&[ImageRef::parse(name).unwrap()], &manifest, Some(&config));
    }
    writer.finish().unwrap();
}

/// Config digest and diff IDs of the one image in a `docker-archive` tar.
fn docker_archive_image(archive: &Path) -> (String, Vec<String>) {
    let mut files = HashMap::new();
    let mut tar = tar::Archive::new(fs::File::open(archive).unwrap());
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        files.insert(path, content);
    }
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let config = &files[manifest[0]["Config"].as_str().unwrap()];
    (Digest::of(config).to_string(), diff_ids(config))
}

fn diff_ids(config: &[u8]) -> Vec<String> {
    let config: serde_json::Value = serde_json::from_slice(config).unwrap();
    config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect()
}

/// What the engine holds for `tag`: config digest and diff IDs.
fn original(engine: &TestEngine, tag: &str) -> (String, Vec<String>) {
    let (_, layers) = engine.inspect(tag).unwrap();
    (engine.config_digest(tag), layers)
}

/// podman with its own storage in `dir`, so no other store is touched.
fn podman(dir: &Path) -> Command {
    let mut command = Command::new("podman");
    command
        .arg("--root")
        .arg(dir.join("root"))
        .arg("--runroot")
        .arg(dir.join("run"))
        .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
        .env_remove("CONTAINER_HOST");
    command
}

#[test]
fn a_layout_airgap_writes_is_taken_by_skopeo_and_podman_load() {
    if !have("skopeo") || !have("podman") {
        return;
    }
    let (_lock, [connected]) = engines!("a-connected");
    fixtures::ensure(&connected);
    let (_dir, dir) = workdir_with_keys();
    let mut args = vec!["--host", &connected.host, "pack", "--quiet"];
    args.extend(TAGS);
    args.extend(["--output", "b.zst", "--key", "ops.pem"]);
    airgap(&dir, &args).success();
    let originals: Vec<(String, Vec<String>)> =
        TAGS.iter().map(|tag| original(&connected, tag)).collect();

    let layout = dir.join("layout");
    write_layout(&dir.join("b.zst"), &layout, None);

    // skopeo finds each image by its full reference.
    for (tag, expected) in TAGS.iter().zip(&originals) {
        let name = ImageRef::parse(tag).unwrap().name;
        let archive = dir.join(format!("{}.tar", tag.replace(['/', ':'], "-")));
        run(Command::new("skopeo").args([
            "copy".into(),
            "--quiet".into(),
            format!("oci:{}:{name}", layout.display()),
            format!("docker-archive:{}:{tag}", archive.display()),
        ]));
        assert_eq!(
            &docker_archive_image(&archive),
            expected,
            "{tag} through skopeo"
        );
    }

    // podman 4.3 loads a layout of one image only, naming it after the
    // path it was given (so a relative, lowercase one), and pulls any image
    // of a larger layout by reference; later versions read the index.
    let store = tempfile::tempdir().unwrap();
    let single = dir.join("single");
    write_layout(&dir.join("b.zst"), &single, Some("docker.io/fixture/web:1"));
    run(podman(store.path())
        .args(["load", "--quiet", "-i", "single"])
        .current_dir(&dir));
    assert_podman_holds(store.path(), &originals[0], TAGS[0]);
    for (tag, expected) in TAGS.iter().zip(&originals).skip(1) {
        let name = ImageRef::parse(tag).unwrap().name;
        run(podman(store.path())
            .args(["pull", "--quiet", &format!("oci:layout:{name}")])
            .current_dir(&dir));
        assert_podman_holds(store.path(), expected, tag);
    }
}

/// podman's store holds the image with this config digest and these diff IDs.
#[track_caller]
fn assert_podman_holds(store: &Path, (config, layers): &(String, Vec<String>), tag: &str) {
    let inspected = run(podman(store).args(["image", "inspect", &config["sha256:".len()..]]));
    let inspected: serde_json::Value = serde_json::from_slice(&inspected).unwrap();
    let podman_layers: Vec<String> = inspected[0]["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(&podman_layers, layers, "{tag} through podman");
}

#[test]
fn a_layout_skopeo_writes_packs_and_unpacks_to_the_same_image() {
    if !have("skopeo") {
        return;
    }
    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    fixtures::ensure(&connected);
    offline.wipe();
    let (_dir, dir) = workdir_with_keys();
    let tag = "fixture/web:1";
    connected.docker(&["save", tag, "-o", dir.join("save.tar").to_str().unwrap()]);
    run(Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            "docker-archive:save.tar",
            "oci:layout:fixture/web:1",
        ])
        .current_dir(&dir));
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("layout/index.json")).unwrap()).unwrap();
    let blob = |digest: &serde_json::Value| {
        let hex = &digest.as_str().unwrap()["sha256:".len()..];
        fs::read(dir.join("layout/blobs/sha256").join(hex)).unwrap()
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(&blob(&index["manifests"][0]["digest"])).unwrap();
    assert!(
        manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"),
        "skopeo wrote gzip layers: {manifest}"
    );

    airgap(
        &dir,
        &[
            "pack",
            "--quiet",
            "--archive",
            "layout",
            tag,
            "-o",
            "b.zst",
            "--key",
            "ops.pem",
        ],
    )
    .success();
    airgap(
        &dir,
        &[
            "--host",
            &offline.host,
            "unpack",
            "b.zst",
            "--key",
            "ops.pub.pem",
            "--quiet",
        ],
    )
    .success();
    // skopeo rewrote Docker's config as an OCI one (a new digest); the
    // engine gets exactly the layout's config, over the original layers.
    let config = Digest::of(&blob(&manifest["config"]["digest"])).to_string();
    let (_, layers) = original(&connected, tag);
    assert_eq!(offline.inspect(tag).unwrap().1, layers);
    assert_eq!(offline.config_digest(tag), config);
    let web = fixtures::fixtures()
        .into_iter()
        .find(|f| f.tags.iter().any(|t| t == tag))
        .unwrap();
    assert_eq!(offline.run(tag), web.output);
}

/// A layout of synthetic images, written by the writer.
fn synthetic_layout(dir: &Path, images: &[synthetic::Image]) {
    let mut writer = LayoutWriter::open(dir).unwrap();
    for image in images {
        let record = ImageRecord {
            refs: Vec::new(),
            config: image.config.clone(),
            config_digest: Digest::of(&image.config),
            platform: Platform {
                os: "linux".into(),
                architecture: "amd64".into(),
                variant: None,
            },
            layers: image
                .layers
                .iter()
                .map(|l| writer.put_bytes(l).unwrap())
                .collect(),
        };
        writer.put_bytes(&record.config).unwrap();
        let manifest = writer
            .put_bytes(&airgap::bundle::layout::image_manifest(&record))
            .unwrap();
        let reference = ImageRef::parse(&image.tag).unwrap();
        writer.add_image(&[reference], &manifest, Some(&record.platform));
    }
    writer.finish().unwrap();
}

#[test]
fn pack_reads_a_layout_directory_and_names_what_it_lacks_with_what_it_holds() {
    let (_dir, dir) = workdir_with_keys();
    let base = layer("etc/base", "base layer");
    let images = [
        synthetic::Image::new("fixture/one:1", vec![base.clone(), layer("one", "first")]),
        synthetic::Image::new("fixture/two:1", vec![base, layer("two", "second")]),
    ];
    synthetic_layout(&dir.join("layout"), &images);
    let pack = |refs: &[&str]| {
        let mut args = vec!["pack", "--quiet", "--archive", "layout", "-o", "b.zst"];
        args.extend(["--key", "ops.pem"]);
        args.extend(refs);
        airgap(&dir, &args)
    };

    pack(&["fixture/two:1", "fixture/one:1"]).success();
    airgap(&dir, &["verify", "b.zst", "--key", "ops.pub.pem"]).success();
    let files = bundle_files(&dir.join("b.zst"));
    for image in &images {
        let config = Digest::of(&image.config).blob_path();
        assert_eq!(files[&config], image.config);
        for layer in &image.layers {
            assert_eq!(&files[&Digest::of(layer).blob_path()], layer);
        }
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&files["airgap/manifest.json"]).unwrap();
    assert_eq!(manifest["source"]["kind"], "oci-layout", "{manifest}");

    let run = pack(&["fixture/one:1", "fixture/three:1", "fixture/four:1"]).failure(6);
    assert!(
        run.stderr.contains("fixture/three:1, fixture/four:1")
            && run
                .stderr
                .contains("holds docker.io/fixture/one:1, docker.io/fixture/two:1"),
        "{}",
        run.stderr
    );

    fs::create_dir(dir.join("empty")).unwrap();
    let run = airgap(
        &dir,
        &[
            "pack",
            "--archive",
            "empty",
            "fixture/one:1",
            "-o",
            "c.zst",
            "--key",
            "ops.pem",
        ],
    )
    .failure(2);
    assert!(run.stderr.contains("no oci-layout"), "{}", run.stderr);
    assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
    assert!(!dir.join("c.zst").exists());
}
