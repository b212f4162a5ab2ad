//! One compose model from a list of files, in Compose's order for each
//! document: interpolate, resolve `extends`, apply the document's
//! `!reset`/`!override` paths to what came before, import its `include`s,
//! merge it over the earlier documents, then check the merged shape.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use super::environment::Environment;
use super::error::ComposeError;
use super::yaml::{Document, KeyPath};
use super::{FileKind, FileLog, extends, include, interpolate, merge, schema, yaml};

/// Where a load happens: the directory relative paths (`include`,
/// `extends.file`) resolve against, the variables interpolation sees, and
/// the files that include this one (to refuse include cycles).
pub struct Scope<'e> {
    /// The project (or included project) directory.
    pub dir: PathBuf,
    /// Interpolation variables.
    pub env: &'e Environment,
    /// Including files, outermost first.
    pub chain: Vec<PathBuf>,
}

/// A merged model and, per service, the file that first defined it.
#[derive(Debug, Default)]
pub struct Model {
    /// The merged top-level mapping.
    pub mapping: Mapping,
    /// Service name → defining file, for error messages.
    pub origins: BTreeMap<String, PathBuf>,
}

/// Reads and merges files, recording every file it reads.
pub struct Loader<'l> {
    /// Files read so far.
    pub log: &'l mut FileLog,
}

impl Loader<'_> {
    /// Parses the documents of a compose file.
    pub fn documents(&mut self, path: &Path) -> Result<Vec<Document>, ComposeError> {
        let text = self.log.read(path, FileKind::Compose)?;
        yaml::parse(path, &text)
    }

    /// Loads and merges `files` (already parsed) in order.
    pub fn load(
        &mut self,
        files: Vec<(PathBuf, Vec<Document>)>,
        scope: &Scope,
    ) -> Result<Model, ComposeError> {
        let mut model = Model::default();
        for (path, documents) in files {
            for document in documents {
                self.merge_document(&mut model, &path, document, scope)?;
            }
        }
        Ok(model)
    }

    /// Reads and loads `files` in order.
    pub fn load_paths(&mut self, files: &[PathBuf], scope: &Scope) -> Result<Model, ComposeError> {
        let mut parsed = Vec::new();
        for path in files {
            parsed.push((path.clone(), self.documents(path)?));
        }
        self.load(parsed, scope)
    }

    fn merge_document(
        &mut self,
        model: &mut Model,
        path: &Path,
        document: Document,
        scope: &Scope,
    ) -> Result<(), ComposeError> {
        let mut config = interpolated(path, document.model, scope.env)?;
        schema::check_services(path, &config)?;
        extends::apply(self, &mut config, path, scope, &document.resets)?;
        merge::reset(&mut model.mapping, &document.resets);
        let imported = include::apply(self, &mut config, path, scope)?;
        if let Some(Value::Mapping(services)) = config.get("services") {
            for name in services.keys().filter_map(Value::as_str) {
                if !model.origins.contains_key(name) {
                    let origin = imported
                        .get(name)
                        .cloned()
                        .unwrap_or_else(|| path.to_owned());
                    model.origins.insert(name.to_owned(), origin);
                }
            }
        }
        let earlier = std::mem::take(&mut model.mapping);
        model.mapping = merge::merge_mappings(earlier, config, &mut Vec::new());
        // Like Compose, check the merged model: a null in a later file
        // (`image:`) keeps the earlier value and is fine there.
        schema::check(path, &model.mapping)
    }

    /// A file named by `extends.file`: its documents interpolated and merged,
    /// with no `include`, `extends` or shape check (Compose resolves the
    /// chain from the raw services and checks only the result), and the
    /// reset paths of its last document. `extends.file` values inside it
    /// are made absolute against its own directory.
    pub fn base_file(
        &mut self,
        path: &Path,
        env: &Environment,
    ) -> Result<(Mapping, Vec<KeyPath>), ComposeError> {
        let mut mapping = Mapping::new();
        let mut resets = Vec::new();
        for document in self.documents(path)? {
            let config = interpolated(path, document.model, env)?;
            merge::reset(&mut mapping, &document.resets);
            mapping = merge::merge_mappings(mapping, config, &mut Vec::new());
            resets = document.resets;
        }
        extends::anchor_files(&mut mapping, &super::paths::parent(path));
        Ok((mapping, resets))
    }
}

/// `config` with every string interpolated.
fn interpolated(path: &Path, config: Mapping, env: &Environment) -> Result<Mapping, ComposeError> {
    let mut value = Value::Mapping(config);
    interpolate::interpolate_tree(&mut value, env).map_err(|(key, source)| {
        ComposeError::Interpolation {
            path: path.to_owned(),
            key,
            source,
        }
    })?;
    match value {
        Value::Mapping(config) => Ok(config),
        _ => unreachable!("interpolation keeps the kind of every value"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{images, load_in};

    #[test]
    fn resets_apply_to_earlier_documents_only() {
        let (_d, p) = load_in(
            &[(
                "compose.yaml",
                "services:\n  web: {image: a, build: .}\n---\nservices:\n  web: {image: !reset null}\n---\nservices:\n  api: {image: api}\n",
            )],
            |o| o.project_name = Some("p".into()),
        );
        assert_eq!(images(&p.unwrap()), ["p-web", "api"]);
    }

    #[test]
    fn a_service_s_file_is_where_it_was_first_defined() {
        let (_d, p) = load_in(
            &[
                ("compose.yaml", "services:\n  web: {image: a}\n"),
                (
                    "compose.override.yaml",
                    "services:\n  web: {image: b}\n  db: {image: c}\n",
                ),
            ],
            |_| {},
        );
        let project = p.unwrap();
        let files: Vec<_> = project
            .services
            .iter()
            .map(|s| s.file.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(files, ["compose.yaml", "compose.override.yaml"]);
    }
}
