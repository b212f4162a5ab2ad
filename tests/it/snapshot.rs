//! Container snapshots (`pack --container`, `--flatten`) and root filesystem
//! imports (`pack --import`), with `--change`: the images they make unpack
//! into Docker 20.10 and the containerd store and run.

use std::io::Read;
use std::path::Path;
use std::process::Command;

use crate::engines;
use crate::support::cmd::airgap;
use crate::support::engine::TestEngine;
use crate::support::fixtures;

/// What the container writes by hand; a container of its snapshot prints
/// the file (it exists now) and ends.
const HAND: &str = "if [ -f /made-by-hand ]; then cat /made-by-hand; else echo hand-made > /made-by-hand; sleep 600; fi";

/// Starts a container of the fixture base that writes a file by hand and
/// keeps running, with a named volume.
fn start_hand_made(engine: &TestEngine, name: &str) {
    let _ = engine.docker_output(&["rm", "-f", name]);
    engine.docker(&[
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "none",
        "-v",
        "snapshot-data:/data",
        "fixture/base:1",
        "sh",
        "-c",
        HAND,
    ]);
    // Until the file is written.
    for _ in 0..50 {
        let probe = engine.docker_output(&["exec", name, "cat", "/made-by-hand"]);
        if probe.status.success() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{name} did not write its file");
}

fn unpack(into: &TestEngine, dir: &Path, bundle: &str) {
    into.wipe();
    airgap(
        dir,
        &[
            "--host",
            &into.host,
            "unpack",
            bundle,
            "--allow-unsigned",
            "--quiet",
        ],
    )
    .success();
}

fn config_of(engine: &TestEngine, reference: &str) -> serde_json::Value {
    let inspected: serde_json::Value =
        serde_json::from_str(&engine.docker(&["image", "inspect", reference])).unwrap();
    inspected[0]["Config"].clone()
}

/// Paths in the one layer blob of `bundle` that is not `except`.
fn layer_paths(bundle: &Path, except: &[String]) -> Vec<String> {
    let decoder = zstd::stream::read::Decoder::new(std::fs::File::open(bundle).unwrap()).unwrap();
    let mut outer = tar::Archive::new(decoder);
    for entry in outer.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        let Some(hex) = path.strip_prefix("blobs/sha256/") else {
            continue;
        };
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        if except.iter().any(|e| e.ends_with(hex)) || !is_tar(&bytes) {
            continue;
        }
        return tar::Archive::new(&bytes[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
    }
    panic!("no layer in {}", bundle.display());
}

fn is_tar(bytes: &[u8]) -> bool {
    bytes.len() > 262 && &bytes[257..262] == b"ustar"
}

#[test]
fn a_running_containers_snapshot_keeps_its_command_file_and_base_layers_in_a_and_b() {
    let (_lock, [connected, offline, containerd]) = engines!("a-connected", "a-offline", "b");
    fixtures::ensure(&connected);
    start_hand_made(&connected, "hand1");
    let images_before = connected.image_ids();
    let dir = tempfile::tempdir().unwrap();
    let run = airgap(
        dir.path(),
        &[
            "--host",
            &connected.host,
            "pack",
            "--container",
            "hand1=hand/snap:1",
            "--unsigned",
            "-o",
            "snap.zst",
        ],
    )
    .success();
    // The differing command and the volume are named.
    assert!(
        run.stderr.contains("hand1 runs with command") && run.stderr.contains("cat"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("volume snapshot-data (at /data) is not in the snapshot"),
        "{}",
        run.stderr
    );
    // Paused, never stopped; the temporary image is gone, no tag was added.
    assert_eq!(
        connected
            .docker(&["inspect", "-f", "{{.State.Running}}", "hand1"])
            .trim(),
        "true"
    );
    assert_eq!(connected.image_ids(), images_before);
    let (_, base_layers) = connected.inspect("fixture/base:1").unwrap();

    for engine in [&offline, &containerd] {
        unpack(engine, dir.path(), "snap.zst");
        let (_, layers) = engine.inspect("hand/snap:1").unwrap();
        assert_eq!(layers.len(), base_layers.len() + 1, "{}", engine.name);
        assert_eq!(
            layers[..base_layers.len()],
            base_layers[..],
            "{}",
            engine.name
        );
        assert_eq!(
            config_of(engine, "hand/snap:1")["Cmd"],
            serde_json::json!(["sh", "-c", HAND]),
            "{}",
            engine.name
        );
        assert_eq!(engine.run("hand/snap:1"), "hand-made", "{}", engine.name);
        // The volume's mount point is the image's; its data is not.
        let listed = engine.docker(&["run", "--rm", "hand/snap:1", "ls", "-A", "/data"]);
        assert_eq!(listed.trim(), "", "{}", engine.name);
    }
    connected.docker(&["rm", "-f", "hand1"]);
}

#[test]
fn a_flattened_snapshot_is_one_layer_without_placeholders_and_change_sets_its_command() {
    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    fixtures::ensure(&connected);
    start_hand_made(&connected, "hand2");
    let images_before = connected.image_ids();
    let dir = tempfile::tempdir().unwrap();
    let run = airgap(
        dir.path(),
        &[
            "--host",
            &connected.host,
            "pack",
            "--container",
            "hand2",
            "--flatten",
            "--change",
            r#"CMD ["cat", "/made-by-hand"]"#,
            "--unsigned",
            "-o",
            "flat.zst",
        ],
    )
    .success();
    assert!(
        run.stderr.contains("flattened into one layer"),
        "{}",
        run.stderr
    );
    assert_eq!(connected.image_ids(), images_before);
    let paths = layer_paths(&dir.path().join("flat.zst"), &[]);
    assert!(paths.iter().any(|p| p == "made-by-hand"), "{paths:?}");
    for placeholder in [".dockerenv", "etc/hosts", "etc/hostname", "etc/resolv.conf"] {
        assert!(
            !paths.iter().any(|p| p == placeholder),
            "{placeholder} in {paths:?}"
        );
    }

    unpack(&offline, dir.path(), "flat.zst");
    // The default name: the container's, tagged snapshot.
    let (_, layers) = offline.inspect("hand2:snapshot").unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(
        config_of(&offline, "hand2:snapshot")["Cmd"],
        serde_json::json!(["cat", "/made-by-hand"])
    );
    assert_eq!(offline.run("hand2:snapshot"), "hand-made");
    connected.docker(&["rm", "-f", "hand2"]);
}

#[test]
fn an_exported_root_filesystem_imports_plain_and_zstd_with_a_command_and_runs() {
    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    fixtures::ensure(&connected);
    start_hand_made(&connected, "hand3");
    let dir = tempfile::tempdir().unwrap();
    let export = format!(
        "docker -H '{}' export hand3 > rootfs.tar && zstd -q rootfs.tar -o rootfs.tar.zst",
        connected.host
    );
    let made = Command::new("sh")
        .arg("-c")
        .arg(export)
        .current_dir(dir.path())
        .env_remove("DOCKER_HOST")
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    connected.docker(&["rm", "-f", "hand3"]);

    // No engine is needed to import.
    airgap(
        dir.path(),
        &[
            "pack",
            "--import",
            "rootfs.tar=imported/plain:1",
            "--import",
            "rootfs.tar.zst=imported/zstd:1",
            "--change",
            r#"CMD ["cat", "/made-by-hand"]"#,
            "--change",
            "ENV PATH=/bin:/usr/bin",
            "--unsigned",
            "-o",
            "imported.zst",
        ],
    )
    .success();
    unpack(&offline, dir.path(), "imported.zst");
    let (_, plain) = offline.inspect("imported/plain:1").unwrap();
    let (_, zstd) = offline.inspect("imported/zstd:1").unwrap();
    assert_eq!(plain.len(), 1);
    assert_eq!(plain, zstd, "the same files make the same layer");
    assert_eq!(offline.run("imported/plain:1"), "hand-made");
    assert_eq!(offline.run("imported/zstd:1"), "hand-made");
}

/// A small root filesystem tar, as `docker export` would write one.
fn rootfs_tar(path: &Path) {
    let mut builder = tar::Builder::new(std::fs::File::create(path).unwrap());
    let mut header = tar::Header::new_gnu();
    header.set_size(3);
    header.set_mode(0o644);
    builder
        .append_data(&mut header, "etc/motd", &b"hi\n"[..])
        .unwrap();
    builder.finish().unwrap();
}

#[test]
fn an_import_without_a_command_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    rootfs_tar(&dir.path().join("rootfs.tar"));
    let run = airgap(
        dir.path(),
        &[
            "pack",
            "--import",
            "rootfs.tar=imported/none:1",
            "--change",
            "ENV A=1",
            "--unsigned",
            "-o",
            "none.zst",
        ],
    )
    .failure(2);
    assert!(
        run.stderr.contains("No command specified"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--change 'CMD"), "{}", run.stderr);
    assert!(!dir.path().join("none.zst").exists());
}

#[test]
fn a_bad_change_is_a_usage_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    rootfs_tar(&dir.path().join("rootfs.tar"));
    let run = airgap(
        dir.path(),
        &[
            "pack",
            "--import",
            "rootfs.tar=imported/bad:1",
            "--change",
            "RUN make",
            "--unsigned",
            "-o",
            "bad.zst",
        ],
    )
    .failure(2);
    assert!(run.stderr.contains("RUN"), "{}", run.stderr);
    assert!(run.stderr.contains("--change"), "{}", run.stderr);
    assert!(!dir.path().join("bad.zst").exists());
}

/// One pack takes an engine image by name, a container and a root
/// filesystem together; and an archive with no names takes everything it
/// holds beside a container. Each arrives as it left and runs.
#[test]
fn engine_images_containers_imports_and_archives_mix_in_one_pack() {
    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    fixtures::ensure(&connected);
    start_hand_made(&connected, "hand4");
    let dir = tempfile::tempdir().unwrap();
    let host = connected.host.clone();
    let made = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "docker -H '{host}' export hand4 | gzip > rootfs.tar.gz && docker -H '{host}' save fixture/worker:1 > worker.tar"
        ))
        .current_dir(dir.path())
        .env_remove("DOCKER_HOST")
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let (web_id, web_layers) = connected.inspect("fixture/web:1").unwrap();
    let (worker_id, worker_layers) = connected.inspect("fixture/worker:1").unwrap();

    airgap(
        dir.path(),
        &[
            "--host",
            &host,
            "pack",
            "fixture/web:1",
            "--container",
            "hand4=hand/mixed:1",
            "--import",
            "rootfs.tar.gz=imported/mixed:1",
            "--change",
            r#"CMD ["cat", "/made-by-hand"]"#,
            "--unsigned",
            "-o",
            "mixed.zst",
        ],
    )
    .success();
    unpack(&offline, dir.path(), "mixed.zst");
    assert_eq!(
        offline.inspect("fixture/web:1").unwrap(),
        (web_id, web_layers.clone())
    );
    assert_eq!(offline.run("hand/mixed:1"), "hand-made");
    assert_eq!(offline.run("imported/mixed:1"), "hand-made");

    // No names: the whole archive, and the container beside it.
    airgap(
        dir.path(),
        &[
            "--host",
            &host,
            "pack",
            "--archive",
            "worker.tar",
            "--container",
            "hand4=hand/beside:1",
            "--unsigned",
            "-o",
            "beside.zst",
        ],
    )
    .success();
    connected.docker(&["rm", "-f", "hand4"]);
    unpack(&offline, dir.path(), "beside.zst");
    assert_eq!(
        offline.inspect("fixture/worker:1").unwrap(),
        (worker_id, worker_layers)
    );
    assert_eq!(offline.run("hand/beside:1"), "hand-made");
    assert!(
        offline.inspect("fixture/web:1").is_none(),
        "only what the archive and the container hold arrives"
    );
}
