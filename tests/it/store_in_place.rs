//! The engine's image store read where its bytes lie. Run as root on the
//! engine's machine (as the tests are), pack reads each image from Docker's
//! containerd content store or overlay2 store and asks the engine for no
//! export; the bundle is byte for byte the one the engine's export gives (a
//! delta's too, with the layer it patches against read there as well), and
//! what it carries arrives and runs. A layer damaged in the store fails the
//! pack, naming the store, and nothing is written or cached.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::engines;
use crate::support::cmd::{Run, airgap, unpack_into, workdir_with_keys, write_inventory_of};
use crate::support::engine::TestEngine;
use crate::support::fixtures;
use crate::support::proxy::EngineProxy;
use crate::support::synthetic::{Image, digest, layer};

const TAGS: [&str; 3] = ["fixture/web:1", "fixture/worker:1", "fixture/app:1"];
/// TAGS with fixture/app:1 updated: a patch against app:1's top layer.
const V2: [&str; 3] = ["fixture/web:1", "fixture/worker:1", "fixture/app:2"];
const CREATED: &str = "2026-01-02T03:04:05Z";

#[test]
fn on_the_containerd_store_pack_reads_the_content_store_and_asks_for_no_export() {
    let (_lock, [engine, offline]) = engines!("b", "a-offline");
    reads_in_place_into_the_exports_bytes(&engine, &offline);
}

#[test]
fn on_overlay2_pack_rebuilds_the_layers_from_their_files_and_asks_for_no_export() {
    let (_lock, [engine, offline]) = engines!("a-connected", "a-offline");
    reads_in_place_into_the_exports_bytes(&engine, &offline);
}

fn reads_in_place_into_the_exports_bytes(engine: &TestEngine, offline: &TestEngine) {
    fixtures::ensure(engine);
    let (_keep, dir) = workdir_with_keys();
    let proxy = EngineProxy::start(engine);

    both_ways(&dir, &proxy, "cold", &TAGS, &["--no-cache"]);

    // A delta leaves out what the site holds, unread, and is the same too.
    pack(&dir, &engine.host, "v1.zst", &TAGS[..1], &["--no-cache"]);
    both_ways(
        &dir,
        &proxy,
        "delta",
        &TAGS,
        &["--no-cache", "--since", "v1.zst"],
    );

    // A delta from an inventory alone takes its patch base from the engine:
    // from the store too.
    write_inventory_of(&dir.join("cold-read.zst"), &dir.join("site.json"));
    let have = ["--no-cache", "--have", "site.json"];
    both_ways(&dir, &proxy, "patched", &V2, &have);
    assert!(
        proxy.exports().iter().any(|e| e.contains("fixture/app:2")),
        "{:?}",
        proxy.exports()
    );
    let patches = airgap::verify::read_head(&dir.join("patched-read.zst"))
        .unwrap()
        .manifest
        .patches;
    assert_eq!(patches.len(), 1, "{patches:?}");

    // A state of its own: the fixed creation time may be older than
    // bundles other tests unpacked there, which would read as a rollback.
    offline.wipe();
    let state = dir.join("site-state");
    let state = ["--state-dir", state.to_str().unwrap()];
    unpack_into(&dir, &offline.host, "cold-read.zst", &state).success();
    for tag in TAGS {
        assert_eq!(
            offline.config_digest(tag),
            engine.config_digest(tag),
            "{tag}: config"
        );
        assert_eq!(
            offline.inspect(tag).map(|(_, layers)| layers),
            engine.inspect(tag).map(|(_, layers)| layers),
            "{tag}: diff IDs"
        );
    }
    let web = fixtures::fixtures()
        .into_iter()
        .find(|f| f.tags.iter().any(|t| t == TAGS[0]))
        .unwrap();
    assert_eq!(offline.run(TAGS[0]), web.output);
}

#[test]
fn a_damaged_blob_in_the_content_store_fails_the_pack_naming_the_store_and_writes_nothing() {
    let (_lock, [engine]) = engines!("b");
    damaged_layer_fails_the_pack(&engine, "containerd content store", |layer| {
        let store = content_root(&engine);
        let blob = store
            .join("blobs/sha256")
            .join(layer.trim_start_matches("sha256:"));
        (store, blob)
    });
}

#[test]
fn a_damaged_file_of_an_overlay2_layer_fails_the_pack_naming_the_store_and_writes_nothing() {
    let (_lock, [engine]) = engines!("a-connected");
    damaged_layer_fails_the_pack(&engine, "overlay2 store", |_| {
        let root = engine.docker(&["info", "--format", "{{.DockerRootDir}}"]);
        let store = Path::new(root.trim()).join("image/overlay2");
        let inspected = engine.docker(&[
            "image",
            "inspect",
            "--format",
            "{{.GraphDriver.Data.UpperDir}}",
            DAMAGED,
        ]);
        (store, Path::new(inspected.trim()).join("payload"))
    });
}

/// The image a damage test makes, its one layer a file `payload`.
const DAMAGED: &str = "storeinplace/damaged:1";

/// Loads an image whose one layer no other image has, damages the file
/// `locate` gives for that layer (with the store it is in), and packs.
fn damaged_layer_fails_the_pack(
    engine: &TestEngine,
    store_kind: &str,
    locate: impl FnOnce(&str) -> (PathBuf, PathBuf),
) {
    let (_keep, dir) = workdir_with_keys();
    // A layer no other image has: the damage must stay with this image.
    let unique = format!("{:?} {}", std::time::SystemTime::now(), std::process::id());
    let tag = DAMAGED;
    let image = Image::new(tag, vec![layer("payload", unique.repeat(4000))]);
    let diff_id = digest(&image.layers[0]);
    crate::support::synthetic::load(engine, &[image]);
    let (store, file) = locate(&diff_id);
    let _damage = Damage::of(&file, engine, tag);

    let run = airgap(
        &dir,
        &[
            "--host",
            &engine.host,
            "pack",
            "-o",
            "out.zst",
            "-k",
            "ops.pem",
            "--cache-dir",
            "cache",
            tag,
        ],
    )
    .failure(1);
    assert!(
        run.stderr
            .contains(&format!("the engine's {store_kind} {}", store.display())),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(&diff_id), "{}", run.stderr);
    assert!(run.stderr.contains("remove it and load"), "{}", run.stderr);
    let left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("out.zst") || name.starts_with('.'))
        .collect();
    assert_eq!(left, Vec::<String>::new(), "nothing written");
    let frames = dir.join("cache/frames");
    let cached: Vec<String> = std::fs::read_dir(&frames)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        cached
            .iter()
            .all(|name| !name.starts_with(diff_id.trim_start_matches("sha256:"))),
        "the damaged layer is not cached: {cached:?}"
    );
}

/// Packs `images` as `NAME-read.zst`, read in place, then as
/// `NAME-exported.zst` through the engine's export; asserts that `proxy`
/// saw no export for the first and some for the second, and that the two
/// are the same bytes.
fn both_ways(dir: &Path, proxy: &EngineProxy, name: &str, images: &[&str], extra: &[&str]) {
    proxy.clear();
    let read = pack(dir, &proxy.host, &format!("{name}-read.zst"), images, extra);
    assert_eq!(proxy.exports(), Vec::<String>::new(), "{name}: no export");
    let mut exporting = vec!["--engine-export"];
    exporting.extend(extra);
    let output = format!("{name}-exported.zst");
    let exported = pack(dir, &proxy.host, &output, images, &exporting);
    assert!(
        !proxy.exports().is_empty(),
        "{name}: {:?}",
        proxy.requests()
    );
    assert_eq!(read, exported, "{name}: the export's bundle, byte for byte");
}

/// Packs `images` from `host` into `output` at [`CREATED`]; gives the bundle's sha256.
fn pack(dir: &Path, host: &str, output: &str, images: &[&str], extra: &[&str]) -> String {
    let mut args = vec!["--host", host, "pack", "-q", "-o", output, "-k", "ops.pem"];
    args.extend(["--created", CREATED]);
    args.extend(extra);
    args.extend(images);
    let _: Run = airgap(dir, &args).success();
    sha256(&dir.join(output))
}

fn sha256(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// The content store of `engine`'s containerd, as containerd reports it.
fn content_root(engine: &TestEngine) -> PathBuf {
    let address = engine.docker(&["info", "--format", "{{.Containerd.Address}}"]);
    let output = std::process::Command::new("ctr")
        .args(["--address", address.trim(), "plugins", "ls", "--detailed"])
        .output()
        .unwrap();
    assert!(output.status.success(), "ctr plugins ls");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (_, content) = text.split_once("io.containerd.content.v1").unwrap();
    let line = content
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("root"))
        .unwrap();
    PathBuf::from(line.trim_start_matches("root").trim())
}

/// A byte flipped in the middle of a file, flipped back (and the image
/// removed) when the test ends, however it ends.
struct Damage<'e> {
    file: PathBuf,
    at: u64,
    engine: &'e TestEngine,
    tag: &'static str,
}

impl<'e> Damage<'e> {
    fn of(file: &Path, engine: &'e TestEngine, tag: &'static str) -> Self {
        let at = std::fs::metadata(file).unwrap().len() / 2;
        flip(file, at);
        Self {
            file: file.to_owned(),
            at,
            engine,
            tag,
        }
    }
}

impl Drop for Damage<'_> {
    fn drop(&mut self) {
        flip(&self.file, self.at);
        let _ = self.engine.docker_output(&["rmi", self.tag]);
    }
}

fn flip(path: &Path, at: u64) {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, at).unwrap();
    file.write_all_at(&[byte[0] ^ 0xff], at).unwrap();
}
