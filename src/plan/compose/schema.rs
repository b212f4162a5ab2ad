//! The shape checks Compose's JSON schema makes that matter for finding
//! images: the top level and each service may hold only known keys (so a
//! typo such as `service:` or `imgae:` fails instead of silently dropping
//! images), and the keys the planner reads have the right kind. As in
//! Compose, the merged model is checked, not each file on its own.

use std::path::Path;

use serde_yaml::{Mapping, Value};

use super::error::ComposeError;

/// Keys allowed at the top level, besides `x-…` extensions.
const TOP_LEVEL: [&str; 9] = [
    "configs", "include", "models", "name", "networks", "secrets", "services", "version", "volumes",
];

/// Keys allowed in a service, besides `x-…` extensions (compose-spec schema
/// of compose-go 2.9.1).
const SERVICE: [&str; 92] = [
    "annotations",
    "attach",
    "blkio_config",
    "build",
    "cap_add",
    "cap_drop",
    "cgroup",
    "cgroup_parent",
    "command",
    "configs",
    "container_name",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpu_shares",
    "cpus",
    "cpuset",
    "credential_spec",
    "depends_on",
    "deploy",
    "develop",
    "device_cgroup_rules",
    "devices",
    "dns",
    "dns_opt",
    "dns_search",
    "domainname",
    "entrypoint",
    "env_file",
    "environment",
    "expose",
    "extends",
    "external_links",
    "extra_hosts",
    "gpus",
    "group_add",
    "healthcheck",
    "hostname",
    "image",
    "init",
    "ipc",
    "isolation",
    "label_file",
    "labels",
    "links",
    "logging",
    "mac_address",
    "mem_limit",
    "mem_reservation",
    "mem_swappiness",
    "memswap_limit",
    "models",
    "network_mode",
    "networks",
    "oom_kill_disable",
    "oom_score_adj",
    "pid",
    "pids_limit",
    "platform",
    "ports",
    "post_start",
    "pre_stop",
    "privileged",
    "profiles",
    "provider",
    "pull_policy",
    "pull_refresh_after",
    "read_only",
    "restart",
    "runtime",
    "scale",
    "secrets",
    "security_opt",
    "shm_size",
    "stdin_open",
    "stop_grace_period",
    "stop_signal",
    "storage_opt",
    "sysctls",
    "tmpfs",
    "tty",
    "ulimits",
    "use_api_socket",
    "user",
    "userns_mode",
    "uts",
    "volumes",
    "volumes_from",
    "working_dir",
];

/// What Compose requires of a document before it resolves `extends`:
/// `services`, where present, is a mapping of mappings (or nulls).
pub fn check_services(path: &Path, document: &Mapping) -> Result<(), ComposeError> {
    let services = match document.get("services") {
        None => return Ok(()),
        Some(Value::Mapping(services)) => services,
        Some(_) => return Err(shape_error(path, "services".into(), "a mapping")),
    };
    for (name, service) in services {
        if !matches!(service, Value::Mapping(_) | Value::Null) {
            let key = format!("services.{}", super::interpolate::key_text(name));
            return Err(shape_error(path, key, "a mapping"));
        }
    }
    Ok(())
}

fn shape_error(path: &Path, key: String, expected: &'static str) -> ComposeError {
    ComposeError::Shape {
        path: path.to_owned(),
        key,
        expected,
    }
}

/// Checks a model merged from the documents up to one of `path`.
pub fn check(path: &Path, model: &Mapping) -> Result<(), ComposeError> {
    let shape = |key: String, expected| ComposeError::Shape {
        path: path.to_owned(),
        key,
        expected,
    };
    for key in model.keys() {
        let name = key.as_str().unwrap_or_default();
        if !TOP_LEVEL.contains(&name) && !name.starts_with("x-") {
            return Err(unknown(path, "the top level", key));
        }
    }
    if let Some(include) = model.get("include")
        && !matches!(include, Value::Sequence(_) | Value::Null)
    {
        return Err(shape("include".into(), "a list"));
    }
    let services = match model.get("services") {
        None => return Ok(()),
        Some(Value::Mapping(services)) => services,
        Some(_) => return Err(shape("services".into(), "a mapping")),
    };
    for (name, service) in services {
        let Some(name) = name.as_str().filter(|n| is_service_name(n)) else {
            return Err(unknown(path, "services", name));
        };
        let Value::Mapping(service) = service else {
            return Err(shape(format!("services.{name}"), "a mapping"));
        };
        check_service(path, name, service)?;
    }
    Ok(())
}

fn check_service(path: &Path, name: &str, service: &Mapping) -> Result<(), ComposeError> {
    let shape = |key: &str, expected| ComposeError::Shape {
        path: path.to_owned(),
        key: format!("services.{name}.{key}"),
        expected,
    };
    for key in service.keys() {
        let text = key.as_str().unwrap_or_default();
        if !SERVICE.contains(&text) && !text.starts_with("x-") {
            return Err(unknown(path, &format!("services.{name}"), key));
        }
    }
    if !matches!(service.get("image"), None | Some(Value::String(_))) {
        return Err(shape("image", "a string"));
    }
    if !matches!(
        service.get("build"),
        None | Some(Value::String(_) | Value::Mapping(_))
    ) {
        return Err(shape("build", "a string or a mapping"));
    }
    match service.get("profiles") {
        None | Some(Value::Null) => {}
        Some(Value::Sequence(items)) if items.iter().all(Value::is_string) => {}
        Some(_) => return Err(shape("profiles", "a list of strings")),
    }
    match service.get("extends") {
        None | Some(Value::String(_)) => {}
        Some(Value::Mapping(extends))
            if extends.get("service").is_some_and(Value::is_string)
                && extends
                    .get("file")
                    .is_none_or(|f| f.is_string() || f.is_null()) => {}
        Some(_) => {
            return Err(shape(
                "extends",
                "a service name or a mapping with `service`",
            ));
        }
    }
    Ok(())
}

/// Service names allowed by the schema: `[a-zA-Z0-9._-]+`.
fn is_service_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn unknown(path: &Path, section: &str, key: &Value) -> ComposeError {
    ComposeError::UnknownKey {
        path: path.to_owned(),
        section: section.to_owned(),
        key: super::interpolate::key_text(key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_text(text: &str) -> Result<(), ComposeError> {
        check(Path::new("c.yml"), &serde_yaml::from_str(text).unwrap())
    }

    #[test]
    fn known_keys_and_extensions_pass() {
        check_text("version: '3'\nname: x\nx-any: {a: 1}\nservices:\n  web.1:\n    image: a\n    x-note: 1\n    profiles: [p]\n    extends: {service: b, file: f.yml}\n").unwrap();
        check_text("volumes: {data: {}}\n").unwrap();
    }

    #[test]
    fn typos_are_unknown_keys() {
        let error = check_text("service:\n  web: {image: a}\n").unwrap_err();
        assert!(matches!(error, ComposeError::UnknownKey { ref key, .. } if key == "service"));
        let error = check_text("services:\n  web: {imgae: a, build: .}\n").unwrap_err();
        assert!(
            matches!(error, ComposeError::UnknownKey { ref key, ref section, .. } if key == "imgae" && section == "services.web")
        );
        let error = check_text("services:\n  'we b': {image: a}\n").unwrap_err();
        assert!(matches!(error, ComposeError::UnknownKey { .. }));
    }

    #[test]
    fn wrong_kinds_are_refused() {
        for text in [
            "services: [web]\n",
            "services:\n  web: nginx\n",
            "services:\n  web: {image: [a]}\n",
            "services:\n  web: {image: a, profiles: p}\n",
            "services:\n  web: {image: a, extends: {file: x.yml}}\n",
            "services:\n",
            "services:\n  web:\n",
            "services:\n  web: {image: a, build: null}\n",
            "services:\n  web: {image: null, build: .}\n",
            "include: a.yml\n",
        ] {
            assert!(
                matches!(check_text(text), Err(ComposeError::Shape { .. })),
                "{text}"
            );
        }
    }
}
