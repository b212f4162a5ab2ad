//! `containerd[://SOCKET][?namespace=NS][&snapshotter=NAME]`: which
//! containerd, which of its namespaces, and which snapshotter images are
//! unpacked for.

use std::fmt;
use std::path::{Path, PathBuf};

use super::ContainerdError;

/// The namespace the kubelet (CRI) uses.
pub const DEFAULT_NAMESPACE: &str = "k8s.io";

/// Where containerd, k3s/RKE2 and k0s put their socket, in the order looked for.
pub const DEFAULT_SOCKETS: [&str; 3] = [
    "/run/containerd/containerd.sock",
    "/run/k3s/containerd/containerd.sock",
    "/run/k0s/containerd.sock",
];

/// A containerd, as `--to containerd…` names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerdAddress {
    /// The socket given; `None` looks for [`DEFAULT_SOCKETS`].
    pub socket: Option<PathBuf>,
    /// The namespace images go to.
    pub namespace: String,
    /// The snapshotter images are unpacked for; `None` leaves it to `ctr`
    /// (`$CONTAINERD_SNAPSHOTTER`, else overlayfs).
    pub snapshotter: Option<String>,
}

impl ContainerdAddress {
    /// True when `text` is meant as a containerd address.
    pub fn names_containerd(text: &str) -> bool {
        text == "containerd" || text.starts_with("containerd://") || text.starts_with("containerd?")
    }

    /// Parses `containerd[://SOCKET][?namespace=NS][&snapshotter=NAME]`.
    pub fn parse(given: &str) -> Result<Self, ContainerdError> {
        let invalid = |reason: &str| ContainerdError::InvalidAddress {
            given: given.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = given
            .strip_prefix("containerd")
            .ok_or_else(|| invalid("it must start with containerd"))?;
        let (location, query) = match rest.split_once('?') {
            Some((location, query)) => (location, Some(query)),
            None => (rest, None),
        };
        let socket = match location {
            "" => None,
            _ => {
                let path = location
                    .strip_prefix("://")
                    .ok_or_else(|| invalid("expected containerd://SOCKET"))?;
                if !path.starts_with('/') {
                    return Err(invalid(
                        "the socket must be an absolute path (containerd:///run/containerd/containerd.sock)",
                    ));
                }
                Some(PathBuf::from(path))
            }
        };
        let mut address = Self {
            socket,
            namespace: DEFAULT_NAMESPACE.to_owned(),
            snapshotter: None,
        };
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| invalid("expected ?namespace=NS or &snapshotter=NAME"))?;
            if !is_plain_name(value) {
                return Err(invalid(&format!(
                    "{key} must be letters, digits, '.', '_' or '-'"
                )));
            }
            match key {
                "namespace" => address.namespace = value.to_owned(),
                "snapshotter" => address.snapshotter = Some(value.to_owned()),
                _ => {
                    return Err(invalid(&format!(
                        "unknown setting {key} (namespace and snapshotter are known)"
                    )));
                }
            }
        }
        Ok(address)
    }

    /// The socket to use: the one named, else the first of
    /// [`DEFAULT_SOCKETS`] that exists.
    pub fn socket(&self) -> Result<PathBuf, ContainerdError> {
        self.socket_among(&DEFAULT_SOCKETS.map(Path::new))
    }

    fn socket_among(&self, defaults: &[&Path]) -> Result<PathBuf, ContainerdError> {
        if let Some(socket) = &self.socket {
            // Said at once: ctr would wait out its dial timeout first.
            if !socket.exists() {
                return Err(ContainerdError::SocketAbsent {
                    socket: socket.display().to_string(),
                });
            }
            return Ok(socket.clone());
        }
        defaults
            .iter()
            .find(|path| path.exists())
            .map(|path| path.to_path_buf())
            .ok_or_else(|| ContainerdError::NoSocket {
                tried: defaults
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

/// A namespace or snapshotter name: nothing a shell or ctr's flag parser
/// would read as something else.
fn is_plain_name(value: &str) -> bool {
    !value.is_empty()
        && !value.starts_with('-')
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

impl fmt::Display for ContainerdAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("containerd")?;
        if let Some(socket) = &self.socket {
            write!(f, "://{}", socket.display())?;
        }
        write!(f, "?namespace={}", self.namespace)?;
        if let Some(snapshotter) = &self.snapshotter {
            write!(f, "&snapshotter={snapshotter}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_socket_namespace_and_snapshotter() {
        let bare = ContainerdAddress::parse("containerd").unwrap();
        assert_eq!(bare.socket, None);
        assert_eq!(bare.namespace, "k8s.io");
        assert_eq!(bare.snapshotter, None);
        let full = ContainerdAddress::parse(
            "containerd:///run/k3s/containerd/containerd.sock?namespace=apps&snapshotter=native",
        )
        .unwrap();
        assert_eq!(
            full.socket.as_deref(),
            Some(Path::new("/run/k3s/containerd/containerd.sock"))
        );
        assert_eq!(full.namespace, "apps");
        assert_eq!(full.snapshotter.as_deref(), Some("native"));
        let only_namespace = ContainerdAddress::parse("containerd?namespace=default").unwrap();
        assert_eq!(only_namespace.namespace, "default");
    }

    #[test]
    fn refuses_malformed_addresses() {
        for given in [
            "containerd:/run/x.sock",
            "containerd://relative.sock",
            "containerd?namespace",
            "containerd?namespace=",
            "containerd?namespace=-n",
            "containerd?namespace=a b",
            "containerd?colour=blue",
        ] {
            assert!(
                ContainerdAddress::parse(given).is_err(),
                "{given} was accepted"
            );
        }
    }

    #[test]
    fn the_first_existing_default_socket_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let absent = dir.path().join("absent.sock");
        let present = dir.path().join("present.sock");
        std::fs::write(&present, b"").unwrap();
        let address = ContainerdAddress::parse("containerd").unwrap();
        assert_eq!(
            address
                .socket_among(&[absent.as_path(), present.as_path()])
                .unwrap(),
            present
        );
        assert!(matches!(
            address.socket_among(&[absent.as_path()]),
            Err(ContainerdError::NoSocket { .. })
        ));
    }
}
