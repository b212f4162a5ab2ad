//! Where images come from. Every source yields the same thing: image records
//! (config bytes, layer digests) and the layer blobs themselves, pushed into a
//! [`LayerSink`] as the source's medium delivers them.

use std::path::PathBuf;

use crate::digest::Digest;
use crate::image::{ImageRecord, ImageRef};
use crate::media::docker::engine::EngineError;
use crate::progress::Progress;
use crate::store::{StagedLayer, StagedLayers};

/// Receives staged layers. Sources hand layers over as soon as they are
/// staged, so a sink that compresses on another thread overlaps the export.
/// `Send`, so that a source may read several exports into it at once.
pub trait LayerSink: Send {
    /// A directory on the output's filesystem where sources may stage blobs.
    fn staging_dir(&self) -> &std::path::Path;
    /// True when a layer with this digest was already handed over.
    fn has_layer(&self, digest: &Digest) -> bool;
    /// Takes a staged layer (and the duty to remove its file).
    fn put_layer(&mut self, layer: StagedLayer) -> Result<(), SourceError>;
    /// True when the bundle will not carry this layer (the receiving site
    /// holds it): a source that knows its size need not read it.
    fn is_left_out(&self, _digest: &Digest) -> bool {
        false
    }
    /// True when a layer of `size` bytes, whose digest is not known before
    /// it is read, is most likely one the sink needs no bytes of (one the
    /// bundle leaves out): the source may then only hash it, and must
    /// export again, staging, if the hash says otherwise
    /// ([`SourceError::SkimmedNeeded`]).
    fn skims(&self, _size: u64) -> bool {
        false
    }
    /// True when the sink takes this layer as it streams past
    /// ([`LayerSink::stream_layer`]) instead of staged.
    fn takes_stream(&self, _digest: &Digest) -> bool {
        false
    }
    /// Takes a layer whose digest the archive named before its bytes (OCI
    /// layouts name blobs by digest) while it streams past, so nothing waits
    /// for the whole layer. `content` yields exactly `size` bytes; the source
    /// checks their digest and fails the export if it differs. A sink that
    /// does not take streams ([`LayerSink::takes_stream`] false) gets them
    /// staged like any other layer.
    fn stream_layer(
        &mut self,
        digest: &Digest,
        size: u64,
        content: &mut dyn std::io::Read,
    ) -> Result<(), SourceError> {
        let path = self
            .staging_dir()
            .join(format!("streamed-{}", digest.hex()));
        let staged = crate::store::stage::stage(std::io::Read::take(content, size), &path)
            .map_err(|source| SourceError::Stage {
                path: path.clone(),
                source,
            })?;
        self.put_layer(StagedLayer {
            path,
            digest: staged.digest,
            size: staged.size,
        })
    }
}

/// One [`LayerSink`] that several exports, read on threads of their own,
/// write into: each takes a [`SharedSink::handle`], and each call holds
/// the sink for its length (a streamed layer's whole stream).
pub struct SharedSink<'a> {
    sink: std::sync::Mutex<&'a mut dyn LayerSink>,
    staging: PathBuf,
}

impl<'a> SharedSink<'a> {
    /// Shares `sink`.
    pub fn new(sink: &'a mut dyn LayerSink) -> Self {
        let staging = sink.staging_dir().to_owned();
        Self {
            sink: std::sync::Mutex::new(sink),
            staging,
        }
    }

    /// A sink for one thread.
    pub fn handle(&self) -> SharedSinkHandle<'_, 'a> {
        SharedSinkHandle { shared: self }
    }

    fn with<T>(&self, call: impl FnOnce(&mut dyn LayerSink) -> T) -> T {
        // A reader that panicked holding the sink fails its own export; the
        // sink itself is left as consistent as after any failed call.
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        call(&mut **sink)
    }
}

/// One thread's way into a [`SharedSink`].
pub struct SharedSinkHandle<'s, 'a> {
    shared: &'s SharedSink<'a>,
}

impl LayerSink for SharedSinkHandle<'_, '_> {
    fn staging_dir(&self) -> &std::path::Path {
        &self.shared.staging
    }
    fn has_layer(&self, digest: &Digest) -> bool {
        self.shared.with(|sink| sink.has_layer(digest))
    }
    fn put_layer(&mut self, layer: StagedLayer) -> Result<(), SourceError> {
        self.shared.with(|sink| sink.put_layer(layer))
    }
    fn is_left_out(&self, digest: &Digest) -> bool {
        self.shared.with(|sink| sink.is_left_out(digest))
    }
    fn skims(&self, size: u64) -> bool {
        self.shared.with(|sink| sink.skims(size))
    }
    fn takes_stream(&self, digest: &Digest) -> bool {
        self.shared.with(|sink| sink.takes_stream(digest))
    }
    fn stream_layer(
        &mut self,
        digest: &Digest,
        size: u64,
        content: &mut dyn std::io::Read,
    ) -> Result<(), SourceError> {
        self.shared
            .with(|sink| sink.stream_layer(digest, size, content))
    }
}

/// One image a source found for what the user asked, with every
/// reference that names it.
#[derive(Clone, Debug)]
pub struct ResolvedImage {
    /// The references, as the user gave them.
    pub refs: Vec<ImageRef>,
    /// The source's own identity of the image (an engine's image ID, a
    /// layout's manifest digest); `None` where only a name finds it.
    pub id: Option<Digest>,
    /// Its layers' diff IDs, bottom first, where the source knows them
    /// before exporting (a delta needs them to decide what to leave out).
    pub layers: Option<Vec<Digest>>,
}

impl ResolvedImage {
    /// An image known by its ID and layers alone (one the engine holds
    /// that no reference asked for: a layer to patch against or rebuild).
    pub fn unnamed(id: Option<Digest>, layers: Vec<Digest>) -> Self {
        Self {
            refs: Vec::new(),
            id,
            layers: Some(layers),
        }
    }
}

/// Where images come from. A source first resolves what the user asked for
/// (naming everything missing in one error), then exports exactly those
/// images into the bundle's blob store.
pub trait Source {
    /// Describes the source for the bundle manifest.
    fn describe(&self) -> crate::bundle::SourceInfo;

    /// Finds every reference: one [`ResolvedImage`] per distinct image, or
    /// one [`SourceError::Missing`] naming every reference not found.
    fn resolve(&self, refs: &[ImageRef]) -> Result<Vec<ResolvedImage>, SourceError>;

    /// Streams the images' layers into `layers` and returns one record per
    /// distinct image, with every reference that names it.
    fn export(
        &self,
        images: &[ResolvedImage],
        layers: &mut dyn LayerSink,
        progress: &dyn Progress,
    ) -> Result<Vec<ImageRecord>, SourceError>;

    /// The sizes of `image`'s layers, bottom first, where the source can
    /// tell them without exporting (for `airgap plan`); `None` otherwise.
    fn layer_sizes(&self, _image: &ResolvedImage) -> Result<Option<Vec<u64>>, SourceError> {
        Ok(None)
    }

    /// The size of `image` as a whole, for `airgap plan` where
    /// [`Source::layer_sizes`] cannot tell each layer's (an engine whose
    /// history does not line up with the layers); `None` otherwise.
    fn image_size(&self, _image: &ResolvedImage) -> Result<Option<u64>, SourceError> {
        Ok(None)
    }

    /// Stages layers with these digests that the source holds beyond what
    /// it exports (in any of its images), for patches to be made against;
    /// others are skipped. A source holding nothing else stages nothing.
    fn supply_layers(
        &self,
        _digests: &std::collections::HashSet<Digest>,
        _progress: &dyn Progress,
    ) -> Result<StagedLayers, SourceError> {
        Ok(StagedLayers::none()?)
    }

    /// Every image the source holds, for a catalogue (`airgap plan
    /// --archive`); `None` where it cannot list them (an engine).
    fn catalogue(&self) -> Result<Option<Vec<HeldImage>>, SourceError> {
        Ok(None)
    }

    /// Every image the source holds on the chosen platforms, as
    /// [`Source::resolve`] would find them, for a pack naming no images;
    /// `None` where the source cannot list them.
    fn resolve_all(&self) -> Result<Option<Vec<ResolvedImage>>, SourceError> {
        Ok(None)
    }

    /// The config digest of each of `images` whose ID is another digest
    /// (Docker's containerd image store names an image by its manifest),
    /// where the source can read it without an export; the others are
    /// left out, and an image whose config is unknown is exported.
    fn config_digests(
        &self,
        _images: &[ResolvedImage],
    ) -> std::collections::HashMap<Digest, Digest> {
        std::collections::HashMap::new()
    }

    /// True when the images come from a running engine, whose export is
    /// costly enough that the layer cache (`crate::cache`) stands in for it
    /// where it holds an image whole.
    fn reads_from_engine(&self) -> bool {
        false
    }

    /// Where the images exported came from, for a source that pulls them
    /// from a registry; empty otherwise.
    fn origins(&self) -> Vec<crate::bundle::ImageOrigin> {
        Vec::new()
    }

    /// What resolving `refs` should tell the user beyond the images found
    /// (a short name taken as Podman's `localhost/NAME`), one line each.
    fn notes(&self, _refs: &[ImageRef]) -> Result<Vec<String>, SourceError> {
        Ok(Vec::new())
    }
}

/// One image a source holds, as a catalogue lists it.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldImage {
    /// Where it is (the archive's path), for messages.
    pub place: String,
    /// Its references as the source names them (unescaped).
    pub refs: Vec<String>,
    /// Its config digest: the image ID.
    pub id: Digest,
    /// Its platform.
    pub platform: crate::image::Platform,
    /// Its layers' sizes as the source stores them (compressed where the
    /// source compresses them), bottom first.
    pub layer_sizes: Vec<u64>,
}

impl HeldImage {
    /// The image as a name-not-found message lists it: its references, or
    /// its short ID without one, escaped.
    pub fn shown(&self) -> String {
        if self.refs.is_empty() {
            format!("untagged {}", self.id.short())
        } else {
            self.refs
                .iter()
                .map(|r| crate::display::escape(r).into_owned())
                .collect::<Vec<_>>()
                .join(" = ")
        }
    }
}

/// Why a source could not deliver.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// Some references name no image.
    #[error("{} not found: {}", if .refs.len() == 1 { "image" } else { "images" }, .refs.join(", "))]
    Missing {
        /// Every missing reference, as given.
        refs: Vec<String>,
    },
    /// Some references name no image of the archives (listed with them).
    #[error("{} not found in the archives: {}", if .refs.len() == 1 { "image" } else { "images" }, .refs.join(", "))]
    NotInArchive {
        /// Every missing reference, the last with what the archives hold.
        refs: Vec<String>,
    },
    /// An archive's image has no name to carry it by.
    #[error("image {id} in {} has no name, and an image without one does not load into a containerd image store; {hint}", crate::display::escape(.archive))]
    Unnamed {
        /// Its ID.
        id: Digest,
        /// The archive.
        archive: String,
        /// How to give it one.
        hint: String,
    },
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The export stream is not a `docker save` archive we understand.
    #[error("the image archive is malformed: {}", crate::display::escape(.reason))]
    Malformed {
        /// What was wrong.
        reason: String,
    },
    /// The export lacks a layer an image needs (moby issue 49473).
    #[error("the export of {image} lacks its layer {diff_id}; the engine's save is incomplete")]
    LayerMissing {
        /// The image.
        image: String,
        /// The missing layer's diff ID.
        diff_id: Digest,
    },
    /// A layer's content does not match the config's diff ID.
    #[error("layer {index} of {image} hashes to {actual}, but its config says {expected}")]
    LayerMismatch {
        /// The image.
        image: String,
        /// Index of the layer, bottom first.
        index: usize,
        /// The diff ID from the config.
        expected: Digest,
        /// What the content hashes to.
        actual: Digest,
    },
    /// The engine's image store, read in place (its containerd content
    /// store, its overlay2 store), holds something that is not what the
    /// image says, or something that cannot be read.
    #[error(
        "the engine's {store} {}: {}; the engine's copy of the image is damaged: remove it and load or pull it again",
        crate::display::escape(&.path.display().to_string()),
        crate::display::escape(.reason)
    )]
    StoreInPlace {
        /// Which store: "containerd content store", "overlay2 store".
        store: &'static str,
        /// Where it is.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Reading the export stream failed.
    #[error("reading the image archive")]
    Read(#[source] std::io::Error),
    /// Staging a blob on disk failed.
    #[error("staging a blob in {path}")]
    Stage {
        /// The staging path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Storing a layer into the bundle failed.
    #[error(transparent)]
    Store(#[from] crate::bundle::BundleError),
    /// The source cannot tell image layers before exporting them.
    #[error("this source cannot list image layers ahead of the export, which a delta pack needs")]
    NoLayerLists,
    /// A staging directory could not be made.
    #[error(transparent)]
    Staging(#[from] crate::store::StagingError),
    /// A file named as an image archive is something else (the error says
    /// what, and which command takes it).
    #[error("{0}")]
    NotAnImageArchive(Box<crate::media::recognise::Recognised>),
    /// A layer that was only hashed, its size being that of one the bundle
    /// needs no bytes of, turned out to be needed: the export is read again.
    #[error("layer {digest} of the export was needed after all; the export is read again")]
    SkimmedNeeded {
        /// The layer.
        digest: Digest,
    },
    /// The bundle writer stopped taking layers (its own error says why).
    #[error("the bundle writer stopped")]
    WriterStopped,
    /// An image made here would have nothing to run.
    #[error(
        "{image} could not start: it has no CMD or ENTRYPOINT (docker run would say \"No command specified\"); \
         give one with --change 'CMD [\"/bin/sh\"]' (or ENTRYPOINT); nothing was written"
    )]
    NoCommand {
        /// The image and where it came from.
        image: String,
    },
    /// A `--change` instruction does not parse.
    #[error(transparent)]
    Change(#[from] crate::image::change::ChangeError),
    /// A file named on the command line cannot be read.
    #[error("cannot read {}", crate::display::escape(&.path.display().to_string()))]
    Input {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A registry failed or lacks what was asked for.
    #[error(transparent)]
    Registry(#[from] crate::media::registry::RegistryError),
    /// Some containers named for a snapshot do not exist.
    #[error("{} not found: {}; `docker ps -a` lists them", if .containers.len() == 1 { "container" } else { "containers" }, .containers.join(", "))]
    ContainersMissing {
        /// Every missing container, as given.
        containers: Vec<String>,
    },
}

impl SourceError {
    /// References an archive lacks, the last followed by what the archive
    /// (or all of them) holds instead: `holds` is "the archive F holds".
    pub fn not_held(mut refs: Vec<String>, holds: &str, held: &[String]) -> Self {
        if let Some(last) = refs.last_mut() {
            let held = if held.is_empty() {
                "no image".to_owned()
            } else {
                held.join(", ")
            };
            *last = format!("{last} ({holds} {held})");
        }
        Self::NotInArchive { refs }
    }

    /// The kind of this failure (see [`crate::Error::kind`]); the bundle
    /// being written is never the one at fault.
    pub fn kind(&self) -> crate::error::kind::ErrorKind {
        use crate::error::kind::ErrorKind;
        match self {
            Self::Missing { .. } | Self::NotInArchive { .. } | Self::ContainersMissing { .. } => {
                ErrorKind::ImagesMissing
            }
            Self::NotAnImageArchive(_) | Self::NoCommand { .. } | Self::Change(_) => {
                ErrorKind::Usage
            }
            Self::Engine(_) => ErrorKind::Engine,
            Self::Registry(error) => error.kind(),
            _ => ErrorKind::Failure,
        }
    }
}
