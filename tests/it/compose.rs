//! Compose planning, end to end through `airgap plan --images`: the corpus
//! of real-world projects in ../shared/compose-corpus (each with the list
//! Docker Compose 2.40.3 resolves), and the project's own fixtures under
//! fixtures/compose/, one per interpolation form, merge rule and error case.
//! No engine is needed.

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::cmd::{Run, airgap_clean_env};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/compose-corpus");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/compose");

/// The case directories under `root`, sorted.
fn cases(root: &Path) -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = fs::read_dir(root)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", root.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    cases.sort();
    cases
}

/// Non-empty lines of `path`, or none when it does not exist.
fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .map(|text| {
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn plan_images(dir: &Path, args: &[String], vars: &[(String, String)]) -> Run {
    let mut all = vec!["plan", "--images"];
    all.extend(args.iter().map(String::as_str));
    airgap_clean_env(dir, &all, vars)
}

#[test]
fn corpus_images_match_docker_compose() {
    let root = Path::new(CORPUS);
    if !root.is_dir() {
        let message = format!(
            "{} is missing: the compose corpus lives in shared/",
            root.display()
        );
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{message}");
        }
        println!("SKIPPED corpus_images_match_docker_compose: {message}");
        return;
    }
    let mut failures = Vec::new();
    let cases = cases(root);
    assert!(!cases.is_empty(), "no cases in {}", root.display());
    for case in &cases {
        let args: Vec<String> = lines(&case.join("COMPOSE_FILES"))
            .into_iter()
            .flat_map(|file| ["-f".to_owned(), file])
            .collect();
        let expected = fs::read_to_string(case.join("expected-images.txt")).unwrap();
        let run = plan_images(case, &args, &[]);
        if run.code != 0 || run.stdout != expected {
            failures.push(format!(
                "{}: exit {}\n--- expected\n{expected}--- got\n{}{}",
                case.display(),
                run.code,
                run.stdout,
                run.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!("{} corpus cases agree with Docker Compose", cases.len());
}

/// Each fixture holds compose files and `expected-images.txt` (the output)
/// or `expected-error.txt` (a substring of the error); optionally `args`
/// (one argument per line), `env` (KEY=VALUE lines of process environment)
/// and `cwd` (the subdirectory to run in).
#[test]
fn fixtures_resolve_as_docker_compose_does() {
    let mut failures = Vec::new();
    let cases = cases(Path::new(FIXTURES));
    assert!(
        cases.len() >= 40,
        "fixtures/compose has only {} cases",
        cases.len()
    );
    for case in &cases {
        let run_dir = match lines(&case.join("cwd")).first() {
            Some(sub) => case.join(sub),
            None => case.clone(),
        };
        let args = lines(&case.join("args"));
        let vars: Vec<(String, String)> = lines(&case.join("env"))
            .iter()
            .map(|line| {
                let (k, v) = line.split_once('=').expect("env lines are KEY=VALUE");
                (k.to_owned(), v.to_owned())
            })
            .collect();
        let run = plan_images(&run_dir, &args, &vars);
        let name = case.file_name().unwrap().to_string_lossy();
        if let Ok(expected) = fs::read_to_string(case.join("expected-images.txt")) {
            if run.code != 0 || run.stdout != expected {
                failures.push(format!(
                    "{name}: exit {}\n--- expected\n{expected}--- got\n{}{}",
                    run.code, run.stdout, run.stderr
                ));
            }
        } else {
            let expected = fs::read_to_string(case.join("expected-error.txt"))
                .unwrap_or_else(|_| panic!("{name}: no expected-images.txt or expected-error.txt"));
            let expected = expected.trim_end();
            let one_line = run.stderr.lines().count() == 1;
            if run.code != 1 || !run.stderr.contains(expected) || !one_line {
                failures.push(format!(
                    "{name}: exit {}, wanted 1 and one error line containing {expected:?}\nstdout: {}stderr: {}",
                    run.code, run.stdout, run.stderr
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_process_environment_changes_the_images() {
    let dir = Path::new(FIXTURES).join("interpolation-forms");
    let vars = [("UNSET".to_owned(), "reg.example".to_owned())];
    let run = plan_images(&dir, &[], &vars).success();
    assert!(
        run.stdout.contains("reg.example/nested:reg.example\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("app/default-unset:reg.example\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn profiles_from_the_environment() {
    let dir = Path::new(FIXTURES).join("profiles");
    let vars = [("COMPOSE_PROFILES".to_owned(), "debug".to_owned())];
    let run = plan_images(&dir, &[], &vars).success();
    assert_eq!(run.stdout, "busybox\nops:1\nweb:1\n");
}

#[test]
fn plan_without_images_asks_the_engine() {
    let dir = Path::new(FIXTURES).join("profiles");
    let run = plan_images(&dir, &[], &[]).success();
    assert!(!run.stdout.is_empty());
    // No engine at the address given: the full report needs one, --images does not.
    let run = airgap_clean_env(
        &dir,
        &["--host", "unix:///nonexistent/docker.sock", "plan"],
        &[],
    )
    .failure(5);
    assert!(
        run.stderr.contains("cannot reach the container engine"),
        "{}",
        run.stderr
    );
}

#[test]
fn image_arguments_and_lists_join_the_compose_images() {
    let dir = tempfile::tempdir().unwrap();
    let case = Path::new(FIXTURES).join("merge-reset");
    fs::write(dir.path().join("list.txt"), "alpine:3.20 # tools\n").unwrap();
    let project = case.to_string_lossy().into_owned();
    let run = airgap_clean_env(
        dir.path(),
        &[
            "plan",
            "--images",
            &project,
            "busybox",
            "--images-file",
            "list.txt",
        ],
        &[],
    )
    .success();
    assert_eq!(
        run.stdout,
        "alpine:3.20\nbusybox\nmerge-reset-web\ntool:1\n"
    );
}

#[test]
fn unset_variables_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  web:\n    image: web${SUFFIX}:${TAG:-1}\n",
    )
    .unwrap();
    let run = plan_images(dir.path(), &[], &[]).success();
    assert_eq!(run.stdout, "web:1\n");
    assert_eq!(
        run.stderr,
        "warning: variable SUFFIX is not set; it was replaced by an empty string\n"
    );
}
