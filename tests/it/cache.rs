//! The layer cache and byte-identical bundles: a pack from a warm cache
//! writes the same bytes as a cold one without asking the engine for an
//! export; a damaged entry is read again, never shipped; a delta exports
//! only the image that changed; `airgap cache ls|prune`.
//!
//! Exports are counted by a proxy between airgap and the engine's socket
//! (`support::proxy`). The packs here go through the engine's export
//! (`--engine-export`), which is what the cache spares; run as root, pack
//! would otherwise read the engine's store in place and export nothing
//! (`store_in_place.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::engines;
use crate::support::cmd::{Run, airgap, unpack_into, workdir_with_keys, write_inventory_of};
use crate::support::engine::TestEngine;
use crate::support::fixtures;
use crate::support::proxy::EngineProxy;

const EPOCH: &str = "1700000000";
const STACK: [&str; 4] = [
    "fixture/web:1",
    "fixture/api:1",
    "fixture/worker:1",
    "fixture/app:1",
];

/// Runs airgap with SOURCE_DATE_EPOCH set.
fn airgap_at_epoch(dir: &Path, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_airgap"))
        .args(args)
        .current_dir(dir)
        .env_remove("DOCKER_HOST")
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .env("XDG_CACHE_HOME", dir.join("xdg-unused"))
        .env("AIRGAP_STATE_DIR", crate::support::cmd::state_dir())
        .output()
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Packs `images` from `host` into `output` through the engine's export,
/// returns the bundle's sha256.
fn pack(dir: &Path, host: &str, output: &str, images: &[&str], extra: &[&str]) -> (String, Run) {
    let mut through_the_export = vec!["--engine-export"];
    through_the_export.extend(extra);
    pack_reading_in_place(dir, host, output, images, &through_the_export)
}

/// [`pack`], reading the engine's store in place where it can.
fn pack_reading_in_place(
    dir: &Path,
    host: &str,
    output: &str,
    images: &[&str],
    extra: &[&str],
) -> (String, Run) {
    let mut args = vec!["--host", host, "pack", "-q", "-o", output, "-k", "ops.pem"];
    args.extend(extra);
    args.extend(images);
    let run = airgap_at_epoch(dir, &args).success();
    (sha256(&dir.join(output)), run)
}

fn sha256(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

fn warm_cache_packs_the_same_bytes_without_an_export(engine: &TestEngine) {
    fixtures::ensure(engine);
    let (_keep, dir) = workdir_with_keys();
    let proxy = EngineProxy::start(engine);
    let cold_flags = ["--no-cache", "--threads", "1"];
    let (cold, _) = pack_reading_in_place(&dir, &engine.host, "cold.zst", &STACK, &cold_flags);

    let cache = ["--cache-dir", "cache"];
    // Through the export, where the cold pack read the store in place: the
    // three must agree.
    let (filling, _) = pack(&dir, &proxy.host, "filling.zst", &STACK, &cache);
    assert!(
        !proxy.exports().is_empty(),
        "the proxy sees the export that fills the cache: {:?}",
        proxy.requests()
    );
    proxy.clear();
    let (warm, run) = pack(&dir, &proxy.host, "warm.zst", &STACK, &cache);
    assert_eq!(
        proxy.exports(),
        Vec::<String>::new(),
        "a warm cache exports nothing on {}",
        engine.name
    );
    assert!(
        proxy.requests().iter().any(|r| r.contains("/json")),
        "the images were still inspected: {:?}",
        proxy.requests()
    );
    assert!(
        run.stdout.contains("exported 0 of 4 images"),
        "{}",
        run.stdout
    );
    let created = airgap::verify::read_head(&dir.join("warm.zst"))
        .unwrap()
        .manifest
        .created;
    assert_eq!(created, "2023-11-14T22:13:20Z", "from SOURCE_DATE_EPOCH");
    assert_eq!(
        filling, cold,
        "filling the cache changes no byte ({})",
        engine.name
    );
    assert_eq!(
        warm, cold,
        "a pack from the cache changes no byte ({})",
        engine.name
    );
}

#[test]
fn a_warm_cache_packs_the_same_bytes_as_a_cold_pack_without_an_export() {
    let (_lock, [a, b]) = engines!("a-connected", "b");
    warm_cache_packs_the_same_bytes_without_an_export(&a);
    warm_cache_packs_the_same_bytes_without_an_export(&b);
}

/// The cache's frame entry of layer `hex` (named HEX.PROFILE).
fn frame_entry(cache: &Path, hex: &str) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(cache.join("frames"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{hex}."))
        })
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

/// The digest of the layer a frame entry holds: the entry is a zstd
/// stream (the frame, then a skippable trailer) of the layer's tar entry.
fn layer_digest_in_frame(path: &Path) -> String {
    let decoded = zstd::stream::decode_all(std::fs::File::open(path).unwrap()).unwrap();
    let mut archive = tar::Archive::new(&decoded[..]);
    let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
    let mut layer = Vec::new();
    std::io::Read::read_to_end(&mut entry, &mut layer).unwrap();
    airgap::digest::Digest::of(&layer).hex().to_owned()
}

/// Flips a byte in the middle of a cache entry, keeping its size.
fn damage(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_damaged_cache_entry_is_read_again_from_the_engine_and_never_shipped() {
    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    fixtures::ensure(&connected);
    let (_keep, dir) = workdir_with_keys();
    let images = ["fixture/app:1", "fixture/web:1"];
    let (cold, _) = pack(&dir, &connected.host, "cold.zst", &images, &["--no-cache"]);
    let cache = ["--cache-dir", "cache"];
    pack(&dir, &connected.host, "filling.zst", &images, &cache);

    let (_, app_layers) = connected.inspect("fixture/app:1").unwrap();
    let top = app_layers.last().unwrap().trim_start_matches("sha256:");
    let entry = frame_entry(&dir.join("cache"), top);
    damage(&entry);
    let proxy = EngineProxy::start(&connected);
    let (again, run) = pack(&dir, &proxy.host, "again.zst", &images, &cache);
    let exports = proxy.exports();
    assert_eq!(exports.len(), 1, "{exports:?}");
    assert!(exports[0].contains("fixture/app:1"), "{exports:?}");
    assert!(!exports[0].contains("fixture/web:1"), "{exports:?}");
    assert!(
        run.stdout.contains("exported 1 of 2 images"),
        "{}",
        run.stdout
    );
    assert_eq!(again, cold, "the damaged entry was not shipped");
    assert_eq!(
        layer_digest_in_frame(&frame_entry(&dir.join("cache"), top)),
        top,
        "the entry was read again from the engine"
    );

    offline.wipe();
    airgap(
        &dir,
        &[
            "--host",
            &offline.host,
            "unpack",
            "-q",
            "again.zst",
            "--key",
            "ops.pub.pem",
        ],
    )
    .success();
    for image in images {
        let (id, layers) = connected.inspect(image).unwrap();
        let (_, offline_layers) = offline.inspect(image).unwrap();
        assert_eq!(offline_layers, layers, "{image}");
        assert_eq!(offline.config_digest(image), id, "{image}");
    }
}

#[test]
fn a_damaged_config_in_the_cache_is_read_again_too() {
    let (_lock, [connected]) = engines!("a-connected");
    fixtures::ensure(&connected);
    let (_keep, dir) = workdir_with_keys();
    let images = ["fixture/worker:1"];
    let cache = ["--cache-dir", "cache"];
    let (first, _) = pack(&dir, &connected.host, "first.zst", &images, &cache);
    let proxy = EngineProxy::start(&connected);
    let (warm, _) = pack(&dir, &proxy.host, "warm.zst", &images, &cache);
    assert!(proxy.exports().is_empty(), "{:?}", proxy.requests());
    assert_eq!(warm, first);

    let config = connected.config_digest("fixture/worker:1");
    let entry = dir
        .join("cache/configs")
        .join(config.trim_start_matches("sha256:"));
    damage(&entry);
    let (again, _) = pack(&dir, &proxy.host, "again.zst", &images, &cache);
    assert_eq!(proxy.exports().len(), 1, "{:?}", proxy.requests());
    assert_eq!(again, first, "the damaged config was not shipped");
    assert_eq!(format!("sha256:{}", sha256(&entry)), config, "read again");
}

/// The stack of the --since delta tests, and its update: fixture/app
/// changed, the others not.
const V1: [&str; 3] = ["fixture/app:1", "fixture/web:1", "fixture/worker:1"];
const V2: [&str; 3] = ["fixture/app:2", "fixture/web:1", "fixture/worker:1"];

#[test]
fn a_delta_since_an_earlier_bundle_exports_only_the_changed_image() {
    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    fixtures::ensure(&connected);
    let (_keep, dir) = workdir_with_keys();
    let cache = ["--cache-dir", "cache"];
    pack(&dir, &connected.host, "v1.zst", &V1, &cache);

    let proxy = EngineProxy::start(&connected);
    let since = ["--cache-dir", "cache", "--since", "v1.zst"];
    let (delta, run) = pack(&dir, &proxy.host, "v2.zst", &V2, &since);
    assert_only_app_2_exported(&proxy, &run);

    // Without the cache, the configs come from v1.zst: still one export.
    proxy.clear();
    let (uncached, run) = pack(
        &dir,
        &proxy.host,
        "v2-uncached.zst",
        &V2,
        &["--no-cache", "--since", "v1.zst"],
    );
    assert_only_app_2_exported(&proxy, &run);

    let cold = pack_exporting_every_image(&dir, &proxy);
    assert_eq!(delta, cold, "the bundle is what it would have been");
    assert_eq!(uncached, cold, "configs from v1.zst change no byte");

    offline.wipe();
    let state = dir.join("site-state");
    let unpack = |bundle: &str| {
        let state = ["--state-dir", state.to_str().unwrap()];
        unpack_into(&dir, &offline.host, bundle, &state).success();
    };
    unpack("v1.zst");

    // The site's own inventory carries the configs unpack kept and the
    // layer sizes it counted: one export with neither cache nor bundle.
    let inventory = take_inventory(&dir, &offline, &state);
    for image in V1 {
        let (id, _) = connected.inspect(image).unwrap();
        assert!(
            inventory["configs"][&id].is_string(),
            "{image}'s config: {inventory}"
        );
    }
    assert_have_json_spares_the_exports(&dir, &proxy, &connected, &cold);

    unpack("v2.zst");
    let (id, layers) = connected.inspect("fixture/app:2").unwrap();
    assert_eq!(offline.inspect("fixture/app:2").unwrap(), (id, layers));
}

/// Docker's containerd image store names an image by its manifest, not
/// its config: the configs of the --since bundle still spare the exports,
/// through the engine's own containerd.
#[test]
fn a_delta_since_an_earlier_bundle_on_the_containerd_store_exports_only_the_changed_image() {
    let (_lock, [engine, offline]) = engines!("b", "a-offline");
    fixtures::ensure(&engine);
    let (_keep, dir) = workdir_with_keys();
    pack(&dir, &engine.host, "v1.zst", &V1, &["--no-cache"]);

    let proxy = EngineProxy::start(&engine);
    let since = ["--no-cache", "--since", "v1.zst"];
    let (delta, run) = pack(&dir, &proxy.host, "v2.zst", &V2, &since);
    assert_only_app_2_exported(&proxy, &run);

    let cold = pack_exporting_every_image(&dir, &proxy);
    assert_eq!(delta, cold, "the bundle is what it would have been");

    // The configs a site's inventory carries serve the same way.
    offline.wipe();
    let state = dir.join("site-state");
    let state_option = ["--state-dir", state.to_str().unwrap()];
    unpack_into(&dir, &offline.host, "v1.zst", &state_option).success();
    take_inventory(&dir, &offline, &state);
    assert_have_json_spares_the_exports(&dir, &proxy, &engine, &cold);
}

/// Asserts that the one export `proxy` saw was of fixture/app:2 alone (of
/// the three images packed), and that `run` said so.
fn assert_only_app_2_exported(proxy: &EngineProxy, run: &Run) {
    let exports = proxy.exports();
    assert_eq!(exports.len(), 1, "one export: {exports:?}");
    assert!(exports[0].contains("fixture/app:2"), "{exports:?}");
    for unchanged in ["fixture/web:1", "fixture/worker:1", "fixture/app:1"] {
        assert!(!exports[0].contains(unchanged), "{unchanged}: {exports:?}");
    }
    assert!(
        run.stdout.contains("exported 1 of 3 images"),
        "{}",
        run.stdout
    );
}

/// The same delta as a pack of [`V2`] that exports every image: the site
/// told by an inventory of what v1.zst holds, which carries no configs.
/// Gives the bundle's sha256.
fn pack_exporting_every_image(dir: &Path, proxy: &EngineProxy) -> String {
    write_inventory_of(&dir.join("v1.zst"), &dir.join("site.json"));
    proxy.clear();
    let (cold, _) = pack(
        dir,
        &proxy.host,
        "v2-cold.zst",
        &V2,
        &["--no-cache", "--have", "site.json"],
    );
    let exports = proxy.exports();
    assert!(
        exports.iter().any(|e| V2.iter().all(|i| e.contains(i))),
        "the reference pack exports every image: {exports:?}"
    );
    cold
}

/// Packs [`V2`] from `engine` (through `proxy`) with neither cache nor
/// bundle, the site told by `have.json`, and asserts that the configs it
/// carries spare the exports: besides fixture/app:2, only the layer to
/// patch against (fixture/app:1, by ID) comes from the engine, and the
/// bundle is `cold`'s.
fn assert_have_json_spares_the_exports(
    dir: &Path,
    proxy: &EngineProxy,
    engine: &TestEngine,
    cold: &str,
) {
    proxy.clear();
    let (from_inventory, run) = pack(
        dir,
        &proxy.host,
        "v2-inventory.zst",
        &V2,
        &["--no-cache", "--have", "have.json"],
    );
    let exports = proxy.exports();
    let (old_id, _) = engine.inspect("fixture/app:1").unwrap();
    assert_eq!(exports.len(), 2, "{exports:?}");
    assert!(exports[0].contains(&old_id), "the patch base: {exports:?}");
    assert!(exports[1].contains("fixture/app:2"), "{exports:?}");
    for unchanged in ["fixture/web:1", "fixture/worker:1"] {
        assert!(
            exports.iter().all(|e| !e.contains(unchanged)),
            "{unchanged}: {exports:?}"
        );
    }
    assert!(
        run.stdout.contains("exported 1 of 3 images"),
        "{}",
        run.stdout
    );
    assert_eq!(
        from_inventory, cold,
        "configs from the inventory change no byte"
    );
}

/// Writes `site`'s inventory, with the configs unpack kept in `state`, to
/// `have.json`; gives it as JSON.
fn take_inventory(dir: &Path, site: &TestEngine, state: &Path) -> serde_json::Value {
    airgap(
        dir,
        &[
            "--host",
            &site.host,
            "inventory",
            "--state-dir",
            state.to_str().unwrap(),
            "-o",
            "have.json",
        ],
    )
    .success();
    serde_json::from_slice(&std::fs::read(dir.join("have.json")).unwrap()).unwrap()
}

#[test]
fn the_creation_time_comes_from_created_or_source_date_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let bad = airgap_at_epoch(
        dir.path(),
        &[
            "pack",
            "-o",
            "x.zst",
            "--unsigned",
            "--created",
            "yesterday",
            "a:1",
        ],
    )
    .failure(2);
    assert!(bad.stderr.contains("--created"), "{}", bad.stderr);
    assert!(!dir.path().join("x.zst").exists());
}

fn write_entry(cache: &Path, kind: &str, fill: u8, size: usize, age_days: u64) -> PathBuf {
    let mut name = format!("{fill:02x}").repeat(32);
    if kind == "frames" {
        name.push_str(".zstd10504-l6-r1");
    }
    let path = cache.join(kind).join(name);
    std::fs::write(&path, vec![fill; size]).unwrap();
    let when = std::time::SystemTime::now() - std::time::Duration::from_secs(age_days * 86400);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(when)
        .unwrap();
    path
}

#[test]
fn cache_ls_lists_and_prune_evicts_the_least_recently_used() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let listed = airgap(dir.path(), &["cache", "ls", "--cache-dir", "cache"]).success();
    assert!(listed.stdout.contains("0 entries"), "{}", listed.stdout);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "made private");

    let oldest = write_entry(&cache, "frames", 0xaa, 3000, 3);
    let middle = write_entry(&cache, "configs", 0xbb, 2000, 2);
    let newest = write_entry(&cache, "frames", 0xcc, 1000, 1);
    let listed = airgap(dir.path(), &["cache", "ls", "--cache-dir", "cache"]).success();
    let lines: Vec<&str> = listed.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", listed.stdout);
    assert!(lines[0].starts_with("layer") && lines[0].contains(&"aa".repeat(32)));
    assert!(lines[1].starts_with("config") && lines[1].contains(&"bb".repeat(32)));
    assert!(lines[3].contains("3 entries, 6.0 kB"), "{}", lines[3]);

    let pruned = airgap(
        dir.path(),
        &["cache", "prune", "--cache-dir", "cache", "--max", "3K"],
    )
    .success();
    assert!(
        pruned.stdout.contains("removed 1 entries"),
        "{}",
        pruned.stdout
    );
    assert!(!oldest.exists() && middle.exists() && newest.exists());

    airgap(
        dir.path(),
        &["cache", "prune", "--cache-dir", "cache", "--all"],
    )
    .success();
    assert!(!middle.exists() && !newest.exists());

    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let refused = airgap(dir.path(), &["cache", "ls", "--cache-dir", "cache"]).failure(1);
    assert!(
        refused.stderr.contains("writable by group or others"),
        "{}",
        refused.stderr
    );
}

/// Config digest and diff IDs of `image` on each engine must be the same.
fn assert_arrived(image: &str, from: &TestEngine, into: &TestEngine) {
    assert_eq!(
        into.inspect(image).map(|(_, layers)| layers),
        from.inspect(image).map(|(_, layers)| layers),
        "{image}'s layers on {}",
        into.name
    );
    assert_eq!(
        into.config_digest(image),
        from.config_digest(image),
        "{image}"
    );
}

#[test]
fn images_sharing_little_are_exported_side_by_side_into_the_same_bytes() {
    let (_lock, [connected, podman, offline]) = engines!("a-connected", "podman", "a-offline");
    // Docker 20.10 and Podman stage each export whole before its first
    // byte, so two exports staged at once save time.
    exported_side_by_side(&connected, &offline);
    exported_side_by_side(&podman, &offline);
}

fn exported_side_by_side(source: &TestEngine, offline: &TestEngine) {
    use crate::support::synthetic::{Image, layer, noise};
    // Two images with nothing in common.
    let one = Image::new("sidebyside/one:1", vec![layer("one", noise(3 << 20))]).with_history();
    let two = Image::new("sidebyside/two:1", vec![layer("two", noise(3 << 20))]).with_history();
    crate::support::synthetic::load(source, &[one, two]);
    let images = ["sidebyside/one:1", "sidebyside/two:1"];
    let (_keep, dir) = workdir_with_keys();
    let proxy = EngineProxy::start(source);
    let (cold, _) = pack(&dir, &proxy.host, "cold.zst", &images, &["--no-cache"]);
    let mut exports = proxy.exports();
    exports.sort();
    assert_eq!(
        exports.len(),
        2,
        "one export per image on {}: {exports:?}",
        source.name
    );
    assert!(
        exports[0].contains(images[0]) && !exports[0].contains(images[1]),
        "{exports:?}"
    );
    assert!(
        exports[1].contains(images[1]) && !exports[1].contains(images[0]),
        "{exports:?}"
    );

    // The bytes are those a pack that exports nothing writes.
    let cache = ["--cache-dir", "cache"];
    pack(&dir, &source.host, "filling.zst", &images, &cache);
    proxy.clear();
    let (warm, _) = pack(&dir, &proxy.host, "warm.zst", &images, &cache);
    assert!(proxy.exports().is_empty(), "{:?}", proxy.exports());
    assert_eq!(
        cold, warm,
        "exports side by side change no byte of the bundle"
    );

    for image in images {
        offline.docker_output(&["rmi", "-f", image]);
    }
    unpack_into(&dir, &offline.host, "cold.zst", &[]).success();
    for image in images {
        assert_arrived(image, source, offline);
    }
}

#[test]
fn a_layer_the_size_of_a_left_out_one_is_exported_again_not_lost() {
    use crate::support::synthetic::{Image, layer};
    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    // Two distinct layers of one size: a delta leaving out the first only
    // hashes a layer of that size, and the second turns out to be needed.
    let first = layer("f", "x".repeat(2 << 20));
    let second = layer("f", "y".repeat(2 << 20));
    assert_eq!(first.len(), second.len());
    assert_ne!(first, second);
    let base = Image::new("skim/base:1", vec![first.clone()]).with_history();
    let top = Image::new("skim/top:1", vec![first, second]).with_history();
    crate::support::synthetic::load(&connected, &[base, top]);
    let (_keep, dir) = workdir_with_keys();
    pack(
        &dir,
        &connected.host,
        "base.zst",
        &["skim/base:1"],
        &["--no-cache"],
    );

    let proxy = EngineProxy::start(&connected);
    let since = ["--no-cache", "--since", "base.zst", "-vv"];
    let (_, run) = pack(&dir, &proxy.host, "top.zst", &["skim/top:1"], &since);
    assert_eq!(
        proxy.exports().len(),
        2,
        "exported again: {:?}",
        proxy.exports()
    );
    assert!(
        run.stderr.contains("saving skim/top:1 again"),
        "{}",
        run.stderr
    );

    for image in ["skim/top:1", "skim/base:1"] {
        offline.docker_output(&["rmi", "-f", image]);
    }
    for bundle in ["base.zst", "top.zst"] {
        unpack_into(&dir, &offline.host, bundle, &[]).success();
    }
    assert_arrived("skim/top:1", &connected, &offline);
}

#[test]
fn a_history_the_engine_cannot_show_only_costs_the_exports_side_by_side() {
    use crate::support::synthetic::{Image, layer};
    let (_lock, [podman]) = engines!("podman");
    // Podman 4.3 fails (HTTP 500) to show a history entry without a time.
    let untimed = |tag: &str, file: &str| {
        let mut image = Image::new(tag, vec![layer(file, file.repeat(1000))]);
        let mut config: serde_json::Value = serde_json::from_slice(&image.config).unwrap();
        config["history"] = serde_json::json!([{ "created_by": "untimed" }]);
        image.config = serde_json::to_vec(&config).unwrap();
        image
    };
    crate::support::synthetic::load(
        &podman,
        &[
            untimed("untimed/one:1", "one"),
            untimed("untimed/two:1", "two"),
        ],
    );
    let history = podman.docker_output(&["history", "untimed/one:1"]);
    assert!(
        !history.status.success(),
        "the premise: Podman cannot show it"
    );
    let (_keep, dir) = workdir_with_keys();
    let images = ["untimed/one:1", "untimed/two:1"];
    let (_, run) = pack(&dir, &podman.host, "untimed.zst", &images, &["--no-cache"]);
    assert!(run.stdout.contains("untimed/two:1"), "{}", run.stdout);
    airgap(&dir, &["verify", "untimed.zst", "--key", "ops.pub.pem"]).success();
}
