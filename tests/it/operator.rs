//! What an operator meets first: help, completions, man pages, the version,
//! a terminal where a bundle would flow, and advice for common mistakes.

use std::path::Path;
use std::process::Command;

use crate::engines;
use crate::support::cmd::{Run, airgap, workdir_with_keys};
use crate::support::{fixtures, synthetic};

const USAGE: i32 = 2;
const ENGINE: i32 = 5;
const IMAGES_MISSING: i32 = 6;

/// Runs airgap under `script`, so standard input and output are a terminal.
fn airgap_on_terminal(dir: &Path, args: &str) -> Run {
    let command = format!("{} {args}", env!("CARGO_BIN_EXE_airgap"));
    let output = Command::new("script")
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .current_dir(dir)
        .env_remove("DOCKER_HOST")
        .output()
        .expect("script (util-linux) runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        // On a terminal both streams arrive together.
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::new(),
    }
}

#[test]
fn every_command_help_ends_with_examples() {
    let dir = tempfile::tempdir().unwrap();
    for command in [
        "keygen",
        "key",
        "pack",
        "plan",
        "verify",
        "unpack",
        "inventory",
        "inspect",
        "completions",
    ] {
        let help = airgap(dir.path(), &[command, "--help"]).success().stdout;
        let examples = help
            .rfind("Examples:")
            .unwrap_or_else(|| panic!("airgap {command} --help has no examples:\n{help}"));
        assert!(
            help[examples..].contains(&format!("airgap {command}")),
            "{command}: {help}"
        );
    }
    let help = airgap(dir.path(), &["--help"]).success().stdout;
    assert!(help.contains("Examples:"), "{help}");
}

#[test]
fn completions_for_each_shell_and_a_man_page_per_command() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "complete -F _airgap"),
        ("zsh", "#compdef airgap"),
        ("fish", "complete -c airgap"),
    ] {
        let script = airgap(dir.path(), &["completions", shell]).success().stdout;
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("unpack"), "{shell}");
    }
    airgap(dir.path(), &["completions", "tcsh"]).failure(USAGE);

    airgap(dir.path(), &["man", "pages"]).success();
    for command in [
        "airgap",
        "keygen",
        "pack",
        "plan",
        "verify",
        "unpack",
        "inventory",
        "inspect",
    ] {
        let name = if command == "airgap" {
            "airgap.1".to_owned()
        } else {
            format!("airgap-{command}.1")
        };
        let page = std::fs::read_to_string(dir.path().join("pages").join(&name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(page.starts_with(".ie"), "{name} is no roff page");
        assert!(page.contains(".SH NAME"), "{name}");
    }
}

#[test]
fn version_names_the_bundle_format_written_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let version = airgap(dir.path(), &["--version"]).success().stdout;
    let expected = format!(
        "bundle format {}; reads {}.x",
        airgap::bundle::FORMAT_VERSION,
        airgap::bundle::FORMAT_MAJOR
    );
    assert!(version.contains(&expected), "{version}");
}

#[test]
fn pack_to_standard_output_refuses_a_terminal() {
    let (_dir, dir) = workdir_with_keys();
    let run = airgap_on_terminal(&dir, "pack --key ops.pem -o - fixture/web:1");
    assert_eq!(run.code, USAGE, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("cowardly refusing to write the bundle to a terminal"),
        "{}",
        run.stdout
    );
    // Refused before anything else: no engine was needed to say so.
    assert!(!run.stdout.contains("container engine"), "{}", run.stdout);
}

#[test]
fn unpack_from_a_terminal_says_a_bundle_must_be_piped_in() {
    let (_dir, dir) = workdir_with_keys();
    for command in ["unpack --key ops.pub.pem -", "verify --key ops.pub.pem -"] {
        let run = airgap_on_terminal(&dir, command);
        assert_eq!(run.code, USAGE, "{command}: {}", run.stdout);
        assert!(
            run.stdout.contains("standard input is a terminal")
                && run.stdout.contains("airgap unpack - < BUNDLE"),
            "{command}: {}",
            run.stdout
        );
    }
}

#[test]
fn a_public_key_given_to_sign_names_the_private_key_beside_it() {
    let (_dir, dir) = workdir_with_keys();
    let run = airgap(
        &dir,
        &[
            "pack",
            "--key",
            "ops.pub.pem",
            "-o",
            "x.airgap",
            "fixture/web:1",
        ],
    );
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("ops.pub.pem is a public key")
            && run.stderr.contains("give its private key ops.pem instead"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("chmod"), "{}", run.stderr);
}

#[test]
fn a_missing_compose_file_is_no_such_compose_file() {
    let (_dir, dir) = workdir_with_keys();
    for command in ["plan", "pack"] {
        let mut args = vec![command, "compose.prod.yml"];
        if command == "pack" {
            args.extend(["--key", "ops.pem", "-o", "x.airgap"]);
        }
        let run = airgap(&dir, &args).failure(USAGE);
        assert!(
            run.stderr.contains("no such compose file"),
            "{}",
            run.stderr
        );
        assert!(!run.stderr.contains("not found"), "{}", run.stderr);
    }
}

#[test]
fn a_compose_image_with_surrounding_white_space_is_refused_naming_the_service() {
    let (_dir, dir) = workdir_with_keys();
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  web:\n    image: \"${REGISTRY} fixture/web:1\"\n",
    )
    .unwrap();
    let run = airgap(&dir, &["plan", "--images"]);
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stderr.contains("service web") && run.stderr.contains("surrounding white space"),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains("fixture/web:1"), "{}", run.stdout);
}

#[test]
fn an_unreachable_engine_is_one_line_without_client_noise() {
    let dir = tempfile::tempdir().unwrap();
    let run = airgap(
        dir.path(),
        &["--host", "tcp://127.0.0.1:1", "plan", "fixture/web:1"],
    )
    .failure(ENGINE);
    let line = run.stderr.trim_end();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.starts_with("error: cannot reach the container engine at tcp://127.0.0.1:1: ")
            && line.contains("refused")
            && line.ends_with("start the engine, or point --host or DOCKER_HOST at it"),
        "{line}"
    );
    assert!(
        !line.contains("hyper") && !line.contains("client error"),
        "{line}"
    );
}

#[test]
fn plan_fails_as_pack_does_and_names_the_tags_held_when_latest_was_assumed() {
    let (_lock, [connected]) = engines!("a-connected");
    fixtures::ensure(&connected);
    let (_dir, dir) = workdir_with_keys();
    // fixture/web has a tag 1 but no latest.
    let plan =
        airgap(&dir, &["--host", &connected.host, "plan", "fixture/web"]).failure(IMAGES_MISSING);
    assert!(
        plan.stdout.contains("fixture/web: MISSING"),
        "{}",
        plan.stdout
    );
    let pack = airgap(
        &dir,
        &[
            "--host",
            &connected.host,
            "pack",
            "--key",
            "ops.pem",
            "-o",
            "x.airgap",
            "fixture/web",
        ],
    )
    .failure(IMAGES_MISSING);
    for run in [&plan, &pack] {
        assert!(
            run.stderr.contains(
                "fixture/web (no tag given, so :latest was assumed; the engine holds fixture/web:1)"
            ),
            "{}",
            run.stderr
        );
    }
    assert!(!dir.join("x.airgap").exists());
    // Beside an image made here, the engine is one member of several and
    // its advice still reaches the operator.
    let layer = synthetic::layer("etc/motd", "hi\n");
    std::fs::write(dir.join("rootfs.tar"), layer).unwrap();
    let combined = airgap(
        &dir,
        &[
            "--host",
            &connected.host,
            "pack",
            "--import",
            "rootfs.tar=op/imported:1",
            "--change",
            r#"CMD ["cat", "/etc/motd"]"#,
            "--unsigned",
            "-o",
            "x.airgap",
            "fixture/web",
        ],
    )
    .failure(IMAGES_MISSING);
    assert!(
        combined.stderr.contains(
            "fixture/web (no tag given, so :latest was assumed; the engine holds fixture/web:1)"
        ),
        "{}",
        combined.stderr
    );
    // A tag that is named is not second-guessed.
    let named =
        airgap(&dir, &["--host", &connected.host, "plan", "fixture/web:9"]).failure(IMAGES_MISSING);
    assert!(!named.stderr.contains("assumed"), "{}", named.stderr);
}

#[test]
fn plan_sizes_an_image_whose_history_does_not_line_up_with_its_layers() {
    let (_lock, [offline]) = engines!("a-offline");
    let (_dir, dir) = workdir_with_keys();
    // A docker save archive whose config has no history: Docker 20.10's
    // history then lists nothing, but inspect still knows the size.
    let archive = dir.join("nohistory.tar");
    let image = synthetic::Image::new(
        "op/nohistory:1",
        vec![
            synthetic::layer("a", synthetic::noise(5000)),
            synthetic::layer("b", synthetic::noise(7000)),
        ],
    );
    std::fs::write(&archive, synthetic::legacy_archive(&[image])).unwrap();
    let load = Command::new("docker")
        .args(["-H", &offline.host, "load", "-i"])
        .arg(&archive)
        .env_remove("DOCKER_HOST")
        .output()
        .unwrap();
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    let run = airgap(&dir, &["--host", &offline.host, "plan", "op/nohistory:1"]).success();
    offline.docker(&["rmi", "op/nohistory:1"]);
    let first = run.stdout.lines().next().unwrap();
    assert!(
        first.starts_with("op/nohistory:1: id ") && first.ends_with("2 layers, 12.0 kB"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("0 B"), "{}", run.stdout);
}

#[test]
fn a_foreign_file_is_named_before_an_unreachable_engine_is() {
    let (_temp, dir) = workdir_with_keys();
    std::fs::write(
        dir.join("images.tar"),
        synthetic::legacy_archive(&[synthetic::Image::new(
            "fixture/web:1",
            vec![synthetic::layer("web.txt", "web")],
        )]),
    )
    .unwrap();
    let run = airgap(
        &dir,
        &[
            "--host",
            "unix:///nonexistent/docker.sock",
            "unpack",
            "images.tar",
            "--key",
            "ops.pub.pem",
        ],
    )
    .failure(3);
    assert!(
        run.stderr.contains("images.tar is an image archive") || run.stderr.contains("docker save"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("nonexistent"), "{}", run.stderr);
}
