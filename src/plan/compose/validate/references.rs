//! References between the parts of a project that Compose checks once
//! profiles are applied: the networks, volumes, configs and secrets an
//! active service uses must be declared at the top level, and the services
//! it depends on must exist and be enabled (unless `required: false`).

use serde_yaml::{Mapping, Value};

use super::super::interpolate::key_text;
use super::{Rule, volume_spec};

/// The first broken reference of the active service `service`.
pub fn check_service(model: &Mapping, service: &Mapping, disabled: &[String]) -> Option<Rule> {
    let declared = |section: &str, name: &str| {
        model
            .get(section)
            .and_then(Value::as_mapping)
            .is_some_and(|m| m.contains_key(name))
    };
    let undeclared = |kind: &'static str, name: String| Rule::Undeclared { kind, name };

    for network in names(service.get("networks")) {
        // Compose always provides the default network.
        if network != "default" && !declared("networks", &network) {
            return Some(undeclared("network", network));
        }
    }
    for volume in volume_sources(service.get("volumes")) {
        match volume {
            Err(rule) => return Some(rule),
            Ok(name) if !declared("volumes", &name) => return Some(undeclared("volume", name)),
            Ok(_) => {}
        }
    }
    for (section, kind) in [("configs", "config"), ("secrets", "secret")] {
        for name in sources(service.get(section)) {
            if !declared(section, &name) {
                return Some(undeclared(kind, name));
            }
        }
    }
    depends_on(model, service, disabled)
}

/// The first short-syntax volume entry of `service` that does not parse
/// (Compose parses them for every service, enabled or not).
pub fn check_volume_syntax(service: &Mapping) -> Option<Rule> {
    volume_sources(service.get("volumes"))
        .into_iter()
        .find_map(Result::err)
}

/// A service's `depends_on` (a list of names, or a mapping of name to
/// condition) must name services that exist and, unless `required: false`,
/// are enabled.
fn depends_on(model: &Mapping, service: &Mapping, disabled: &[String]) -> Option<Rule> {
    let services = model.get("services").and_then(Value::as_mapping);
    let exists = |name: &str| services.is_some_and(|s| s.contains_key(name));
    let dependencies: Vec<(String, bool)> = match service.get("depends_on") {
        Some(Value::Sequence(items)) => items.iter().map(|item| (key_text(item), true)).collect(),
        Some(Value::Mapping(entries)) => entries
            .iter()
            .map(|(name, entry)| (key_text(name), is_required(entry)))
            .collect(),
        _ => Vec::new(),
    };
    for (name, required) in dependencies {
        if !exists(&name) {
            return Some(Rule::DependsOnMissing { name });
        }
        if required && disabled.contains(&name) {
            return Some(Rule::DependsOnDisabled { name });
        }
    }
    None
}

/// `required` defaults to true; Compose casts strings as booleans.
fn is_required(entry: &Value) -> bool {
    match entry.get("required") {
        Some(Value::Bool(required)) => *required,
        Some(Value::String(text)) => !matches!(
            text.to_ascii_lowercase().as_str(),
            "false" | "n" | "no" | "off"
        ),
        _ => true,
    }
}

/// Network names: a list, or the keys of a mapping.
fn names(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Sequence(items)) => items.iter().map(key_text).collect(),
        Some(Value::Mapping(entries)) => entries.keys().map(key_text).collect(),
        _ => Vec::new(),
    }
}

/// Config or secret names: each item is a name or `{source: NAME, …}`.
fn sources(value: Option<&Value>) -> Vec<String> {
    let Some(Value::Sequence(items)) = value else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| match item {
            Value::Mapping(entry) => entry.get("source").map(key_text),
            Value::Null => None,
            other => Some(key_text(other)),
        })
        .collect()
}

/// The named volumes a service mounts, or the first entry that does not
/// parse.
fn volume_sources(value: Option<&Value>) -> Vec<Result<String, Rule>> {
    let Some(Value::Sequence(items)) = value else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| match item {
            Value::String(spec) => match volume_spec::parse(spec) {
                Err(reason) => Some(Err(Rule::VolumeSyntax {
                    spec: spec.clone(),
                    reason,
                })),
                Ok(volume) => volume.named_volume().map(|name| Ok(name.to_owned())),
            },
            Value::Mapping(entry) => {
                let is_volume = entry.get("type").and_then(Value::as_str) == Some("volume");
                let source = entry.get("source").and_then(Value::as_str).unwrap_or("");
                (is_volume && !source.is_empty()).then(|| Ok(source.to_owned()))
            }
            _ => None,
        })
        .collect()
}
