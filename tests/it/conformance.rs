//! Conformance: every source this machine has × every sink, through pack →
//! verify → unpack. The bundle holds what the source held, and each sink
//! then holds it too: the same config digest and diff IDs under every tag.
//!
//! A new medium joins with one line in SOURCES and/or SINKS. Each source is
//! packed once and its bundle unpacked into every sink; a failing pair is
//! named and the others still run, so one run shows the whole matrix.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::Read;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::Instant;

use airgap::digest::Digest;
use airgap::image::ImageRef;

use crate::engines;
use crate::support::cmd::{airgap, airgap_clean_env, workdir_with_keys};
use crate::support::engine::TestEngine;
use crate::support::fixtures;

/// Small fixtures: two images sharing the base layer, one of them under two
/// tags and with three layers.
const TAGS: [&str; 3] = ["fixture/web:1", "fixture/worker:1", "fixture/worker:latest"];

/// Where media come from. `pack` packs TAGS into the bundle (signed with
/// ops.pem in the directory) and returns what the source itself holds.
#[rustfmt::skip]
const SOURCES: &[Source] = &[
    Source { name: "docker 20.10 engine, its overlay2 store read", pack: |s, dir, bundle| from_engine(&s.connected, dir, bundle) },
    Source { name: "docker 20.10 engine, through its export", pack: |s, dir, bundle| from_engine_exporting(&s.connected, dir, bundle) },
    Source { name: "docker 28.5 containerd store, its content store read", pack: |s, dir, bundle| from_engine(&s.containerd, dir, bundle) },
    Source { name: "docker 28.5 containerd store, through its export", pack: |s, dir, bundle| from_engine_exporting(&s.containerd, dir, bundle) },
    Source { name: "podman engine", pack: |s, dir, bundle| from_engine(&s.podman, dir, bundle) },
    Source { name: "docker save archive", pack: from_docker_save },
    Source { name: "oci layout directory", pack: from_layout },
    Source { name: "docker 28.5 save, zstd-compressed", pack: from_zstd_containerd_save },
    Source { name: "docker 20.10 save xz'd beside a docker 28.5 save", pack: from_two_saves },
];

/// Where media go. `unpack` empties the sink, unpacks the bundle into it
/// (trusting ops.pub.pem) and returns what the sink then holds.
#[rustfmt::skip]
const SINKS: &[Sink] = &[
    Sink { name: "docker 20.10 engine", unpack: |s, dir, bundle| into_engine(&s.offline, dir, bundle) },
    Sink { name: "docker 28.5 containerd store", unpack: |s, dir, bundle| into_engine(&s.containerd, dir, bundle) },
    Sink { name: "podman engine", unpack: |s, dir, bundle| into_engine(&s.podman, dir, bundle) },
    Sink { name: "oci layout directory", unpack: into_layout },
    Sink { name: "containerd 2.x node", unpack: into_containerd },
];

struct Source {
    name: &'static str,
    pack: fn(&Sites, &Path, &Path) -> Holdings,
}

struct Sink {
    name: &'static str,
    unpack: fn(&Sites, &Path, &Path) -> Arrived,
}

/// The engines, each in its role. An engine may be both a source and a
/// sink: every source is packed before any sink is emptied.
struct Sites {
    connected: TestEngine,
    offline: TestEngine,
    containerd: TestEngine,
    podman: TestEngine,
}

/// One image as a medium holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Held {
    config: String,
    diff_ids: Vec<String>,
}

/// What a medium holds under each of TAGS, in order; `None` where the tag
/// does not resolve.
type Holdings = Vec<Option<Held>>;

/// What a sink holds after the unpack, and what a container of TAGS[0]
/// printed there (`None` for a sink that cannot run containers).
struct Arrived {
    held: Holdings,
    ran: Option<String>,
}

#[test]
fn every_source_reaches_every_sink_with_its_configs_diff_ids_and_tags() {
    let (_lock, [connected, offline, containerd, podman]) =
        engines!("a-connected", "a-offline", "b", "podman");
    let sites = Sites {
        connected,
        offline,
        containerd,
        podman,
    };
    let (_dir, dir) = workdir_with_keys();
    let started = Instant::now();
    let mut failures = Vec::new();

    let mut bundles = Vec::new();
    for (n, source) in SOURCES.iter().enumerate() {
        let bundle = dir.join(format!("source-{n}.zst"));
        let packed = attempt(|| {
            let original = (source.pack)(&sites, &dir, &bundle);
            airgap(
                &dir,
                &["verify", "-q", path(&bundle), "--key", "ops.pub.pem"],
            )
            .success();
            let packed = bundle_holdings(&bundle);
            assert_holdings(&packed, &original, "the bundle", "the source");
            packed
        });
        match packed {
            Ok(packed) => bundles.push((source, bundle, packed)),
            Err(why) => failures.push(format!("{} (pack): {why}", source.name)),
        }
    }

    let expected_output = output_of(TAGS[0]);
    for sink in SINKS {
        for (source, bundle, packed) in &bundles {
            let pair = format!("{} → {}", source.name, sink.name);
            let at = Instant::now();
            let outcome = attempt(|| {
                let arrived = (sink.unpack)(&sites, &dir, bundle);
                assert_holdings(&arrived.held, packed, "the sink", "the bundle");
                if let Some(ran) = arrived.ran {
                    assert_eq!(ran, expected_output, "{} run on the sink", TAGS[0]);
                }
            });
            match outcome {
                Ok(()) => eprintln!("conformance: {pair}: ok ({:.1?})", at.elapsed()),
                Err(why) => failures.push(format!("{pair}: {why}")),
            }
        }
    }
    eprintln!("conformance: {:.1?} in all", started.elapsed());
    assert!(
        failures.is_empty(),
        "{} of {} pairs failed:\n{}",
        failures.len(),
        SOURCES.len() * SINKS.len(),
        failures.join("\n")
    );
}

/// Runs one pair, turning its panic into the message, so the others still run.
fn attempt<T>(pair: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(pair)).map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "panicked".to_owned())
    })
}

/// Every tag resolves on `got` to the image `want` has under it.
#[track_caller]
fn assert_holdings(got: &Holdings, want: &Holdings, got_name: &str, want_name: &str) {
    for ((tag, got), want) in TAGS.iter().zip(got).zip(want) {
        let want = want
            .as_ref()
            .unwrap_or_else(|| panic!("{tag} is not on {want_name}"));
        let got = got
            .as_ref()
            .unwrap_or_else(|| panic!("{tag} does not resolve on {got_name}"));
        assert_eq!(
            got.config, want.config,
            "{tag}: config digest on {got_name} vs {want_name}"
        );
        assert_eq!(
            got.diff_ids, want.diff_ids,
            "{tag}: diff IDs on {got_name} vs {want_name}"
        );
    }
}

fn path(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// What a container of `tag` prints, from the fixture list.
fn output_of(tag: &str) -> String {
    fixtures::fixtures()
        .into_iter()
        .find(|f| f.tags.iter().any(|t| t == tag))
        .unwrap()
        .output
}

/// The fully qualified form of a reference (`docker.io/fixture/web:1`).
fn full(reference: &str) -> String {
    ImageRef::parse(reference).unwrap().name
}

fn pack(dir: &Path, medium: &[&str], bundle: &Path) {
    let mut args = vec!["pack"];
    args.extend(medium);
    args.extend(["-q", "-o", path(bundle), "--key", "ops.pem"]);
    args.extend(TAGS);
    airgap(dir, &args).success();
}

/// What the bundle's signed manifest says it holds under each tag.
fn bundle_holdings(bundle: &Path) -> Holdings {
    let manifest = airgap::verify::read_head(bundle).unwrap().manifest;
    let refs: BTreeSet<&str> = manifest
        .images
        .iter()
        .flat_map(|i| &i.refs)
        .map(|r| r.given.as_str())
        .collect();
    assert_eq!(refs, BTreeSet::from(TAGS), "the bundle's tags");
    TAGS.iter()
        .map(|tag| {
            let image = manifest
                .images
                .iter()
                .find(|i| i.refs.iter().any(|r| r.given == *tag))?;
            Some(Held {
                config: image.config.digest.to_string(),
                diff_ids: image.layers.iter().map(|l| l.digest.to_string()).collect(),
            })
        })
        .collect()
}

// ---------------------------------------------------------------- sources --

fn from_engine(engine: &TestEngine, dir: &Path, bundle: &Path) -> Holdings {
    fixtures::ensure(engine);
    pack(dir, &["--host", &engine.host], bundle);
    engine_holdings(engine)
}

/// Through the engine's export even where its content store can be read.
fn from_engine_exporting(engine: &TestEngine, dir: &Path, bundle: &Path) -> Holdings {
    fixtures::ensure(engine);
    pack(dir, &["--host", &engine.host, "--engine-export"], bundle);
    engine_holdings(engine)
}

/// `docker save` from the Docker 20.10 engine, packed with `--archive FILE`.
fn from_docker_save(sites: &Sites, dir: &Path, bundle: &Path) -> Holdings {
    fixtures::ensure(&sites.connected);
    let archive = bundle.with_extension("tar");
    let mut save = vec!["save", "-o", path(&archive)];
    save.extend(TAGS);
    sites.connected.docker(&save);
    pack(dir, &["--archive", path(&archive)], bundle);
    docker_save_holdings(&archive)
}

/// `docker save` from the containerd store, zstd-compressed, packed with
/// `--archive FILE` and no engine.
fn from_zstd_containerd_save(sites: &Sites, dir: &Path, bundle: &Path) -> Holdings {
    fixtures::ensure(&sites.containerd);
    let archive = save_compressed(&sites.containerd, bundle, &TAGS, Some("zstd"));
    pack(dir, &["--archive", path(&archive)], bundle);
    engine_holdings(&sites.containerd)
}

/// Two archives of different kinds at once: Docker 20.10's legacy save of
/// the worker, xz-compressed, and Docker 28.5's OCI one of web.
fn from_two_saves(sites: &Sites, dir: &Path, bundle: &Path) -> Holdings {
    fixtures::ensure(&sites.connected);
    fixtures::ensure(&sites.containerd);
    let worker = save_compressed(
        &sites.connected,
        &bundle.with_extension("worker"),
        &TAGS[1..],
        Some("xz"),
    );
    let web = save_compressed(
        &sites.containerd,
        &bundle.with_extension("web"),
        &TAGS[..1],
        None,
    );
    pack(
        dir,
        &["--archive", path(&worker), "--archive", path(&web)],
        bundle,
    );
    let mut held = engine_holdings(&sites.connected);
    held[0] = engine_holdings(&sites.containerd).remove(0);
    held
}

/// `docker save` of `tags` from `engine` beside `bundle`, compressed with
/// `tool` where one is given.
fn save_compressed(
    engine: &TestEngine,
    bundle: &Path,
    tags: &[&str],
    tool: Option<&str>,
) -> PathBuf {
    let archive = bundle.with_extension("tar");
    let mut save = vec!["save", "-o", path(&archive)];
    save.extend(tags);
    engine.docker(&save);
    let Some(tool) = tool else {
        return archive;
    };
    let compressed = archive.with_extension(format!("tar.{tool}"));
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{tool} -c < '{}' > '{}'",
            path(&archive),
            path(&compressed)
        ))
        .status()
        .unwrap();
    assert!(status.success(), "{tool} failed");
    compressed
}

/// An OCI layout written by airgap's own `--to oci:` from a Docker 20.10
/// bundle (skopeo would rewrite the configs), packed with `--archive DIR`.
fn from_layout(sites: &Sites, dir: &Path, bundle: &Path) -> Holdings {
    fixtures::ensure(&sites.connected);
    let seed = bundle.with_extension("seed.zst");
    pack(dir, &["--host", &sites.connected.host], &seed);
    let layout = bundle.with_extension("oci");
    let to = format!("oci:{}", path(&layout));
    airgap(
        dir,
        &[
            "unpack",
            "-q",
            path(&seed),
            "--key",
            "ops.pub.pem",
            "--to",
            &to,
        ],
    )
    .success();
    pack(dir, &["--archive", path(&layout)], bundle);
    let held = layout_holdings(&layout);
    TAGS.iter()
        .map(|tag| held.get(&full(tag)).cloned())
        .collect()
}

// ------------------------------------------------------------------ sinks --

fn into_engine(engine: &TestEngine, dir: &Path, bundle: &Path) -> Arrived {
    engine.wipe();
    airgap(
        dir,
        &[
            "--host",
            &engine.host,
            "unpack",
            "-q",
            path(bundle),
            "--key",
            "ops.pub.pem",
        ],
    )
    .success();
    // Podman names images from a docker load stream `localhost/fixture/…`;
    // unpack tags their docker.io/… names too, so both spellings resolve.
    Arrived {
        held: engine_holdings(engine),
        ran: Some(engine.run(TAGS[0])),
    }
}

/// A containerd of its own per bundle, through its ctr; read back by the
/// full names the kubelet asks for.
fn into_containerd(_: &Sites, dir: &Path, bundle: &Path) -> Arrived {
    use crate::support::containerd::{TestContainerd, Version};
    let node = TestContainerd::start(Version::Two)
        .expect("containerd 2.x is installed wherever engine B is (scripts/deps)");
    let to = node.address("k8s.io");
    airgap_clean_env(
        dir,
        &[
            "unpack",
            "-q",
            path(bundle),
            "--key",
            "ops.pub.pem",
            "--to",
            &to,
        ],
        &[
            ("PATH".into(), node.path()),
            (
                "AIRGAP_STATE_DIR".into(),
                crate::support::cmd::state_dir().display().to_string(),
            ),
        ],
    )
    .success();
    let ran = node.ctr("k8s.io", &["run", "--rm", &full(TAGS[0]), "conformance"]);
    Arrived {
        held: TAGS
            .iter()
            .map(|tag| {
                node.config_and_layers("k8s.io", &full(tag))
                    .map(|(config, diff_ids)| Held { config, diff_ids })
            })
            .collect(),
        ran: Some(ran.trim().to_owned()),
    }
}

/// A new layout directory per bundle; the names are read back from the
/// index, both annotations carrying the full reference.
fn into_layout(_: &Sites, dir: &Path, bundle: &Path) -> Arrived {
    let layout: PathBuf = bundle.with_extension("sink.oci");
    let _ = fs::remove_dir_all(&layout);
    let to = format!("oci:{}", path(&layout));
    airgap(
        dir,
        &[
            "unpack",
            "-q",
            path(bundle),
            "--key",
            "ops.pub.pem",
            "--to",
            &to,
        ],
    )
    .success();
    let index = read_json(&layout.join("index.json"));
    for entry in index["manifests"].as_array().unwrap() {
        assert_eq!(
            entry["annotations"]["org.opencontainers.image.ref.name"],
            entry["annotations"]["io.containerd.image.name"],
            "both annotations name the full reference: {entry}"
        );
    }
    let held = layout_holdings(&layout);
    let names: BTreeSet<&String> = held.keys().collect();
    let expected: Vec<String> = TAGS.iter().map(|t| full(t)).collect();
    assert_eq!(names, expected.iter().collect(), "the layout's names");
    Arrived {
        held: TAGS
            .iter()
            .map(|tag| held.get(&full(tag)).cloned())
            .collect(),
        ran: None,
    }
}

// ------------------------------------------------- reading what media hold --

/// Config digest (from the engine's own save: on a containerd store the ID
/// is the manifest digest) and the engine's diff IDs, per tag.
fn engine_holdings(engine: &TestEngine) -> Holdings {
    TAGS.iter()
        .map(|tag| {
            let (_, diff_ids) = engine.inspect(tag)?;
            Some(Held {
                config: engine.config_digest(tag),
                diff_ids,
            })
        })
        .collect()
}

/// What a `docker save` archive holds per tag; the diff IDs are the layer
/// files' own digests, checked against the config's.
fn docker_save_holdings(archive: &Path) -> Holdings {
    let mut files = HashMap::new();
    let mut tar = tar::Archive::new(fs::File::open(archive).unwrap());
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        files.insert(name, content);
    }
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    TAGS.iter()
        .map(|tag| {
            let image = manifest.as_array().unwrap().iter().find(|image| {
                image["RepoTags"]
                    .as_array()
                    .is_some_and(|tags| tags.iter().any(|t| full(t.as_str().unwrap()) == full(tag)))
            })?;
            let config = &files[image["Config"].as_str().unwrap()];
            let diff_ids: Vec<String> = image["Layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|layer| Digest::of(&files[layer.as_str().unwrap()]).to_string())
                .collect();
            assert_eq!(
                diff_ids,
                config_diff_ids(config),
                "{tag} in the docker save archive"
            );
            Some(Held {
                config: Digest::of(config).to_string(),
                diff_ids,
            })
        })
        .collect()
}

/// What an OCI layout holds under each `io.containerd.image.name`. Every
/// blob is read and checked against its digest, and each layer's diff ID is
/// computed from the layer itself, so a layer missing from the directory or
/// from a manifest fails here, not just in the config's list.
fn layout_holdings(layout: &Path) -> BTreeMap<String, Held> {
    let index = read_json(&layout.join("index.json"));
    let mut held = BTreeMap::new();
    for entry in index["manifests"].as_array().unwrap() {
        let name = entry["annotations"]["io.containerd.image.name"]
            .as_str()
            .unwrap_or_else(|| panic!("index entry without a name: {entry}"));
        let manifest: serde_json::Value =
            serde_json::from_slice(&blob(layout, &entry["digest"])).unwrap();
        assert!(
            manifest["layers"].is_array(),
            "{name}: not an image manifest: {manifest}"
        );
        let config_digest = manifest["config"]["digest"].as_str().unwrap().to_owned();
        let config = blob(layout, &manifest["config"]["digest"]);
        let diff_ids: Vec<String> = manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|layer| layer_diff_id(layout, layer))
            .collect();
        assert_eq!(
            diff_ids,
            config_diff_ids(&config),
            "{name}: the layout's layers vs its config"
        );
        held.insert(
            name.to_owned(),
            Held {
                config: config_digest,
                diff_ids,
            },
        );
    }
    held
}

/// The blob a descriptor's digest names, checked against it.
fn blob(layout: &Path, digest: &serde_json::Value) -> Vec<u8> {
    let digest: Digest = digest.as_str().unwrap().parse().unwrap();
    let content = fs::read(layout.join(digest.blob_path()))
        .unwrap_or_else(|e| panic!("blob {digest} in {}: {e}", layout.display()));
    assert_eq!(Digest::of(&content), digest, "blob content vs its name");
    content
}

/// The digest of a layer descriptor's blob once decompressed.
fn layer_diff_id(layout: &Path, layer: &serde_json::Value) -> String {
    let compressed = blob(layout, &layer["digest"]);
    let media_type = layer["mediaType"].as_str().unwrap();
    let mut tar = Vec::new();
    if media_type.ends_with("gzip") {
        flate2::read::GzDecoder::new(&compressed[..])
            .read_to_end(&mut tar)
            .unwrap();
    } else if media_type.ends_with("zstd") {
        tar = zstd::decode_all(&compressed[..]).unwrap();
    } else {
        assert!(media_type.ends_with("tar"), "layer media type {media_type}");
        tar = compressed;
    }
    Digest::of(&tar).to_string()
}

fn config_diff_ids(config: &[u8]) -> Vec<String> {
    let config: serde_json::Value = serde_json::from_slice(config).unwrap();
    config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect()
}

fn read_json(file: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(file).unwrap()).unwrap()
}
