//! An OCI image layout directory as a source (`pack --archive DIR`). Layers
//! are read straight from their blobs: a plain tar the layer sink can take
//! as a stream goes through unstaged (its name is its digest, its size is
//! known), a compressed one is decompressed into the staging directory. A
//! layer the sink already holds is not read at all. Every layer's
//! uncompressed digest must be the config's diff ID.

use std::collections::HashMap;
use std::io::{self, BufReader, BufWriter, Read};
use std::path::{Path, PathBuf};

use crate::bundle::SourceInfo;
use crate::digest::{Digest, HashingReader, HashingWriter};
use crate::image::{BlobRef, ImageRecord, ImageRef};
use crate::media::platform::WantedPlatform;
use crate::media::source::{HeldImage, LayerSink, ResolvedImage, Source, SourceError};
use crate::progress::{Progress, ProgressReader, Task};
use crate::store::StagedLayer;

use super::read::{Compression, LayoutImage, LayoutLayer, LayoutReader};

/// Images from an OCI image layout directory.
pub struct LayoutSource {
    dir: PathBuf,
    platforms: Vec<WantedPlatform>,
}

impl LayoutSource {
    /// A source reading the layout at `dir`; nothing is read until asked.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            platforms: Vec::new(),
        }
    }

    /// Takes these platforms of a multi-platform image (the host's where
    /// none is given).
    pub fn with_platforms(mut self, platforms: &[WantedPlatform]) -> Self {
        self.platforms = platforms.to_vec();
        self
    }

    fn reader(&self) -> Result<LayoutReader, SourceError> {
        Ok(LayoutReader::open(&self.dir)?.with_platforms(&self.platforms))
    }

    fn open(&self, refs: &[ImageRef]) -> Result<(LayoutReader, Vec<LayoutImage>), SourceError> {
        let reader = self.reader()?;
        let images = reader.resolve(refs)?;
        Ok((reader, images))
    }
}

impl Source for LayoutSource {
    fn describe(&self) -> SourceInfo {
        SourceInfo {
            kind: "oci-layout".into(),
            engine: None,
            api_version: None,
        }
    }

    fn resolve(&self, refs: &[ImageRef]) -> Result<Vec<ResolvedImage>, SourceError> {
        let (_, images) = self.open(refs)?;
        Ok(images.into_iter().map(resolved).collect())
    }

    fn resolve_all(&self) -> Result<Option<Vec<ResolvedImage>>, SourceError> {
        let mut all = Vec::new();
        for image in self.reader()?.named_images()? {
            crate::media::archive::merge_resolved(&mut all, resolved(image));
        }
        Ok(Some(all))
    }

    fn catalogue(&self) -> Result<Option<Vec<HeldImage>>, SourceError> {
        let place = self.dir.display().to_string();
        Ok(Some(
            self.reader()?
                .catalogue()?
                .into_iter()
                .map(|indexed| HeldImage {
                    place: place.clone(),
                    refs: indexed.full_name.into_iter().chain(indexed.ref_name).fold(
                        Vec::new(),
                        |mut names, name| {
                            if !names.contains(&name) {
                                names.push(name);
                            }
                            names
                        },
                    ),
                    id: indexed.image.config_digest,
                    platform: indexed.image.platform,
                    layer_sizes: indexed.image.layers.iter().map(|l| l.blob.size).collect(),
                })
                .collect(),
        ))
    }

    fn export(
        &self,
        images: &[ResolvedImage],
        layers: &mut dyn LayerSink,
        progress: &dyn Progress,
    ) -> Result<Vec<ImageRecord>, SourceError> {
        let refs: Vec<ImageRef> = images.iter().flat_map(|i| i.refs.clone()).collect();
        let (reader, mut found) = self.open(&refs)?;
        // Images without a name (a pack of everything) are found by digest.
        let unnamed: Vec<&ResolvedImage> = images.iter().filter(|i| i.refs.is_empty()).collect();
        if !unnamed.is_empty() {
            found.extend(reader.named_images()?.into_iter().filter(|image| {
                unnamed
                    .iter()
                    .any(|i| i.id.as_ref() == Some(&image.manifest.digest))
            }));
        }
        export_images(&reader, found, layers, progress)
    }
}

fn resolved(image: LayoutImage) -> ResolvedImage {
    ResolvedImage {
        id: Some(image.manifest.digest.clone()),
        layers: Some(image.layers.iter().map(|l| l.diff_id.clone()).collect()),
        refs: image.refs,
    }
}

/// Hands every image's layers to `layers` and returns one record per
/// distinct config, with every reference naming it. Also how images are
/// read from a containerd content store, which keeps its blobs as a layout.
pub fn export_images(
    reader: &LayoutReader,
    images: Vec<LayoutImage>,
    layers: &mut dyn LayerSink,
    progress: &dyn Progress,
) -> Result<Vec<ImageRecord>, SourceError> {
    // Every layer of every image: one read once advances for each image after.
    let total = images
        .iter()
        .flat_map(|image| &image.layers)
        .map(|layer| layer.blob.size)
        .sum();
    progress.start(Task::Saving, Some(total));
    let records = hand_over(reader, images, layers, progress);
    progress.finish();
    records
}

fn hand_over(
    reader: &LayoutReader,
    images: Vec<LayoutImage>,
    layers: &mut dyn LayerSink,
    progress: &dyn Progress,
) -> Result<Vec<ImageRecord>, SourceError> {
    let mut records: Vec<ImageRecord> = Vec::new();
    // Uncompressed sizes of the layers handed over, which later images share.
    let mut handed_over: HashMap<Digest, u64> = HashMap::new();
    for mut image in images {
        if ImageRecord::add_refs_to(&mut records, &image.config_digest, &mut image.refs) {
            continue;
        }
        let name = image
            .refs
            .first()
            .map_or_else(String::new, ToString::to_string);
        let mut blobs = Vec::new();
        for (index, layer) in image.layers.iter().enumerate() {
            let size = match handed_over.get(&layer.diff_id) {
                Some(size) => {
                    progress.advance(layer.blob.size);
                    Ok(*size)
                }
                None => export_layer(reader, layer, layers, progress),
            }
            .map_err(|e| match e {
                Exported::Differs(actual) => SourceError::LayerMismatch {
                    image: name.clone(),
                    index,
                    expected: layer.diff_id.clone(),
                    actual,
                },
                Exported::Failed(error) => error,
            })?;
            handed_over.insert(layer.diff_id.clone(), size);
            blobs.push(BlobRef {
                digest: layer.diff_id.clone(),
                size,
            });
        }
        records.push(ImageRecord {
            refs: image.refs,
            config: image.config,
            config_digest: image.config_digest,
            platform: image.platform,
            layers: blobs,
        });
    }
    Ok(records)
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

/// Hands one layer to `layers` (unless it holds it already) and returns its
/// uncompressed size.
fn export_layer(
    reader: &LayoutReader,
    layer: &LayoutLayer,
    layers: &mut dyn LayerSink,
    progress: &dyn Progress,
) -> Result<u64, Exported> {
    // A plain tar named by its diff ID: its size is known without reading
    // it, so one the bundle holds or leaves out is not read at all.
    let named_plain = layer.compression == Compression::None && layer.blob.digest == layer.diff_id;
    if named_plain && (layers.has_layer(&layer.diff_id) || layers.is_left_out(&layer.diff_id)) {
        progress.advance(layer.blob.size);
        return Ok(layer.blob.size);
    }
    let file = reader.open_blob(&layer.blob)?;
    let mut content = HashingReader::new(ProgressReader::new(file, progress));
    if named_plain && layers.takes_stream(&layer.diff_id) {
        let size = layer.blob.size;
        layers.stream_layer(&layer.diff_id, size, &mut (&mut content).take(size))?;
        let (actual, read) = content.finish();
        return if actual == layer.diff_id && read == size {
            Ok(size)
        } else {
            Err(Exported::Differs(actual))
        };
    }
    let staged = stage(&mut content, layer.compression, layers.staging_dir())?;
    let (stored_as, _) = content.finish();
    if stored_as != layer.blob.digest {
        let _ = std::fs::remove_file(&staged.path);
        return Err(SourceError::Malformed {
            reason: format!(
                "{} does not hash to its name (it hashes to {stored_as})",
                layer.blob.digest.blob_path()
            ),
        }
        .into());
    }
    if staged.digest != layer.diff_id {
        let _ = std::fs::remove_file(&staged.path);
        return Err(Exported::Differs(staged.digest));
    }
    let size = staged.size;
    if layers.has_layer(&staged.digest) {
        let _ = std::fs::remove_file(&staged.path);
    } else {
        layers.put_layer(staged)?;
    }
    Ok(size)
}

/// Writes `content` uncompressed to a new file in `staging`, hashing what is
/// written. The file is removed if anything fails.
fn stage(
    content: &mut impl Read,
    compression: Compression,
    staging: &Path,
) -> Result<StagedLayer, SourceError> {
    let stage_error = |source| SourceError::Stage {
        path: staging.to_owned(),
        source,
    };
    let temp = tempfile::Builder::new()
        .prefix("layout-")
        .tempfile_in(staging)
        .map_err(stage_error)?;
    let mut stored = HashingWriter::new(BufWriter::with_capacity(BUFFER, temp.as_file()));
    {
        let mut buffered = BufReader::with_capacity(BUFFER, &mut *content);
        match compression {
            Compression::None => io::copy(&mut buffered, &mut stored),
            Compression::Gzip => io::copy(
                &mut flate2::bufread::MultiGzDecoder::new(buffered),
                &mut stored,
            ),
            Compression::Zstd => zstd::stream::read::Decoder::with_buffer(buffered)
                .and_then(|mut decoder| io::copy(&mut decoder, &mut stored)),
        }
        .map_err(|e| stage_read_error(e, staging))?;
    }
    // Whatever follows the compressed stream still belongs to the blob,
    // whose digest the caller checks.
    io::copy(content, &mut io::sink()).map_err(SourceError::Read)?;
    let (digest, size, writer) = stored.finish();
    writer
        .into_inner()
        .map_err(|e| stage_error(e.into_error()))?;
    let path = temp
        .into_temp_path()
        .keep()
        .map_err(|e| stage_error(e.error))?;
    Ok(StagedLayer { path, digest, size })
}

/// A failure while staging: the disk's (kept as a staging error, so a full
/// disk reads as one) or the blob's (corrupt compressed data).
fn stage_read_error(error: io::Error, staging: &Path) -> SourceError {
    match error.kind() {
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::UnexpectedEof => {
            SourceError::Malformed {
                reason: format!("a layer does not decompress: {error}"),
            }
        }
        _ => SourceError::Stage {
            path: staging.to_owned(),
            source: error,
        },
    }
}

const BUFFER: usize = 256 << 10;
