//! A registry as a source (`pack --from-registry REF…`), with no engine:
//! each reference's manifest is resolved (through a multi-platform index to
//! the platforms wanted), then each layer blob streams through its digest
//! check, decompressed, into the bundle's blob store and is checked against
//! its diff ID. A layer the receiving site holds (a delta) is not fetched
//! where its size is known; nothing is held whole in memory.

use std::collections::{HashMap, HashSet};
use std::io::{self, BufWriter, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};

use oci_spec::distribution::Reference;

use crate::bundle::{ImageOrigin, SourceInfo};
use crate::digest::{Digest, HashingReader, HashingWriter};
use crate::image::{BlobRef, ConfigSummary, ImageRecord, ImageRef, Platform};
use crate::media::compression;
use crate::media::source::{LayerSink, ResolvedImage, Source, SourceError};
use crate::progress::{Progress, ProgressReader, Task};
use crate::store::StagedLayer;

use super::RegistryError;
use super::access::{AccessOptions, Client};
use super::manifest::{Choice, Manifest};
use super::pull::{self, unusable};

/// Images pulled from the registries their references name.
pub struct RegistrySource {
    options: AccessOptions,
    choice: Choice,
    known_sizes: HashMap<Digest, u64>,
    clients: Mutex<HashMap<String, Arc<Client>>>,
    pulled: Mutex<HashMap<Digest, PulledImage>>,
    origins: Mutex<Vec<ImageOrigin>>,
}

/// One image manifest resolved from a registry, with its config.
#[derive(Clone)]
struct PulledImage {
    host: String,
    repository: String,
    shown: String,
    manifest: Digest,
    index: Option<Digest>,
    index_platform: Option<Platform>,
    config: Vec<u8>,
    config_digest: Digest,
    platform: Platform,
    blobs: Vec<BlobRef>,
    diff_ids: Vec<Digest>,
}

/// Where a reference points in its registry.
struct Located {
    host: String,
    repository: String,
    /// A digest where the reference names one, else its tag.
    reference: String,
}

impl RegistrySource {
    /// A source reaching registries as `options` say, choosing from
    /// multi-platform images as `choice` says. `known_sizes` are the sizes
    /// of layers the receiving site holds (from earlier bundles), which
    /// then need not be downloaded at all.
    pub fn new(options: AccessOptions, choice: Choice, known_sizes: HashMap<Digest, u64>) -> Self {
        Self {
            options,
            choice,
            known_sizes,
            clients: Mutex::new(HashMap::new()),
            pulled: Mutex::new(HashMap::new()),
            origins: Mutex::new(Vec::new()),
        }
    }

    /// Parses references for a pull, each of which must name its registry
    /// (`HOST[:PORT]/REPOSITORY…`), and checks that every host named by
    /// `--plain-http` or `--insecure-skip-verify` is one of theirs.
    pub fn references(
        given: &[String],
        options: &AccessOptions,
    ) -> Result<Vec<ImageRef>, RegistryError> {
        let mut refs = Vec::new();
        for text in given {
            if !names_registry(text) {
                return Err(RegistryError::Usage(format!(
                    "--from-registry {} names no registry; name it first, as HOST[:PORT]/REPOSITORY[:TAG] (e.g. registry.example:5000/team/web:1.0, or docker.io/library/nginx:1.27)",
                    crate::display::escape(text)
                )));
            }
            let reference =
                ImageRef::parse(text).map_err(|error| RegistryError::Usage(error.to_string()))?;
            refs.push(reference);
        }
        let hosts: HashSet<String> = refs
            .iter()
            .filter_map(|r| locate(r).ok().map(|l| l.host))
            .collect();
        for (flag, named) in [
            ("--plain-http", &options.plain_http),
            ("--insecure-skip-verify", &options.insecure_skip_verify),
        ] {
            if let Some(other) = named.iter().find(|h| !hosts.contains(h.as_str())) {
                return Err(RegistryError::Usage(format!(
                    "{flag} {} names no registry of the references (they name {}); name the registry exactly as HOST[:PORT]",
                    crate::display::escape(other),
                    sorted(&hosts).join(", ")
                )));
            }
        }
        Ok(refs)
    }

    fn client(&self, host: &str) -> Result<Arc<Client>, RegistryError> {
        let mut clients = self.clients.lock().expect("clients lock");
        if let Some(client) = clients.get(host) {
            return Ok(client.clone());
        }
        let mut options = self.options.clone();
        options.plain_http.retain(|h| h == host);
        options.insecure_skip_verify.retain(|h| h == host);
        let client = Arc::new(Client::connect(host, &options)?);
        client.ping()?;
        clients.insert(host.to_owned(), client.clone());
        Ok(client)
    }

    /// Every image `reference` names on the chosen platforms.
    fn pull_manifests(&self, reference: &ImageRef) -> Result<Vec<PulledImage>, RegistryError> {
        let shown = reference.given.clone();
        let located = locate(reference).map_err(|reason| unusable(&shown, reason))?;
        let client = self.client(&located.host)?;
        let top = pull::manifest(&client, &located.repository, &located.reference, &shown)?;
        let parsed = Manifest::parse(&top.bytes, top.content_type.as_deref())
            .map_err(|reason| unusable(&shown, reason))?;
        let entries = match parsed {
            Manifest::Image(image) => {
                return Ok(vec![self.pulled_image(
                    &client, &located, &shown, top.digest, None, None, image,
                )?]);
            }
            Manifest::Index(entries) => entries,
        };
        let chosen = super::manifest::choose(&entries, &self.choice)
            .map_err(|reason| unusable(&shown, format!("{reason}; choose with --platform os/arch[/variant] or take every one with --all-platforms")))?;
        let mut images = Vec::new();
        for entry in chosen {
            let fetched = pull::manifest(
                &client,
                &located.repository,
                entry.blob.digest.as_str(),
                &shown,
            )?;
            let Manifest::Image(image) =
                Manifest::parse(&fetched.bytes, fetched.content_type.as_deref())
                    .map_err(|reason| unusable(&shown, reason))?
            else {
                return Err(unusable(
                    &shown,
                    "its index names another index, which airgap does not follow".into(),
                ));
            };
            images.push(self.pulled_image(
                &client,
                &located,
                &shown,
                fetched.digest,
                Some(top.digest.clone()),
                entry.platform.clone(),
                image,
            )?);
        }
        Ok(images)
    }

    #[allow(clippy::too_many_arguments)]
    fn pulled_image(
        &self,
        client: &Client,
        located: &Located,
        shown: &str,
        manifest: Digest,
        index: Option<Digest>,
        index_platform: Option<Platform>,
        image: super::manifest::ImageManifest,
    ) -> Result<PulledImage, RegistryError> {
        let config = pull::small_blob(client, &located.repository, &image.config, shown)?;
        let summary = ConfigSummary::parse(&config).map_err(|error| {
            unusable(
                shown,
                format!(
                    "its image config does not parse: {}",
                    crate::display::escape(&error.to_string())
                ),
            )
        })?;
        if summary.rootfs.diff_ids.len() != image.layers.len() {
            return Err(unusable(
                shown,
                format!(
                    "its manifest lists {} layers but its config {}",
                    image.layers.len(),
                    summary.rootfs.diff_ids.len()
                ),
            ));
        }
        Ok(PulledImage {
            host: located.host.clone(),
            repository: located.repository.clone(),
            shown: shown.to_owned(),
            manifest,
            index,
            index_platform,
            config_digest: image.config.digest,
            config,
            platform: summary.platform,
            blobs: image.layers,
            diff_ids: summary.rootfs.diff_ids,
        })
    }

    fn export_images(
        &self,
        images: Vec<(Vec<ImageRef>, PulledImage)>,
        layers: &mut dyn LayerSink,
        progress: &dyn Progress,
    ) -> Result<Vec<ImageRecord>, SourceError> {
        let mut records: Vec<ImageRecord> = Vec::new();
        let mut origins = Vec::new();
        // Uncompressed sizes of the layers handed over, which later images share.
        let mut sizes: HashMap<Digest, u64> = HashMap::new();
        for (refs, image) in images {
            origins.push(ImageOrigin {
                config: image.config_digest.clone(),
                registry: image.host.clone(),
                repository: image.repository.clone(),
                manifest: image.manifest.clone(),
                index: image.index.clone(),
                platform: image
                    .index_platform
                    .clone()
                    .unwrap_or_else(|| image.platform.clone()),
            });
            if let Some(record) = records
                .iter_mut()
                .find(|r| r.config_digest == image.config_digest)
            {
                for reference in refs {
                    if !record.refs.contains(&reference) {
                        record.refs.push(reference);
                    }
                }
                continue;
            }
            let client = self.client(&image.host)?;
            let mut blobs = Vec::new();
            for (index, (blob, diff_id)) in image.blobs.iter().zip(&image.diff_ids).enumerate() {
                let known = sizes.get(diff_id).copied().or_else(|| {
                    layers
                        .is_left_out(diff_id)
                        .then(|| self.known_sizes.get(diff_id).copied())
                        .flatten()
                });
                let size = match known {
                    Some(size) => {
                        progress.advance(blob.size);
                        size
                    }
                    None => {
                        if layers.is_left_out(diff_id) {
                            tracing::info!(
                                "pack: layer {} of {}, which the site holds, is downloaded only to count its size: neither the inventory nor a --since bundle states it",
                                diff_id.short(),
                                crate::display::escape(&image.shown)
                            );
                        }
                        export_layer(&client, &image, blob, diff_id, layers, progress).map_err(
                            |error| match error {
                                Exported::Differs(actual) => SourceError::LayerMismatch {
                                    image: crate::display::escape(&image.shown).into_owned(),
                                    index,
                                    expected: diff_id.clone(),
                                    actual,
                                },
                                Exported::Failed(error) => error,
                            },
                        )?
                    }
                };
                sizes.insert(diff_id.clone(), size);
                blobs.push(BlobRef {
                    digest: diff_id.clone(),
                    size,
                });
            }
            records.push(ImageRecord {
                refs,
                config: image.config,
                config_digest: image.config_digest,
                platform: image.platform,
                layers: blobs,
            });
        }
        *self.origins.lock().expect("origins lock") = origins;
        Ok(records)
    }
}

impl Source for RegistrySource {
    fn describe(&self) -> SourceInfo {
        SourceInfo {
            kind: "registry".into(),
            engine: None,
            api_version: None,
        }
    }

    fn resolve(&self, refs: &[ImageRef]) -> Result<Vec<ResolvedImage>, SourceError> {
        let mut resolved: Vec<ResolvedImage> = Vec::new();
        let mut missing = Vec::new();
        for reference in refs {
            let images = match self.pull_manifests(reference) {
                Ok(images) => images,
                Err(RegistryError::NotFound { refs }) => {
                    missing.extend(refs);
                    continue;
                }
                Err(error) => return Err(error.into()),
            };
            let mut pulled = self.pulled.lock().expect("pulled lock");
            for image in images {
                crate::media::archive::merge_resolved(
                    &mut resolved,
                    ResolvedImage {
                        refs: vec![reference.clone()],
                        id: Some(image.manifest.clone()),
                        layers: Some(image.diff_ids.clone()),
                    },
                );
                pulled.insert(image.manifest.clone(), image);
            }
        }
        if !missing.is_empty() {
            return Err(RegistryError::NotFound { refs: missing }.into());
        }
        Ok(resolved)
    }

    fn layer_sizes(&self, image: &ResolvedImage) -> Result<Option<Vec<u64>>, SourceError> {
        let pulled = self.pulled.lock().expect("pulled lock");
        Ok(image
            .id
            .as_ref()
            .and_then(|id| pulled.get(id))
            .map(|p| p.blobs.iter().map(|b| b.size).collect()))
    }

    fn export(
        &self,
        images: &[ResolvedImage],
        layers: &mut dyn LayerSink,
        progress: &dyn Progress,
    ) -> Result<Vec<ImageRecord>, SourceError> {
        if images.iter().any(|i| {
            i.id.as_ref()
                .is_none_or(|id| !self.pulled.lock().expect("pulled lock").contains_key(id))
        }) {
            let refs: Vec<ImageRef> = images.iter().flat_map(|i| i.refs.clone()).collect();
            self.resolve(&refs)?;
        }
        let chosen: Vec<(Vec<ImageRef>, PulledImage)> = {
            let pulled = self.pulled.lock().expect("pulled lock");
            images
                .iter()
                .filter_map(|i| {
                    let image = pulled.get(i.id.as_ref()?)?;
                    Some((i.refs.clone(), image.clone()))
                })
                .collect()
        };
        let total = chosen
            .iter()
            .flat_map(|(_, image)| &image.blobs)
            .map(|b| b.size)
            .sum();
        progress.start(Task::Saving, Some(total));
        let records = self.export_images(chosen, layers, progress);
        progress.finish();
        records
    }

    fn origins(&self) -> Vec<ImageOrigin> {
        self.origins.lock().expect("origins lock").clone()
    }
}

/// True when the first component of `text` is a registry host, as Docker
/// tells one: it has a `.` or a `:`, or is `localhost`.
fn names_registry(text: &str) -> bool {
    match text.trim().split_once('/') {
        Some((first, _)) => first.contains(['.', ':']) || first == "localhost",
        None => false,
    }
}

fn locate(reference: &ImageRef) -> Result<Located, String> {
    let parsed: Reference = reference
        .name
        .parse()
        .map_err(|_| "it is not a valid reference".to_owned())?;
    let host = match parsed.registry() {
        // Docker Hub's API is served from another name than its references use.
        "docker.io" | "index.docker.io" => "registry-1.docker.io".to_owned(),
        other => other.to_owned(),
    };
    let reference_part = match (parsed.digest(), parsed.tag()) {
        (Some(digest), _) => digest.to_owned(),
        (None, Some(tag)) => tag.to_owned(),
        (None, None) => "latest".to_owned(),
    };
    Ok(Located {
        host,
        repository: parsed.repository().to_owned(),
        reference: reference_part,
    })
}

fn sorted(hosts: &HashSet<String>) -> Vec<String> {
    let mut hosts: Vec<String> = hosts.iter().cloned().collect();
    hosts.sort();
    hosts
}

/// Why a layer was not handed over.
enum Exported {
    /// Its content does not hash to its diff ID (it hashes to this).
    Differs(Digest),
    /// Anything else.
    Failed(SourceError),
}

impl From<SourceError> for Exported {
    fn from(error: SourceError) -> Self {
        Self::Failed(error)
    }
}

impl From<RegistryError> for Exported {
    fn from(error: RegistryError) -> Self {
        Self::Failed(error.into())
    }
}

/// Downloads one layer blob into `layers` and returns its uncompressed size:
/// an uncompressed blob streams straight through, a compressed one is
/// decompressed into the staging directory as it arrives.
fn export_layer(
    client: &Client,
    image: &PulledImage,
    blob: &BlobRef,
    diff_id: &Digest,
    layers: &mut dyn LayerSink,
    progress: &dyn Progress,
) -> Result<u64, Exported> {
    let what = format!("GET blob {}", blob.digest);
    let reader = pull::open_blob(client, &image.repository, blob, &image.shown)?;
    let mut content = HashingReader::new(ProgressReader::new(reader, progress));
    let plain = blob.digest == *diff_id;
    if plain && layers.takes_stream(diff_id) {
        layers.stream_layer(diff_id, blob.size, &mut content)?;
        let (actual, read) = content.finish();
        return if actual == *diff_id && read == blob.size {
            Ok(blob.size)
        } else {
            Err(Exported::Differs(actual))
        };
    }
    let staged = stage(&mut content, layers.staging_dir())
        .map_err(|error| stage_failure(client, &what, error, layers.staging_dir()))?;
    let (stored_as, _) = content.finish();
    if stored_as != blob.digest {
        let _ = std::fs::remove_file(&staged.path);
        return Err(unusable(
            &image.shown,
            format!(
                "the registry sent blob {} with other content (it hashes to {stored_as})",
                blob.digest
            ),
        )
        .into());
    }
    if staged.digest != *diff_id {
        let _ = std::fs::remove_file(&staged.path);
        return Err(Exported::Differs(staged.digest));
    }
    let size = staged.size;
    if layers.has_layer(&staged.digest) || layers.is_left_out(&staged.digest) {
        let _ = std::fs::remove_file(&staged.path);
    } else {
        layers.put_layer(staged)?;
    }
    Ok(size)
}

/// Why staging failed: the disk, the download, or a blob that does not decompress.
enum StageFailure {
    Disk(io::Error),
    Read(io::Error),
}

fn stage_failure(client: &Client, what: &str, error: StageFailure, staging: &Path) -> Exported {
    match error {
        StageFailure::Disk(source) => Exported::Failed(SourceError::Stage {
            path: staging.to_owned(),
            source,
        }),
        StageFailure::Read(source) if is_connection(&source) => {
            pull::read_failure(client, what, source).into()
        }
        StageFailure::Read(source) => Exported::Failed(SourceError::Malformed {
            reason: format!(
                "a layer from {} does not decompress: {source}",
                client.host()
            ),
        }),
    }
}

/// A read error from the connection rather than from the data.
fn is_connection(error: &io::Error) -> bool {
    !matches!(
        error.kind(),
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput
    ) && !error.to_string().contains("corrupt")
}

const BUFFER: usize = 256 << 10;

/// Writes `content` decompressed (gzip, zstd or none, told by its first
/// bytes) to a new file in `staging`, hashing what is written; whatever
/// follows the compressed stream is read too, for the caller's digest check.
/// The file is removed if anything fails.
fn stage(content: &mut (dyn Read + Send), staging: &Path) -> Result<StagedLayer, StageFailure> {
    let temp = tempfile::Builder::new()
        .prefix("registry-")
        .tempfile_in(staging)
        .map_err(StageFailure::Disk)?;
    let mut stored = HashingWriter::new(BufWriter::with_capacity(BUFFER, temp.as_file()));
    {
        let (_, mut decoded) = compression::decoded(&mut *content).map_err(StageFailure::Read)?;
        copy(&mut decoded, &mut stored)?;
    }
    io::copy(content, &mut io::sink()).map_err(StageFailure::Read)?;
    let (digest, size, writer) = stored.finish();
    writer
        .into_inner()
        .map_err(|e| StageFailure::Disk(e.into_error()))?;
    let path = temp
        .into_temp_path()
        .keep()
        .map_err(|e| StageFailure::Disk(e.error))?;
    Ok(StagedLayer { path, digest, size })
}

/// Copies, telling a failure to read from a failure to write.
fn copy(from: &mut dyn Read, to: &mut dyn io::Write) -> Result<(), StageFailure> {
    let mut buffer = vec![0; BUFFER];
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(StageFailure::Read(error)),
        };
        to.write_all(&buffer[..n]).map_err(StageFailure::Disk)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_must_name_its_registry() {
        for named in [
            "127.0.0.1:5000/team/web:1.0",
            "registry.example/web@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "localhost/web",
            "docker.io/library/nginx:1.27",
        ] {
            assert!(names_registry(named), "{named}");
        }
        for unnamed in ["nginx", "nginx:1.27", "team/web:1.0", "library/nginx"] {
            assert!(!names_registry(unnamed), "{unnamed}");
        }
        let options = AccessOptions::default();
        let error = RegistrySource::references(&["team/web:1.0".into()], &options).unwrap_err();
        assert!(error.to_string().contains("names no registry"), "{error}");
        assert_eq!(error.kind(), crate::error::kind::ErrorKind::Usage);
    }

    #[test]
    fn plain_http_must_name_a_registry_of_the_references() {
        let options = AccessOptions {
            plain_http: vec!["other:5000".into()],
            ..AccessOptions::default()
        };
        let error =
            RegistrySource::references(&["127.0.0.1:5000/web:1".into()], &options).unwrap_err();
        assert!(error.to_string().contains("127.0.0.1:5000"), "{error}");
    }

    #[test]
    fn references_locate_their_repository_and_tag_or_digest() {
        let located = locate(&ImageRef::parse("127.0.0.1:5000/team/web").unwrap()).unwrap();
        assert_eq!(located.host, "127.0.0.1:5000");
        assert_eq!(located.repository, "team/web");
        assert_eq!(located.reference, "latest");
        let digest = format!("sha256:{}", "a".repeat(64));
        let located =
            locate(&ImageRef::parse(&format!("r.example/web:1@{digest}")).unwrap()).unwrap();
        assert_eq!(located.reference, digest);
        let hub = locate(&ImageRef::parse("docker.io/library/nginx:1.27").unwrap()).unwrap();
        assert_eq!(hub.host, "registry-1.docker.io");
    }
}
