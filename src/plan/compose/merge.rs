//! Merging compose models: later files over earlier ones, an extending
//! service over its base, and the `!reset` / `!override` paths that remove
//! keys from the earlier side first.
//!
//! The rules are compose-go's `override.MergeYaml`: mappings merge key by
//! key, sequences are concatenated (so `profiles:` accumulate unless
//! `!override` replaces them), scalars are replaced, and a `null` on the
//! later side keeps the earlier value. `build: ctx` merges as
//! `build: {context: ctx}`; `command`, `entrypoint` and `healthcheck.test`
//! are replaced whole. Where the two sides have different kinds, Compose
//! refuses with "cannot override" unless it has a conversion for that key;
//! the planner lets the later value win instead, since no image depends on
//! those keys and refusing would need all of Compose's conversions.

use serde_yaml::{Mapping, Value};

use super::yaml::KeyPath;

/// Merges `over` onto `base`; `path` is where the two sit in the model
/// (`["services", "web"]` when merging one service).
pub fn merge_at(base: Value, over: Value, path: &mut Vec<String>) -> Value {
    if is_service_key(path, "build") {
        return Value::Mapping(merge_mappings(
            build_mapping(base),
            build_mapping(over),
            path,
        ));
    }
    if is_service_key(path, "command")
        || is_service_key(path, "entrypoint")
        || (path.len() == 4
            && path[0] == "services"
            && path[2] == "healthcheck"
            && path[3] == "test")
    {
        return over;
    }
    match (base, over) {
        (base, Value::Null) => base,
        (Value::Mapping(base), Value::Mapping(over)) => {
            Value::Mapping(merge_mappings(base, over, path))
        }
        (Value::Sequence(mut base), Value::Sequence(over)) => {
            base.extend(over);
            Value::Sequence(base)
        }
        (_, over) => over,
    }
}

/// Merges two models (or two services, with `path` set accordingly).
pub fn merge_mappings(mut base: Mapping, over: Mapping, path: &mut Vec<String>) -> Mapping {
    for (key, value) in over {
        let Some(existing) = base.get_mut(&key) else {
            base.insert(key, value);
            continue;
        };
        path.push(super::interpolate::key_text(&key));
        let merged = merge_at(std::mem::take(existing), value, path);
        path.pop();
        *existing = merged;
    }
    base
}

/// `path` is `services.<name>.<key>`.
fn is_service_key(path: &[String], key: &str) -> bool {
    path.len() == 3 && path[0] == "services" && path[2] == key
}

fn build_mapping(value: Value) -> Mapping {
    match value {
        Value::Mapping(mapping) => mapping,
        Value::String(context) => {
            let mut mapping = Mapping::new();
            mapping.insert("context".into(), Value::String(context));
            mapping
        }
        _ => Mapping::new(),
    }
}

/// Removes every key at one of `paths` from `model` (what `!reset` and
/// `!override` in a later document do to what came before).
pub fn reset(model: &mut Mapping, paths: &[KeyPath]) {
    for path in paths {
        remove(model, path);
    }
}

fn remove(mapping: &mut Mapping, path: &[String]) {
    match path {
        [] => {}
        [last] => {
            mapping.remove(last.as_str());
        }
        [first, rest @ ..] => {
            if let Some(Value::Mapping(child)) = mapping.get_mut(first.as_str()) {
                remove(child, rest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Mapping {
        serde_yaml::from_str(text).unwrap()
    }

    fn merged(base: &str, over: &str) -> Mapping {
        merge_mappings(yaml(base), yaml(over), &mut Vec::new())
    }

    #[test]
    fn later_image_wins_and_null_keeps_the_earlier_one() {
        let m = merged(
            "services: {web: {image: a, ports: [\"1:1\"]}}",
            "services: {web: {image: b}, db: {image: c}}",
        );
        assert_eq!(
            m,
            yaml("services: {web: {image: b, ports: [\"1:1\"]}, db: {image: c}}")
        );
        let m = merged(
            "services: {web: {image: a}}",
            "services: {web: {image: null}}",
        );
        assert_eq!(m, yaml("services: {web: {image: a}}"));
    }

    #[test]
    fn sequences_accumulate() {
        let m = merged(
            "services: {web: {profiles: [a]}}",
            "services: {web: {profiles: [b]}}",
        );
        assert_eq!(m, yaml("services: {web: {profiles: [a, b]}}"));
    }

    #[test]
    fn build_strings_merge_as_contexts() {
        let m = merged(
            "services: {web: {build: ./app}}",
            "services: {web: {build: {target: prod}}}",
        );
        assert_eq!(
            m,
            yaml("services: {web: {build: {context: ./app, target: prod}}}")
        );
    }

    #[test]
    fn commands_are_replaced_not_concatenated() {
        let m = merged(
            "services: {web: {command: [a, b], healthcheck: {test: [x]}}}",
            "services: {web: {command: [c], healthcheck: {test: [y]}}}",
        );
        assert_eq!(
            m,
            yaml("services: {web: {command: [c], healthcheck: {test: [y]}}}")
        );
    }

    #[test]
    fn reset_removes_paths_and_ignores_missing_ones() {
        let mut m = yaml("services: {web: {image: a, build: ., profiles: [p]}}");
        reset(
            &mut m,
            &[
                vec!["services".into(), "web".into(), "build".into()],
                vec!["services".into(), "web".into(), "profiles".into()],
                vec!["services".into(), "nope".into(), "image".into()],
            ],
        );
        assert_eq!(m, yaml("services: {web: {image: a}}"));
    }
}
