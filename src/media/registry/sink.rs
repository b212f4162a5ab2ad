//! The registry as a [`Sink`]: handed [`FinishedImages`] (which only a
//! verified bundle makes), it pushes each layer as the bundle is read
//! (compressed, checked against its digest, then HEAD / mount / resumable
//! upload into every repository that needs it), then per image its config,
//! its manifest and its tags. One image's failure does not stop the others;
//! the end names every image that failed and why.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, mpsc};

use oci_spec::distribution::Reference;
use reqwest::StatusCode;

use crate::bundle::{BundleError, BundleImage};
use crate::delta::finish::FinishedImages;
use crate::digest::Digest;
use crate::image::{BlobRef, ImageRef};
use crate::media::sink::{Holdings, LoadedImage, Sink, SinkError};
use crate::progress::Progress;
use crate::store::StagedLayers;

use super::access::{AccessOptions, Client, Retry};
use super::compress::{CompressError, Compressed, PushCompression, compress};
use super::index::{INDEX_MEDIA_TYPE, IndexGroup, PushedManifest, index_bytes, index_groups};
use super::interrupt::Held;
use super::state::UploadState;
use super::upload::{Blobs, Content, Placed, push_scope};
use super::{RegistryAddress, RegistryError};

/// Configs and manifests are held in memory; larger ones are no config.
const SMALL_LIMIT: u64 = 16 << 20;
const UNCOMPRESSED_LAYER_TYPES: [&str; 2] = [
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.docker.image.rootfs.diff.tar",
];

/// Pushes images into a registry.
pub struct RegistrySink {
    address: RegistryAddress,
    client: Client,
    compression: PushCompression,
    state: UploadState,
    staging: PathBuf,
    /// By the bundle's manifest digest: what was pushed for that image.
    pushed: Mutex<HashMap<Digest, Pushed>>,
    /// By repository and tag: the index pushed there over several platforms.
    indexed: Mutex<HashMap<(String, String), Digest>>,
    notes: Mutex<Vec<String>>,
}

#[derive(Clone)]
struct Pushed {
    manifest: Digest,
    media_type: String,
    size: u64,
    sent_anything: bool,
}

/// What the layer uploads leave behind.
struct Uploaded {
    /// By compressed digest: the repositories known to hold it.
    holders: HashMap<Digest, Vec<String>>,
    /// By layer and repository: a repository that refuses a layer fails
    /// only the images going there.
    layer_failures: HashMap<(Digest, String), String>,
}

/// One image's destination: a repository and a tag there.
struct Destination {
    repository: String,
    tag: String,
}

impl RegistrySink {
    /// A sink pushing to `address`, reached as `access` says, layers
    /// compressed as `compression` says; upload state lives under `state_dir`.
    pub fn new(
        address: RegistryAddress,
        access: &AccessOptions,
        compression: PushCompression,
        state_dir: &Path,
    ) -> Result<Self, RegistryError> {
        let client = Client::connect(&address.host, access)?;
        let state = UploadState::open(state_dir, &address.host);
        Ok(Self {
            address,
            client,
            compression,
            state,
            staging: std::env::temp_dir(),
            pushed: Mutex::new(HashMap::new()),
            indexed: Mutex::new(HashMap::new()),
            notes: Mutex::new(Vec::new()),
        })
    }

    /// What happened that a person would want to know: uploads resumed or
    /// started again.
    pub fn notes(&self) -> Vec<String> {
        self.notes.lock().expect("notes lock").clone()
    }

    fn failed(&self, error: RegistryError) -> SinkError {
        SinkError::Registry(error)
    }

    /// Where `image` goes: each taggable reference as a repository and tag
    /// on this registry; a reference naming another registry is refused.
    fn destinations(&self, image: &BundleImage) -> Result<Vec<Destination>, RegistryError> {
        image
            .refs
            .iter()
            .filter(|r| r.is_taggable())
            .map(|r| self.destination(r))
            .collect()
    }

    fn destination(&self, reference: &ImageRef) -> Result<Destination, RegistryError> {
        let other = || RegistryError::OtherRegistry {
            reference: crate::display::escape(&reference.given).into_owned(),
            registry: self.address.host.clone(),
        };
        let parsed: Reference = reference.name.parse().map_err(|_| other())?;
        if parsed.registry() != self.address.host {
            return Err(other());
        }
        Ok(Destination {
            repository: parsed.repository().to_owned(),
            tag: parsed.tag().unwrap_or("latest").to_owned(),
        })
    }

    /// The manifest as pushed: airgap's own bytes when layers go as
    /// stored, else those bytes with each layer's digest, size and media
    /// type replaced by its compressed form (the config, so the diff IDs,
    /// unchanged). Either way the bytes are pushed as they are here.
    fn manifest_for(
        &self,
        written: &[u8],
        compressed: &HashMap<Digest, BlobRef>,
    ) -> Result<(Vec<u8>, String), RegistryError> {
        let malformed = |reason: &str| RegistryError::Io {
            what: "reading the bundle's manifest".into(),
            source: std::io::Error::other(reason.to_owned()),
        };
        let mut manifest: serde_json::Value =
            serde_json::from_slice(written).map_err(|_| malformed("not JSON"))?;
        let media_type = manifest
            .get("mediaType")
            .and_then(|m| m.as_str())
            .unwrap_or("application/vnd.oci.image.manifest.v1+json")
            .to_owned();
        if self.compression == PushCompression::None {
            return Ok((written.to_vec(), media_type));
        }
        let layers = manifest
            .get_mut("layers")
            .and_then(|l| l.as_array_mut())
            .ok_or_else(|| malformed("it lists no layers"))?;
        for layer in layers {
            let stored_type = layer
                .get("mediaType")
                .and_then(|m| m.as_str())
                .unwrap_or("");
            if !UNCOMPRESSED_LAYER_TYPES.contains(&stored_type) {
                continue;
            }
            let digest: Digest = layer
                .get("digest")
                .and_then(|d| d.as_str())
                .and_then(|d| d.parse().ok())
                .ok_or_else(|| malformed("a layer has no digest"))?;
            let pushed = compressed
                .get(&digest)
                .ok_or_else(|| malformed("a layer was not in the bundle"))?;
            layer["digest"] = serde_json::Value::String(pushed.digest.to_string());
            layer["size"] = serde_json::Value::from(pushed.size);
            layer["mediaType"] = serde_json::Value::String(self.compression.media_type().into());
        }
        let bytes = serde_json::to_vec(&manifest).expect("a JSON value serialises");
        Ok((bytes, media_type))
    }

    /// Puts a manifest under `reference` (a digest or a tag) unless it is
    /// there already; true when it was sent.
    fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
        digest: &Digest,
    ) -> Result<bool, RegistryError> {
        if self
            .manifest_digest(repository, reference, media_type)?
            .as_ref()
            == Some(digest)
        {
            return Ok(false);
        }
        let url = self
            .client
            .url(&format!("/v2/{repository}/manifests/{reference}"));
        let what = format!("PUT manifest {repository}:{reference}");
        let response = self
            .client
            .send(&what, &push_scope(repository), Retry::Yes, &|http| {
                http.put(url.clone())
                    .header(reqwest::header::CONTENT_TYPE, media_type)
                    .body(bytes.to_vec())
            })?;
        if response.status() != StatusCode::CREATED {
            return Err(self
                .client
                .refused(&what, response.status().as_u16(), response));
        }
        let stored = response
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|d| d.to_str().ok())
            .map(str::to_owned);
        match stored {
            Some(stored) if stored != digest.as_str() => Err(RegistryError::Refused {
                registry: self.client.host().to_owned(),
                what,
                status: 201,
                detail: format!(": it stored the manifest as {stored}, not {digest}"),
            }),
            _ => Ok(true),
        }
    }

    /// The digest the registry gives `repository:reference`, if it has it.
    fn manifest_digest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
    ) -> Result<Option<Digest>, RegistryError> {
        let url = self
            .client
            .url(&format!("/v2/{repository}/manifests/{reference}"));
        let what = format!("HEAD manifest {repository}:{reference}");
        let response = self
            .client
            .send(&what, &push_scope(repository), Retry::Yes, &|http| {
                http.head(url.clone())
                    .header(reqwest::header::ACCEPT, media_type)
            })?;
        match response.status() {
            StatusCode::OK => Ok(response
                .headers()
                .get("Docker-Content-Digest")
                .and_then(|d| d.to_str().ok())
                .and_then(|d| d.parse().ok())),
            StatusCode::NOT_FOUND => Ok(None),
            status => Err(self.client.refused(&what, status.as_u16(), response)),
        }
    }

    /// Pushes one image whose layers are placed: config, manifest by
    /// digest, then tags, in each repository it goes to.
    fn push_image(
        &self,
        blobs: &Blobs<'_>,
        image: &BundleImage,
        small: &HashMap<Digest, Vec<u8>>,
        compressed: &HashMap<Digest, BlobRef>,
        holders: &mut HashMap<Digest, Vec<String>>,
        through_index: &BTreeMap<(String, String), IndexGroup>,
    ) -> Result<Pushed, RegistryError> {
        let destinations = self.destinations(image)?;
        if destinations.is_empty() {
            return Err(RegistryError::Usage(
                "it has no tag to push it under; give it one with --tag".into(),
            ));
        }
        let missing = |what: &str| RegistryError::Io {
            what: format!("reading the bundle's {what}"),
            source: std::io::ErrorKind::NotFound.into(),
        };
        let config = small
            .get(&image.config.digest)
            .ok_or_else(|| missing("config"))?;
        let written = small
            .get(&image.manifest.digest)
            .ok_or_else(|| missing("manifest"))?;
        let (bytes, media_type) = self.manifest_for(written, compressed)?;
        let digest = Digest::of(&bytes);
        let mut sent_anything = false;
        let mut repositories: Vec<&str> = Vec::new();
        for destination in &destinations {
            if !repositories.contains(&destination.repository.as_str()) {
                repositories.push(&destination.repository);
            }
        }
        for repository in repositories {
            let known = holders.entry(image.config.digest.clone()).or_default();
            let placed = blobs.place(repository, &image.config, known, Content::Bytes(config))?;
            sent_anything |= placed != Placed::Present;
            known.push(repository.to_owned());
            sent_anything |=
                self.put_manifest(repository, digest.as_str(), &bytes, &media_type, &digest)?;
            for destination in destinations
                .iter()
                .filter(|d| d.repository == repository && !through_index.contains_key(&d.key()))
            {
                sent_anything |=
                    self.put_manifest(repository, &destination.tag, &bytes, &media_type, &digest)?;
            }
        }
        Ok(Pushed {
            manifest: digest,
            size: bytes.len() as u64,
            media_type,
            sent_anything,
        })
    }

    fn pushed(&self, image: &BundleImage) -> Option<Pushed> {
        self.pushed
            .lock()
            .expect("pushed lock")
            .get(&image.manifest.digest)
            .cloned()
    }
}

impl Destination {
    fn key(&self) -> (String, String) {
        (self.repository.clone(), self.tag.clone())
    }
}

/// Names an image for a list of failures.
fn image_name(image: &BundleImage) -> String {
    image.refs.first().map_or_else(
        || image.config.digest.short().to_owned(),
        |r| crate::display::escape(&r.given).into_owned(),
    )
}

impl Sink for RegistrySink {
    fn holdings(&self, images: &[BundleImage]) -> Result<Holdings, SinkError> {
        // Names first: a reference that would leave the registry named is
        // refused before anything is sent.
        for image in images {
            self.destinations(image).map_err(|e| self.failed(e))?;
        }
        self.client.ping().map_err(|e| self.failed(e))?;
        Ok(Holdings {
            target: self.address.to_string(),
            former_target: None,
            // Whether the registry holds an image is known only once its
            // layers are compressed; blobs and manifests it has are not sent again.
            present: vec![false; images.len()],
            takes_absent_layers: false,
        })
    }

    fn layer_chains(&self) -> Result<Vec<Vec<Digest>>, SinkError> {
        // Layers are not read back from a registry: a delta bundle's
        // left-out layers are reported missing.
        Ok(Vec::new())
    }

    fn supply_layers(
        &self,
        _digests: &HashSet<Digest>,
        _progress: &dyn Progress,
    ) -> Result<StagedLayers, SinkError> {
        Ok(StagedLayers::none()?)
    }

    fn write(&self, images: &FinishedImages<'_>, progress: &dyn Progress) -> Result<(), SinkError> {
        let held = Held::new();
        let blobs = Blobs::new(&self.client, &self.state, &held);
        let pushing = crate::progress::LoadingAs::new(progress, crate::progress::Task::Pushing);
        let result = self.write_all(&blobs, images, &pushing);
        self.notes
            .lock()
            .expect("notes lock")
            .extend(blobs.notes.lock().expect("notes lock").drain(..));
        result
    }

    fn tag(&self, image: &BundleImage, already_present: bool) -> Result<LoadedImage, SinkError> {
        let pushed = self.pushed(image).ok_or_else(|| {
            self.failed(RegistryError::Usage(format!(
                "{} was not pushed",
                image_name(image)
            )))
        })?;
        let (taggable, untaggable): (Vec<&ImageRef>, Vec<&ImageRef>) =
            image.refs.iter().partition(|r| r.is_taggable());
        Ok(LoadedImage {
            tags: taggable.iter().map(|r| r.given.clone()).collect(),
            untaggable: untaggable.iter().map(|r| r.given.clone()).collect(),
            id: pushed.manifest,
            config: image.config.digest.clone(),
            already_present: already_present || !pushed.sent_anything,
        })
    }

    fn resolves(&self, reference: &str, image: &BundleImage) -> Result<bool, SinkError> {
        let Ok(reference) = ImageRef::parse(reference) else {
            return Ok(false);
        };
        let (Ok(destination), Some(pushed)) = (self.destination(&reference), self.pushed(image))
        else {
            return Ok(false);
        };
        let index = self
            .indexed
            .lock()
            .expect("indexed lock")
            .get(&destination.key())
            .cloned();
        let (expected, media_type) = match index {
            Some(index) => (index, INDEX_MEDIA_TYPE),
            None => (
                pushed.manifest,
                "application/vnd.oci.image.manifest.v1+json",
            ),
        };
        let found = self
            .manifest_digest(&destination.repository, &destination.tag, media_type)
            .map_err(|e| self.failed(e))?;
        Ok(found.as_ref() == Some(&expected))
    }
}

impl RegistrySink {
    /// Puts the index over a group's pushed platform manifests by digest,
    /// then tags it; refused when one of them was not pushed, so the tag
    /// never names an index missing a platform.
    fn push_index(
        &self,
        repository: &str,
        tag: &str,
        images: &[&BundleImage],
        group: &IndexGroup,
    ) -> Result<(), RegistryError> {
        let mut members = Vec::new();
        for &position in &group.images {
            let image = images[position];
            let pushed = self.pushed(image).ok_or_else(|| {
                RegistryError::Usage(format!(
                    "not pushed, since its {} image {} was not",
                    group.platforms[members.len()]
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    image_name(image)
                ))
            })?;
            members.push(pushed);
        }
        let manifests: Vec<(PushedManifest<'_>, &[crate::image::Platform])> = members
            .iter()
            .zip(&group.platforms)
            .map(|(pushed, platforms)| {
                (
                    PushedManifest {
                        media_type: &pushed.media_type,
                        digest: &pushed.manifest,
                        size: pushed.size,
                    },
                    platforms.as_slice(),
                )
            })
            .collect();
        let bytes = index_bytes(&manifests);
        let digest = Digest::of(&bytes);
        self.put_manifest(
            repository,
            digest.as_str(),
            &bytes,
            INDEX_MEDIA_TYPE,
            &digest,
        )?;
        self.put_manifest(repository, tag, &bytes, INDEX_MEDIA_TYPE, &digest)?;
        self.indexed
            .lock()
            .expect("indexed lock")
            .insert((repository.to_owned(), tag.to_owned()), digest);
        Ok(())
    }

    /// Compresses a layer read from the bundle into a temporary file.
    fn compress(
        &self,
        blob: &BlobRef,
        content: &mut dyn Read,
        stop: &dyn Fn() -> bool,
    ) -> Result<Compressed, SinkError> {
        compress(content, blob, self.compression, &self.staging, stop).map_err(
            |error| match error {
                CompressError::Changed { found } => {
                    BundleError::Corrupt(std::io::Error::other(format!(
                        "layer {} reads as {found} since it was verified",
                        blob.digest
                    )))
                    .into()
                }
                CompressError::Io(source) => self.failed(RegistryError::Io {
                    what: format!("compressing layer {}", blob.digest.short()),
                    source,
                }),
                // Stopped because the uploader stopped, whose error says why.
                CompressError::Stopped => self.failed(RegistryError::Interrupted),
            },
        )
    }

    /// Puts each compressed layer handed over into every repository that
    /// wants it, until the hand-over ends or an error stops everything.
    fn upload_layers(
        &self,
        blobs: &Blobs<'_>,
        wanted_in: &HashMap<Digest, Vec<String>>,
        layers: mpsc::Receiver<(BlobRef, Compressed)>,
    ) -> Result<Uploaded, RegistryError> {
        let mut holders: HashMap<Digest, Vec<String>> = HashMap::new();
        let mut layer_failures = HashMap::new();
        for (blob, layer) in layers {
            let known = holders.entry(layer.blob.digest.clone()).or_default();
            for repository in wanted_in.get(&blob.digest).into_iter().flatten() {
                match blobs.place(
                    repository,
                    &layer.blob,
                    known,
                    Content::File(layer.file.path()),
                ) {
                    Ok(_) => known.push(repository.clone()),
                    Err(error) if error.stops_everything() => return Err(error),
                    Err(error) => {
                        layer_failures.insert(
                            (blob.digest.clone(), repository.clone()),
                            format!("layer {}: {error}", blob.digest.short()),
                        );
                    }
                }
            }
        }
        Ok(Uploaded {
            holders,
            layer_failures,
        })
    }

    fn write_all(
        &self,
        blobs: &Blobs<'_>,
        finished: &FinishedImages<'_>,
        progress: &dyn Progress,
    ) -> Result<(), SinkError> {
        let images = finished.images();
        let small_digests: HashSet<&Digest> = images
            .iter()
            .flat_map(|i| [&i.config.digest, &i.manifest.digest])
            .collect();
        // Each layer goes to every repository of every image that has it.
        let mut wanted_in: HashMap<Digest, Vec<String>> = HashMap::new();
        for image in images {
            let destinations = self.destinations(image).map_err(|e| self.failed(e))?;
            for layer in &image.layers {
                let repositories = wanted_in.entry(layer.digest.clone()).or_default();
                for destination in &destinations {
                    if !repositories.contains(&destination.repository) {
                        repositories.push(destination.repository.clone());
                    }
                }
            }
        }
        let mut small: HashMap<Digest, Vec<u8>> = HashMap::new();
        let mut compressed: HashMap<Digest, BlobRef> = HashMap::new();
        // Layer N is uploaded while layer N+1 is compressed, never more:
        // the hand-over waits until the uploader takes the next one.
        let (hand_over, layers) = mpsc::sync_channel::<(BlobRef, Compressed)>(0);
        let uploader_stopped = AtomicBool::new(false);
        let stop = || uploader_stopped.load(Ordering::SeqCst) || blobs.interrupted();
        // Compressed bytes handed to the uploader, once per repository.
        let mut handed = 0u64;
        let (read, uploaded) = std::thread::scope(|scope| {
            let uploader = scope.spawn(|| {
                let uploaded = self.upload_layers(blobs, &wanted_in, layers);
                uploader_stopped.store(true, Ordering::SeqCst);
                uploaded
            });
            let read =
                finished.for_each_blob(progress, &mut |blob: &BlobRef, content: &mut dyn Read| {
                    if small_digests.contains(&blob.digest) {
                        small.insert(blob.digest.clone(), read_small(blob, content)?);
                        return Ok(());
                    }
                    let layer = self.compress(blob, content, &stop)?;
                    compressed.insert(blob.digest.clone(), layer.blob.clone());
                    let copies = wanted_in.get(&blob.digest).map_or(0, Vec::len) as u64;
                    handed = handed.saturating_add(layer.blob.size.saturating_mul(copies));
                    // Refused only once the uploader stopped, whose error says why.
                    hand_over
                        .send((blob.clone(), layer))
                        .map_err(|_| self.failed(RegistryError::Interrupted))
                });
            drop(hand_over);
            if read.is_ok() {
                follow_uploads(&uploader, &blobs.streamed, handed, progress);
            }
            let uploaded = uploader
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (read, uploaded)
        });
        // The uploader's error first: reading stops because of it.
        let Uploaded {
            mut holders,
            layer_failures,
        } = uploaded.map_err(|e| self.failed(e))?;
        read?;
        let mut keys = Vec::new();
        for image in images {
            let destinations = self.destinations(image).map_err(|e| self.failed(e))?;
            keys.push(
                destinations
                    .iter()
                    .map(Destination::key)
                    .collect::<Vec<_>>(),
            );
        }
        let groups = index_groups(images, &keys, &finished.bundle().manifest().origins);
        let mut failures = Vec::new();
        for image in images {
            let destinations = self.destinations(image).map_err(|e| self.failed(e))?;
            let refused = image.layers.iter().find_map(|layer| {
                destinations
                    .iter()
                    .find_map(|d| layer_failures.get(&(layer.digest.clone(), d.repository.clone())))
            });
            if let Some(reason) = refused {
                failures.push(format!("{}: {reason}", image_name(image)));
                continue;
            }
            match self.push_image(blobs, image, &small, &compressed, &mut holders, &groups) {
                Ok(pushed) => {
                    self.pushed
                        .lock()
                        .expect("pushed lock")
                        .insert(image.manifest.digest.clone(), pushed);
                }
                Err(error) if error.stops_everything() => return Err(self.failed(error)),
                Err(error) => failures.push(format!("{}: {error}", image_name(image))),
            }
        }
        for ((repository, tag), group) in &groups {
            match self.push_index(repository, tag, images, group) {
                Ok(()) => {}
                Err(error) if error.stops_everything() => return Err(self.failed(error)),
                Err(error) => failures.push(format!("index {repository}:{tag}: {error}")),
            }
        }
        if failures.is_empty() {
            return Ok(());
        }
        Err(self.failed(RegistryError::ImagesFailed {
            failed: failures.len(),
            total: images.len(),
            failures,
        }))
    }
}

/// Shows what the uploader still sends once the bundle is read: the bar of
/// the read is full while the last layer may have most of its way to go.
/// `handed` is every compressed byte handed over; `streamed` counts what
/// the HTTP client has taken (a layer the registry holds already is never
/// sent, so the bar may end short of its total).
fn follow_uploads<T>(
    uploader: &std::thread::ScopedJoinHandle<'_, T>,
    streamed: &std::sync::atomic::AtomicU64,
    handed: u64,
    progress: &dyn Progress,
) {
    let left = handed.saturating_sub(streamed.load(Ordering::Relaxed));
    if uploader.is_finished() || left == 0 {
        return;
    }
    let start = streamed.load(Ordering::Relaxed);
    progress.start(crate::progress::Task::Uploading, Some(left));
    let mut shown = 0;
    loop {
        let finished = uploader.is_finished();
        let now = streamed
            .load(Ordering::Relaxed)
            .saturating_sub(start)
            .min(left);
        progress.advance(now - shown);
        shown = now;
        if finished {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    progress.finish();
}

/// A config or manifest, read whole and checked against its digest.
fn read_small(blob: &BlobRef, content: &mut dyn Read) -> Result<Vec<u8>, SinkError> {
    let mut bytes = Vec::new();
    content
        .take(SMALL_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(SinkError::Stream)?;
    if bytes.len() as u64 != blob.size || Digest::of(&bytes) != blob.digest {
        return Err(BundleError::Corrupt(std::io::Error::other(format!(
            "blob {} changed since it was verified",
            blob.digest
        )))
        .into());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicU64;
    use std::time::Duration;

    use super::*;
    use crate::progress::Task;

    #[derive(Debug, PartialEq)]
    enum Event {
        Start(Task, Option<u64>),
        Advance(u64),
        Finish,
        UploaderDone,
    }

    #[derive(Default)]
    struct Recorded(Mutex<Vec<Event>>);

    impl Progress for Recorded {
        fn start(&self, task: Task, total: Option<u64>) {
            self.0.lock().unwrap().push(Event::Start(task, total));
        }
        fn advance(&self, bytes: u64) {
            if bytes > 0 {
                self.0.lock().unwrap().push(Event::Advance(bytes));
            }
        }
        fn finish(&self) {
            self.0.lock().unwrap().push(Event::Finish);
        }
    }

    #[test]
    fn the_upload_bar_follows_the_last_layer_to_its_end() {
        let streamed = AtomicU64::new(100);
        let recorded = Recorded::default();
        std::thread::scope(|scope| {
            let uploader = scope.spawn(|| {
                for _ in 0..4 {
                    std::thread::sleep(Duration::from_millis(150));
                    streamed.fetch_add(100, Ordering::Relaxed);
                }
                // A resent chunk: more than was handed over.
                streamed.fetch_add(100, Ordering::Relaxed);
                recorded.0.lock().unwrap().push(Event::UploaderDone);
            });
            follow_uploads(&uploader, &streamed, 500, &recorded);
        });
        let events = recorded.0.into_inner().unwrap();
        assert_eq!(events[0], Event::Start(Task::Uploading, Some(400)));
        assert_eq!(events.last(), Some(&Event::Finish), "{events:?}");
        let done = events
            .iter()
            .position(|e| *e == Event::UploaderDone)
            .unwrap();
        assert!(
            done < events.len() - 1,
            "finished after the uploader: {events:?}"
        );
        let advanced: u64 = events
            .iter()
            .map(|e| match e {
                Event::Advance(n) => *n,
                _ => 0,
            })
            .sum();
        assert_eq!(advanced, 400, "{events:?}");
        assert!(
            events[1..done]
                .iter()
                .any(|e| matches!(e, Event::Advance(_))),
            "the bar moved while the upload went on: {events:?}"
        );
    }

    #[test]
    fn no_upload_bar_once_everything_was_sent() {
        let streamed = AtomicU64::new(500);
        let recorded = Recorded::default();
        std::thread::scope(|scope| {
            let uploader = scope.spawn(|| std::thread::sleep(Duration::from_millis(50)));
            follow_uploads(&uploader, &streamed, 500, &recorded);
        });
        assert!(recorded.0.into_inner().unwrap().is_empty());
    }
}
