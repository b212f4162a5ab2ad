//! Which platforms of a multi-platform image to take: `--platform
//! os/arch[/variant]`, by default this machine's.

use crate::image::Platform;

/// A wanted platform; without a variant it takes any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WantedPlatform {
    /// `linux`, …
    pub os: String,
    /// `amd64`, …
    pub architecture: String,
    /// `v8`, …
    pub variant: Option<String>,
}

/// A `--platform` value that is not `os/arch[/variant]`.
#[derive(Debug, thiserror::Error)]
#[error("platform \"{}\" is not os/arch[/variant] (e.g. linux/amd64, linux/arm64/v8)", crate::display::escape(.0))]
pub struct InvalidPlatform(pub String);

impl WantedPlatform {
    /// Parses `os/arch[/variant]`.
    pub fn parse(text: &str) -> Result<Self, InvalidPlatform> {
        let parts: Vec<&str> = text.split('/').collect();
        let valid = |part: &&str| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        match parts.as_slice() {
            [os, arch] | [os, arch, _] if parts.iter().all(valid) => Ok(Self {
                os: (*os).to_owned(),
                architecture: normal_architecture(arch).to_owned(),
                variant: parts.get(2).map(|v| (*v).to_owned()),
            }),
            _ => Err(InvalidPlatform(text.to_owned())),
        }
    }

    /// This machine's platform: linux on its architecture.
    pub fn host() -> Self {
        Self {
            os: "linux".into(),
            architecture: host_architecture().into(),
            variant: None,
        }
    }

    /// True when `platform` is this one (any variant where none is wanted).
    pub fn accepts(&self, platform: &Platform) -> bool {
        platform.os == self.os
            && platform.architecture == self.architecture
            && self.variant.as_ref().is_none_or(|v| {
                platform
                    .variant
                    .as_deref()
                    .or_else(|| default_variant(&platform.architecture))
                    == Some(v.as_str())
            })
    }
}

impl std::fmt::Display for WantedPlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// The variant an image of `architecture` that names none is (containerd's
/// rule): `linux/arm64` is `linux/arm64/v8`, `linux/arm` is `linux/arm/v7`.
pub fn default_variant(architecture: &str) -> Option<&'static str> {
    match architecture {
        "arm64" => Some("v8"),
        "arm" => Some("v7"),
        _ => None,
    }
}

/// An architecture as image platforms spell it (Go's GOARCH), from the
/// kernel's names people also type.
fn normal_architecture(architecture: &str) -> &str {
    match architecture {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// This machine's architecture as image platforms spell it (Go's GOARCH).
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse_and_match_with_or_without_variant() {
        let arm = WantedPlatform::parse("linux/arm64").unwrap();
        let v8 = Platform {
            os: "linux".into(),
            architecture: "arm64".into(),
            variant: Some("v8".into()),
        };
        assert!(arm.accepts(&v8));
        assert!(
            WantedPlatform::parse("linux/arm64/v8")
                .unwrap()
                .accepts(&v8)
        );
        assert!(
            !WantedPlatform::parse("linux/arm64/v7")
                .unwrap()
                .accepts(&v8)
        );
        assert!(!WantedPlatform::parse("linux/amd64").unwrap().accepts(&v8));
        // arm64 without a variant is arm64/v8, and the kernel's name is the same.
        let bare = Platform {
            variant: None,
            ..v8.clone()
        };
        assert!(
            WantedPlatform::parse("linux/arm64/v8")
                .unwrap()
                .accepts(&bare)
        );
        assert!(
            !WantedPlatform::parse("linux/arm64/v7")
                .unwrap()
                .accepts(&bare)
        );
        assert!(WantedPlatform::parse("linux/aarch64").unwrap().accepts(&v8));
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d", "linux/am d64"] {
            assert!(WantedPlatform::parse(bad).is_err(), "{bad}");
        }
    }
}
