//! Values that must convert to their field's type: Compose casts strings
//! (often the result of interpolation) to booleans, numbers, durations and
//! byte sizes, and refuses the project when one does not convert.

use serde_yaml::{Mapping, Value};

use super::Rule;
use super::convert;

/// The type a field converts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Boolean,
    /// An integer number, or a string that is one.
    Integer,
    /// Any number (Compose's schema takes fractions here), or a string
    /// that is an integer.
    IntegerString,
    Float,
    Duration,
    Size,
}

impl Kind {
    /// What the field must hold, for the error.
    pub fn expected(self) -> &'static str {
        match self {
            Self::Boolean => "a boolean (true or false)",
            Self::Integer | Self::IntegerString => "an integer",
            Self::Float => "a number",
            Self::Duration => "a duration such as 30s or 1m30s",
            Self::Size => "a byte size such as 512m or 1g",
        }
    }

    /// Why `value` is not of this kind, or `None` when it is.
    fn problem(self, value: &Value) -> Option<&'static str> {
        let text = match value {
            Value::Null => return None,
            Value::String(text) => text,
            Value::Bool(_) if self == Self::Boolean => return None,
            Value::Number(n) if self == Self::Integer && (n.is_i64() || n.is_u64()) => return None,
            Value::Number(_) if matches!(self, Self::IntegerString | Self::Float | Self::Size) => {
                return None;
            }
            // Compose's schema takes durations only as strings.
            _ => return Some("wrong kind of value"),
        };
        let converts = match self {
            Self::Boolean => convert::is_boolean(text),
            Self::Integer | Self::IntegerString => convert::is_integer(text),
            Self::Float => convert::is_float(text),
            Self::Duration => return convert::duration_error(text),
            Self::Size => return convert::size_error(text),
        };
        (!converts).then_some("does not convert")
    }
}

/// Typed fields of a service, as paths below it (`*` is every key of a
/// mapping, `[]` every item of a list), from compose-go 2.9.1's casts.
const SERVICE_FIELDS: &[(&str, Kind)] = &[
    ("init", Kind::Boolean),
    ("oom_kill_disable", Kind::Boolean),
    ("privileged", Kind::Boolean),
    ("read_only", Kind::Boolean),
    ("stdin_open", Kind::Boolean),
    ("tty", Kind::Boolean),
    ("healthcheck.disable", Kind::Boolean),
    ("volumes.[].read_only", Kind::Boolean),
    ("volumes.[].volume.nocopy", Kind::Boolean),
    ("scale", Kind::Integer),
    ("healthcheck.retries", Kind::IntegerString),
    ("deploy.replicas", Kind::Integer),
    ("deploy.restart_policy.max_attempts", Kind::Integer),
    ("deploy.update_config.parallelism", Kind::Integer),
    ("deploy.rollback_config.parallelism", Kind::Integer),
    ("cpu_count", Kind::IntegerString),
    ("cpu_period", Kind::IntegerString),
    ("cpu_quota", Kind::IntegerString),
    ("cpu_rt_period", Kind::IntegerString),
    ("cpu_rt_runtime", Kind::IntegerString),
    ("cpu_shares", Kind::IntegerString),
    ("oom_score_adj", Kind::IntegerString),
    ("pids_limit", Kind::IntegerString),
    ("ports.[].target", Kind::Integer),
    ("ulimits.*.hard", Kind::Integer),
    ("ulimits.*.soft", Kind::Integer),
    ("cpus", Kind::Float),
    ("cpu_percent", Kind::Float),
    ("deploy.update_config.max_failure_ratio", Kind::Float),
    ("deploy.rollback_config.max_failure_ratio", Kind::Float),
    ("healthcheck.interval", Kind::Duration),
    ("healthcheck.timeout", Kind::Duration),
    ("healthcheck.start_period", Kind::Duration),
    ("healthcheck.start_interval", Kind::Duration),
    ("stop_grace_period", Kind::Duration),
    ("deploy.restart_policy.delay", Kind::Duration),
    ("deploy.restart_policy.window", Kind::Duration),
    ("deploy.update_config.delay", Kind::Duration),
    ("deploy.update_config.monitor", Kind::Duration),
    ("deploy.rollback_config.delay", Kind::Duration),
    ("deploy.rollback_config.monitor", Kind::Duration),
    ("mem_limit", Kind::Size),
    ("mem_reservation", Kind::Size),
    ("memswap_limit", Kind::Size),
    ("shm_size", Kind::Size),
    ("build.shm_size", Kind::Size),
    ("deploy.resources.limits.memory", Kind::Size),
    ("deploy.resources.reservations.memory", Kind::Size),
    ("volumes.[].tmpfs.size", Kind::Size),
];

/// Typed fields of each top-level resource (`networks.NAME.…`).
const RESOURCE_FIELDS: &[(&str, Kind)] = &[
    ("networks.*.external", Kind::Boolean),
    ("networks.*.internal", Kind::Boolean),
    ("networks.*.attachable", Kind::Boolean),
    ("networks.*.enable_ipv4", Kind::Boolean),
    ("networks.*.enable_ipv6", Kind::Boolean),
    ("volumes.*.external", Kind::Boolean),
    ("secrets.*.external", Kind::Boolean),
    ("configs.*.external", Kind::Boolean),
];

/// The first field of `service` whose value does not convert.
pub fn check_service(service: &Mapping) -> Option<Rule> {
    check_fields(service, SERVICE_FIELDS)
}

/// The first top-level resource field whose value does not convert.
pub fn check_resources(model: &Mapping) -> Option<Rule> {
    check_fields(model, RESOURCE_FIELDS)
}

fn check_fields(root: &Mapping, fields: &[(&str, Kind)]) -> Option<Rule> {
    for (pattern, kind) in fields {
        let steps: Vec<&str> = pattern.split('.').collect();
        let mut found = Vec::new();
        collect(root, &steps, String::new(), &mut found);
        for (key, value) in found {
            if let Some(problem) = kind.problem(value) {
                return Some(Rule::Value {
                    key,
                    value: describe(value),
                    expected: kind.expected(),
                    problem,
                });
            }
        }
    }
    None
}

/// The values at `steps` below `mapping`, with their dotted keys.
fn collect<'v>(
    mapping: &'v Mapping,
    steps: &[&str],
    prefix: String,
    found: &mut Vec<(String, &'v Value)>,
) {
    let Some((step, rest)) = steps.split_first() else {
        return;
    };
    let join = |name: &str| {
        if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}.{name}")
        }
    };
    let children: Vec<(String, &Value)> = if *step == "*" {
        mapping
            .iter()
            .map(|(k, v)| (join(&super::super::interpolate::key_text(k)), v))
            .collect()
    } else {
        mapping
            .get(*step)
            .map(|v| (join(step), v))
            .into_iter()
            .collect()
    };
    for (key, value) in children {
        descend(value, rest, key, found);
    }
}

fn descend<'v>(
    value: &'v Value,
    steps: &[&str],
    key: String,
    found: &mut Vec<(String, &'v Value)>,
) {
    match (steps.first(), value) {
        (None, _) => found.push((key, value)),
        (Some(&"[]"), Value::Sequence(items)) => {
            for (i, item) in items.iter().enumerate() {
                descend(item, &steps[1..], format!("{key}[{i}]"), found);
            }
        }
        (Some(_), Value::Mapping(mapping)) => collect(mapping, steps, key, found),
        _ => {}
    }
}

/// The value as the error shows it.
fn describe(value: &Value) -> String {
    match value {
        Value::String(text) => format!("{text:?}"),
        other => serde_yaml::to_string(other)
            .map(|text| text.trim_end().to_owned())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(text: &str) -> Option<Rule> {
        check_service(&serde_yaml::from_str(text).unwrap())
    }

    #[test]
    fn values_that_convert_pass() {
        assert_eq!(
            service(
                "{tty: 'yes', privileged: true, cpus: '1.5', scale: 2, mem_limit: 512m, memswap_limit: -1, healthcheck: {interval: 1m30s, retries: '3'}, cpu_shares: 1.5, pids_limit: 1.0, stop_grace_period: 10s, ulimits: {nofile: {soft: 1024, hard: '2048'}, nproc: 65535}, volumes: [{type: tmpfs, target: /t, tmpfs: {size: 1g}}], deploy: {resources: {limits: {memory: 1G}}}, init: null}"
            ),
            None
        );
    }

    #[test]
    fn values_that_do_not_convert_are_named() {
        for (text, key) in [
            ("{tty: maybe}", "tty"),
            ("{cpus: abc}", "cpus"),
            ("{scale: '1.0'}", "scale"),
            ("{healthcheck: {interval: 10x}}", "healthcheck.interval"),
            ("{healthcheck: {timeout: 10}}", "healthcheck.timeout"),
            ("{stop_grace_period: ''}", "stop_grace_period"),
            ("{mem_limit: 1q}", "mem_limit"),
            ("{shm_size: ''}", "shm_size"),
            ("{ulimits: {nofile: {soft: x}}}", "ulimits.nofile.soft"),
            (
                "{volumes: [./a:/b, {type: bind, source: ., target: /x, read_only: perhaps}]}",
                "volumes[1].read_only",
            ),
            ("{tty: 1}", "tty"),
            ("{scale: 1.5}", "scale"),
            ("{pids_limit: '1.0'}", "pids_limit"),
        ] {
            match service(text) {
                Some(Rule::Value { key: found, .. }) => assert_eq!(found, key, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn resource_flags_must_be_booleans() {
        let model: Mapping =
            serde_yaml::from_str("networks: {front: {external: sometimes}}").unwrap();
        assert!(
            matches!(check_resources(&model), Some(Rule::Value { key, .. }) if key == "networks.front.external")
        );
    }
}
