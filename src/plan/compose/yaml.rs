//! Reading one compose file's YAML: every document in it, anchors and
//! aliases (serde_yaml expands them), `<<:` merge keys at any depth, and the
//! `!reset` / `!override` tags, which are taken out of the tree and recorded
//! as key paths for [`super::merge::reset`] to apply to earlier files.
//!
//! serde_yaml's own `Value::apply_merge` resolves only one level per call
//! and lets a merged mapping's own `<<:` leak into its parent, so merge keys
//! are resolved here, innermost first, with YAML's precedence: a mapping's
//! own keys win over merged ones, and earlier mappings in `<<: [*a, *b]`
//! win over later ones.

use std::path::Path;

use serde_yaml::{Mapping, Value};

use super::error::ComposeError;
use super::interpolate::key_text;

/// A key path from the document root (`["services", "web", "image"]`).
pub type KeyPath = Vec<String>;

/// One YAML document of a compose file.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The top-level mapping, merge keys resolved, tags removed.
    pub model: Mapping,
    /// Paths tagged `!reset` or `!override`: earlier files lose these keys
    /// before this document is merged over them.
    pub resets: Vec<KeyPath>,
}

/// Parses every document of `text` (read from `path`, named in errors).
/// A file with no document at all yields an empty list.
pub fn parse(path: &Path, text: &str) -> Result<Vec<Document>, ComposeError> {
    let mut documents = Vec::new();
    for deserializer in serde_yaml::Deserializer::from_str(text) {
        let value = <Value as serde::Deserialize>::deserialize(deserializer).map_err(|source| {
            ComposeError::Yaml {
                path: path.to_owned(),
                line: error_line(text, &source),
                source,
            }
        })?;
        let mut resets = Vec::new();
        let value = resolve(value, &mut Vec::new(), &mut resets)
            .map_err(|key| ComposeError::MergeKey {
                path: path.to_owned(),
                key: key.join("."),
            })?
            .unwrap_or(Value::Null);
        match value {
            Value::Mapping(model) => documents.push(Document { model, resets }),
            // serde_yaml reports a file of only comments as one null
            // document; Compose sees no document there at all.
            Value::Null if is_blank(text) => {}
            _ => {
                return Err(ComposeError::TopLevelNotMapping {
                    path: path.to_owned(),
                });
            }
        }
    }
    Ok(documents)
}

/// The line an error is about. serde_yaml places a duplicate key at the
/// start of its mapping; the second occurrence of the key is more useful.
fn error_line(text: &str, error: &serde_yaml::Error) -> Option<usize> {
    let line = error.location()?.line();
    let message = error.to_string();
    let marker = "duplicate entry with key \"";
    let Some(key) = message
        .find(marker)
        .and_then(|at| message[at + marker.len()..].split_once('"'))
        .map(|(key, _)| key)
    else {
        return Some(line);
    };
    let spellings = [
        format!("{key}:"),
        format!("\"{key}\":"),
        format!("'{key}':"),
    ];
    let mut indent = None;
    for (index, text_line) in text.lines().enumerate().skip(line.saturating_sub(1)) {
        let trimmed = text_line.trim_start();
        let this_indent = text_line.len() - trimmed.len();
        if !spellings.iter().any(|s| trimmed.starts_with(s.as_str())) {
            continue;
        }
        match indent {
            None => indent = Some(this_indent),
            Some(first) if first == this_indent => return Some(index + 1),
            Some(_) => {}
        }
    }
    Some(line)
}

/// True when `text` holds no YAML content: only blank lines and comments.
fn is_blank(text: &str) -> bool {
    text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#')
    })
}

/// Resolves merge keys and tags below `value`. Returns `None` when the value
/// itself is tagged `!reset`; `Err` with the path of a `<<:` that does not
/// name mappings.
fn resolve(
    value: Value,
    path: &mut KeyPath,
    resets: &mut Vec<KeyPath>,
) -> Result<Option<Value>, KeyPath> {
    match value {
        Value::Tagged(tagged) => {
            if tagged.tag == "!reset" {
                resets.push(path.clone());
                return Ok(None);
            }
            if tagged.tag == "!override" {
                resets.push(path.clone());
            }
            // Any other local tag is kept as its plain value, as Compose does.
            resolve(tagged.value, path, resets)
        }
        Value::Mapping(mapping) => resolve_mapping(mapping, path, resets).map(Some),
        Value::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (index, item) in items.into_iter().enumerate() {
                // compose-go records these paths with indexes that never
                // match anything, so a reset element is only dropped here.
                path.push(index.to_string());
                let mut ignored = Vec::new();
                let resolved = resolve(item, path, &mut ignored);
                path.pop();
                if let Some(item) = resolved? {
                    out.push(item);
                }
            }
            Ok(Some(Value::Sequence(out)))
        }
        scalar => Ok(Some(scalar)),
    }
}

fn resolve_mapping(
    mapping: Mapping,
    path: &mut KeyPath,
    resets: &mut Vec<KeyPath>,
) -> Result<Value, KeyPath> {
    let mut own = Mapping::new();
    let mut merges = Vec::new();
    for (key, value) in mapping {
        if key.as_str() == Some("<<") {
            // Tags inside merged content belong to the mapping that merges
            // it (compose-go drops the `<<` segment from their paths).
            let resolved = resolve(value, path, resets)?;
            merges.push(resolved.unwrap_or(Value::Null));
            continue;
        }
        path.push(key_text(&key));
        let resolved = resolve(value, path, resets);
        path.pop();
        if let Some(value) = resolved? {
            own.insert(key, value);
        }
    }
    for merge in merges {
        let sources = match merge {
            Value::Mapping(source) => vec![source],
            Value::Sequence(items) => {
                let mut sources = Vec::new();
                for item in items {
                    match item {
                        Value::Mapping(source) => sources.push(source),
                        _ => return Err(merge_path(path)),
                    }
                }
                sources
            }
            _ => return Err(merge_path(path)),
        };
        for source in sources {
            for (key, value) in source {
                own.entry(key).or_insert(value);
            }
        }
    }
    Ok(Value::Mapping(own))
}

fn merge_path(path: &KeyPath) -> KeyPath {
    let mut path = path.clone();
    path.push("<<".to_owned());
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Document {
        let mut documents = parse(Path::new("compose.yaml"), text).unwrap();
        assert_eq!(documents.len(), 1);
        documents.remove(0)
    }

    fn yaml(text: &str) -> Mapping {
        serde_yaml::from_str(text).unwrap()
    }

    #[test]
    fn merge_keys_resolve_at_any_depth() {
        // The frappe_docker shape: a merged mapping that itself merges two.
        let text = "
x-image: &image
  image: app:1
  restart: always
x-depends: &depends
  depends_on: [db]
x-defaults: &defaults
  <<: [*depends, *image]
  volumes: [data:/data]
services:
  backend:
    <<: *defaults
    restart: never
";
        let document = one(text);
        let backend = &document.model["services"]["backend"];
        assert_eq!(backend["image"], Value::from("app:1"));
        assert_eq!(backend["restart"], Value::from("never"));
        assert_eq!(backend["depends_on"][0], Value::from("db"));
        assert_eq!(backend["volumes"][0], Value::from("data:/data"));
        assert!(backend.get("<<").is_none());
    }

    #[test]
    fn earlier_merge_sources_win() {
        let document = one("a: &a {k: a}\nb: &b {k: b, only_b: 1}\nc:\n  <<: [*a, *b]\n");
        assert_eq!(
            document.model["c"],
            Value::Mapping(yaml("{k: a, only_b: 1}"))
        );
    }

    #[test]
    fn reset_and_override_tags_are_recorded() {
        let document = one(
            "services:\n  web:\n    image: !reset null\n    build: !reset\n    ports: !override [\"80:80\"]\n",
        );
        assert_eq!(
            document.resets,
            vec![
                vec!["services".to_owned(), "web".into(), "image".into()],
                vec!["services".to_owned(), "web".into(), "build".into()],
                vec!["services".to_owned(), "web".into(), "ports".into()],
            ]
        );
        assert_eq!(
            document.model["services"]["web"],
            Value::Mapping(yaml("ports: [\"80:80\"]"))
        );
    }

    #[test]
    fn documents_are_read_in_order() {
        let documents = parse(Path::new("c.yml"), "---\na: 1\n---\na: 2\n").unwrap();
        assert_eq!(documents.len(), 2);
        assert_eq!(documents[1].model["a"], Value::from(2));
        assert!(parse(Path::new("c.yml"), "# nothing\n").unwrap().is_empty());
        assert!(parse(Path::new("c.yml"), "").unwrap().is_empty());
    }

    #[test]
    fn syntax_errors_carry_the_line() {
        let error = parse(
            Path::new("c.yml"),
            "services:\n  a:\n    image: x\n   b: 1\n",
        )
        .unwrap_err();
        match error {
            ComposeError::Yaml { line, .. } => assert_eq!(line, Some(4)),
            other => panic!("{other:?}"),
        }
        let error = parse(Path::new("c.yml"), "a: 1\na: 2\n").unwrap_err();
        assert!(
            matches!(error, ComposeError::Yaml { line: Some(2), .. }),
            "{error:?}"
        );
    }

    #[test]
    fn shapes_that_are_not_a_mapping_are_refused() {
        for text in ["- a\n- b\n", "just text\n", "---\n"] {
            let error = parse(Path::new("c.yml"), text).unwrap_err();
            assert!(
                matches!(error, ComposeError::TopLevelNotMapping { .. }),
                "{text:?}"
            );
        }
        let error = parse(Path::new("c.yml"), "a:\n  <<: 3\n").unwrap_err();
        assert!(matches!(error, ComposeError::MergeKey { ref key, .. } if key == "a.<<"));
    }
}
