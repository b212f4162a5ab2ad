//! `extends:`: a service starts from a copy of another service, in the same
//! document or in another file, and its own keys are merged over it.
//! Chains are followed (a base may extend in turn) and loops are refused.
//! The base service itself joins the project only if it is defined there.

use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use super::error::ComposeError;
use super::loader::{Loader, Scope};
use super::yaml::KeyPath;
use super::{merge, paths};

/// Resolves `extends` for every service of `config` (one document of `path`);
/// `resets` are the document's `!reset` paths, which also strip keys the
/// base would pass on.
pub fn apply(
    loader: &mut Loader,
    config: &mut Mapping,
    path: &Path,
    scope: &Scope,
    resets: &[KeyPath],
) -> Result<(), ComposeError> {
    let Some(Value::Mapping(services)) = config.get_mut("services") else {
        return Ok(());
    };
    let names: Vec<String> = services
        .keys()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    let mut context = Context {
        loader,
        file: path,
        scope,
    };
    for name in names {
        let merged = context.extend(&name, services, path, &mut Vec::new(), resets)?;
        services.insert(Value::String(name), merged);
    }
    Ok(())
}

/// Makes the `extends.file` of every service in `model` absolute against
/// `dir`, the directory of the file `model` was read from.
pub fn anchor_files(model: &mut Mapping, dir: &Path) {
    let Some(Value::Mapping(services)) = model.get_mut("services") else {
        return;
    };
    for service in services.values_mut() {
        if let Some(Value::Mapping(extends)) = service.get_mut("extends")
            && let Some(Value::String(file)) = extends.get_mut("file")
        {
            *file = paths::absolute(dir, Path::new(file.as_str()))
                .to_string_lossy()
                .into_owned();
        }
    }
}

struct Context<'c, 'l, 'e> {
    loader: &'c mut Loader<'l>,
    /// The document being loaded.
    file: &'c Path,
    scope: &'c Scope<'e>,
}

impl Context<'_, '_, '_> {
    /// The service `name` of `services` (read from `services_file`) with its
    /// `extends` chain resolved.
    fn extend(
        &mut self,
        name: &str,
        services: &mut Mapping,
        services_file: &Path,
        chain: &mut Vec<(PathBuf, String)>,
        resets: &[KeyPath],
    ) -> Result<Value, ComposeError> {
        let service = services.get(name).cloned().unwrap_or(Value::Null);
        let Value::Mapping(own) = &service else {
            return Ok(service);
        };
        let Some(extends) = own.get("extends") else {
            return Ok(service);
        };
        let (base, file) = match extends {
            Value::String(base) => (base.clone(), None),
            Value::Mapping(spec) => (
                spec.get("service")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                spec.get("file").and_then(Value::as_str).map(str::to_owned),
            ),
            _ => {
                return Err(ComposeError::Shape {
                    path: self.file.to_owned(),
                    key: format!("services.{name}.extends"),
                    expected: "a service name or a mapping with `service`",
                });
            }
        };
        let merged = match file {
            Some(file) => {
                let base_file = paths::absolute(&self.scope.dir, Path::new(&file));
                let (mut model, base_resets) = self
                    .loader
                    .base_file(&base_file, self.scope.env)
                    .map_err(|error| match error {
                        ComposeError::Read { source, .. } => ComposeError::ExtendsFile {
                            path: self.file.to_owned(),
                            service: name.to_owned(),
                            file: base_file.clone(),
                            source,
                        },
                        other => other,
                    })?;
                let mut base_services = match model.remove("services") {
                    Some(Value::Mapping(services)) => services,
                    _ => Mapping::new(),
                };
                self.base_of(
                    name,
                    &base,
                    &mut base_services,
                    &base_file,
                    chain,
                    &base_resets,
                )?
            }
            None => self.base_of(name, &base, services, services_file, chain, &[])?,
        };
        let Some(mut source) = merged else {
            return Ok(service);
        };
        // The extending document's `!reset` paths strip what the base passes on.
        let mut wrapper = Mapping::new();
        let mut one = Mapping::new();
        one.insert(name.into(), Value::Mapping(std::mem::take(&mut source)));
        wrapper.insert("services".into(), Value::Mapping(one));
        merge::reset(&mut wrapper, resets);
        let source = wrapper["services"][name].clone();
        let mut path = vec!["services".to_owned(), name.to_owned()];
        let mut merged = merge::merge_at(source, service, &mut path);
        if let Value::Mapping(mapping) = &mut merged {
            mapping.remove("extends");
        }
        services.insert(name.into(), merged.clone());
        Ok(merged)
    }

    /// The resolved service `base` of `services`, which `name` extends;
    /// `None` when it is defined as null.
    fn base_of(
        &mut self,
        name: &str,
        base: &str,
        services: &mut Mapping,
        services_file: &Path,
        chain: &mut Vec<(PathBuf, String)>,
        resets: &[KeyPath],
    ) -> Result<Option<Mapping>, ComposeError> {
        if !services.contains_key(base) {
            return Err(ComposeError::ExtendsMissing {
                path: self.file.to_owned(),
                service: name.to_owned(),
                base: base.to_owned(),
                base_file: services_file.to_owned(),
            });
        }
        let link = (services_file.to_owned(), name.to_owned());
        if chain.contains(&link) {
            let mut names: Vec<String> = chain.iter().map(|(_, n)| n.clone()).collect();
            names.push(name.to_owned());
            return Err(ComposeError::ExtendsCycle {
                path: self.file.to_owned(),
                chain: names,
            });
        }
        chain.push(link);
        let resolved = self.extend(base, services, services_file, chain, resets);
        chain.pop();
        match resolved? {
            Value::Mapping(mapping) => Ok(Some(mapping)),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{images, load_in};
    use super::*;

    #[test]
    fn same_file_chains_inherit_the_image() {
        let (_d, p) = load_in(
            &[(
                "compose.yaml",
                "services:\n  base: {image: base:1, profiles: [never]}\n  mid: {extends: base, profiles: !override []}\n  top: {extends: mid}\n",
            )],
            |_| {},
        );
        // `profiles` accumulate through extends too; !override empties them.
        assert_eq!(images(&p.unwrap()), ["base:1", "base:1"]);
    }

    #[test]
    fn other_files_resolve_their_own_extends_relative_to_themselves() {
        let (_d, p) = load_in(
            &[
                (
                    "compose.yaml",
                    "services:\n  web: {extends: {file: lib/a.yml, service: a}}\n",
                ),
                (
                    "lib/a.yml",
                    "services:\n  a: {extends: {file: b.yml, service: b}}\n",
                ),
                ("lib/b.yml", "services:\n  b: {build: ./b}\n"),
            ],
            |o| o.project_name = Some("p".into()),
        );
        let project = p.unwrap();
        // Build-only through extends: named after the extending service.
        assert_eq!(images(&project), ["p-web"]);
        let files: Vec<_> = project.files.iter().map(|f| f.path.clone()).collect();
        assert_eq!(
            files,
            [
                PathBuf::from("compose.yaml"),
                "lib/a.yml".into(),
                "lib/b.yml".into()
            ]
        );
    }

    #[test]
    fn reset_in_the_extending_service_strips_the_base() {
        let (_d, p) = load_in(
            &[(
                "compose.yaml",
                "services:\n  base: {image: base:1, build: .}\n  web: {extends: base, build: !reset null}\n",
            )],
            |_| {},
        );
        let project = p.unwrap();
        assert!(project.services[0].build);
        assert!(!project.services[1].build);
    }

    #[test]
    fn cycles_across_files_are_refused() {
        let (_d, p) = load_in(
            &[
                (
                    "compose.yaml",
                    "services:\n  web: {extends: {file: b.yml, service: b}}\n",
                ),
                (
                    "b.yml",
                    "services:\n  b: {extends: {file: compose.yaml, service: web}}\n",
                ),
            ],
            |_| {},
        );
        assert!(matches!(p, Err(ComposeError::ExtendsCycle { .. })), "{p:?}");
    }

    #[test]
    fn a_missing_base_names_both_services() {
        let (_d, p) = load_in(
            &[("compose.yaml", "services:\n  web: {extends: nope}\n")],
            |_| {},
        );
        match p {
            Err(ComposeError::ExtendsMissing { service, base, .. }) => {
                assert_eq!((service.as_str(), base.as_str()), ("web", "nope"));
            }
            other => panic!("{other:?}"),
        }
    }
}
