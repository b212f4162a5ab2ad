//! Compose projects that Docker Compose refuses are refused by `plan` and
//! `pack` too, naming the rule, instead of failing at the site's
//! `docker compose up`. Each case is checked against Docker Compose itself
//! (`docker compose config` must refuse it too, so the rule is Compose's),
//! and near-misses Compose accepts must pass. No engine is needed.

use std::path::Path;
use std::process::Command;

use crate::support::cmd::airgap_clean_env;

/// Docker Compose: $AIRGAP_COMPOSE, else `docker-compose` on PATH. Missing
/// fails in CI.
fn compose() -> Option<String> {
    let candidates = std::env::var("AIRGAP_COMPOSE")
        .ok()
        .filter(|c| !c.is_empty())
        .into_iter()
        .chain(["docker-compose".to_owned()]);
    for candidate in candidates {
        let works = Command::new(&candidate)
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success());
        if works {
            return Some(candidate);
        }
    }
    let message =
        "Docker Compose is not installed (scripts/deps installs it; or set AIRGAP_COMPOSE)";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{message}");
    }
    eprintln!("SKIPPED: {message}");
    None
}

/// `docker compose config -q` in `dir` with a clean environment: its error,
/// or `None` when it accepts the project.
fn compose_refusal(compose: &str, dir: &Path) -> Option<String> {
    let output = Command::new(compose)
        .args(["-f", "compose.yaml", "config", "-q"])
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .output()
        .expect("docker compose runs");
    (!output.status.success()).then(|| String::from_utf8_lossy(&output.stderr).into_owned())
}

fn project(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("compose.yaml"), text).unwrap();
    dir
}

/// (what the case is, compose file, a substring of airgap's error that
/// names the rule).
const REFUSED: &[(&str, &str, &str)] = &[
    (
        "undefined network",
        "services:\n  web: {image: nginx, networks: [front]}\n",
        "service web: undefined network \"front\"",
    ),
    (
        "undefined volume",
        "services:\n  web: {image: nginx, volumes: [data:/data]}\n",
        "service web: undefined volume \"data\"",
    ),
    (
        "undefined volume, long syntax",
        "services:\n  web: {image: nginx, volumes: [{type: volume, source: data, target: /data}]}\n",
        "undefined volume \"data\"",
    ),
    (
        "undefined config",
        "services:\n  web: {image: nginx, configs: [site]}\n",
        "undefined config \"site\"",
    ),
    (
        "undefined secret",
        "services:\n  web: {image: nginx, secrets: [{source: token}]}\n",
        "undefined secret \"token\"",
    ),
    (
        "depends_on an undefined service",
        "services:\n  web: {image: nginx, depends_on: [db]}\n",
        "depends_on names undefined service \"db\"",
    ),
    (
        "depends_on an undefined service that is not required",
        "services:\n  web:\n    image: nginx\n    depends_on: {db: {condition: service_started, required: false}}\n",
        "depends_on names undefined service \"db\"",
    ),
    (
        "depends_on a service disabled by its profile",
        "services:\n  web: {image: nginx, depends_on: [db]}\n  db: {image: postgres, profiles: [debug]}\n",
        "depends_on names service \"db\", which is disabled by its profiles",
    ),
    (
        "a volume entry left with an empty source by an unset variable",
        "services:\n  web: {image: nginx, volumes: [\"${SOCKET_DIR}:/var/run/x:ro\"]}\n",
        "volume entry \":/var/run/x:ro\" does not parse (an empty section between colons)",
    ),
    (
        "a bad volume entry in a service its profile disables",
        "services:\n  web: {image: nginx}\n  db: {image: postgres, profiles: [debug], volumes: [\"${DATA}:/data\"]}\n",
        "service db: volume entry \":/data\" does not parse",
    ),
    (
        "a bad value in a service its profile disables",
        "services:\n  web: {image: nginx}\n  db: {image: postgres, profiles: [debug], mem_limit: 1q}\n",
        "service db: mem_limit is \"1q\"",
    ),
    (
        "a volume entry with too many colons",
        "services:\n  web: {image: nginx, volumes: [\"./a:/b:ro:rw\"]}\n",
        "(too many colons)",
    ),
    (
        "an empty volume entry",
        "services:\n  web: {image: nginx, volumes: [\"${NOTHING}\"]}\n",
        "(an empty volume entry)",
    ),
    (
        "a boolean that is not one",
        "services:\n  web: {image: nginx, tty: \"${TTY:-maybe}\"}\n",
        "tty is \"maybe\", which is not a boolean",
    ),
    (
        "a number that is not one",
        "services:\n  web: {image: nginx, cpus: abc}\n",
        "cpus is \"abc\", which is not a number",
    ),
    (
        "an integer that is not one",
        "services:\n  web: {image: nginx, scale: \"1.0\"}\n",
        "scale is \"1.0\", which is not an integer",
    ),
    (
        "a fraction where only an integer goes",
        "services:\n  web: {image: nginx, scale: 1.5}\n",
        "scale is 1.5, which is not an integer",
    ),
    (
        "a duration without a unit",
        "services:\n  web:\n    image: nginx\n    healthcheck: {test: [CMD, \"true\"], interval: \"${INTERVAL:-10}\"}\n",
        "healthcheck.interval is \"10\", which is not a duration",
    ),
    (
        "a duration with an unknown unit",
        "services:\n  web: {image: nginx, stop_grace_period: 10x}\n",
        "stop_grace_period is \"10x\", which is not a duration",
    ),
    (
        "a byte size with an unknown suffix",
        "services:\n  web: {image: nginx, mem_limit: 1q}\n",
        "mem_limit is \"1q\", which is not a byte size",
    ),
    (
        "an empty byte size",
        "services:\n  web: {image: nginx, shm_size: \"${SHM}\"}\n",
        "shm_size is \"\", which is not a byte size",
    ),
    (
        "a network flag that is not a boolean",
        "services:\n  web: {image: nginx}\nnetworks:\n  front: {external: sometimes}\n",
        "the top level: networks.front.external is \"sometimes\"",
    ),
];

/// Near-misses Docker Compose accepts; airgap must plan them.
const ACCEPTED: &[&str] = &[
    "services:\n  web: {image: nginx, networks: [default]}\n",
    "services:\n  web:\n    image: nginx\n    depends_on: {db: {condition: service_started, required: false}}\n  db: {image: postgres, profiles: [debug]}\n",
    "services:\n  web: {image: nginx}\n  db: {image: postgres, profiles: [debug], networks: [nowhere], tty: \"yes\"}\n",
    "services:\n  web: {image: nginx, volumes: [\"./a:/b:xyz\", \"a:b:c:d\", \"/x\", \"x\", \"~/h:/h:ro,z\", \"data:/d\"]}\nvolumes: {data: {}}\n",
    "services:\n  web: {image: nginx, tty: \"on\", privileged: \"TRUE\", init: true, cpus: \"1e3\", scale: \"+2\", mem_limit: \"1 g\", shm_size: 1kib, memswap_limit: -1, stop_grace_period: \"1.5m\", healthcheck: {test: [CMD, \"true\"], interval: 1m30s, timeout: \"0\", retries: \"3\"}}\n",
    "services:\n  web: {image: nginx, cpu_shares: 1.5, pids_limit: 1.0, healthcheck: {retries: 3.5}, cpu_period: 1.5}\n",
    "services:\n  web: {image: nginx, configs: [site], secrets: [token]}\nconfigs: {site: {file: ./site}}\nsecrets: {token: {environment: TOKEN}}\n",
];

#[test]
fn projects_docker_compose_refuses_are_refused_naming_the_rule() {
    let Some(compose) = compose() else { return };
    let mut failures = Vec::new();
    for (case, text, rule) in REFUSED {
        let dir = project(text);
        if compose_refusal(&compose, dir.path()).is_none() {
            failures.push(format!(
                "{case}: docker compose accepts it, so it is no rule"
            ));
        }
        let run = airgap_clean_env(dir.path(), &["plan", "--images", "compose.yaml"], &[]);
        let one_line = run.stderr.lines().count() == 1;
        if run.code != 1 || !run.stderr.contains(rule) || !one_line {
            failures.push(format!(
                "{case}: exit {}, wanted 1 and one line naming {rule:?}\nstdout: {}stderr: {}",
                run.code, run.stdout, run.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn near_misses_docker_compose_accepts_are_planned() {
    let Some(compose) = compose() else { return };
    let mut failures = Vec::new();
    for text in ACCEPTED {
        let dir = project(text);
        if let Some(error) = compose_refusal(&compose, dir.path()) {
            failures.push(format!("docker compose refuses {text:?}: {error}"));
        }
        let run = airgap_clean_env(dir.path(), &["plan", "--images", "compose.yaml"], &[]);
        if run.code != 0 {
            failures.push(format!("airgap refuses {text:?}: {}", run.stderr));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn pack_refuses_before_reaching_the_engine() {
    let dir = project("services:\n  web: {image: nginx, networks: [front]}\n");
    let run = airgap_clean_env(
        dir.path(),
        &[
            "--host",
            "unix:///nonexistent/docker.sock",
            "pack",
            "compose.yaml",
            "--unsigned",
            "-o",
            "out.zst",
        ],
        &[],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("compose.yaml: service web: undefined network \"front\""),
        "{}",
        run.stderr
    );
    assert!(!dir.path().join("out.zst").exists());
}

#[test]
fn plan_report_refuses_too() {
    let dir = project("services:\n  web: {image: nginx, depends_on: [db]}\n");
    let run = airgap_clean_env(
        dir.path(),
        &[
            "--host",
            "unix:///nonexistent/docker.sock",
            "plan",
            "compose.yaml",
        ],
        &[],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("depends_on names undefined service"),
        "{}",
        run.stderr
    );
}
