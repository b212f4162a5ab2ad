//! The rollback record under pressure: unpacks racing each other, and an
//! unpack killed while the engine loads. Either way an older bundle must
//! stay a rollback afterwards.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::engines;
use crate::support::cmd::{Run, airgap, workdir_with_keys};
use crate::support::engine::TestEngine;
use crate::support::fixtures;

/// Exit code from README.md.
const DOWNGRADE: i32 = 7;

/// Two signed bundles of fixture/web:1, `old.zst` and (after a rebuild, a
/// different image made later) `new.zst`; returns the new image's ID.
fn old_and_new_bundles(connected: &TestEngine, dir: &Path) -> String {
    fixtures::ensure(connected);
    let pack = |output: &str| {
        airgap(
            dir,
            &[
                "--host",
                &connected.host,
                "pack",
                "-q",
                "fixture/web:1",
                "-o",
                output,
                "--key",
                "ops.pem",
            ],
        )
        .success();
    };
    pack("old.zst");
    let old_id = connected.inspect("fixture/web:1").unwrap().0;
    fixtures::rebuild(connected);
    let new_id = connected.inspect("fixture/web:1").unwrap().0;
    assert_ne!(old_id, new_id);
    // Bundle times have whole seconds: the new one must be made later.
    std::thread::sleep(Duration::from_millis(1100));
    pack("new.zst");
    new_id
}

fn unpack_args<'a>(offline: &'a TestEngine, bundle: &'a str, state: &'a Path) -> Vec<&'a str> {
    vec![
        "--host",
        &offline.host,
        "unpack",
        "-q",
        bundle,
        "--key",
        "ops.pub.pem",
        "--state-dir",
        state.to_str().unwrap(),
    ]
}

fn unpack(dir: &Path, offline: &TestEngine, bundle: &str, state: &Path) -> Run {
    airgap(dir, &unpack_args(offline, bundle, state))
}

#[test]
fn two_unpacks_at_once_leave_a_record_that_refuses_the_older_bundle() {
    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    offline.wipe();
    let (_dir, dir) = workdir_with_keys();
    let new_id = old_and_new_bundles(&connected, &dir);
    let state = tempfile::tempdir().unwrap();

    let (new, old) = std::thread::scope(|scope| {
        let new = scope.spawn(|| unpack(&dir, &offline, "new.zst", state.path()));
        let old = scope.spawn(|| unpack(&dir, &offline, "old.zst", state.path()));
        (new.join().unwrap(), old.join().unwrap())
    });
    // Whichever got the record first, the new bundle loads; the old one
    // either loaded first or was refused after the new one was recorded.
    new.success();
    assert!(
        old.code == 0 || old.code == DOWNGRADE,
        "old.zst: exit {}: {}",
        old.code,
        old.stderr
    );
    assert_eq!(offline.inspect("fixture/web:1").unwrap().0, new_id);

    let again = unpack(&dir, &offline, "old.zst", state.path()).failure(DOWNGRADE);
    assert!(again.stderr.contains("downgrade"), "{}", again.stderr);
    assert_eq!(offline.inspect("fixture/web:1").unwrap().0, new_id);
}

/// The one file in `state` whose name ends with `suffix`.
fn state_file(state: &Path, suffix: &str) -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir(state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}

/// Waits until a process waits for the lock on the file `inode`, as
/// /proc/locks shows waiters ("->"); fails if `child` ends first.
fn wait_until_waiting(child: &mut Child, inode: u64) {
    let inode = format!(":{inode}");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let locks = std::fs::read_to_string("/proc/locks").unwrap();
        let waiting = locks.lines().any(|line| {
            line.contains("->") && line.split_whitespace().any(|f| f.ends_with(&inode))
        });
        if waiting {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("unpack ended ({status}) without waiting for the record's lock");
        }
        assert!(Instant::now() < deadline, "unpack never reached the lock");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The race made deterministic: the test holds the record's lock as a first
/// unpack would, writes that unpack's record while the second waits, and
/// lets go; the second must read that record and refuse the older bundle.
#[test]
fn an_unpack_waits_for_the_record_and_checks_against_the_update_it_waited_for() {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    offline.wipe();
    let (_dir, dir) = workdir_with_keys();
    let new_id = old_and_new_bundles(&connected, &dir);
    // What the first unpack leaves: the record of new.zst on this engine.
    let first = tempfile::tempdir().unwrap();
    unpack(&dir, &offline, "new.zst", first.path()).success();
    let record = state_file(first.path(), ".json");
    // The lock sits beside the record, under the same name.
    let lock_name = record.with_extension("lock");
    assert!(lock_name.exists(), "no lock beside {}", record.display());

    let state = tempfile::tempdir().unwrap();
    let lock_path = state.path().join(lock_name.file_name().unwrap());
    let held = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&lock_path)
        .unwrap();
    rustix::fs::flock(&held, rustix::fs::FlockOperation::LockExclusive).unwrap();
    let mut second = Command::new(env!("CARGO_BIN_EXE_airgap"))
        .args(unpack_args(&offline, "old.zst", state.path()))
        .current_dir(&dir)
        .env_remove("DOCKER_HOST")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_waiting(&mut second, held.metadata().unwrap().ino());
    let copy = state.path().join(record.file_name().unwrap());
    std::fs::copy(&record, &copy).unwrap();
    drop(held);

    let output = second.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(DOWNGRADE), "{stderr}");
    assert!(stderr.contains("downgrade"), "{stderr}");
    assert_eq!(offline.inspect("fixture/web:1").unwrap().0, new_id);
}

/// The record file in `state`, once it holds a pending intent.
fn pending_record(state: &Path) -> Option<PathBuf> {
    std::fs::read_dir(state).ok()?.find_map(|entry| {
        let path = entry.ok()?.path();
        let is_record = path.extension().is_some_and(|e| e == "json");
        let text = std::fs::read_to_string(&path).ok()?;
        (is_record && text.contains("\"pending\"")).then_some(path)
    })
}

/// Waits for the intent to appear in `state` while `child` runs; `None`
/// when the child ended first.
fn wait_for_intent(child: &mut Child, state: &Path) -> Option<PathBuf> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(path) = pending_record(state) {
            return Some(path);
        }
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        assert!(Instant::now() < deadline, "unpack neither wrote nor ended");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn an_unpack_killed_after_its_intent_still_makes_the_older_bundle_a_rollback() {
    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    offline.wipe();
    let (_dir, dir) = workdir_with_keys();
    let new_id = old_and_new_bundles(&connected, &dir);
    let state = tempfile::tempdir().unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_airgap"))
        .args(unpack_args(&offline, "new.zst", state.path()))
        .current_dir(&dir)
        .env_remove("DOCKER_HOST")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let intent = wait_for_intent(&mut child, state.path());
    // Killed as a power cut would: the engine may or may not have the tag.
    let _ = child.kill();
    child.wait().unwrap();
    assert!(
        intent.is_some(),
        "unpack finished without ever recording its intent before loading"
    );

    let refused = unpack(&dir, &offline, "old.zst", state.path()).failure(DOWNGRADE);
    assert!(
        refused.stderr.contains("downgrade") && refused.stderr.contains("interrupted"),
        "{}",
        refused.stderr
    );

    unpack(&dir, &offline, "new.zst", state.path()).success();
    assert_eq!(offline.inspect("fixture/web:1").unwrap().0, new_id);
    assert!(
        pending_record(state.path()).is_none(),
        "running the bundle again completed the record"
    );
    let refused = unpack(&dir, &offline, "old.zst", state.path()).failure(DOWNGRADE);
    assert!(
        !refused.stderr.contains("interrupted"),
        "{}",
        refused.stderr
    );
}

#[test]
fn a_state_dir_others_can_write_is_refused_before_anything_is_loaded() {
    use std::os::unix::fs::PermissionsExt;

    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    offline.wipe();
    let (_dir, dir) = workdir_with_keys();
    old_and_new_bundles(&connected, &dir);
    let state = tempfile::tempdir().unwrap();
    let open = state.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();

    let run = unpack(&dir, &offline, "new.zst", &open).failure(1);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&*open.to_string_lossy()) && run.stderr.contains("chmod go-w"),
        "{}",
        run.stderr
    );
    assert!(
        offline.image_ids().is_empty(),
        "images were loaded with an unsafe record"
    );
}

#[test]
fn two_docker_engines_on_one_machine_keep_records_of_their_own() {
    // Docker 20.10 reports the machine's ID (/etc/docker/key.json) for
    // every dockerd on it: a-connected and a-offline share one here.
    let (_lock, [connected, offline]) = engines!("a-connected", "a-offline");
    let id = |engine: &TestEngine| engine.docker(&["info", "--format", "{{.ID}}"]);
    assert_eq!(id(&connected), id(&offline), "the premise: one ID for both");
    let (_dir, dir) = workdir_with_keys();
    old_and_new_bundles(&connected, &dir);
    let state = tempfile::tempdir().unwrap();
    let renamed = "recordtest/web:1";
    let unpack_renamed = |engine: &TestEngine, bundle: &str| {
        let mut args = unpack_args(engine, bundle, state.path());
        args.extend(["--tag", "fixture/web:1=recordtest/web:1"]);
        airgap(&dir, &args)
    };
    for engine in [&connected, &offline] {
        engine.docker_output(&["rmi", renamed]);
    }

    unpack_renamed(&offline, "new.zst").success();
    // Only a-offline got the newer bundle: the older one is no rollback on a-connected.
    unpack_renamed(&connected, "old.zst").success();
    let refused = unpack_renamed(&offline, "old.zst").failure(DOWNGRADE);
    assert!(refused.stderr.contains("downgrade"), "{}", refused.stderr);
    connected.docker_output(&["rmi", renamed]);
    offline.docker_output(&["rmi", renamed]);
}
