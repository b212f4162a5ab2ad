//! Packing from `docker save` archives, no engine needed: both layouts, the
//! contents that come out, and the exports that must be refused.

use std::fs;
use std::io::Read;
use std::path::Path;

use crate::support::cmd::{airgap, workdir_with_keys};
use crate::support::synthetic::{self, Image, digest, layer};

fn images() -> Vec<Image> {
    let base = layer("etc/base", "base layer");
    vec![
        Image::new(
            "fixture/one:1",
            vec![base.clone(), layer("one", "first app")],
        ),
        Image::new(
            "fixture/two:1",
            vec![base.clone(), layer("two", "second app")],
        ),
        Image::new(
            "registry.local:5000/team/three:2",
            vec![base, layer("three", "third app")],
        ),
    ]
}

/// The bundle's inner tar as (path, content) pairs, in order.
fn inner_entries(bundle: &Path) -> Vec<(String, Vec<u8>)> {
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

fn pack_archive(dir: &Path, archive: &[u8]) -> crate::support::cmd::Run {
    fs::write(dir.join("save.tar"), archive).unwrap();
    let mut args = vec![
        "pack",
        "--quiet",
        "--archive",
        "save.tar",
        "--output",
        "b.zst",
        "--key",
        "ops.pem",
    ];
    let tags: Vec<String> = images().iter().map(|i| i.tag.clone()).collect();
    args.extend(tags.iter().map(String::as_str));
    airgap(dir, &args)
}

fn assert_bundle_holds(dir: &Path, images: &[Image]) {
    airgap(dir, &["verify", "b.zst", "--key", "ops.pub.pem"]).success();
    let entries = inner_entries(&dir.join("b.zst"));
    let blob = |bytes: &[u8]| {
        format!(
            "blobs/sha256/{}",
            digest(bytes).trim_start_matches("sha256:")
        )
    };
    for image in images {
        let config = entries
            .iter()
            .find(|(p, _)| *p == blob(&image.config))
            .expect("config carried");
        assert_eq!(config.1, image.config, "config bytes kept exactly");
        for layer in &image.layers {
            let found: Vec<_> = entries.iter().filter(|(p, _)| *p == blob(layer)).collect();
            assert_eq!(found.len(), 1, "each layer stored once, uncompressed");
            assert_eq!(&found[0].1, layer);
        }
    }
    let docker: serde_json::Value = serde_json::from_slice(
        &entries
            .iter()
            .find(|(p, _)| p == "manifest.json")
            .unwrap()
            .1,
    )
    .unwrap();
    let tags: Vec<&str> = docker
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["RepoTags"][0].as_str().unwrap())
        .collect();
    assert_eq!(
        tags,
        [
            "fixture/one:1",
            "fixture/two:1",
            "registry.local:5000/team/three:2"
        ]
    );
    let index: serde_json::Value =
        serde_json::from_slice(&entries.iter().find(|(p, _)| p == "index.json").unwrap().1)
            .unwrap();
    let names: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(
        names,
        [
            "docker.io/fixture/one:1",
            "docker.io/fixture/two:1",
            "registry.local:5000/team/three:2"
        ]
    );
}

#[test]
fn legacy_layout_with_symlinked_layers_packs_each_blob_once() {
    let (_dir, dir) = workdir_with_keys();
    let images = images();
    pack_archive(&dir, &synthetic::legacy_archive(&images)).success();
    assert_bundle_holds(&dir, &images);
}

#[test]
fn oci_layout_with_gzip_layers_packs_them_uncompressed() {
    let (_dir, dir) = workdir_with_keys();
    let images = images();
    pack_archive(&dir, &synthetic::oci_archive(&images, &[])).success();
    assert_bundle_holds(&dir, &images);
}

/// moby issue 49473: a containerd-store save that silently leaves layers out.
#[test]
fn an_export_lacking_a_layer_is_an_error_not_a_bundle() {
    let (_dir, dir) = workdir_with_keys();
    let run = pack_archive(&dir, &synthetic::oci_archive(&images(), &[1])).failure(1);
    assert!(run.stderr.contains("lacks its layer"), "{}", run.stderr);
    assert!(!dir.join("b.zst").exists());
    assert_no_leftovers(&dir);
}

#[test]
fn a_layer_that_does_not_match_its_diff_id_is_an_error() {
    let (_dir, dir) = workdir_with_keys();
    let mut images = images();
    images[1].layers[1] = layer("two", "tampered app");
    let mut archive_images = images;
    let honest = Image::new(
        "fixture/two:1",
        vec![layer("etc/base", "base layer"), layer("two", "second app")],
    );
    archive_images[1].config = honest.config;
    let run = pack_archive(&dir, &synthetic::legacy_archive(&archive_images)).failure(1);
    assert!(run.stderr.contains("hashes to"), "{}", run.stderr);
    assert!(!dir.join("b.zst").exists());
    assert_no_leftovers(&dir);
}

fn assert_no_leftovers(dir: &Path) {
    let left: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "temporary files left behind: {left:?}");
}

/// zstd skippable frame magic 0x184D2A50: the padding a writer leaves where
/// the head did not fill the room kept for it.
const PADDING_MAGIC: [u8; 4] = [0x50, 0x2a, 0x4d, 0x18];

fn starts_with_padded_head(bundle: &Path) -> bool {
    let bytes = fs::read(bundle).unwrap();
    bytes[..bytes.len().min(64 << 10)]
        .windows(4)
        .any(|w| w == PADDING_MAGIC)
}

/// A body large beside the room left for the head is written in place and
/// the head goes in front of it, padded; a small bundle is assembled by
/// copying and carries no padding. Both verify, and unpack admits the large
/// one by its seal and reads every entry of it.
#[test]
fn a_large_body_is_written_in_place_and_a_small_bundle_stays_compact() {
    use airgap::progress::{NoProgress, Task};
    let (_dir, dir) = workdir_with_keys();
    pack_archive(&dir, &synthetic::legacy_archive(&images())).success();
    assert!(!starts_with_padded_head(&dir.join("b.zst")));

    let mut images = images();
    images[0] = Image::new(
        "fixture/one:1",
        vec![
            layer("etc/base", "base layer"),
            layer("one", synthetic::noise(40 << 20)),
        ],
    );
    pack_archive(&dir, &synthetic::legacy_archive(&images)).success();
    assert!(starts_with_padded_head(&dir.join("b.zst")));
    assert_bundle_holds(&dir, &images);
    let policy = airgap::verify::TrustPolicy {
        keys: vec![airgap::trust::keys::PublicKey::read(&dir.join("ops.pub.pem")).unwrap()],
        allow_unsigned: false,
    };
    let admitted = airgap::verify::admit(&dir.join("b.zst"), &policy, &NoProgress).unwrap();
    let mut read = 0;
    admitted
        .read_entries(&NoProgress, Task::Loading, |_, _| {
            read += 1;
            Ok::<(), airgap::verify::VerifyError>(())
        })
        .unwrap();
    assert_eq!(read, admitted.manifest().entries.len());
}
