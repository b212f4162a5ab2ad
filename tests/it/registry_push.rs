//! `unpack --to registry://…` against CNCF Distribution on loopback: what
//! is pushed is what each engine's own pull yields, a second push sends
//! nothing, a prefix names the repositories, TLS with a private CA and
//! basic auth works, a cut upload resumes, and refusals are one line with
//! exit code 5.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::cmd::{Run, airgap, run_with_stdin, state_dir, workdir_with_keys};
use crate::support::engine::Engines;
use crate::support::registry::{PASSWORD, Serving, TestRegistry, USER, bundle_of};
use crate::support::synthetic::{self, Image, layer, noise};

/// Two images sharing a base layer, in two repositories.
fn images() -> Vec<Image> {
    let base = layer("base.txt", "shared base layer\n".repeat(1000));
    vec![
        Image::new("fixture/web:1", vec![base.clone(), layer("web.txt", "web")]),
        Image::new("fixture/api:1", vec![base, layer("api.txt", "api")]),
    ]
}

fn push(dir: &Path, registry: &TestRegistry, extra: &[&str]) -> Run {
    let to = format!("registry://{}", registry.host);
    let mut args = vec!["unpack", "b.zst", "--key", "ops.pub.pem", "--to", &to];
    args.extend(extra);
    let plain = ["--plain-http", registry.host.as_str()];
    if registry.serving == Serving::Plain && !extra.iter().any(|a| a.starts_with("registry://")) {
        args.extend(plain);
    }
    airgap(dir, &args)
}

/// `skopeo inspect` of `reference` (raw manifest, or config with `--config`).
fn skopeo(registry: &TestRegistry, args: &[&str]) -> serde_json::Value {
    let mut command = Command::new("skopeo");
    command.arg("inspect");
    match registry.serving {
        Serving::Plain => {
            command.arg("--tls-verify=false");
        }
        Serving::Token => {
            command
                .arg("--tls-verify=false")
                .arg("--creds")
                .arg(format!("{USER}:{PASSWORD}"));
        }
        Serving::TlsAuth | Serving::TlsPlainToken => {
            command
                .arg("--cert-dir")
                .arg(registry.cert_dir())
                .arg("--creds")
                .arg(format!("{USER}:{PASSWORD}"));
        }
    }
    let output = command.args(args).output().expect("skopeo runs");
    assert!(
        output.status.success(),
        "skopeo inspect {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The manifest digest, config digest, layer media types and diff IDs of a pushed image.
struct Pushed {
    manifest: String,
    config: String,
    media_types: Vec<String>,
    diff_ids: Vec<String>,
}

fn pushed(registry: &TestRegistry, reference: &str) -> Pushed {
    let docker = format!("docker://{}/{reference}", registry.host);
    let raw = skopeo(registry, &["--raw", &docker]);
    let config = skopeo(registry, &["--config", &docker]);
    let plain = skopeo(registry, &[&docker]);
    Pushed {
        manifest: plain["Digest"].as_str().unwrap().to_owned(),
        config: raw["config"]["digest"].as_str().unwrap().to_owned(),
        media_types: raw["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["mediaType"].as_str().unwrap().to_owned())
            .collect(),
        diff_ids: config["rootfs"]["diff_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap().to_owned())
            .collect(),
    }
}

fn expected_diff_ids(image: &Image) -> Vec<String> {
    image.layers.iter().map(|l| synthetic::digest(l)).collect()
}

#[test]
fn a_push_holds_the_bundles_images_and_a_second_push_sends_no_blob() {
    let Some(registry) = TestRegistry::start(Serving::Plain) else {
        return;
    };
    let (_keep, dir) = workdir_with_keys();
    let images = images();
    bundle_of(&dir, &images);
    let first = push(&dir, &registry, &[]).success();
    assert!(first.stdout.contains("pushed"), "{}", first.stdout);
    let mut digests = Vec::new();
    for image in &images {
        let got = pushed(&registry, &image.tag);
        assert_eq!(
            got.config,
            synthetic::digest(&image.config),
            "{}",
            image.tag
        );
        assert_eq!(got.diff_ids, expected_diff_ids(image), "{}", image.tag);
        assert!(
            got.media_types
                .iter()
                .all(|m| m == "application/vnd.oci.image.layer.v1.tar+gzip"),
            "{:?}",
            got.media_types
        );
        digests.push(got.manifest);
    }
    // The shared base layer went up once and was mounted into the other repository.
    let requests = registry.requests();
    assert!(
        requests
            .iter()
            .any(|(m, uri, s)| m == "POST" && uri.contains("mount=") && *s == 201),
        "no mount in {requests:?}"
    );
    let uploads_before = registry.uploads().len();
    let second = push(&dir, &registry, &[]).success();
    assert_eq!(
        registry.uploads().len(),
        uploads_before,
        "the second push uploaded again: {}",
        second.stdout
    );
    assert!(
        second.stdout.contains("already present"),
        "{}",
        second.stdout
    );
    for (image, first_digest) in images.iter().zip(&digests) {
        assert_eq!(&pushed(&registry, &image.tag).manifest, first_digest);
    }
}

#[test]
fn a_prefix_in_the_address_names_the_repositories_and_zstd_and_none_push_as_asked() {
    let Some(registry) = TestRegistry::start(Serving::Plain) else {
        return;
    };
    let (_keep, dir) = workdir_with_keys();
    let images = images();
    bundle_of(&dir, &images);
    let to = format!("registry://{}/site/apps", registry.host);
    let run = airgap(
        &dir,
        &[
            "unpack",
            "b.zst",
            "--key",
            "ops.pub.pem",
            "--to",
            &to,
            "--plain-http",
            &registry.host,
            "--push-compression",
            "zstd",
        ],
    )
    .success();
    assert!(
        run.stdout.contains("site/apps/fixture/web:1"),
        "{}",
        run.stdout
    );
    let got = pushed(&registry, "site/apps/fixture/web:1");
    assert_eq!(got.config, synthetic::digest(&images[0].config));
    assert!(
        got.media_types.iter().all(|m| m.ends_with("+zstd")),
        "{:?}",
        got.media_types
    );
    // Nothing went outside the prefix.
    assert!(
        registry
            .requests()
            .iter()
            .filter(|(_, uri, _)| uri.starts_with("/v2/") && uri.len() > 4)
            .all(|(_, uri, _)| uri.starts_with("/v2/site/apps/")),
        "{:?}",
        registry.requests()
    );
    // --prefix and a prefix in --to are one prefix too many.
    airgap(
        &dir,
        &[
            "unpack",
            "b.zst",
            "--key",
            "ops.pub.pem",
            "--to",
            &to,
            "--prefix",
            "x.io/y",
        ],
    )
    .failure(2);
}

/// Runs airgap with `stdin` on standard input.
fn airgap_with_stdin(dir: &Path, args: &[String], stdin: &str) -> Run {
    run_with_stdin(
        Command::new(env!("CARGO_BIN_EXE_airgap"))
            .args(args)
            .current_dir(dir)
            .env_remove("DOCKER_HOST")
            .env("AIRGAP_STATE_DIR", state_dir())
            .env("HOME", dir),
        stdin,
    )
}

#[track_caller]
fn one_line_failure(run: Run, code: i32, says: &str) {
    let run = run.failure(code);
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "not one line: {}", run.stderr);
    assert!(
        lines[0].contains(says),
        "{:?} does not say {says:?}",
        lines[0]
    );
}

#[test]
fn tls_with_a_private_ca_and_basic_auth_and_its_refusals() {
    let Some(registry) = TestRegistry::start(Serving::TlsAuth) else {
        return;
    };
    let (_keep, dir) = workdir_with_keys();
    let images = images();
    bundle_of(&dir, &images);
    let to = format!("registry://{}", registry.host);
    let ca = registry.ca();
    let ca = ca.to_str().unwrap();
    let base = [
        "unpack",
        "b.zst",
        "--key",
        "ops.pub.pem",
        "--to",
        to.as_str(),
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| (*s).to_owned()).collect()
    };

    let pushed_run = airgap_with_stdin(
        &dir,
        &with(&[
            "--registry-ca",
            ca,
            "--registry-user",
            USER,
            "--registry-password-stdin",
        ]),
        &format!("{PASSWORD}\n"),
    )
    .success();
    assert!(
        pushed_run.stdout.contains("pushed"),
        "{}",
        pushed_run.stdout
    );
    let got = pushed(&registry, "fixture/api:1");
    assert_eq!(got.config, synthetic::digest(&images[1].config));
    assert_eq!(got.diff_ids, expected_diff_ids(&images[1]));

    one_line_failure(
        airgap_with_stdin(
            &dir,
            &with(&[
                "--registry-ca",
                ca,
                "--registry-user",
                USER,
                "--registry-password-stdin",
            ]),
            "wrong\n",
        ),
        5,
        "--registry-user pusher",
    );
    // No credentials at all: the error says where it looked.
    one_line_failure(
        airgap_with_stdin(&dir, &with(&["--registry-ca", ca]), ""),
        5,
        "no credentials",
    );
    // Credentials from the Docker config's auths.
    std::fs::create_dir_all(dir.join(".docker")).unwrap();
    let auth = {
        use std::io::Write;
        let mut encoder = Vec::new();
        write!(encoder, "{USER}:{PASSWORD}").unwrap();
        base64_encode(&encoder)
    };
    std::fs::write(
        dir.join(".docker/config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, registry.host),
    )
    .unwrap();
    airgap_with_stdin(&dir, &with(&["--registry-ca", ca]), "").success();
    // The test CA is not trusted without --registry-ca.
    one_line_failure(airgap_with_stdin(&dir, &with(&[]), ""), 5, "--registry-ca");
    // Plain HTTP is never used unless asked for, and asked for it fails here.
    one_line_failure(
        airgap_with_stdin(&dir, &with(&["--plain-http", &registry.host]), ""),
        5,
        &registry.host,
    );
}

fn base64_encode(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn a_missing_registry_is_one_line_and_exit_code_5() {
    let Some(mut registry) = TestRegistry::start(Serving::Plain) else {
        return;
    };
    registry.stop();
    let (_keep, dir) = workdir_with_keys();
    bundle_of(&dir, &images());
    let started = Instant::now();
    one_line_failure(push(&dir, &registry, &[]), 5, "cannot be reached");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "retries are bounded"
    );
}

/// The size of the upload in progress in the registry's storage, if any.
fn upload_in_progress(storage: &Path) -> Option<(String, u64)> {
    let repositories = storage.join("docker/registry/v2/repositories/fixture/big/_uploads");
    let entry = std::fs::read_dir(repositories).ok()?.flatten().next()?;
    let size = std::fs::metadata(entry.path().join("data")).ok()?.len();
    Some((entry.file_name().to_string_lossy().into_owned(), size))
}

#[test]
fn an_interrupted_push_resumes_the_layer_after_a_registry_restart() {
    let Some(mut registry) = TestRegistry::start(Serving::Plain) else {
        return;
    };
    let (_keep, dir) = workdir_with_keys();
    const SIZE: usize = 200 << 20;
    let big = Image::new("fixture/big:1", vec![layer("noise.bin", noise(SIZE))]);
    bundle_of(&dir, &[big]);
    let to = format!("registry://{}", registry.host);
    let mut child = Command::new(env!("CARGO_BIN_EXE_airgap"))
        .args(["unpack", "b.zst", "--key", "ops.pub.pem", "--to", &to])
        .args(["--plain-http", &registry.host, "--push-compression", "none"])
        .current_dir(&dir)
        .env("AIRGAP_STATE_DIR", state_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    let (uuid, _) = loop {
        if let Some((uuid, size)) = upload_in_progress(&registry.storage()) {
            if size > 40 << 20 {
                break (uuid, size);
            }
        }
        assert!(Instant::now() < deadline, "the upload never got under way");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the push ended before it was cut"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    // Ctrl-C: the push stops at the end of the chunk under way.
    interrupt(child.id());
    let cut = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&cut.stderr);
    assert_eq!(cut.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("run the same unpack again"), "{stderr}");
    let (_, held) = upload_in_progress(&registry.storage()).expect("the cut upload is kept");
    assert!(held > 0 && (held as usize) < SIZE + 10_240, "{held}");
    registry.restart();
    let resumed = push(&dir, &registry, &["--push-compression", "none"]).success();
    assert!(
        resumed.stderr.contains(&format!("resumed at byte {held}")),
        "{}",
        resumed.stderr
    );
    let patches: Vec<_> = registry
        .requests()
        .into_iter()
        .filter(|(method, _, _)| method == "PATCH")
        .collect();
    assert!(!patches.is_empty());
    // The layer's PATCHes went on with the upload the first run started
    // (the only other upload is the small config's, one PATCH), and fewer
    // chunks were sent than a whole layer takes.
    let (layer, other): (Vec<_>, Vec<_>) =
        patches.iter().partition(|(_, uri, _)| uri.contains(&uuid));
    assert!(!layer.is_empty() && other.len() <= 1, "{patches:?}");
    let whole = (SIZE as u64 + 10_240).div_ceil(16 << 20) as usize;
    assert!(layer.len() < whole, "{} PATCHes of {whole}", layer.len());
    let got = pushed(&registry, "fixture/big:1");
    assert_eq!(got.diff_ids.len(), 1);
}

fn interrupt(pid: u32) {
    Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
}

#[test]
fn every_engine_pulls_the_pushed_images_as_packed() {
    let Some(registry) = TestRegistry::start(Serving::Plain) else {
        return;
    };
    let Some((_engines, engines)) = Engines::get(["a-offline", "b", "podman"]) else {
        return;
    };
    let (_keep, dir) = workdir_with_keys();
    let images = images();
    bundle_of(&dir, &images);
    push(&dir, &registry, &[]).success();
    for engine in &engines {
        engine.wipe();
        for image in &images {
            let reference = format!("{}/{}", registry.host, image.tag);
            engine.pull(&reference);
            assert_eq!(
                engine.config_digest(&reference),
                synthetic::digest(&image.config),
                "{} on {}",
                image.tag,
                engine.name
            );
            let (_, diff_ids) = engine.inspect(&reference).expect("pulled");
            assert_eq!(
                diff_ids,
                expected_diff_ids(image),
                "{} on {}",
                image.tag,
                engine.name
            );
        }
        engine.wipe();
    }
}

#[test]
fn one_image_failing_does_not_stop_the_others_and_the_end_names_it() {
    let Some(registry) = TestRegistry::start(Serving::Plain) else {
        return;
    };
    // The registry cannot store anything in fixture/api: a file stands
    // where that repository's directory would go.
    let repositories = registry
        .storage()
        .join("docker/registry/v2/repositories/fixture");
    std::fs::create_dir_all(&repositories).unwrap();
    std::fs::write(repositories.join("api"), "not a directory").unwrap();
    let (_keep, dir) = workdir_with_keys();
    let images = images();
    bundle_of(&dir, &images);
    let run = push(&dir, &registry, &[]).failure(5);
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "{}", run.stderr);
    assert!(
        lines[0].contains("1 of 2 images were not pushed"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("fixture/api:1"), "{}", lines[0]);
    assert!(!lines[0].contains("fixture/web:1"), "{}", lines[0]);
    let web = pushed(&registry, "fixture/web:1");
    assert_eq!(web.config, synthetic::digest(&images[0].config));
}

#[test]
fn a_compose_project_written_beside_a_push_names_the_pushed_images() {
    let Some(registry) = TestRegistry::start(Serving::Plain) else {
        return;
    };
    let (_dir, dir) = workdir_with_keys();
    let images = images();
    std::fs::write(dir.join("images.tar"), synthetic::legacy_archive(&images)).unwrap();
    std::fs::write(
        dir.join("compose.yml"),
        "services:\n  web:\n    image: fixture/web:1\n  api:\n    image: fixture/api:1\n",
    )
    .unwrap();
    airgap(
        &dir,
        &[
            "pack",
            "-q",
            "--key",
            "ops.pem",
            "--archive",
            "images.tar",
            "compose.yml",
            "-o",
            "b.zst",
        ],
    )
    .success();
    let site = dir.join("site");
    let to = format!("registry://{}/enclave", registry.host);
    let run = airgap(
        &dir,
        &[
            "unpack",
            "b.zst",
            "--key",
            "ops.pub.pem",
            "--to",
            &to,
            "--plain-http",
            &registry.host,
            "--compose-dir",
            site.to_str().unwrap(),
        ],
    )
    .success();
    assert!(run.stdout.contains("compose project"), "{}", run.stdout);
    let written: String = std::fs::read_dir(&site)
        .unwrap()
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default())
        .collect();
    for name in ["fixture/web:1", "fixture/api:1"] {
        let pushed_name = format!("{}/enclave/{name}", registry.host);
        assert!(written.contains(&pushed_name), "{pushed_name} in {written}");
        let pushed = pushed(&registry, &format!("enclave/{name}"));
        let image = images.iter().find(|i| i.tag == name).unwrap();
        assert_eq!(pushed.diff_ids, expected_diff_ids(image), "{name}");
    }
}

#[test]
fn a_registry_with_a_token_service_takes_the_push_and_a_wrong_password_is_one_line() {
    let Some(registry) = TestRegistry::start(Serving::Token) else {
        return;
    };
    let (_keep, dir) = workdir_with_keys();
    let images = images();
    bundle_of(&dir, &images);
    let to = format!("registry://{}/site", registry.host);
    let args: Vec<String> = [
        "unpack",
        "b.zst",
        "--key",
        "ops.pub.pem",
        "--to",
        &to,
        "--plain-http",
        &registry.host,
        "--registry-user",
        USER,
        "--registry-password-stdin",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    airgap_with_stdin(&dir, &args, &format!("{PASSWORD}\n")).success();
    for (name, image) in ["site/fixture/web:1", "site/fixture/api:1"]
        .iter()
        .zip(&images)
    {
        let got = pushed(&registry, name);
        assert_eq!(got.config, synthetic::digest(&image.config), "{name}");
        assert_eq!(got.diff_ids, expected_diff_ids(image), "{name}");
    }
    let asked = registry.token_requests();
    assert!(
        asked
            .iter()
            .any(|line| line.starts_with(&format!("{USER} "))
                && line.contains("site/fixture/web:pull,push")),
        "the token service was not asked for a push token: {asked:?}"
    );
    one_line_failure(
        airgap_with_stdin(&dir, &args, "wrong\n"),
        5,
        "--registry-user pusher",
    );
}

#[test]
fn a_tls_registry_whose_token_service_is_plain_http_gets_no_password() {
    let Some(registry) = TestRegistry::start(Serving::TlsPlainToken) else {
        return;
    };
    let (_keep, dir) = workdir_with_keys();
    bundle_of(&dir, &images());
    let to = format!("registry://{}", registry.host);
    let ca = registry.ca();
    let args: Vec<String> = [
        "unpack",
        "b.zst",
        "--key",
        "ops.pub.pem",
        "--to",
        &to,
        "--registry-ca",
        ca.to_str().unwrap(),
        "--registry-user",
        USER,
        "--registry-password-stdin",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    one_line_failure(
        airgap_with_stdin(&dir, &args, &format!("{PASSWORD}\n")),
        5,
        "over plain HTTP",
    );
    assert!(
        registry.token_requests().is_empty(),
        "the password went to a plain-HTTP token service: {:?}",
        registry.token_requests()
    );
}
