//! `registry://HOST[:PORT][/PREFIX]`: the registry a push goes to and the
//! path its images are put under.

use std::fmt;

use crate::image::rename::Prefix;

use super::RegistryError;

/// A registry and an optional repository path prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryAddress {
    /// HOST or HOST:PORT, as given.
    pub host: String,
    /// The path images go under (`team/apps`), if any.
    pub path: Option<String>,
}

impl RegistryAddress {
    /// Parses `registry://HOST[:PORT][/PREFIX]`.
    pub fn parse(given: &str) -> Result<Self, RegistryError> {
        let invalid = |reason: &str| RegistryError::InvalidAddress {
            given: given.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = given
            .strip_prefix("registry://")
            .ok_or_else(|| invalid("it must start with registry://"))?;
        let (host, path) = match rest.split_once('/') {
            Some((host, path)) => (host, Some(path)),
            None => (rest, None),
        };
        if host.is_empty() {
            return Err(invalid("it names no host"));
        }
        if !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        {
            return Err(invalid("the host holds a character no host name has"));
        }
        if let Some((_, port)) = host.rsplit_once(':').filter(|_| !host.ends_with(']')) {
            if port.parse::<u16>().is_err() {
                return Err(invalid("the port is not a number from 0 to 65535"));
            }
        }
        // The prefix rules of --prefix decide what a path may be, so that
        // --to registry://HOST/PATH and --prefix HOST/PATH accept the same.
        let whole = match path {
            Some(path) => format!("{host}/{path}"),
            None => host.to_owned(),
        };
        Prefix::parse(&whole).map_err(|error| {
            invalid(
                &std::error::Error::source(&error)
                    .map_or_else(|| error.to_string(), |source| source.to_string()),
            )
        })?;
        Ok(Self {
            host: host.to_owned(),
            path: path.map(str::to_owned),
        })
    }

    /// The `--prefix` this address stands for: HOST[:PORT][/PREFIX].
    pub fn prefix(&self) -> Result<Prefix, RegistryError> {
        Prefix::parse(&self.without_scheme()).map_err(|error| RegistryError::InvalidAddress {
            given: self.to_string(),
            reason: error.to_string(),
        })
    }

    fn without_scheme(&self) -> String {
        match &self.path {
            Some(path) => format!("{}/{path}", self.host),
            None => self.host.clone(),
        }
    }
}

impl fmt::Display for RegistryAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "registry://{}", self.without_scheme())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_port_and_prefix() {
        let address = RegistryAddress::parse("registry://127.0.0.1:5000/team/apps").unwrap();
        assert_eq!(address.host, "127.0.0.1:5000");
        assert_eq!(address.path.as_deref(), Some("team/apps"));
        assert_eq!(
            address.prefix().unwrap().to_string(),
            "127.0.0.1:5000/team/apps"
        );
        let bare = RegistryAddress::parse("registry://registry.local").unwrap();
        assert_eq!(bare.host, "registry.local");
        assert_eq!(bare.path, None);
    }

    #[test]
    fn refuses_malformed_addresses() {
        for given in [
            "127.0.0.1:5000",
            "registry://",
            "registry:///x",
            "registry://host:port/x",
            "registry://host:5000/x/",
            "registry://host:5000/x:tag",
            "registry://host:5000/x@sha256:00",
            "registry://ho st/x",
            "registry://host:99999",
        ] {
            assert!(
                RegistryAddress::parse(given).is_err(),
                "{given} was accepted"
            );
        }
    }
}
