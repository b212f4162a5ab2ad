//! Running `ctr` against one containerd socket and namespace.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::digest::Digest;

use super::{ContainerdAddress, ContainerdError};

/// Largest manifest or config read from the content store: far beyond any
/// real one, small enough to hold in memory.
const SMALL_BLOB_LIMIT: u64 = 16 << 20;

/// `ctr`, aimed at one containerd and namespace.
#[derive(Clone, Debug)]
pub struct Ctr {
    socket: PathBuf,
    namespace: String,
}

/// One image record, as `ctr images ls` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// Its name (`docker.io/library/nginx:1.27`, or `sha256:…` for the
    /// records containerd 2.x and the CRI make under the config digest).
    pub name: String,
    /// The manifest or index it points at.
    pub target: Digest,
    /// Its labels, `key=value`.
    pub labels: Vec<String>,
}

impl Ctr {
    /// `ctr` for the containerd `address` names (its socket looked for if
    /// not named).
    pub fn new(address: &ContainerdAddress) -> Result<Self, ContainerdError> {
        Ok(Self {
            socket: address.socket()?,
            namespace: address.namespace.clone(),
        })
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Command::new("ctr");
        command
            .arg("--address")
            .arg(&self.socket)
            .arg("--namespace")
            .arg(&self.namespace)
            .args(args)
            .stdin(Stdio::null());
        command
    }

    fn failed(&self, what: &str, reason: String) -> ContainerdError {
        ContainerdError::Ctr {
            socket: self.socket.display().to_string(),
            what: what.to_owned(),
            reason,
        }
    }

    /// Runs ctr with `args` and returns its output; `what` names it in errors.
    fn output(&self, what: &str, args: &[&str]) -> Result<Vec<u8>, ContainerdError> {
        let output = self
            .command(args)
            .output()
            .map_err(|source| ContainerdError::NoCtr { source })?;
        if !output.status.success() {
            return Err(self.failed(what, reason(&output.stderr, output.status)));
        }
        Ok(output.stdout)
    }

    /// The server's version and its UUID (a stable identity of its stores;
    /// absent before containerd 1.5).
    pub fn server(&self) -> Result<(String, Option<String>), ContainerdError> {
        let text = String::from_utf8_lossy(&self.output("version", &["version"])?).into_owned();
        let server = text.split_once("Server:").map_or("", |(_, s)| s);
        let field = |name: &str| {
            server.lines().find_map(|line| {
                line.trim()
                    .strip_prefix(name)
                    .map(|v| v.trim().to_owned())
                    .filter(|v| !v.is_empty())
            })
        };
        let version = field("Version:").ok_or_else(|| {
            self.failed(
                "version",
                "it reported no server version; is the socket containerd's?".into(),
            )
        })?;
        Ok((version, field("UUID:")))
    }

    /// True when this ctr is 2.x or later and the server older: such a ctr
    /// imports through the transfer service by default, which containerd
    /// 1.6 lacks ("unknown service …Streaming"), so it must import locally.
    pub fn needs_local_import(&self) -> Result<bool, ContainerdError> {
        let text = String::from_utf8_lossy(&self.output("version", &["version"])?).into_owned();
        let (client, server) = text.split_once("Server:").unwrap_or((&text, ""));
        let major = |section: &str| {
            section
                .lines()
                .find_map(|line| line.trim().strip_prefix("Version:"))
                .and_then(|v| v.trim().split('.').next()?.parse::<u32>().ok())
        };
        Ok(matches!((major(client), major(server)), (Some(c), Some(s)) if c >= 2 && s < 2))
    }

    /// The directory containerd keeps its content store in, as its content
    /// plugin reports it (`ctr plugins ls --detailed`); `None` where it
    /// reports none.
    pub fn content_root(&self) -> Result<Option<PathBuf>, ContainerdError> {
        let text =
            String::from_utf8_lossy(&self.output("plugins ls", &["plugins", "ls", "--detailed"])?)
                .into_owned();
        Ok(parse_content_root(&text))
    }

    /// Every image record of the namespace.
    pub fn images(&self) -> Result<Vec<Listed>, ContainerdError> {
        let text =
            String::from_utf8_lossy(&self.output("images ls", &["images", "ls"])?).into_owned();
        Ok(parse_images(&text))
    }

    /// The digests of every blob in the content store.
    pub fn content_digests(&self) -> Result<HashSet<Digest>, ContainerdError> {
        let text = String::from_utf8_lossy(&self.output("content ls", &["content", "ls", "-q"])?)
            .into_owned();
        Ok(text
            .lines()
            .filter_map(|line| line.trim().parse().ok())
            .collect())
    }

    /// A small blob (manifest, index, config), checked against its digest.
    pub fn small_blob(&self, digest: &Digest) -> Result<Vec<u8>, ContainerdError> {
        let mut child = self.blob_stream(digest)?;
        let mut bytes = Vec::new();
        let read = child
            .stdout
            .take()
            .expect("stdout is piped")
            .take(SMALL_BLOB_LIMIT + 1)
            .read_to_end(&mut bytes);
        let status = child.wait();
        read.map_err(|e| self.failed("content get", e.to_string()))?;
        let status = status.map_err(|e| self.failed("content get", e.to_string()))?;
        if !status.success() {
            return Err(self.failed(
                "content get",
                format!("{digest} could not be read ({status})"),
            ));
        }
        let content_error = |reason: &str| ContainerdError::Content {
            digest: digest.clone(),
            reason: reason.to_owned(),
        };
        if bytes.len() as u64 > SMALL_BLOB_LIMIT {
            return Err(content_error("larger than any manifest or config"));
        }
        if &Digest::of(&bytes) != digest {
            return Err(content_error("its bytes do not hash to its digest"));
        }
        Ok(bytes)
    }

    /// `ctr content get DIGEST` running, its standard output piped.
    pub fn blob_stream(&self, digest: &Digest) -> Result<Child, ContainerdError> {
        self.command(["content", "get", digest.as_str()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| ContainerdError::NoCtr { source })
    }

    /// `ctr images import` of the archive `produce` writes. A failure of
    /// `produce` is returned as it is; ctr's as a [`ContainerdError`].
    pub fn import<E: From<ContainerdError>>(
        &self,
        snapshotter: Option<&str>,
        produce: impl FnOnce(&mut dyn Write) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut args = vec!["images", "import"];
        if self.needs_local_import()? {
            args.push("--local");
        }
        if let Some(snapshotter) = snapshotter {
            args.extend(["--snapshotter", snapshotter]);
        }
        args.push("-");
        let mut child = self
            .command(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| ContainerdError::NoCtr { source })?;
        // Read aside, so that ctr never blocks on a full error pipe while we write.
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let errors = std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = stderr.read_to_end(&mut text);
            text
        });
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let produced = produce(&mut stdin);
        drop(stdin);
        let status = child.wait();
        let errors = errors.join().unwrap_or_default();
        let status = status.map_err(|e| self.failed("images import", e.to_string()))?;
        if !status.success() {
            // ctr's own complaint says more than the broken pipe it caused.
            return Err(self.failed("images import", reason(&errors, status)).into());
        }
        produced
    }

    /// Points `name` at the image `source` names.
    pub fn tag(&self, source: &str, name: &str) -> Result<(), ContainerdError> {
        self.output("images tag", &["images", "tag", "--force", source, name])
            .map(drop)
    }

    /// Sets `key=value` on the image record `name`.
    pub fn label(&self, name: &str, key: &str, value: &str) -> Result<(), ContainerdError> {
        self.output(
            "images label",
            &["images", "label", name, &format!("{key}={value}")],
        )
        .map(drop)
    }
}

/// The last lines of ctr's error output, or its status when it said nothing.
fn reason(stderr: &[u8], status: std::process::ExitStatus) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return format!("it exited with {status}");
    }
    let last = &lines[lines.len().saturating_sub(3)..];
    crate::display::escape(&last.join(" / ")).into_owned()
}

/// The `root` export of the `io.containerd.content.v1` plugin in `ctr
/// plugins ls --detailed`: blocks that each start with `Type:`, their
/// exports one `key value` line each.
fn parse_content_root(text: &str) -> Option<PathBuf> {
    let mut in_content = false;
    for line in text.lines().map(str::trim) {
        if let Some(kind) = line.strip_prefix("Type:") {
            in_content = kind.trim() == "io.containerd.content.v1";
        } else if in_content && let Some(("root", path)) = line.split_once(char::is_whitespace) {
            let path = PathBuf::from(path.trim());
            return path.is_absolute().then_some(path);
        }
    }
    None
}

/// `ctr images ls`: a header, then per image its name, type, target
/// digest, size (two words), platforms and labels (comma-separated, `-` for
/// none); names, types and digests hold no spaces.
fn parse_images(text: &str) -> Vec<Listed> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let target = fields.get(2)?.parse().ok()?;
            let labels = match fields.last() {
                Some(&"-") | None => Vec::new(),
                Some(last) => last
                    .split(',')
                    .filter(|l| l.contains('='))
                    .map(str::to_owned)
                    .collect(),
            };
            Some(Listed {
                name: fields[0].to_owned(),
                target,
                labels,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_content_root_is_the_content_plugins_root_export() {
        let text = "Type:             io.containerd.snapshotter.v1\n\
ID:               overlayfs\n\
Exports:         \n\
                  root      /var/lib/containerd/io.containerd.snapshotter.v1.overlayfs\n\
                               \n\
Type:             io.containerd.content.v1\n\
ID:               content\n\
Exports:         \n\
                  root      /data/docker/containerd/daemon/io.containerd.content.v1.content\n\
                               \n\
Type:             io.containerd.metadata.v1\n\
ID:               bolt\n";
        assert_eq!(
            parse_content_root(text),
            Some(PathBuf::from(
                "/data/docker/containerd/daemon/io.containerd.content.v1.content"
            ))
        );
        assert_eq!(
            parse_content_root("Type: io.containerd.content.v1\nID: content\n"),
            None
        );
        assert_eq!(
            parse_content_root("Type: io.containerd.content.v1\n  root  relative/dir\n"),
            None
        );
    }

    #[test]
    fn image_lists_of_both_versions_parse() {
        let text = "REF                        TYPE                                       DIGEST                                                                  SIZE    PLATFORMS   LABELS \n\
docker.io/fixture/web:1    application/vnd.oci.image.manifest.v1+json sha256:ff5d4cf4b478af740b5f4399a01b77e988c44b29e6c9aa357fbb7d03cfec1374 1.9 MiB linux/amd64 io.cri-containerd.image=managed,io.cri-containerd.pinned=pinned \n\
docker.io/fixture/worker:1 application/vnd.oci.image.manifest.v1+json sha256:373ad098a8e725a93b9e10114d4ee6b5a44c39c161e68818123bfac1102db606 1.9 MiB linux/amd64 -      \n";
        let listed = parse_images(text);
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].name, "docker.io/fixture/web:1");
        assert_eq!(
            listed[0].target.as_str(),
            "sha256:ff5d4cf4b478af740b5f4399a01b77e988c44b29e6c9aa357fbb7d03cfec1374"
        );
        assert_eq!(
            listed[0].labels,
            [
                "io.cri-containerd.image=managed",
                "io.cri-containerd.pinned=pinned"
            ]
        );
        assert!(listed[1].labels.is_empty());
    }
}
