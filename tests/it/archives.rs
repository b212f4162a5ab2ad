//! Every image archive people already have, as `pack --archive` takes it
//! with no engine: each kind made on this machine by the tool that writes it
//! (Docker 20.10 and 28.5 saves, both `podman save` formats, skopeo's
//! oci-archive and dir:), plain or compressed, packed and unpacked into an
//! engine to the images it held; and the catalogue, selection, platforms
//! and refusals, on archives built here.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use airgap::digest::Digest;

use crate::engines;
use crate::support::cmd::{Run, airgap, airgap_clean_env, workdir_with_keys};
use crate::support::engine::TestEngine;
use crate::support::fixtures;
use crate::support::synthetic::{self, Image, layer};

/// An image an archive holds, read from it here (not through airgap).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Held {
    tags: Vec<String>,
    config: String,
    diff_ids: Vec<String>,
}

/// The files of a plain tar, by path (links as their target's content).
fn tar_files(archive: &Path) -> HashMap<String, Vec<u8>> {
    let mut files = HashMap::new();
    let mut links = Vec::new();
    let mut tar = tar::Archive::new(fs::File::open(archive).unwrap());
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = String::from_utf8_lossy(&entry.path_bytes())
            .trim_start_matches("./")
            .to_owned();
        if entry.header().entry_type().is_symlink() {
            let target = entry
                .link_name()
                .unwrap()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            links.push((name, target));
            continue;
        }
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        files.insert(name, content);
    }
    for (name, target) in links {
        let parent = Path::new(&name).parent().unwrap().join(&target);
        let resolved: PathBuf = parent.components().fold(PathBuf::new(), |mut p, c| {
            match c {
                std::path::Component::ParentDir => {
                    p.pop();
                }
                other => p.push(other),
            }
            p
        });
        if let Some(content) = files.get(resolved.to_str().unwrap()).cloned() {
            files.insert(name, content);
        }
    }
    files
}

fn diff_ids_of(config: &[u8]) -> Vec<String> {
    let config: serde_json::Value = serde_json::from_slice(config).unwrap();
    config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect()
}

/// What a plain archive holds: from `manifest.json` where it has one, else
/// from the OCI index (with the ref.name annotation as the tag).
fn archive_holdings(archive: &Path) -> Vec<Held> {
    let files = tar_files(archive);
    if let Some(manifest) = files.get("manifest.json") {
        let manifest: serde_json::Value = serde_json::from_slice(manifest).unwrap();
        return manifest
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| {
                let config = &files[entry["Config"].as_str().unwrap()];
                Held {
                    tags: entry["RepoTags"]
                        .as_array()
                        .map(|tags| {
                            tags.iter()
                                .map(|t| t.as_str().unwrap().to_owned())
                                .collect()
                        })
                        .unwrap_or_default(),
                    config: Digest::of(config).to_string(),
                    diff_ids: diff_ids_of(config),
                }
            })
            .collect();
    }
    let blob =
        |digest: &str| &files[&format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))];
    let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let manifest: serde_json::Value =
                serde_json::from_slice(blob(entry["digest"].as_str().unwrap())).unwrap();
            let config = blob(manifest["config"]["digest"].as_str().unwrap());
            Held {
                tags: vec![
                    entry["annotations"]["org.opencontainers.image.ref.name"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                ],
                config: Digest::of(config).to_string(),
                diff_ids: diff_ids_of(config),
            }
        })
        .collect()
}

/// Compresses `plain` with `tool` (gzip, zstd, xz, bzip2) beside it.
fn compress(plain: &Path, tool: &str) -> PathBuf {
    let out = plain.with_extension(format!("tar.{tool}"));
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{tool} -c < '{}' > '{}'",
            plain.display(),
            out.display()
        ))
        .status()
        .unwrap();
    assert!(status.success(), "{tool} failed");
    out
}

fn sh(script: &str) {
    let output = Command::new("sh").arg("-c").arg(script).output().unwrap();
    assert!(
        output.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Packs with no engine reachable: DOCKER_HOST names a socket nothing
/// listens on.
fn pack_offline(dir: &Path, args: &[&str]) -> Run {
    let mut all = vec!["pack", "-q", "--key", "ops.pem"];
    all.extend(args);
    airgap_clean_env(
        dir,
        &all,
        &[(
            "DOCKER_HOST".to_owned(),
            format!("unix://{}/dead.sock", dir.display()),
        )],
    )
}

/// Unpacks `bundle` into a freshly wiped `engine` and checks every image
/// `held` arrived under its tags (full names as the engine spells them)
/// with the archive's config digest and diff IDs; runs `run` there.
fn unpack_and_check(
    engine: &TestEngine,
    dir: &Path,
    bundle: &Path,
    held: &[Held],
    run: (&str, &str),
) {
    engine.wipe();
    airgap(
        dir,
        &[
            "unpack",
            "-q",
            path(bundle),
            "--key",
            "ops.pub.pem",
            "--host",
            &engine.host,
        ],
    )
    .success();
    for image in held {
        for tag in &image.tags {
            let (_, diff_ids) = engine
                .inspect(tag)
                .unwrap_or_else(|| panic!("{tag} did not arrive in {}", engine.name));
            assert_eq!(
                diff_ids, image.diff_ids,
                "diff IDs of {tag} in {}",
                engine.name
            );
            assert_eq!(
                engine.config_digest(tag),
                image.config,
                "config of {tag} in {}",
                engine.name
            );
        }
    }
    assert_eq!(
        engine.run(run.0),
        run.1,
        "a container of {} in {}",
        run.0,
        engine.name
    );
}

/// A bundle name, its archives, what they hold, and an image to run with
/// what it prints.
type Case<'a> = (&'a str, Vec<&'a str>, &'a [Held], (&'a str, &'a str));

#[test]
fn every_archive_kind_packs_without_an_engine_and_unpacks_to_the_images_it_held() {
    let (_lock, [connected, offline, containerd, podman]) =
        engines!("a-connected", "a-offline", "b", "podman");
    let (_dir, dir) = workdir_with_keys();
    fixtures::ensure(&connected);
    fixtures::ensure(&containerd);
    fixtures::ensure(&podman);

    // Docker 20.10: legacy layout, gzip'd; and the plain one, by ID.
    let d20 = dir.join("d20.tar");
    connected.docker(&[
        "save",
        "-o",
        path(&d20),
        "fixture/web:1",
        "fixture/worker:1",
    ]);
    let d20_held = archive_holdings(&d20);
    let d20_gz = compress(&d20, "gzip");
    // Docker 28.5, containerd store: OCI layout + manifest.json, zstd'd.
    let d28 = dir.join("d28.tar");
    containerd.docker(&["save", "-o", path(&d28), "fixture/api:1"]);
    let d28_held = archive_holdings(&d28);
    let d28_zst = compress(&d28, "zstd");
    // Podman: docker-archive (manifest.json last, localhost/ names), plain;
    // oci-archive, xz'd.
    let pd = dir.join("pd.tar");
    let po = dir.join("po.tar");
    // Podman names what it builds localhost/…; another test may have
    // loaded the fixtures under docker.io names, so name them so here.
    sh(&format!(
        "podman --url '{0}' tag fixture/web:1 localhost/fixture/web:1 && podman --url '{0}' tag fixture/worker:1 localhost/fixture/worker:1",
        podman.host
    ));
    sh(&format!(
        "podman --url '{0}' save -o '{1}' localhost/fixture/web:1 && podman --url '{0}' save --format oci-archive -o '{2}' localhost/fixture/worker:1",
        podman.host,
        pd.display(),
        po.display()
    ));
    let pd_held = archive_holdings(&pd);
    let po_held = archive_holdings(&po);
    let po_xz = compress(&po, "xz");
    // skopeo: oci-archive named in full, bzip2'd.
    let so = dir.join("so.tar");
    sh(&format!(
        "skopeo copy -q docker-archive:'{}':fixture/worker:1 oci-archive:'{}':fixture/skopeo:1",
        d20.display(),
        so.display()
    ));
    let so_held = archive_holdings(&so);
    let so_bz2 = compress(&so, "bzip2");
    assert_eq!(
        pd_held[0].tags,
        ["localhost/fixture/web:1"],
        "podman names local images so"
    );

    let cases: Vec<Case> = vec![
        (
            "d20.zst",
            vec![path(&d20_gz)],
            &d20_held,
            ("fixture/worker:1", "airgap fixture: worker"),
        ),
        (
            "d28.zst",
            vec![path(&d28_zst)],
            &d28_held,
            ("fixture/api:1", "airgap fixture: api"),
        ),
        (
            "pd.zst",
            vec![path(&pd)],
            &pd_held,
            ("localhost/fixture/web:1", "airgap fixture: web"),
        ),
        (
            "po.zst",
            vec![path(&po_xz)],
            &po_held,
            ("localhost/fixture/worker:1", "airgap fixture: worker"),
        ),
        (
            "so.zst",
            vec![path(&so_bz2)],
            &so_held,
            ("fixture/skopeo:1", "airgap fixture: worker"),
        ),
    ];
    for (bundle, archives, held, run) in &cases {
        let mut args = Vec::new();
        for archive in archives {
            args.extend(["--archive", archive]);
        }
        args.extend(["-o", bundle]);
        let packed = pack_offline(&dir, &args).success();
        assert!(!packed.stderr.contains("engine"), "{}", packed.stderr);
        let into = if *bundle == "d28.zst" {
            &offline
        } else {
            &containerd
        };
        unpack_and_check(into, &dir, &dir.join(bundle), held, *run);
    }

    // Two archives of different kinds at once, and an image by its ID.
    let web = d20_held
        .iter()
        .find(|h| h.tags == ["fixture/web:1"])
        .expect("the save holds fixture/web:1")
        .clone();
    let web_id = web.config.trim_start_matches("sha256:")[..12].to_owned();
    let both = pack_offline(
        &dir,
        &[
            "--archive",
            path(&d20),
            "--archive",
            path(&po_xz),
            &web_id,
            "localhost/fixture/worker:1",
            "-o",
            "both.zst",
        ],
    )
    .success();
    assert!(
        both.stdout.contains("packed fixture/web:1"),
        "{}",
        both.stdout
    );
    let mut expected = vec![web.clone()];
    expected.extend(po_held.clone());
    unpack_and_check(
        &offline,
        &dir,
        &dir.join("both.zst"),
        &expected,
        ("fixture/web:1", "airgap fixture: web"),
    );

    // Podman's short name: taken with a note, arriving as localhost/….
    let short = pack_offline(
        &dir,
        &["--archive", path(&pd), "fixture/web:1", "-o", "short.zst"],
    )
    .success();
    assert!(
        short
            .stderr
            .contains("note: fixture/web:1 is taken as localhost/fixture/web:1"),
        "{}",
        short.stderr
    );
    unpack_and_check(
        &containerd,
        &dir,
        &dir.join("short.zst"),
        &pd_held,
        ("localhost/fixture/web:1", "airgap fixture: web"),
    );

    // skopeo's dir: is listed, refused with how to name it (an image
    // without a name does not load into a containerd store), and packed
    // under the name given on the way in, picked by ID prefix.
    let sdir = dir.join("sdir");
    sh(&format!(
        "skopeo copy -q docker-archive:'{}':fixture/web:1 dir:'{}'",
        d20.display(),
        sdir.display()
    ));
    let listed = airgap(&dir, &["plan", "--archive", path(&sdir)]).success();
    assert!(
        listed
            .stdout
            .contains(&format!("untagged (linux/amd64): id {}", &web_id)),
        "{}",
        listed.stdout
    );
    let refused = pack_offline(&dir, &["--archive", path(&sdir), "-o", "dir.zst"]).failure(1);
    let hint = format!("--name {web_id}=REPO:TAG");
    assert!(
        refused.stderr.contains("has no name") && refused.stderr.contains(&hint),
        "{}",
        refused.stderr
    );
    assert!(!dir.join("dir.zst").exists());
    let given = format!("{web_id}=named/web:7");
    pack_offline(
        &dir,
        &["--archive", path(&sdir), "--name", &given, "-o", "dir.zst"],
    )
    .success();
    unpack_and_check(
        &containerd,
        &dir,
        &dir.join("dir.zst"),
        &[Held {
            tags: vec!["named/web:7".into()],
            ..web
        }],
        ("named/web:7", "airgap fixture: web"),
    );
}

fn synthetic_images() -> Vec<Image> {
    let base = layer("etc/base", "base layer");
    vec![
        Image::new(
            "fixture/one:1",
            vec![base.clone(), layer("one", "first app")],
        ),
        Image::new(
            "localhost/fixture/two:1",
            vec![base, layer("two", "second app")],
        ),
    ]
}

#[test]
fn plan_lists_what_archives_hold_and_pack_names_it_when_a_name_is_not_there() {
    let (_dir, dir) = workdir_with_keys();
    let images = synthetic_images();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&synthetic::legacy_archive(&images)).unwrap();
    fs::write(dir.join("save.tgz"), gz.finish().unwrap()).unwrap();
    fs::write(
        dir.join("oci.tar"),
        synthetic::oci_archive(&images[..1], &[]),
    )
    .unwrap();

    let listed = airgap(
        &dir,
        &["plan", "--archive", "save.tgz", "--archive", "oci.tar"],
    )
    .success();
    let one = Digest::of(&images[0].config);
    let two = Digest::of(&images[1].config);
    let expected = format!(
        "save.tgz: 2 images\n    fixture/one:1 (linux/amd64): id {}, 2 layers, ",
        one.short()
    );
    assert!(listed.stdout.starts_with(&expected), "{}", listed.stdout);
    assert!(
        listed.stdout.contains(&format!(
            "    localhost/fixture/two:1 (linux/amd64): id {}, 2 layers, ",
            two.short()
        )) && listed.stdout.contains("oci.tar: 1 image\n")
            && listed.stdout.contains("total: 3 images, "),
        "{}",
        listed.stdout
    );

    let missing = pack_offline(
        &dir,
        &[
            "--archive",
            "save.tgz",
            "--archive",
            "oci.tar",
            "fixture/one:1",
            "fixture/three:1",
            "-o",
            "b.zst",
        ],
    )
    .failure(6);
    assert!(
        missing.stderr.contains("not found in the archives: fixture/three:1 (the archives hold fixture/one:1, localhost/fixture/two:1, fixture/one:1)"),
        "{}",
        missing.stderr
    );
    assert!(
        !missing.stderr.contains("build, pull or load"),
        "{}",
        missing.stderr
    );
    assert_eq!(
        missing.stderr.trim().lines().count(),
        1,
        "{}",
        missing.stderr
    );
    assert!(!dir.join("b.zst").exists());

    // With no names, everything: both images, the shared one once.
    let all = pack_offline(
        &dir,
        &[
            "--archive",
            "save.tgz",
            "--archive",
            "oci.tar",
            "-o",
            "all.zst",
        ],
    )
    .success();
    assert!(
        all.stdout.contains("packed fixture/one:1 (")
            && all.stdout.contains("packed localhost/fixture/two:1 ("),
        "{}",
        all.stdout
    );
    assert_eq!(all.stdout.matches("packed ").count(), 2, "{}", all.stdout);
    airgap(&dir, &["verify", "-q", "all.zst", "--key", "ops.pub.pem"]).success();
}

/// A multi-platform oci-archive: one name, an index of amd64 and arm64
/// images, an attestation manifest and an s390x platform whose blobs are
/// absent (as the containerd store saves what it pulled).
fn multi_platform_archive() -> (Vec<u8>, Digest, Digest) {
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |path: &str, bytes: &[u8]| {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, path, bytes).unwrap();
    };
    let blob = |bytes: &[u8]| format!("blobs/sha256/{}", Digest::of(bytes).hex());
    let mut manifests = Vec::new();
    let mut configs = Vec::new();
    for arch in ["amd64", "arm64"] {
        let layer = layer("arch", arch);
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": arch, "os": "linux",
            "config": { "Cmd": ["/bin/true"] },
            "rootfs": { "type": "layers", "diff_ids": [Digest::of(&layer).to_string()] },
        }))
        .unwrap();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": Digest::of(&config).to_string(), "size": config.len() },
            "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": Digest::of(&layer).to_string(), "size": layer.len() }],
        }))
        .unwrap();
        add(&blob(&layer), &layer);
        add(&blob(&config), &config);
        add(&blob(&manifest), &manifest);
        manifests.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": Digest::of(&manifest).to_string(), "size": manifest.len(),
            "platform": { "os": "linux", "architecture": arch },
        }));
        configs.push(Digest::of(&config));
    }
    let absent = Digest::of(b"absent");
    manifests.push(serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": absent.to_string(), "size": 6,
        "platform": { "os": "linux", "architecture": "s390x" },
    }));
    manifests.push(serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": absent.to_string(), "size": 6,
        "platform": { "os": "unknown", "architecture": "unknown" },
        "annotations": { "vnd.docker.reference.type": "attestation-manifest" },
    }));
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests,
    }))
    .unwrap();
    add(&blob(&index), &index);
    let top = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": Digest::of(&index).to_string(), "size": index.len(),
            "annotations": { "org.opencontainers.image.ref.name": "fixture/multi:1" },
        }],
    }))
    .unwrap();
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    add("index.json", &top);
    (
        builder.into_inner().unwrap(),
        configs.remove(0),
        configs.remove(0),
    )
}

/// The config digests a bundle's manifest records.
fn bundle_configs(bundle: &Path) -> Vec<String> {
    let decoder = zstd::stream::read::Decoder::new(fs::File::open(bundle).unwrap()).unwrap();
    let mut archive = tar::Archive::new(decoder);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path_bytes().as_ref() == b"airgap/manifest.json" {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            let manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            return manifest["images"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["config"]["digest"].as_str().unwrap().to_owned())
                .collect();
        }
    }
    panic!("no manifest in {}", bundle.display())
}

#[test]
fn platform_picks_of_a_multi_platform_archive_and_absent_ones_are_not_content() {
    let (_dir, dir) = workdir_with_keys();
    let (archive, amd64, arm64) = multi_platform_archive();
    let mut zst = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    zst.write_all(&archive).unwrap();
    fs::write(dir.join("multi.tar.zst"), zst.finish().unwrap()).unwrap();

    let listed = airgap(&dir, &["plan", "--archive", "multi.tar.zst"]).success();
    assert!(
        listed.stdout.contains(&format!(
            "fixture/multi:1 (linux/amd64): id {}",
            amd64.short()
        )) && listed.stdout.contains(&format!(
            "fixture/multi:1 (linux/arm64): id {}",
            arm64.short()
        )) && listed.stdout.contains("total: 2 images"),
        "{}",
        listed.stdout
    );
    assert!(
        !listed.stdout.contains("s390x") && !listed.stdout.contains("unknown"),
        "{}",
        listed.stdout
    );

    pack_offline(&dir, &["--archive", "multi.tar.zst", "-o", "host.zst"]).success();
    assert_eq!(bundle_configs(&dir.join("host.zst")), [amd64.to_string()]);
    pack_offline(
        &dir,
        &[
            "--archive",
            "multi.tar.zst",
            "--platform",
            "linux/arm64",
            "fixture/multi:1",
            "-o",
            "arm.zst",
        ],
    )
    .success();
    assert_eq!(bundle_configs(&dir.join("arm.zst")), [arm64.to_string()]);
    let absent = pack_offline(
        &dir,
        &[
            "--archive",
            "multi.tar.zst",
            "--platform",
            "linux/s390x",
            "-o",
            "s390x.zst",
        ],
    )
    .failure(6);
    assert!(
        absent.stderr.contains("fixture/multi:1 for linux/s390x (the archive has it for linux/amd64, linux/arm64; choose with --platform)"),
        "{}",
        absent.stderr
    );
}

#[test]
fn an_archive_that_is_no_image_archive_is_refused_in_one_escaped_line() {
    let (_dir, dir) = workdir_with_keys();
    let mut noise = vec![0x1b, b'[', b'2', b'J'];
    noise.extend(synthetic::noise(4096));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&noise).unwrap();
    fs::write(dir.join("noise.gz"), gz.finish().unwrap()).unwrap();
    let run = pack_offline(&dir, &["--archive", "noise.gz", "-o", "b.zst"]).failure(2);
    assert!(run.stderr.contains("noise.gz"), "{}", run.stderr);
    assert!(!run.stderr.contains('\u{1b}'), "{:?}", run.stderr);
    assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
}

/// A few kilobytes of zstd claiming a 3 GiB GNU long name: the tar crate
/// would read it whole before any entry is seen. Under a 1 GiB address
/// space limit, pack and import refuse it in one line instead of dying.
#[test]
fn a_long_name_bomb_is_refused_within_bounded_memory() {
    let (_dir, dir) = workdir_with_keys();
    let mut header = tar::Header::new_gnu();
    header.as_mut_bytes()[..13].copy_from_slice(b"././@LongLink");
    header.set_size(3 << 30);
    header.set_mode(0o644);
    header.as_mut_bytes()[156] = b'L';
    header.set_cksum();
    let mut encoder =
        zstd::stream::write::Encoder::new(fs::File::create(dir.join("bomb.tar.zst")).unwrap(), 1)
            .unwrap();
    encoder.write_all(header.as_bytes()).unwrap();
    let chunk = vec![b'a'; 1 << 20];
    for _ in 0..(3 << 10) {
        encoder.write_all(&chunk).unwrap();
    }
    encoder.finish().unwrap();
    let bin = env!("CARGO_BIN_EXE_airgap");
    for args in [
        "pack --archive bomb.tar.zst --unsigned -o a.zst",
        "pack --import bomb.tar.zst=bomb/x:1 --change 'CMD [\"sh\"]' --unsigned -o b.zst",
    ] {
        let run = Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -v 1048576; exec '{bin}' -q {args}"))
            .current_dir(&dir)
            .env_remove("DOCKER_HOST")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(
            matches!(run.status.code(), Some(1 | 2)),
            "{args}: {:?} {stderr}",
            run.status
        );
        assert_eq!(stderr.trim().lines().count(), 1, "{args}: {stderr}");
        assert!(stderr.contains("bomb.tar.zst"), "{args}: {stderr}");
    }
}
