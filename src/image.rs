//! The vocabulary every stage shares: image references, blob descriptors and
//! the record of one image as sources produce it and the bundle carries it.

pub mod change;
pub mod rename;

use std::fmt;

use oci_spec::distribution::{ParseError, Reference};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// Docker's limit on a name: registry, `/` and repository.
const NAME_LENGTH_MAX: usize = 255;

/// An image reference as the user spelled it, with its fully qualified form.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ImageRef {
    /// The spelling the user gave (`nginx:1.27`); restored as the tag.
    pub given: String,
    /// The fully qualified form (`docker.io/library/nginx:1.27`).
    pub name: String,
}

/// A string that is not a valid image reference.
#[derive(Debug, thiserror::Error)]
#[error("invalid image reference \"{}\"", crate::display::escape(.given))]
pub struct InvalidReference {
    /// What was given.
    pub given: String,
    /// Why the reference grammar refused it.
    #[source]
    pub source: oci_spec::distribution::ParseError,
}

impl ImageRef {
    /// `localhost/NAME`, Podman's name for a local image, for a short name
    /// given without a registry (`app:1`); `None` for one with a registry.
    pub fn podman_local(&self) -> Option<ImageRef> {
        let first = self.given.split('/').next().unwrap_or("");
        let has_registry =
            self.given.contains('/') && (first.contains(['.', ':']) || first == "localhost");
        if has_registry {
            return None;
        }
        ImageRef::parse(&format!("localhost/{}", self.given)).ok()
    }

    /// Parses and normalises a reference (`nginx` → `docker.io/library/nginx:latest`).
    /// Refused as Docker refuses it: a name (registry and repository) over
    /// 255 characters, or one whose normalised form does not parse back to
    /// itself, which nothing could later restore as a tag.
    pub fn parse(given: &str) -> Result<Self, InvalidReference> {
        let given = given.trim();
        let invalid = |source| InvalidReference {
            given: given.to_owned(),
            source,
        };
        let reference: Reference = given.parse().map_err(invalid)?;
        let name_length = reference.registry().len() + 1 + reference.repository().len();
        if name_length > NAME_LENGTH_MAX {
            return Err(invalid(ParseError::NameTooLong));
        }
        let name = reference.whole();
        match name.parse::<Reference>() {
            Ok(again) if again.whole() == name => {}
            Ok(_) => return Err(invalid(ParseError::ReferenceInvalidFormat)),
            Err(source) => return Err(invalid(source)),
        }
        Ok(Self {
            given: given.to_owned(),
            name,
        })
    }

    /// The parsed `name`; `None` only for an `ImageRef` not made by
    /// [`Self::parse`] with a name that does not parse (a bundle's manifest
    /// refuses those when it is read).
    fn reference(&self) -> Option<Reference> {
        self.name.parse().ok()
    }

    /// True when the reference names a tag (not only a digest), so it can be
    /// restored on an engine with `docker tag`.
    pub fn is_taggable(&self) -> bool {
        self.reference()
            .is_some_and(|r| r.tag().is_some() && r.digest().is_none())
    }

    /// True when the reference as given names neither a tag nor a digest,
    /// so `:latest` was assumed (as Docker assumes it).
    pub fn tag_assumed(&self) -> bool {
        let last = self.given.rsplit('/').next().unwrap_or(&self.given);
        !self.given.contains('@') && !last.contains(':')
    }

    /// Repository and tag for the engine's tag API, in the short form Docker
    /// writes (`nginx`, `1.27`), or `None` for digest references.
    pub fn repo_and_tag(&self) -> Option<(String, String)> {
        let reference = self.reference()?;
        if reference.digest().is_some() {
            return None;
        }
        let tag = reference.tag()?.to_owned();
        Some((familiar_repository(&reference), tag))
    }

    /// The short form Docker itself writes in `RepoTags` (`nginx:1.27`,
    /// `fixture/web:1`, `localhost:5000/app:1`), or `None` for digest references.
    pub fn familiar_tag(&self) -> Option<String> {
        self.repo_and_tag()
            .map(|(repo, tag)| format!("{repo}:{tag}"))
    }
}

fn familiar_repository(reference: &Reference) -> String {
    let repository = reference.repository();
    if reference.registry() == "docker.io" {
        repository
            .strip_prefix("library/")
            .unwrap_or(repository)
            .to_owned()
    } else {
        format!("{}/{}", reference.registry(), repository)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.given)
    }
}

/// A blob by digest and size: what a descriptor says, minus the media type.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlobRef {
    /// Content digest.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
}

/// Operating system and architecture of an image, from its config.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// `linux`, …
    pub os: String,
    /// `amd64`, `arm64`, …
    pub architecture: String,
    /// `v8`, …, where the config sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// One image as a source yields it: its config (small, kept in memory) and
/// its layers, which the blob store holds by digest.
#[derive(Clone, Debug)]
pub struct ImageRecord {
    /// The references the image is to be known by.
    pub refs: Vec<ImageRef>,
    /// The exact config bytes; their digest is the image ID on graph-driver engines.
    pub config: Vec<u8>,
    /// Digest of `config`.
    pub config_digest: Digest,
    /// Platform from the config.
    pub platform: Platform,
    /// Uncompressed layers, bottom first; each digest is the matching diff ID.
    pub layers: Vec<BlobRef>,
}

impl ImageRecord {
    /// Gives `refs` to the record of config `config_digest` in `records`,
    /// where there is one (two references, one image); false otherwise.
    pub fn add_refs_to(
        records: &mut [Self],
        config_digest: &Digest,
        refs: &mut Vec<ImageRef>,
    ) -> bool {
        match records
            .iter_mut()
            .find(|r| &r.config_digest == config_digest)
        {
            Some(record) => {
                record.refs.append(refs);
                true
            }
            None => false,
        }
    }
}

/// The parts of an image config airgap needs.
#[derive(Debug, Deserialize)]
pub struct ConfigSummary {
    /// Platform fields.
    #[serde(flatten)]
    pub platform: Platform,
    /// The root filesystem.
    pub rootfs: RootFs,
}

/// `rootfs` of an image config.
#[derive(Debug, Deserialize)]
pub struct RootFs {
    /// Digests of the uncompressed layers, bottom first.
    pub diff_ids: Vec<Digest>,
}

impl ConfigSummary {
    /// Parses the fields airgap needs out of config bytes.
    pub fn parse(config: &[u8]) -> serde_json::Result<Self> {
        serde_json::from_slice(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_qualified_and_keep_their_spelling() {
        let r = ImageRef::parse("nginx").unwrap();
        assert_eq!(r.given, "nginx");
        assert_eq!(r.name, "docker.io/library/nginx:latest");
        assert_eq!(r.familiar_tag().as_deref(), Some("nginx:latest"));

        let r = ImageRef::parse("fixture/web:1").unwrap();
        assert_eq!(r.name, "docker.io/fixture/web:1");
        assert_eq!(r.familiar_tag().as_deref(), Some("fixture/web:1"));
    }

    #[test]
    fn a_reference_without_tag_or_digest_has_latest_assumed() {
        for (given, assumed) in [
            ("nginx", true),
            ("localhost:5000/app", true),
            ("nginx:1.27", false),
            ("localhost:5000/app:1", false),
            (
                "nginx@sha256:0123456789012345678901234567890123456789012345678901234567890123",
                false,
            ),
        ] {
            assert_eq!(
                ImageRef::parse(given).unwrap().tag_assumed(),
                assumed,
                "{given}"
            );
        }
    }

    #[test]
    fn registry_ports_are_registries_not_tags() {
        let r = ImageRef::parse("localhost:5000/app:1.0").unwrap();
        assert_eq!(r.name, "localhost:5000/app:1.0");
        assert_eq!(
            r.repo_and_tag(),
            Some(("localhost:5000/app".to_owned(), "1.0".to_owned()))
        );
    }

    #[test]
    fn digest_references_cannot_be_tags() {
        let digest = "sha256:".to_owned() + &"a".repeat(64);
        let r = ImageRef::parse(&format!("nginx@{digest}")).unwrap();
        assert!(!r.is_taggable());
        assert_eq!(r.familiar_tag(), None);
    }

    #[test]
    fn compose_spellings_keep_their_form() {
        let digest = "sha256:".to_owned() + &"b".repeat(64);
        let r = ImageRef::parse(&format!("nginx:1.27@{digest}")).unwrap();
        assert_eq!(r.given, format!("nginx:1.27@{digest}"));
        assert_eq!(r.name, format!("docker.io/library/nginx:1.27@{digest}"));
        assert!(!r.is_taggable());

        let r = ImageRef::parse("redislabs/redismod").unwrap();
        assert_eq!(r.name, "docker.io/redislabs/redismod:latest");
        let r = ImageRef::parse("docker.io/postgres:16-alpine").unwrap();
        assert_eq!(r.name, "docker.io/library/postgres:16-alpine");
        assert_eq!(r.familiar_tag().as_deref(), Some("postgres:16-alpine"));
        // A build-only service's default name.
        let r = ImageRef::parse("ac-nginx-flask-mysql-backend").unwrap();
        assert_eq!(
            r.name,
            "docker.io/library/ac-nginx-flask-mysql-backend:latest"
        );
    }

    #[test]
    fn names_over_255_characters_are_refused() {
        // docker.io/library/ + 237 = 255.
        let longest = "a".repeat(237);
        assert_eq!(
            ImageRef::parse(&longest).unwrap().name.len(),
            255 + ":latest".len()
        );
        assert!(ImageRef::parse(&format!("{longest}b")).is_err());
        assert!(ImageRef::parse(&format!("r.example/{}", "a".repeat(246))).is_err());
    }

    #[test]
    fn a_name_that_does_not_parse_is_not_a_tag_and_does_not_panic() {
        let forged = ImageRef {
            given: "app:1".into(),
            name: "Not A Reference".into(),
        };
        assert!(!forged.is_taggable());
        assert_eq!(forged.repo_and_tag(), None);
        assert_eq!(forged.familiar_tag(), None);
    }

    #[test]
    fn garbage_is_refused() {
        assert!(ImageRef::parse("fixture/Web:1").is_err());
        assert!(ImageRef::parse("a b").is_err());
        assert!(ImageRef::parse("").is_err());
    }
}
