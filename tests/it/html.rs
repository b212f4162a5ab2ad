//! `inspect --html` and `verify --html` in a real headless browser (Debian's
//! chromium): the page of a fixture bundle renders to a screenshot with
//! something on it, and its DOM holds the image names and the signer's key
//! fingerprint. No engine is needed. Chromium runs with its network cut off
//! (background networking disabled, every host name unresolvable): the page
//! references nothing outside itself.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::cmd::{airgap, workdir_with_keys};
use crate::support::synthetic::{self, Image, layer, noise};

const NAMES: [&str; 3] = [
    "shop/web:1",
    "shop/api:2",
    "registry.local:5000/team/worker:3",
];

/// A signed bundle of three images sharing a base layer, in `dir/b.zst`.
fn fixture_bundle(dir: &Path) {
    let base = layer("etc/base", noise(300_000));
    let images: Vec<Image> = NAMES
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let own = layer(&format!("app{i}"), noise(50_000 * (i + 1)));
            Image::new(name, vec![base.clone(), own])
        })
        .collect();
    fs::write(dir.join("save.tar"), synthetic::oci_archive(&images, &[])).unwrap();
    let mut args = vec![
        "pack",
        "--quiet",
        "--archive",
        "save.tar",
        "-o",
        "b.zst",
        "--key",
        "ops.pem",
    ];
    args.extend(NAMES);
    airgap(dir, &args).success();
}

/// Debian's chromium, or `None` outside CI when it is not installed.
fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser"]
        .into_iter()
        .find_map(|name| {
            Command::new(name)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
                .then(|| PathBuf::from(name))
        });
    if found.is_none() {
        let message = "chromium is not installed (scripts/deps installs it)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{message}");
        }
        eprintln!("SKIPPED: {message}");
    }
    found
}

/// Runs headless chromium on `page` with `action` (`--screenshot=…` or
/// `--dump-dom`), cut off from the network; its standard output.
fn headless(chromium: &Path, page: &Path, action: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-extensions",
            "--disable-domain-reliability",
            "--disable-client-side-phishing-detection",
            "--no-first-run",
            "--no-pings",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--window-size=1280,2000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(action)
        .arg(format!("file://{}", page.display()))
        .current_dir(profile.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(180) {
            child.kill().unwrap();
            panic!("chromium {action} did not finish in 180 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "chromium {action}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Takes a screenshot of `page` into `png` and returns its size in bytes,
/// after checking it is a 1280-pixel-wide PNG.
fn screenshot(chromium: &Path, page: &Path, png: &Path) -> u64 {
    headless(chromium, page, &format!("--screenshot={}", png.display()));
    let bytes = fs::read(png).unwrap_or_else(|e| panic!("no screenshot {}: {e}", png.display()));
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    assert_eq!(width, 1280, "screenshot width");
    bytes.len() as u64
}

fn fingerprint(dir: &Path) -> String {
    let run = airgap(dir, &["key", "fingerprint", "ops.pub.pem"]).success();
    run.stdout.split_whitespace().next().unwrap().to_owned()
}

#[test]
fn inspect_and_verify_pages_render_in_a_headless_browser() {
    let Some(chromium) = chromium() else { return };
    let (_tmp, dir) = workdir_with_keys();
    fixture_bundle(&dir);
    let fingerprint = fingerprint(&dir);
    airgap(
        &dir,
        &[
            "inspect",
            "b.zst",
            "--key",
            "ops.pub.pem",
            "--html",
            "inspect.html",
        ],
    )
    .success();
    airgap(
        &dir,
        &[
            "verify",
            "b.zst",
            "--key",
            "ops.pub.pem",
            "--html",
            "verify.html",
        ],
    )
    .success();
    // A blank page's screenshot: the yardstick for "something is drawn".
    fs::write(
        dir.join("blank.html"),
        "<!DOCTYPE html><html><body></body></html>",
    )
    .unwrap();
    let blank = screenshot(&chromium, &dir.join("blank.html"), &dir.join("blank.png"));

    for (page, extra) in [
        ("inspect.html", "Shared layers"),
        ("verify.html", "VERIFIED"),
    ] {
        let path = dir.join(page);
        let html = fs::read_to_string(&path).unwrap();
        assert!(
            !html.contains("http://") && !html.contains("https://") && !html.contains("<script"),
            "{page} references something outside itself or runs a script"
        );
        let png = dir.join(format!("{page}.png"));
        let size = screenshot(&chromium, &path, &png);
        assert!(
            size > blank * 3,
            "{page}: screenshot of {size} bytes is hardly more than a blank page's {blank}"
        );
        let dom = headless(&chromium, &path, "--dump-dom");
        for name in NAMES {
            assert!(
                dom.contains(name),
                "{page}: {name} missing from the rendered page"
            );
        }
        assert!(
            dom.contains(&fingerprint),
            "{page}: signer {fingerprint} missing"
        );
        assert!(dom.contains(extra), "{page}: {extra} missing");
    }
}

#[test]
fn the_page_of_a_refused_bundle_says_refused() {
    let (_tmp, dir) = workdir_with_keys();
    fixture_bundle(&dir);
    // A key that did not sign the bundle: verify refuses, the page says so.
    airgap(&dir, &["keygen", "--output", "other"]).success();
    let run = airgap(
        &dir,
        &[
            "verify",
            "b.zst",
            "--key",
            "other.pub.pem",
            "--html",
            "verify.html",
        ],
    );
    assert_eq!(run.code, 4, "{}", run.stderr);
    let html = fs::read_to_string(dir.join("verify.html")).unwrap();
    assert!(html.contains("REFUSED"), "{html}");
    assert!(html.contains("NOT trusted here"), "{html}");
}
