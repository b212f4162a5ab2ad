//! New names for images on arrival (`unpack --tag SRC=DST`, `--prefix
//! PREFIX`), independent of where the images go, so every target renames by
//! the same rules.
//!
//! - `--tag SRC=DST` renames the one reference SRC (matched by its normalised
//!   form: `nginx:1.27` is `docker.io/library/nginx:1.27`) to DST, a
//!   reference with a tag and no digest (`:latest` when none is given).
//! - `--prefix PREFIX` puts every reference under a registry path: the
//!   reference's registry host is dropped and its repository path kept, as
//!   mirroring tools lay out a mirror (`nginx:1.27` →
//!   `PREFIX/library/nginx:1.27`, `ghcr.io/org/app:2` → `PREFIX/org/app:2`,
//!   `localhost:5000/app:1` → `PREFIX/app:1`); tag and digest are kept.
//! - `--tag` wins over `--prefix` for the reference it names; other
//!   references (of the same image too) follow `--prefix`, or keep their
//!   names without one.
//!
//! Wrong arguments are usage errors; a SRC the images do not hold is an
//! error of what was named (as an image named for packing that does not
//! exist); a result that is not a valid reference, or one name given to two
//! different images, is a usage error naming them.

use std::collections::{HashMap, HashSet};
use std::fmt;

use oci_spec::distribution::Reference;

use super::ImageRef;
use crate::display::escape;

/// Why names could not be given.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenameError {
    /// A `--tag` argument without `=`.
    #[error("--tag \"{}\" is not SRC=DST: give the reference to rename, '=', and its new name (--tag nginx:1.27=registry.local/nginx:1.27)", escape(.given))]
    NotAPair {
        /// The argument.
        given: String,
    },
    /// SRC or DST is not a valid reference.
    #[error("--tag \"{}\": {side} is not a valid image reference ({source})", escape(.given))]
    InvalidTagSide {
        /// The argument.
        given: String,
        /// `SRC` or `DST`.
        side: &'static str,
        /// Why.
        #[source]
        source: super::InvalidReference,
    },
    /// DST carries a digest, which would name content it may not be.
    #[error("--tag \"{}\": the new name must be a tag, not a digest reference (drop the @sha256:… part)", escape(.given))]
    DigestTarget {
        /// The argument.
        given: String,
    },
    /// The same SRC given twice with different names.
    #[error("--tag names {} twice (as {} and {}): give each reference one new name", escape(.source_ref), escape(.first), escape(.second))]
    SourceTwice {
        /// The normalised SRC.
        source_ref: String,
        /// Its first new name.
        first: String,
        /// Its second new name.
        second: String,
    },
    /// Two different SRC onto the same DST.
    #[error("--tag gives two references the one name {}: {} and {}; give each its own name", escape(.target), escape(.first), escape(.second))]
    TargetTwice {
        /// The normalised DST.
        target: String,
        /// One SRC.
        first: String,
        /// The other SRC.
        second: String,
    },
    /// PREFIX is not a registry path under which references can go.
    #[error("--prefix \"{}\" is not a registry path (like registry.local:5000/mirror): {reason}", escape(.given))]
    InvalidPrefix {
        /// The argument.
        given: String,
        /// Why.
        reason: String,
    },
    /// SRC names no reference of the images.
    #[error("--tag {}: the bundle holds no image named so; it holds {} (give one of those as SRC)", escape(.source_ref), escape(&.holds.join(", ")))]
    SourceAbsent {
        /// SRC as given.
        source_ref: String,
        /// Every reference the images have.
        holds: Vec<String>,
    },
    /// A reference renamed by the prefix is not a valid reference.
    #[error("--prefix would rename {} to {}, which is not a valid image reference ({reason}); choose a shorter or valid prefix, or rename it with --tag", escape(.reference), escape(.result))]
    InvalidResult {
        /// The reference renamed.
        reference: String,
        /// What it would have become.
        result: String,
        /// Why that is invalid.
        reason: String,
    },
    /// Two different images would end up under one name.
    #[error("{} would name two different images (renamed from {} and {}); give them distinct names with --tag", escape(.target), escape(.first), escape(.second))]
    Collision {
        /// The name.
        target: String,
        /// Where one image's name came from.
        first: String,
        /// Where the other's came from.
        second: String,
    },
}

impl RenameError {
    /// The kind of this failure (see [`crate::Error::kind`]).
    pub fn kind(&self) -> crate::error::kind::ErrorKind {
        use crate::error::kind::ErrorKind;
        match self {
            Self::SourceAbsent { .. } => ErrorKind::ImagesMissing,
            _ => ErrorKind::Usage,
        }
    }
}

/// One `--tag SRC=DST`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagRule {
    /// The reference renamed.
    pub source: ImageRef,
    /// Its new name.
    pub target: ImageRef,
}

impl TagRule {
    /// Parses `SRC=DST` (the first `=` splits: a reference never holds one).
    pub fn parse(given: &str) -> Result<Self, RenameError> {
        let (source, target) = given.split_once('=').ok_or_else(|| RenameError::NotAPair {
            given: given.to_owned(),
        })?;
        let side = |side: &'static str, text: &str| {
            ImageRef::parse(text).map_err(|source| RenameError::InvalidTagSide {
                given: given.to_owned(),
                side,
                source,
            })
        };
        let source = side("SRC", source)?;
        let target = side("DST", target)?;
        if !target.is_taggable() {
            return Err(RenameError::DigestTarget {
                given: given.to_owned(),
            });
        }
        Ok(Self { source, target })
    }
}

/// A registry path references are put under (`--prefix`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prefix(String);

impl Prefix {
    /// Parses PREFIX: a registry host and optional path, with no tag,
    /// digest or trailing `/`, that a repository can follow.
    pub fn parse(given: &str) -> Result<Self, RenameError> {
        let invalid = |reason: &str| RenameError::InvalidPrefix {
            given: given.to_owned(),
            reason: reason.to_owned(),
        };
        if given.is_empty() {
            return Err(invalid("it is empty"));
        }
        if given.ends_with('/') || given.starts_with('/') || given.contains("//") {
            return Err(invalid("it has an empty path component"));
        }
        if given.contains('@') {
            return Err(invalid("it holds a digest"));
        }
        // A ':' is a port only in the host, never a tag in the path.
        if given.split('/').skip(1).any(|part| part.contains(':')) {
            return Err(invalid("it holds a tag"));
        }
        let probe = format!("{given}/probe:tag");
        match ImageRef::parse(&probe) {
            Ok(reference) if reference.name.ends_with("/probe:tag") => Ok(Self(given.to_owned())),
            Ok(_) => Err(invalid("a repository cannot follow it")),
            Err(error) => Err(invalid(
                &std::error::Error::source(&error)
                    .map_or_else(|| error.to_string(), ToString::to_string),
            )),
        }
    }

    /// `reference` under this prefix: its registry dropped, its repository
    /// path, tag and digest kept.
    fn apply(&self, reference: &ImageRef) -> Result<ImageRef, RenameError> {
        let parsed: Reference =
            reference
                .name
                .parse()
                .map_err(|error: oci_spec::distribution::ParseError| {
                    RenameError::InvalidResult {
                        reference: reference.given.clone(),
                        result: String::new(),
                        reason: error.to_string(),
                    }
                })?;
        let mut result = format!("{}/{}", self.0, parsed.repository());
        if let Some(tag) = parsed.tag() {
            result += &format!(":{tag}");
        }
        if let Some(digest) = parsed.digest() {
            result += &format!("@{digest}");
        }
        ImageRef::parse(&result).map_err(|error| RenameError::InvalidResult {
            reference: reference.given.clone(),
            result,
            reason: std::error::Error::source(&error)
                .map_or_else(|| error.to_string(), ToString::to_string),
        })
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The renaming asked for: `--tag` rules and an optional `--prefix`.
#[derive(Clone, Debug, Default)]
pub struct Renaming {
    tags: Vec<TagRule>,
    prefix: Option<Prefix>,
}

/// One reference and the name it is given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Renamed {
    /// The name the bundle gives.
    pub from: ImageRef,
    /// The name it arrives under.
    pub to: ImageRef,
}

impl Renaming {
    /// The renaming of `tags` (each `SRC=DST`) and `prefix`; every check
    /// that needs only the arguments is made here.
    pub fn new(tags: Vec<TagRule>, prefix: Option<Prefix>) -> Result<Self, RenameError> {
        let mut by_source: HashMap<&str, &TagRule> = HashMap::new();
        let mut by_target: HashMap<&str, &TagRule> = HashMap::new();
        for rule in &tags {
            if let Some(earlier) = by_source.insert(&rule.source.name, rule) {
                if earlier.target.name != rule.target.name {
                    return Err(RenameError::SourceTwice {
                        source_ref: rule.source.given.clone(),
                        first: earlier.target.given.clone(),
                        second: rule.target.given.clone(),
                    });
                }
            }
            if let Some(earlier) = by_target.insert(&rule.target.name, rule) {
                if earlier.source.name != rule.source.name {
                    return Err(RenameError::TargetTwice {
                        target: rule.target.given.clone(),
                        first: earlier.source.given.clone(),
                        second: rule.source.given.clone(),
                    });
                }
            }
        }
        Ok(Self { tags, prefix })
    }

    /// True when nothing is renamed.
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty() && self.prefix.is_none()
    }

    /// The new name of one reference: its `--tag` rule, else the prefix,
    /// else itself.
    pub fn rename(&self, reference: &ImageRef) -> Result<ImageRef, RenameError> {
        if let Some(rule) = self.tags.iter().find(|r| r.source.name == reference.name) {
            return Ok(rule.target.clone());
        }
        match &self.prefix {
            Some(prefix) => prefix.apply(reference),
            None => Ok(reference.clone()),
        }
    }

    /// The new names of every image's references: `images` holds, per
    /// image, something that tells images apart (a digest) and its
    /// references. Each result lists the image's references in order,
    /// without repeating a new name. Refused when a `--tag` SRC is no
    /// reference of any image, a result is invalid, or two different images
    /// would get one name.
    pub fn apply<K: PartialEq>(
        &self,
        images: &[(K, &[ImageRef])],
    ) -> Result<Vec<Vec<Renamed>>, RenameError> {
        let held: HashSet<&str> = images
            .iter()
            .flat_map(|(_, refs)| refs.iter().map(|r| r.name.as_str()))
            .collect();
        if let Some(absent) = self
            .tags
            .iter()
            .find(|r| !held.contains(r.source.name.as_str()))
        {
            let mut holds: Vec<String> = Vec::new();
            for reference in images.iter().flat_map(|(_, refs)| refs.iter()) {
                if !holds.contains(&reference.given) {
                    holds.push(reference.given.clone());
                }
            }
            return Err(RenameError::SourceAbsent {
                source_ref: absent.source.given.clone(),
                holds,
            });
        }
        let mut owners: HashMap<String, (usize, &ImageRef)> = HashMap::new();
        let mut renamed = Vec::with_capacity(images.len());
        for (index, (key, refs)) in images.iter().enumerate() {
            let mut names: Vec<Renamed> = Vec::new();
            for reference in refs.iter() {
                let to = self.rename(reference)?;
                if let Some((owner, from)) = owners.get(&to.name) {
                    // A name several images share in the bundle already (the
                    // platforms of one index) is no new clash.
                    if images[*owner].0 != *key && from.name != reference.name {
                        return Err(RenameError::Collision {
                            target: to.given.clone(),
                            first: from.given.clone(),
                            second: reference.given.clone(),
                        });
                    }
                } else {
                    owners.insert(to.name.clone(), (index, reference));
                }
                if !names.iter().any(|n| n.to.name == to.name) {
                    names.push(Renamed {
                        from: reference.clone(),
                        to,
                    });
                }
            }
            renamed.push(names);
        }
        Ok(renamed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str) -> ImageRef {
        ImageRef::parse(text).unwrap()
    }

    fn renaming(tags: &[&str], prefix: Option<&str>) -> Result<Renaming, RenameError> {
        let tags = tags
            .iter()
            .map(|t| TagRule::parse(t))
            .collect::<Result<Vec<_>, _>>()?;
        Renaming::new(tags, prefix.map(Prefix::parse).transpose()?)
    }

    fn names(
        renaming: &Renaming,
        images: &[(&str, &[&str])],
    ) -> Result<Vec<Vec<String>>, RenameError> {
        let refs: Vec<(&str, Vec<ImageRef>)> = images
            .iter()
            .map(|(key, refs)| (*key, refs.iter().map(|t| r(t)).collect()))
            .collect();
        let keyed: Vec<(&str, &[ImageRef])> =
            refs.iter().map(|(k, v)| (*k, v.as_slice())).collect();
        Ok(renaming
            .apply(&keyed)?
            .into_iter()
            .map(|image| image.into_iter().map(|n| n.to.name).collect())
            .collect())
    }

    #[test]
    fn a_prefix_keeps_docker_hub_paths_with_library_and_drops_other_registries() {
        let renaming = renaming(&[], Some("registry.local:5000/mirror")).unwrap();
        let cases = [
            (
                "nginx:1.27",
                "registry.local:5000/mirror/library/nginx:1.27",
            ),
            (
                "docker.io/library/nginx:1.27",
                "registry.local:5000/mirror/library/nginx:1.27",
            ),
            ("fixture/web:1", "registry.local:5000/mirror/fixture/web:1"),
            ("ghcr.io/org/app:2", "registry.local:5000/mirror/org/app:2"),
            ("localhost:5000/app:1", "registry.local:5000/mirror/app:1"),
            (
                "busybox",
                "registry.local:5000/mirror/library/busybox:latest",
            ),
        ];
        for (from, to) in cases {
            let renamed = renaming.rename(&r(from)).unwrap();
            assert_eq!(renamed.name, to, "{from}");
            assert_eq!(renamed.given, to, "{from}");
        }
    }

    #[test]
    fn a_prefix_keeps_digests() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let renaming = renaming(&[], Some("registry.local")).unwrap();
        let renamed = renaming
            .rename(&r(&format!("nginx:1.27@{digest}")))
            .unwrap();
        assert_eq!(
            renamed.name,
            format!("registry.local/library/nginx:1.27@{digest}")
        );
        let renamed = renaming.rename(&r(&format!("nginx@{digest}"))).unwrap();
        assert_eq!(
            renamed.name,
            format!("registry.local/library/nginx@{digest}")
        );
    }

    #[test]
    fn a_tag_is_matched_normalised_and_wins_over_the_prefix() {
        let renaming = renaming(
            &["docker.io/library/nginx:1.27=site/web:prod"],
            Some("registry.local"),
        )
        .unwrap();
        let got = names(
            &renaming,
            &[("a", &["nginx:1.27", "nginx:latest"]), ("b", &["redis:7"])],
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                vec![
                    "docker.io/site/web:prod".to_owned(),
                    "registry.local/library/nginx:latest".to_owned()
                ],
                vec!["registry.local/library/redis:7".to_owned()],
            ]
        );
    }

    #[test]
    fn without_rules_names_are_kept() {
        let renaming = renaming(&[], None).unwrap();
        assert!(renaming.is_empty());
        let got = names(&renaming, &[("a", &["nginx:1.27"])]).unwrap();
        assert_eq!(got, vec![vec!["docker.io/library/nginx:1.27".to_owned()]]);
    }

    #[test]
    fn an_absent_source_lists_what_is_held() {
        let renaming = renaming(&["nginx:1.26=web:1"], None).unwrap();
        let error = names(&renaming, &[("a", &["nginx:1.27", "redis:7"])]).unwrap_err();
        assert!(matches!(error, RenameError::SourceAbsent { .. }));
        assert_eq!(error.kind(), crate::error::kind::ErrorKind::ImagesMissing);
        let text = error.to_string();
        assert!(
            text.contains("nginx:1.26") && text.contains("nginx:1.27, redis:7"),
            "{text}"
        );
    }

    #[test]
    fn two_sources_onto_one_target_are_refused() {
        let error = renaming(&["a:1=x:1", "b:1=docker.io/library/x:1"], None).unwrap_err();
        assert!(matches!(error, RenameError::TargetTwice { .. }), "{error}");
        assert_eq!(error.kind(), crate::error::kind::ErrorKind::Usage);
        let error = renaming(&["a:1=x:1", "a:1=y:1"], None).unwrap_err();
        assert!(matches!(error, RenameError::SourceTwice { .. }), "{error}");
        // The same rule twice is harmless.
        assert!(renaming(&["a:1=x:1", "docker.io/library/a:1=x:1"], None).is_ok());
    }

    #[test]
    fn two_images_under_one_name_are_refused_but_one_image_twice_is_not() {
        let renaming_ = renaming(&[], Some("mirror.local")).unwrap();
        let error = names(
            &renaming_,
            &[
                ("a", &["docker.io/org/app:1"]),
                ("b", &["ghcr.io/org/app:1"]),
            ],
        )
        .unwrap_err();
        assert!(matches!(error, RenameError::Collision { .. }), "{error}");
        assert_eq!(error.kind(), crate::error::kind::ErrorKind::Usage);
        let got = names(
            &renaming_,
            &[("a", &["docker.io/org/app:1", "ghcr.io/org/app:1"])],
        )
        .unwrap();
        assert_eq!(got, vec![vec!["mirror.local/org/app:1".to_owned()]]);
        // A --tag onto another image's kept name.
        let renaming_ = renaming(&["a:1=b:1"], None).unwrap();
        let error = names(&renaming_, &[("a", &["a:1"]), ("b", &["b:1"])]).unwrap_err();
        assert!(matches!(error, RenameError::Collision { .. }), "{error}");
    }

    #[test]
    fn an_invalid_result_names_the_reference() {
        let prefix = format!("registry.local/{}", "p".repeat(200));
        let renaming = renaming(&[], Some(&prefix)).unwrap();
        let long = format!("org/{}:1", "a".repeat(60));
        let error = names(&renaming, &[("a", &[long.as_str()])]).unwrap_err();
        assert!(
            matches!(error, RenameError::InvalidResult { .. }),
            "{error}"
        );
        assert!(error.to_string().contains(&long), "{error}");
        assert_eq!(error.kind(), crate::error::kind::ErrorKind::Usage);
    }

    #[test]
    fn bad_arguments_are_refused() {
        for tag in [
            "nginx",
            "nginx:1.27=",
            "=web:1",
            "Bad:1=web:1",
            "a:1=web@sha256:00",
        ] {
            assert!(TagRule::parse(tag).is_err(), "{tag}");
        }
        let digest = format!("sha256:{}", "a".repeat(64));
        assert!(matches!(
            TagRule::parse(&format!("a:1=web@{digest}")),
            Err(RenameError::DigestTarget { .. })
        ));
        for prefix in [
            "",
            "reg.local/",
            "/reg",
            "reg.local//m",
            "reg.local/m:1",
            "reg@x",
            "Reg Local",
            "reg.local/UP",
        ] {
            assert!(Prefix::parse(prefix).is_err(), "{prefix}");
        }
        for prefix in [
            "reg.local",
            "reg.local:5000/mirror/deep",
            "localhost:5000",
            "acme",
        ] {
            assert!(Prefix::parse(prefix).is_ok(), "{prefix}");
        }
    }
}
