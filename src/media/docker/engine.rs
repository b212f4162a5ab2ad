//! The Docker Engine API, reduced to the calls airgap makes. Callers are
//! synchronous (sources and sinks run on blocking threads); each call bridges
//! into the tokio runtime the binary started.

use std::io::{self, Read, Write};
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{ImportImageOptionsBuilder, TagImageOptionsBuilder};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use crate::digest::Digest;

/// Host used when neither `--host` nor `DOCKER_HOST` says otherwise.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Saves and loads of many gigabytes outlast bollard's two-minute default.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// Everything else is a small request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Why the engine could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// No engine answered at the address.
    #[error("cannot reach the container engine at {host}: {cause}")]
    Unreachable {
        /// The address tried.
        host: String,
        /// Why, in the words of the innermost cause only: the layers of the
        /// HTTP client above it say nothing an operator can act on.
        cause: String,
    },
    /// An API call failed.
    #[error("the engine refused to {action}")]
    Api {
        /// What airgap asked for.
        action: String,
        /// The engine's answer.
        #[source]
        source: bollard::errors::Error,
    },
    /// `docker load` reported an error inside its (successful) response stream.
    #[error("the engine failed to load the images: {message}")]
    LoadFailed {
        /// The engine's error message.
        message: String,
    },
    /// A pull reported an error inside its response stream.
    #[error("the engine could not pull {reference}: {message}")]
    PullFailed {
        /// What was pulled.
        reference: String,
        /// The engine's error message.
        message: String,
    },
    /// The engine returned something airgap cannot use.
    #[error("the engine returned an unusable answer: {reason}")]
    Unexpected {
        /// What was wrong.
        reason: String,
    },
}

impl EngineError {
    fn unreachable(host: &str, error: &bollard::errors::Error) -> Self {
        Self::Unreachable {
            host: host.to_owned(),
            cause: innermost_cause(error),
        }
    }
}

/// The last error of `error`'s chain, which names what actually failed
/// (`Connection refused (os error 111)`, `Socket not found: PATH`).
fn innermost_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// What an engine says about one image.
#[derive(Clone, Debug)]
pub struct EngineImage {
    /// The image ID: the config digest on graph drivers, the manifest (or
    /// index) digest on containerd image stores.
    pub id: Digest,
    /// RootFS diff IDs, bottom first.
    pub diff_ids: Vec<Digest>,
    /// Tags the engine lists for it.
    pub repo_tags: Vec<String>,
}

/// How an engine stores images, which decides what it accepts on load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageStore {
    /// Docker's graph drivers (overlay2…): image ID = config digest; loads an
    /// archive whose layer files it already holds are left out.
    Graph,
    /// Docker's containerd image store: image ID = manifest digest; a left-out
    /// layer must be in its content store under the same digest.
    Containerd,
    /// Podman: image ID = config digest; every layer file must be in the archive.
    Podman,
}

impl ImageStore {
    /// True when the store loads an archive that leaves out layers it holds.
    pub fn accepts_absent_layers(self) -> bool {
        self == Self::Graph
    }
}

/// Name, version and identity of an engine.
#[derive(Clone, Debug)]
pub struct EngineInfo {
    /// `Docker Engine 20.10.24`, `Podman Engine 4.3.1`, …
    pub product: String,
    /// The negotiated API version.
    pub api_version: String,
    /// A stable identity of the engine's image store: the engine's ID and
    /// its data root where it reports an ID, else its host name and data root.
    pub id: String,
    /// The identity airgap keyed an engine's records by before it added the
    /// data root to the ID, where that differs: Docker 20.10 takes its ID
    /// from `/etc/docker/key.json`, so every dockerd on a machine reports
    /// the same one.
    pub former_id: Option<String>,
    /// How it stores images.
    pub store: ImageStore,
    /// Where it keeps its data, if it says and runs on this machine (reached
    /// through a unix socket), so its free space can be checked.
    pub local_data_root: Option<std::path::PathBuf>,
    /// The platform its containers run on, where it says.
    pub platform: Option<crate::media::platform::WantedPlatform>,
    /// The containerd whose content store holds its images, on the
    /// containerd image store where the engine names it (API 1.46 and
    /// later) and runs on this machine.
    pub containerd: Option<crate::media::containerd::ContainerdAddress>,
    /// The graph driver (`overlay2`…) keeping its images, on Docker's graph
    /// drivers where it runs on this machine.
    pub graph_driver: Option<String>,
}

/// A connection to one engine.
#[derive(Clone)]
pub struct Engine {
    host: String,
    client: Docker,
    transfer_client: Docker,
    runtime: Handle,
    /// Asked once: Podman takes a third of a second to answer it, and a
    /// pack or unpack needs it several times.
    info: std::sync::Arc<std::sync::OnceLock<EngineInfo>>,
}

impl Engine {
    /// Connects to `host` (or `DOCKER_HOST`, or the default socket) and
    /// negotiates the API version. Must be called from a blocking thread.
    pub fn connect(host: Option<&str>, runtime: Handle) -> Result<Self, EngineError> {
        let host = match host {
            Some(host) => host.to_owned(),
            None => std::env::var("DOCKER_HOST")
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| DEFAULT_HOST.to_owned()),
        };
        let unreachable = |source| EngineError::unreachable(&host, &source);
        let client = Docker::connect_with_host(&host).map_err(unreachable)?;
        let client = runtime
            .block_on(client.negotiate_version())
            .map_err(unreachable)?;
        let client = client.with_timeout(REQUEST_TIMEOUT);
        let transfer_client = client.clone().with_timeout(TRANSFER_TIMEOUT);
        Ok(Self {
            host,
            client,
            transfer_client,
            runtime,
            info: Default::default(),
        })
    }

    /// The address this engine was reached at.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Product name, API version and identity.
    pub fn info(&self) -> Result<EngineInfo, EngineError> {
        if let Some(info) = self.info.get() {
            return Ok(info.clone());
        }
        let info = self.ask_info()?;
        Ok(self.info.get_or_init(|| info).clone())
    }

    fn ask_info(&self) -> Result<EngineInfo, EngineError> {
        let version = self
            .runtime
            .block_on(self.client.version())
            .map_err(|source| self.api_error("report its version", source))?;
        // Docker's own builds name the platform ("Docker Engine - Community");
        // Debian's leave it empty and Podman puts its OS there, so fall back
        // to the first component ("Engine", "Podman Engine").
        let runs_on = match (&version.os, &version.arch) {
            (Some(os), Some(arch)) => {
                crate::media::platform::WantedPlatform::parse(&format!("{os}/{arch}")).ok()
            }
            _ => None,
        };
        let platform = version
            .platform
            .map(|p| p.name)
            .filter(|n| !n.is_empty() && !n.starts_with("linux/"));
        let component = version
            .components
            .iter()
            .flatten()
            .next()
            .map(|c| c.name.clone());
        let product = match platform.or(component).as_deref() {
            None | Some("") | Some("Engine") => "Docker Engine".to_owned(),
            Some(name) => name.to_owned(),
        };
        let product = match version.version {
            Some(v) if !product.contains(&v) => format!("{product} {v}"),
            _ => product,
        };
        let system = self
            .runtime
            .block_on(self.client.info())
            .map_err(|source| self.api_error("report its identity", source))?;
        let containerd = system
            .driver_status
            .iter()
            .flatten()
            .any(|pair| pair.iter().any(|v| v.contains("containerd.snapshotter")));
        let store = if product.contains("Podman") {
            ImageStore::Podman
        } else if containerd {
            ImageStore::Containerd
        } else {
            ImageStore::Graph
        };
        // Paths the engine reports mean something here only where it runs
        // here (reached through a unix socket).
        let on_this_machine = self.host.starts_with("unix://");
        let local_data_root = system
            .docker_root_dir
            .clone()
            .filter(|dir| !dir.is_empty() && on_this_machine)
            .map(std::path::PathBuf::from)
            .filter(|dir| dir.is_dir());
        let content_store = system
            .containerd
            .as_ref()
            .filter(|_| store == ImageStore::Containerd && on_this_machine)
            .and_then(|c| {
                Some(crate::media::containerd::ContainerdAddress {
                    socket: Some(c.address.clone().filter(|a| a.starts_with('/'))?.into()),
                    namespace: c
                        .namespaces
                        .as_ref()
                        .and_then(|n| n.containers.clone())
                        .unwrap_or_else(|| "moby".to_owned()),
                    snapshotter: None,
                })
            });
        let graph_driver = system
            .driver
            .clone()
            .filter(|driver| store == ImageStore::Graph && on_this_machine && !driver.is_empty());
        let root = system.docker_root_dir.unwrap_or_default();
        let (id, former_id) = match system.id.filter(|id| !id.is_empty()) {
            Some(id) if !root.is_empty() => (format!("{id} {root}"), Some(id)),
            Some(id) => (id, None),
            None => (format!("{}:{root}", system.name.unwrap_or_default()), None),
        };
        Ok(EngineInfo {
            product,
            api_version: format!("{}", self.client.client_version()),
            id,
            former_id,
            store,
            local_data_root,
            platform: runs_on,
            containerd: content_store,
            graph_driver,
        })
    }

    /// Looks an image up by reference or ID; `None` if the engine has no such image.
    pub fn inspect(&self, reference: &str) -> Result<Option<EngineImage>, EngineError> {
        let inspected = self.runtime.block_on(self.client.inspect_image(reference));
        self.engine_image(reference, inspected)
    }

    /// [`Self::inspect`] for each reference, asked all at once: one round
    /// trip per image, one after another, is a noticeable part of a pack.
    pub fn inspect_many(
        &self,
        references: &[&str],
    ) -> Result<Vec<Option<EngineImage>>, EngineError> {
        let asked = references.iter().map(|r| self.client.inspect_image(r));
        let answers = self.runtime.block_on(futures_util::future::join_all(asked));
        references
            .iter()
            .zip(answers)
            .map(|(reference, inspected)| self.engine_image(reference, inspected))
            .collect()
    }

    fn engine_image(
        &self,
        reference: &str,
        inspected: Result<bollard::models::ImageInspect, bollard::errors::Error>,
    ) -> Result<Option<EngineImage>, EngineError> {
        let inspected = match inspected {
            Ok(inspected) => inspected,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(None),
            Err(source) => return Err(self.api_error(&format!("inspect {reference}"), source)),
        };
        let unexpected = |reason: String| EngineError::Unexpected { reason };
        let id = inspected.id.unwrap_or_default();
        let id = id
            .parse()
            .map_err(|_| unexpected(format!("image {reference} has ID {id:?}")))?;
        let diff_ids = inspected
            .root_fs
            .and_then(|fs| fs.layers)
            .unwrap_or_default()
            .iter()
            .map(|l| l.parse())
            .collect::<Result<_, _>>()
            .map_err(|_| unexpected(format!("image {reference} lists a malformed layer")))?;
        Ok(Some(EngineImage {
            id,
            diff_ids,
            repo_tags: inspected.repo_tags.unwrap_or_default(),
        }))
    }

    /// IDs of every tagged or top-level image.
    pub fn list_images(&self) -> Result<Vec<String>, EngineError> {
        let images = self
            .runtime
            .block_on(
                self.client
                    .list_images(None::<bollard::query_parameters::ListImagesOptions>),
            )
            .map_err(|source| self.api_error("list its images", source))?;
        Ok(images.into_iter().map(|i| i.id).collect())
    }

    /// The image's size as inspect reports it (on graph drivers, the sum
    /// of its layers' content); `None` where the engine does not say.
    pub fn image_size(&self, reference: &str) -> Result<Option<u64>, EngineError> {
        let inspected = self
            .runtime
            .block_on(self.client.inspect_image(reference))
            .map_err(|source| self.api_error(&format!("inspect {reference}"), source))?;
        Ok(inspected
            .size
            .and_then(|size| u64::try_from(size).ok())
            .filter(|&size| size > 0))
    }

    /// The tags the engine holds of `repository` (`docker images REPO`), as
    /// it spells them, sorted.
    pub fn repository_tags(&self, repository: &str) -> Result<Vec<String>, EngineError> {
        let filters = std::collections::HashMap::from([("reference", vec![repository])]);
        let options = bollard::query_parameters::ListImagesOptionsBuilder::new()
            .filters(&filters)
            .build();
        let images = self
            .runtime
            .block_on(self.client.list_images(Some(options)))
            .map_err(|source| {
                self.api_error(&format!("list the images of {repository}"), source)
            })?;
        let mut tags: Vec<String> = images
            .into_iter()
            .flat_map(|image| image.repo_tags)
            .filter(|tag| tag != "<none>:<none>")
            .collect();
        tags.sort();
        tags.dedup();
        Ok(tags)
    }

    /// Sizes of the image's layers, bottom first, from its history: the
    /// entries that added bytes. `None` where the history does not line up
    /// with the layers (a layer that added nothing cannot be told from a
    /// metadata-only step).
    pub fn layer_sizes(
        &self,
        reference: &str,
        layers: usize,
    ) -> Result<Option<Vec<u64>>, EngineError> {
        let history = self
            .runtime
            .block_on(self.client.image_history(reference))
            .map_err(|source| {
                self.api_error(&format!("show the history of {reference}"), source)
            })?;
        let sizes: Vec<u64> = history
            .iter()
            .rev()
            .filter(|h| h.size > 0)
            .map(|h| h.size as u64)
            .collect();
        Ok((sizes.len() == layers).then_some(sizes))
    }

    /// Starts `docker save` of `names` in one request; the archive streams
    /// through the returned reader, which must be read on a blocking thread.
    pub fn save(&self, names: &[String]) -> impl Read + Send + use<> {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        self.read_stream(self.transfer_client.export_images(&names))
    }

    /// Starts `docker export` of a container's filesystem; the tar streams
    /// through the returned reader, as [`Self::save`]'s archive does.
    pub fn export_container(&self, container: &str) -> impl Read + Send + use<> {
        self.read_stream(self.transfer_client.export_container(container))
    }

    fn read_stream(
        &self,
        mut stream: impl futures_util::Stream<Item = Result<Bytes, bollard::errors::Error>>
        + Send
        + Unpin
        + 'static,
    ) -> ChannelReader {
        // The engine's stream arrives in chunks of a few kilobytes; handing
        // each to the reading thread costs a cross-thread wake-up that, over
        // gigabytes, takes longer than the export. So they are gathered here
        // into large ones, a few at a time in flight.
        let (sender, receiver) = mpsc::channel::<io::Result<Bytes>>(4);
        self.runtime.spawn(async move {
            let mut gathered = bytes::BytesMut::with_capacity(CHUNK);
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(bytes) => {
                        gathered.extend_from_slice(&bytes);
                        if gathered.len() >= CHUNK {
                            let full = gathered.split().freeze();
                            // split() hands over the allocation; take a whole
                            // chunk's now rather than growing it piece by piece.
                            gathered.reserve(CHUNK);
                            if sender.send(Ok(full)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(error) => {
                        let _ = sender.send(Err(io::Error::other(error))).await;
                        return;
                    }
                }
            }
            if !gathered.is_empty() {
                let _ = sender.send(Ok(gathered.freeze())).await;
            }
        });
        ChannelReader {
            receiver,
            current: Bytes::new(),
        }
    }

    /// Runs `docker load` with an archive that `produce` writes. If `produce`
    /// fails, the upload is aborted (not ended), so the engine sees a broken
    /// transfer and registers nothing. Returns the engine's progress messages.
    pub fn load<E>(
        &self,
        produce: impl FnOnce(&mut dyn Write) -> Result<(), E>,
    ) -> Result<Vec<String>, LoadError<E>> {
        let (sender, receiver) = mpsc::channel::<io::Result<Bytes>>(16);
        let body = tokio_stream_from(receiver);
        let options = ImportImageOptionsBuilder::default().quiet(true).build();
        let client = self.transfer_client.clone();
        let upload = self.runtime.spawn(async move {
            let mut messages = Vec::new();
            let mut responses = client.import_image_stream(options, body, None);
            while let Some(response) = responses.next().await {
                match response {
                    Ok(info) => messages.extend(info.stream.or(info.status)),
                    Err(bollard::errors::Error::DockerStreamError { error }) => {
                        return Err(EngineError::LoadFailed {
                            message: error.trim().to_owned(),
                        });
                    }
                    Err(source) => {
                        return Err(EngineError::Api {
                            action: "load images".into(),
                            source,
                        });
                    }
                }
            }
            Ok(messages)
        });

        let mut writer = ChannelWriter::new(sender.clone());
        let produced = produce(&mut writer).map_err(LoadError::Produce);
        let produced = produced.and_then(|()| {
            writer
                .flush_chunk()
                .map_err(|_| LoadError::Engine(self.closed_early()))
        });
        if produced.is_err() {
            // An error item makes hyper abort the request instead of ending
            // it cleanly, so the engine cannot mistake a cut archive for a whole one.
            let _ = sender.blocking_send(Err(io::Error::other("airgap aborted the transfer")));
        }
        let engine_closed = writer.engine_closed;
        drop(writer);
        drop(sender);
        let loaded = match self.runtime.block_on(upload) {
            Ok(loaded) => loaded,
            Err(e) => Err(EngineError::Unexpected {
                reason: format!("the load task failed: {e}"),
            }),
        };
        match (produced, loaded) {
            // The engine stopped reading: its own error says why.
            (Err(_), Err(engine)) if engine_closed => Err(LoadError::Engine(engine)),
            (Err(produce), _) => Err(produce),
            (Ok(()), loaded) => loaded.map_err(LoadError::Engine),
        }
    }

    fn closed_early(&self) -> EngineError {
        EngineError::LoadFailed {
            message: format!("the engine at {} closed the transfer early", self.host),
        }
    }

    /// Pulls `reference` (fully qualified) from its registry into the engine.
    pub fn pull(&self, reference: &str) -> Result<(), EngineError> {
        let options = bollard::query_parameters::CreateImageOptionsBuilder::default()
            .from_image(reference)
            .build();
        let pull = async {
            let mut progress = self.transfer_client.create_image(Some(options), None, None);
            while let Some(message) = progress.next().await {
                match message {
                    Ok(_) => {}
                    Err(bollard::errors::Error::DockerStreamError { error }) => {
                        return Err(EngineError::PullFailed {
                            reference: reference.to_owned(),
                            message: error,
                        });
                    }
                    Err(source) => return Err(self.api_error(&format!("pull {reference}"), source)),
                }
            }
            Ok(())
        };
        self.runtime.block_on(pull)
    }

    /// Tags `image` (an ID or reference) as `repo:tag`.
    pub fn tag(&self, image: &str, repo: &str, tag: &str) -> Result<(), EngineError> {
        let options = TagImageOptionsBuilder::default()
            .repo(repo)
            .tag(tag)
            .build();
        self.runtime
            .block_on(self.client.tag_image(image, Some(options)))
            .map_err(|source| self.api_error(&format!("tag {image} as {repo}:{tag}"), source))
    }

    /// Inspects a container; `None` if the engine has no such container.
    pub fn inspect_container(
        &self,
        container: &str,
    ) -> Result<Option<bollard::models::ContainerInspectResponse>, EngineError> {
        match self
            .runtime
            .block_on(self.client.inspect_container(container, None))
        {
            Ok(inspected) => Ok(Some(inspected)),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(source) => Err(self.api_error(&format!("inspect container {container}"), source)),
        }
    }

    /// The engine's whole description of an image (its config, platform);
    /// `None` if it has no such image.
    pub fn image_details(
        &self,
        reference: &str,
    ) -> Result<Option<bollard::models::ImageInspect>, EngineError> {
        match self.runtime.block_on(self.client.inspect_image(reference)) {
            Ok(inspected) => Ok(Some(inspected)),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(source) => Err(self.api_error(&format!("inspect {reference}"), source)),
        }
    }

    /// Commits a container's changes as a new, untagged image, pausing a
    /// running container for the moment of the commit (never stopping it).
    /// The image keeps the container's own config. Returns the image ID.
    pub fn commit(&self, container: &str) -> Result<String, EngineError> {
        let options = bollard::query_parameters::CommitContainerOptionsBuilder::default()
            .container(container)
            .pause(true)
            .build();
        let committed = self
            .runtime
            .block_on(
                self.transfer_client
                    .commit_container(options, bollard::models::ContainerConfig::default()),
            )
            .map_err(|source| self.api_error(&format!("commit container {container}"), source))?;
        // Podman answers with the bare hex digits.
        Ok(match committed.id.contains(':') {
            true => committed.id,
            false => format!("sha256:{}", committed.id),
        })
    }

    /// Removes an image by ID (only that image: its parents stay).
    pub fn remove_image(&self, id: &str) -> Result<(), EngineError> {
        let options = bollard::query_parameters::RemoveImageOptionsBuilder::default()
            .noprune(true)
            .build();
        self.runtime
            .block_on(self.client.remove_image(id, Some(options), None))
            .map(|_| ())
            .map_err(|source| self.api_error(&format!("remove image {id}"), source))
    }

    fn api_error(&self, action: &str, source: bollard::errors::Error) -> EngineError {
        match source {
            bollard::errors::Error::HyperResponseError { .. }
            | bollard::errors::Error::IOError { .. } => {
                EngineError::unreachable(&self.host, &source)
            }
            source => EngineError::Api {
                action: action.to_owned(),
                source,
            },
        }
    }
}

/// A load that failed on either side.
#[derive(Debug)]
pub enum LoadError<E> {
    /// Producing the archive failed (the engine got an aborted transfer).
    Produce(E),
    /// The engine failed.
    Engine(EngineError),
}

/// The reading end of [`Engine::save`]: blocks the calling (non-runtime)
/// thread until the next gathered chunk arrives.
struct ChannelReader {
    receiver: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.receiver.blocking_recv() {
                Some(chunk) => self.current = chunk?,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

fn tokio_stream_from(
    mut receiver: mpsc::Receiver<io::Result<Bytes>>,
) -> impl futures_util::Stream<Item = io::Result<Bytes>> + Send + 'static {
    futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

/// Collects writes into chunks and hands them to the upload task; the bounded
/// channel keeps memory at a few megabytes whatever the archive's size.
struct ChannelWriter {
    sender: mpsc::Sender<io::Result<Bytes>>,
    chunk: Vec<u8>,
    engine_closed: bool,
}

const CHUNK: usize = 256 << 10;

impl ChannelWriter {
    fn new(sender: mpsc::Sender<io::Result<Bytes>>) -> Self {
        Self {
            sender,
            chunk: Vec::with_capacity(CHUNK),
            engine_closed: false,
        }
    }

    fn flush_chunk(&mut self) -> io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK));
        self.sender
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| {
                self.engine_closed = true;
                io::Error::new(io::ErrorKind::BrokenPipe, "the engine closed the transfer")
            })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(CHUNK - self.chunk.len());
        self.chunk.extend_from_slice(&buf[..n]);
        if self.chunk.len() == CHUNK {
            self.flush_chunk()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_engine_is_told_by_the_innermost_cause_alone() {
        #[derive(Debug, thiserror::Error)]
        #[error("Error in the hyper legacy client: client error (Connect)")]
        struct Client(#[source] io::Error);
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        let expected = refused.to_string();
        let error = EngineError::Unreachable {
            host: "tcp://127.0.0.1:1".into(),
            cause: innermost_cause(&Client(refused)),
        };
        assert_eq!(
            error.to_string(),
            format!("cannot reach the container engine at tcp://127.0.0.1:1: {expected}")
        );
        assert!(std::error::Error::source(&error).is_none());
    }
}
