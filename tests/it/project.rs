//! A compose project carried across: its files ride in the bundle and are
//! written out on the isolated side, where every service's image is checked.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::engines;
use crate::support::cmd::{Run, airgap, workdir_with_keys};
use crate::support::engine::TestEngine;
use crate::support::fixtures;

const SHOP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/projects/shop");

/// Packs the shop project from `connected` into `shop.zst`.
fn pack_shop(connected: &TestEngine, dir: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "--host",
        &connected.host,
        "pack",
        "-q",
        SHOP,
        "-o",
        "shop.zst",
        "--key",
        "ops.pem",
    ];
    args.extend(extra);
    airgap(dir, &args)
}

/// Unpacks `shop.zst` into `offline`, writing the project into `site/`.
fn unpack_shop(offline: &TestEngine, dir: &Path) -> (Run, PathBuf) {
    let site = dir.join("site");
    let site_arg = site.to_str().unwrap().to_owned();
    let args = [
        "--host",
        &offline.host,
        "unpack",
        "-q",
        "shop.zst",
        "--key",
        "ops.pub.pem",
        "--compose-dir",
        &site_arg,
    ];
    (airgap(dir, &args), site)
}

#[test]
fn a_compose_project_is_carried_and_its_images_checked_on_the_other_side() {
    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    fixtures::ensure(&connected);
    offline.wipe();
    let (_dir, dir) = workdir_with_keys();
    let run = pack_shop(&connected, &dir, &[]).success();
    assert!(
        run.stdout.contains("fixture/worker:latest"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("tool"),
        "a service behind a profile was packed: {}",
        run.stdout
    );
    let inspect = airgap(&dir, &["inspect", "shop.zst"]).success().stdout;
    assert!(inspect.contains("compose project shop"), "{inspect}");
    assert!(
        inspect.contains("service worker → fixture/worker:latest"),
        "{inspect}"
    );
    assert!(
        !inspect.contains(".env"),
        "env files are carried only with --with-env: {inspect}"
    );

    let (run, site) = unpack_shop(&offline, &dir);
    let run = run.success();
    assert!(
        run.stdout.contains("compose project shop"),
        "{}",
        run.stdout
    );
    assert_eq!(
        fs::read(site.join("compose.yaml")).unwrap(),
        fs::read(Path::new(SHOP).join("compose.yaml")).unwrap()
    );
    assert!(!site.join(".env").exists());
    for tag in ["fixture/web:1", "fixture/api:1", "fixture/worker:latest"] {
        assert_eq!(offline.inspect(tag), connected.inspect(tag), "{tag}");
    }

    // Unpacking again into the same directory is fine; a changed file is not overwritten.
    unpack_shop(&offline, &dir).0.success();
    fs::write(site.join("compose.yaml"), "services: {}\n").unwrap();
    let run = unpack_shop(&offline, &dir).0.failure(1);
    assert!(run.stderr.contains("already exists"), "{}", run.stderr);
}

#[test]
fn env_files_ride_along_only_with_with_env() {
    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    fixtures::ensure(&connected);
    let (_dir, dir) = workdir_with_keys();
    pack_shop(&connected, &dir, &["--with-env"]).success();
    let (run, site) = unpack_shop(&offline, &dir);
    run.success();
    assert_eq!(
        fs::read_to_string(site.join(".env")).unwrap(),
        "WORKER_TAG=latest\n"
    );
    assert_eq!(
        fs::read_to_string(site.join("web.env")).unwrap(),
        "GREETING=hello from web.env\n"
    );
    assert_eq!(
        fs::metadata(site.join(".env"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
}

#[test]
fn a_tag_moved_on_the_site_is_put_back_by_the_next_unpack() {
    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    fixtures::ensure(&connected);
    offline.wipe();
    let (_dir, dir) = workdir_with_keys();
    pack_shop(&connected, &dir, &[]).success();
    unpack_shop(&offline, &dir).0.success();
    // Someone re-tags the api image on the site: compose would now run the wrong image.
    offline.docker(&["tag", "fixture/web:1", "fixture/api:1"]);
    assert_ne!(
        offline.inspect("fixture/api:1"),
        connected.inspect("fixture/api:1")
    );
    let run = unpack_shop(&offline, &dir).0.success();
    assert!(run.stdout.contains("already present"), "{}", run.stdout);
    assert_eq!(
        offline.inspect("fixture/api:1"),
        connected.inspect("fixture/api:1")
    );
}

/// A project whose env file sits in a subdirectory, as `config/db.env`.
fn write_vault_project(dir: &Path) -> PathBuf {
    let project = dir.join("vault");
    fs::create_dir_all(project.join("config")).unwrap();
    fs::write(
        project.join("compose.yaml"),
        "name: vault\nservices:\n  web:\n    image: fixture/web:1\n    env_file: config/db.env\n",
    )
    .unwrap();
    fs::write(project.join("config/db.env"), "DB_PASSWORD=hunter2\n").unwrap();
    project
}

#[test]
fn a_link_planted_in_the_compose_dir_is_refused_before_anything_is_loaded() {
    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    fixtures::ensure(&connected);
    offline.wipe();
    let (_dir, dir) = workdir_with_keys();
    let project = write_vault_project(&dir);
    let project_arg = project.to_str().unwrap();
    let args = [
        "--host",
        &connected.host,
        "pack",
        "-q",
        project_arg,
        "-o",
        "vault.zst",
        "--key",
        "ops.pem",
        "--with-env",
    ];
    airgap(&dir, &args).success();

    // Someone who could write into the site directory planted config -> elsewhere.
    let site = dir.join("site");
    let elsewhere = dir.join("elsewhere");
    fs::create_dir(&site).unwrap();
    fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, site.join("config")).unwrap();
    let site_arg = site.to_str().unwrap();
    let unpack = [
        "--host",
        &offline.host,
        "unpack",
        "-q",
        "vault.zst",
        "--key",
        "ops.pub.pem",
        "--compose-dir",
        site_arg,
    ];
    let run = airgap(&dir, &unpack).failure(1);
    assert_eq!(
        run.stderr.trim_end(),
        format!(
            "error: {}/config is a symbolic link; airgap does not write through links in --compose-dir: remove it or choose an empty directory",
            site.display()
        )
    );
    assert_eq!(
        fs::read_dir(&elsewhere).unwrap().count(),
        0,
        "written through the link"
    );
    assert_eq!(
        fs::read_dir(&site).unwrap().count(),
        1,
        "only the link is there"
    );
    assert_eq!(
        offline.inspect("fixture/web:1"),
        None,
        "loaded before refusing"
    );

    // Without the link the same bundle unpacks, the env file readable by its owner only.
    fs::remove_file(site.join("config")).unwrap();
    airgap(&dir, &unpack).success();
    assert_eq!(
        fs::read_to_string(site.join("config/db.env")).unwrap(),
        "DB_PASSWORD=hunter2\n"
    );
    let mode = |path: PathBuf| fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(site.join("config")), 0o700);
    assert_eq!(mode(site.join("config/db.env")), 0o600);
    assert_eq!(
        offline.inspect("fixture/web:1"),
        connected.inspect("fixture/web:1")
    );
}
