//! The rules Docker Compose enforces when it loads a project, beyond the
//! shape of the keys the planner reads (see `schema`): a project that breaks
//! one is refused here, naming the rule, instead of being packed and failing
//! at the site's `docker compose up`.
//!
//! As in compose-go, values must convert to their field's type and volume
//! entries must parse for every service, enabled or not; references (networks, volumes,
//! configs, secrets, `depends_on`) are checked for the services the enabled
//! profiles keep.

mod convert;
mod references;
mod values;
mod volume_spec;

use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use super::error::ComposeError;

/// A rule Docker Compose enforces, as broken by one value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rule {
    /// A service uses a network, volume, config or secret that the project
    /// does not declare at the top level.
    #[error("undefined {kind} {name:?}: declare it under the top-level `{kind}s:`")]
    Undeclared {
        /// `network`, `volume`, `config` or `secret`.
        kind: &'static str,
        /// The name used.
        name: String,
    },
    /// `depends_on` names a service the project does not define.
    #[error("depends_on names undefined service {name:?}")]
    DependsOnMissing {
        /// The service named.
        name: String,
    },
    /// `depends_on` names a service no enabled profile activates.
    #[error(
        "depends_on names service {name:?}, which is disabled by its profiles: enable one of them (--profile) or mark the dependency `required: false`"
    )]
    DependsOnDisabled {
        /// The service named.
        name: String,
    },
    /// A short-syntax volume entry does not parse.
    #[error("volume entry {spec:?} does not parse ({reason}); check the variables it is made of")]
    VolumeSyntax {
        /// The entry after interpolation.
        spec: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A value does not convert to its field's type.
    #[error("{key} is {value}, which is not {expected} ({problem})")]
    Value {
        /// Dotted path below the service or the top level.
        key: String,
        /// The value as written (after interpolation).
        value: String,
        /// The type it must convert to.
        expected: &'static str,
        /// Why it does not.
        problem: &'static str,
    },
}

impl Rule {
    /// A short name for the rule, for tests and machine reading.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Undeclared { .. } => "undefined reference",
            Self::DependsOnMissing { .. } => "depends_on undefined service",
            Self::DependsOnDisabled { .. } => "depends_on disabled service",
            Self::VolumeSyntax { .. } => "volume syntax",
            Self::Value { .. } => "value type",
        }
    }
}

/// Checks the merged, interpolated `model`; `disabled` are the services the
/// profiles leave out, `file_of` the file that defines a service and
/// `first_file` the project's first compose file.
pub fn check(
    model: &Mapping,
    disabled: &[String],
    file_of: impl Fn(&str) -> PathBuf,
    first_file: &Path,
) -> Result<(), ComposeError> {
    if let Some(rule) = values::check_resources(model) {
        return Err(ComposeError::Rule {
            path: first_file.to_owned(),
            at: "the top level".to_owned(),
            rule: Box::new(rule),
        });
    }
    let Some(Value::Mapping(services)) = model.get("services") else {
        return Ok(());
    };
    for (name, service) in services {
        let (Some(name), Value::Mapping(service)) = (name.as_str(), service) else {
            continue;
        };
        let active = !disabled.iter().any(|d| d == name);
        let broken = values::check_service(service)
            .or_else(|| references::check_volume_syntax(service))
            .or_else(|| {
                if active {
                    references::check_service(model, service, disabled)
                } else {
                    None
                }
            });
        if let Some(rule) = broken {
            return Err(ComposeError::Rule {
                path: file_of(name),
                at: format!("service {name}"),
                rule: Box::new(rule),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str, disabled: &[&str]) -> Option<Rule> {
        let model: Mapping = serde_yaml::from_str(text).unwrap();
        let disabled: Vec<String> = disabled.iter().map(|s| s.to_string()).collect();
        match check(&model, &disabled, |_| "c.yml".into(), Path::new("c.yml")) {
            Ok(()) => None,
            Err(ComposeError::Rule { rule, .. }) => Some(*rule),
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn declared_references_pass() {
        let text = "services:\n  web: {image: a, networks: [default, front], volumes: [data:/d, ./x:/x, /y], configs: [c], secrets: [{source: s}], depends_on: {db: {condition: service_healthy}, opt: {condition: service_started, required: false}}}\n  db: {image: b}\n  opt: {image: c, profiles: [x]}\nnetworks: {front: {}}\nvolumes: {data: {}}\nconfigs: {c: {file: ./c}}\nsecrets: {s: {file: ./s}}\n";
        assert_eq!(rule(text, &["opt"]), None);
    }

    #[test]
    fn undeclared_references_are_refused() {
        for (text, kind, name) in [
            (
                "services:\n  web: {image: a, networks: [front]}\n",
                "network",
                "front",
            ),
            (
                "services:\n  web: {image: a, networks: {front: {}}}\n",
                "network",
                "front",
            ),
            (
                "services:\n  web: {image: a, volumes: [data:/x]}\n",
                "volume",
                "data",
            ),
            (
                "services:\n  web: {image: a, volumes: [{type: volume, source: data, target: /x}]}\n",
                "volume",
                "data",
            ),
            (
                "services:\n  web: {image: a, configs: [c1]}\n",
                "config",
                "c1",
            ),
            (
                "services:\n  web: {image: a, secrets: [{source: s1}]}\n",
                "secret",
                "s1",
            ),
        ] {
            assert_eq!(
                rule(text, &[]),
                Some(Rule::Undeclared {
                    kind,
                    name: name.into()
                }),
                "{text}"
            );
        }
    }

    #[test]
    fn a_disabled_service_s_references_are_not_checked() {
        let text =
            "services:\n  web: {image: a}\n  db: {image: b, profiles: [x], networks: [nope]}\n";
        assert_eq!(rule(text, &["db"]), None);
    }

    #[test]
    fn dependencies_must_exist_and_be_enabled() {
        let missing = "services:\n  web: {image: a, depends_on: {db: {condition: service_started, required: false}}}\n";
        assert_eq!(
            rule(missing, &[]),
            Some(Rule::DependsOnMissing { name: "db".into() })
        );
        let disabled =
            "services:\n  web: {image: a, depends_on: [db]}\n  db: {image: b, profiles: [x]}\n";
        assert_eq!(
            rule(disabled, &["db"]),
            Some(Rule::DependsOnDisabled { name: "db".into() })
        );
        assert_eq!(rule(disabled, &[]), None);
    }

    #[test]
    fn a_disabled_service_s_values_and_volumes_are_checked() {
        let text =
            "services:\n  web: {image: a}\n  db: {image: b, profiles: [x], volumes: [':/x:ro']}\n";
        assert!(matches!(
            rule(text, &["db"]),
            Some(Rule::VolumeSyntax { .. })
        ));
        let text = "services:\n  web: {image: a}\n  db: {image: b, profiles: [x], tty: maybe}\n";
        assert!(matches!(rule(text, &["db"]), Some(Rule::Value { .. })));
    }

    #[test]
    fn volume_entries_must_parse() {
        let text = "services:\n  web: {image: a, volumes: [':/var/run/x:ro']}\n";
        assert!(matches!(rule(text, &[]), Some(Rule::VolumeSyntax { .. })));
    }
}
