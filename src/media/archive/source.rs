//! An image archive file (or skopeo `dir:` directory) as a source: its
//! catalogue read once (pass 1), images picked by reference, ID or ID
//! prefix, Podman's `localhost/` short name, and platform, then exactly the
//! wanted layers streamed into the layer sink (pass 2).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::bundle::SourceInfo;
use crate::digest::Digest;
use crate::image::{BlobRef, ImageRecord, ImageRef};
use crate::media::layout::dir::LayoutDir;
use crate::media::platform::WantedPlatform;
use crate::media::source::{HeldImage, LayerSink, ResolvedImage, Source, SourceError};
use crate::progress::{Progress, Task};

use super::catalogue::{self, ArchiveKind, ArchivedImage, Catalogue};
use super::scan::{self, Delivered, WantedLayer};
use crate::media::recognise::{self, RecogniseError};

/// Images from an image archive of any kind, plain or compressed.
pub struct ArchiveSource {
    path: PathBuf,
    platforms: Vec<WantedPlatform>,
    names: Vec<GivenName>,
    catalogue: OnceLock<Catalogue>,
}

/// A name given to an image of an archive on the way in (`--name
/// SRC=REPO:TAG`): how an untagged `docker save ID` image gets one, or a
/// named image another.
#[derive(Clone, Debug)]
pub struct GivenName {
    /// What picks the image: an ID, an ID prefix or a name the archive has.
    pub pick: String,
    /// The name it is packed under.
    pub name: ImageRef,
}

impl std::str::FromStr for GivenName {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (pick, name) = text
            .split_once('=')
            .filter(|(pick, name)| !pick.is_empty() && !name.is_empty())
            .ok_or_else(|| format!("{text}: give SRC=REPO:TAG (SRC an ID, ID prefix or name)"))?;
        let name = ImageRef::parse(name).map_err(|e| format!("{name}: {e}"))?;
        if name.name.contains('@') {
            return Err(format!("{}: give a tag, not a digest", name.given));
        }
        Ok(Self {
            pick: pick.to_owned(),
            name,
        })
    }
}

/// What one name picked.
struct Selection {
    images: Vec<usize>,
    /// The references the picked images are to carry.
    refs: Option<Vec<ImageRef>>,
    note: Option<String>,
}

impl ArchiveSource {
    /// A source reading the archive at `path`, taking the host's platform
    /// of a multi-platform image; nothing is read until asked.
    pub fn new(path: &Path) -> Self {
        Self::with_platforms(path, &[])
    }

    /// A source taking these platforms of a multi-platform image (the
    /// host's where none is given).
    pub fn with_platforms(path: &Path, platforms: &[WantedPlatform]) -> Self {
        Self {
            path: path.to_owned(),
            platforms: if platforms.is_empty() {
                vec![WantedPlatform::host()]
            } else {
                platforms.to_vec()
            },
            names: Vec::new(),
            catalogue: OnceLock::new(),
        }
    }

    /// Packs the images these pick under the names given.
    pub fn with_names(mut self, names: &[GivenName]) -> Self {
        self.names = names.to_vec();
        self
    }

    /// The catalogue, read on first use.
    pub fn read_catalogue(&self) -> Result<&Catalogue, SourceError> {
        if let Some(catalogue) = self.catalogue.get() {
            return Ok(catalogue);
        }
        let read = if self.path.is_dir() {
            self.dir().and_then(|dir| catalogue::of_skopeo_dir(&dir))
        } else {
            scan::scan(&self.path).and_then(|scanned| catalogue::of_tar(&scanned))
        };
        let read = read.map_err(|error| {
            // Told by content only once reading failed, so a good archive is
            // never decoded an extra time: what is no image archive at all
            // (a bundle, an export, junk) is named for what it is.
            if let Err(RecogniseError::NotAnArchive(found)) = recognise::check_archive(&self.path) {
                return SourceError::NotAnImageArchive(found);
            }
            match error {
                SourceError::Malformed { reason } => SourceError::Malformed {
                    reason: format!("{}: {reason}", self.path.display()),
                },
                other => other,
            }
        })?;
        Ok(self.catalogue.get_or_init(|| read))
    }

    fn dir(&self) -> Result<LayoutDir, SourceError> {
        LayoutDir::open(&self.path).map_err(SourceError::Read)
    }

    /// Finds the images `reference` names; `None` where it names none.
    fn select(&self, reference: &ImageRef) -> Result<Option<Selection>, SourceError> {
        if let Some(given) = self.names.iter().find(|n| n.name.name == reference.name) {
            let Ok(pick) = ImageRef::parse(&given.pick) else {
                return Ok(None);
            };
            return Ok(self.select_named(&pick)?.map(|mut selection| {
                selection.refs = Some(vec![reference.clone()]);
                selection.note = None;
                selection
            }));
        }
        self.select_named(reference)
    }

    fn select_named(&self, reference: &ImageRef) -> Result<Option<Selection>, SourceError> {
        let images = &self.read_catalogue()?.images;
        let indices = |test: &dyn Fn(&ArchivedImage) -> bool| -> Vec<usize> {
            (0..images.len()).filter(|i| test(&images[*i])).collect()
        };
        let mut selection = Selection {
            images: indices(&|i| i.refs.iter().any(|r| r.name == reference.name)),
            refs: None,
            note: None,
        };
        if selection.images.is_empty() {
            if let Some((_, tag)) = reference.repo_and_tag() {
                selection.images = indices(&|i| i.tags_only.contains(&tag));
            }
        }
        if selection.images.is_empty() {
            if let Some(prefix) = id_prefix(&reference.given) {
                let found = indices(&|i| i.config_digest.hex().starts_with(prefix));
                let mut ids: Vec<&Digest> =
                    found.iter().map(|i| &images[*i].config_digest).collect();
                ids.dedup();
                if ids.len() > 1 {
                    return Err(SourceError::NotInArchive {
                        refs: vec![format!(
                            "{} (the IDs of several images start with it; give more of the ID)",
                            reference.given
                        )],
                    });
                }
                selection.refs = found.first().map(|i| images[*i].refs.clone());
                selection.images = found;
            }
        }
        if selection.images.is_empty() {
            if let Some(local) = reference.podman_local() {
                selection.images = indices(&|i| i.refs.iter().any(|r| r.name == local.name));
                if !selection.images.is_empty() {
                    selection.note = Some(format!(
                        "{} is taken as {} (Podman's name for a local image); it arrives under that name",
                        reference.given, local.given
                    ));
                    selection.refs = Some(vec![local]);
                }
            }
        }
        if selection.images.is_empty() {
            return Ok(None);
        }
        selection.images = self.on_platforms(&selection.images, &reference.given)?;
        Ok(Some(selection))
    }

    /// Of several platforms of one image, those wanted; a single image is
    /// taken whatever its platform.
    fn on_platforms(&self, found: &[usize], name: &str) -> Result<Vec<usize>, SourceError> {
        let images = &self.read_catalogue()?.images;
        let multi = found.len() > 1 || found.iter().any(|i| images[*i].platform_index.is_some());
        if !multi {
            return Ok(found.to_vec());
        }
        let taken: Vec<usize> = found
            .iter()
            .copied()
            .filter(|i| {
                self.platforms
                    .iter()
                    .any(|w| w.accepts(&images[*i].platform))
            })
            .collect();
        if taken.is_empty() {
            let held: Vec<String> = found
                .iter()
                .map(|i| images[*i].platform.to_string())
                .collect();
            let wanted: Vec<String> = self.platforms.iter().map(ToString::to_string).collect();
            return Err(SourceError::NotInArchive {
                refs: vec![format!(
                    "{} for {} (the archive has it for {}; choose with --platform)",
                    crate::display::escape(name),
                    wanted.join(", "),
                    crate::display::escape(&held.join(", "))
                )],
            });
        }
        Ok(taken)
    }

    fn resolved(&self, index: usize, refs: Vec<ImageRef>) -> Result<ResolvedImage, SourceError> {
        let catalogue = self.read_catalogue()?;
        let image = &catalogue.images[index];
        if refs.is_empty() {
            return Err(self.unnamed(image, catalogue.kind));
        }
        Ok(ResolvedImage {
            refs,
            id: Some(image.config_digest.clone()),
            layers: Some(
                image
                    .layers
                    .iter()
                    .map(|l| l.wanted.diff_id.clone())
                    .collect(),
            ),
        })
    }

    /// The refusal of an image without a name, with how to give it one.
    fn unnamed(&self, image: &ArchivedImage, kind: ArchiveKind) -> SourceError {
        let shown = self.path.display();
        let hint = match (kind, image.tags_only.first()) {
            (_, Some(tag)) => format!(
                "its archive names only the tag {}: pack it by a full name with that tag (airgap pack --archive {shown} REPO:{})",
                crate::display::escape(tag),
                crate::display::escape(tag)
            ),
            (_, None) => format!(
                "name it on the way in: airgap pack --archive {shown} --name {}=REPO:TAG",
                image.config_digest.short()
            ),
        };
        SourceError::Unnamed {
            id: image.config_digest.clone(),
            archive: shown.to_string(),
            hint,
        }
    }

    /// Pass 2: every wanted layer not already in `layers`.
    fn deliver(
        &self,
        wanted: &HashMap<String, WantedLayer>,
        layers: &mut dyn LayerSink,
        progress: &dyn Progress,
    ) -> Result<Delivered, SourceError> {
        if !self.path.is_dir() {
            let size = std::fs::metadata(&self.path).ok().map(|m| m.len());
            tracing::info!(
                layers = wanted.len(),
                "{}: reading the layers pack takes",
                crate::display::escape_path(&self.path)
            );
            progress.start(Task::Saving, size);
            let delivered = scan::deliver(&self.path, wanted, layers, progress);
            progress.finish();
            return delivered;
        }
        let dir = self.dir()?;
        let mut delivered = Delivered::new();
        for (path, layer) in wanted {
            let file = dir.open_file(path).map_err(SourceError::Read)?;
            let size = file.metadata().map_err(SourceError::Read)?.len();
            let content = crate::progress::ProgressReader::new(file, progress);
            delivered.insert(
                path.clone(),
                scan::deliver_layer(content, size, path, layer, layers)?,
            );
        }
        Ok(delivered)
    }
}

/// The hex an ID or ID prefix names (`sha256:4fe1…`, `4fe1…`; at least 4
/// digits), or `None` for anything else.
fn id_prefix(given: &str) -> Option<&str> {
    let hex = given.strip_prefix("sha256:").unwrap_or(given);
    (hex.len() >= 4
        && hex.len() <= 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then_some(hex)
}

impl Source for ArchiveSource {
    fn describe(&self) -> SourceInfo {
        SourceInfo {
            kind: self
                .catalogue
                .get()
                .map_or("docker-archive", |c| c.kind.name())
                .into(),
            engine: None,
            api_version: None,
        }
    }

    fn resolve(&self, refs: &[ImageRef]) -> Result<Vec<ResolvedImage>, SourceError> {
        let mut resolved: Vec<ResolvedImage> = Vec::new();
        let mut missing = Vec::new();
        for reference in refs {
            let Some(selection) = self.select(reference)? else {
                missing.push(
                    match self.names.iter().find(|n| n.name.name == reference.name) {
                        Some(given) => {
                            format!("{} (--name {}={})", given.pick, given.pick, reference.given)
                        }
                        None => reference.given.clone(),
                    },
                );
                continue;
            };
            for index in selection.images {
                let refs = selection
                    .refs
                    .clone()
                    .unwrap_or_else(|| vec![reference.clone()]);
                merge_resolved(&mut resolved, self.resolved(index, refs)?);
            }
        }
        if !missing.is_empty() {
            let held: Vec<String> = self
                .catalogue()?
                .unwrap_or_default()
                .iter()
                .map(HeldImage::shown)
                .collect();
            let holds = format!("the archive {} holds", self.path.display());
            return Err(SourceError::not_held(missing, &holds, &held));
        }
        Ok(resolved)
    }

    fn resolve_all(&self) -> Result<Option<Vec<ResolvedImage>>, SourceError> {
        let images = &self.read_catalogue()?.images;
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for (index, image) in images.iter().enumerate() {
            let group = image.platform_index.as_ref().and_then(|g| {
                groups
                    .iter_mut()
                    .find(|members| images[members[0]].platform_index.as_ref() == Some(g))
            });
            match group {
                Some(members) => members.push(index),
                None => groups.push(vec![index]),
            }
        }
        let mut resolved = Vec::new();
        for group in groups {
            let name = images[group[0]]
                .shown_refs()
                .first()
                .cloned()
                .unwrap_or_else(|| images[group[0]].config_digest.short().to_owned());
            for index in self.on_platforms(&group, &name)? {
                merge_resolved(
                    &mut resolved,
                    self.resolved(index, images[index].refs.clone())?,
                );
            }
        }
        Ok(Some(resolved))
    }

    fn notes(&self, refs: &[ImageRef]) -> Result<Vec<String>, SourceError> {
        let mut notes = Vec::new();
        for reference in refs {
            if let Some(note) = self.select(reference).ok().flatten().and_then(|s| s.note) {
                notes.push(note);
            }
        }
        Ok(notes)
    }

    fn catalogue(&self) -> Result<Option<Vec<HeldImage>>, SourceError> {
        let place = self.path.display().to_string();
        Ok(Some(
            self.read_catalogue()?
                .images
                .iter()
                .map(|image| HeldImage {
                    place: place.clone(),
                    refs: image.shown_refs(),
                    id: image.config_digest.clone(),
                    platform: image.platform.clone(),
                    layer_sizes: image.layers.iter().map(|l| l.size).collect(),
                })
                .collect(),
        ))
    }

    fn layer_sizes(&self, image: &ResolvedImage) -> Result<Option<Vec<u64>>, SourceError> {
        Ok(self
            .read_catalogue()?
            .images
            .iter()
            .find(|i| Some(&i.config_digest) == image.id.as_ref())
            .map(|i| i.layers.iter().map(|l| l.size).collect()))
    }

    fn export(
        &self,
        images: &[ResolvedImage],
        layers: &mut dyn LayerSink,
        progress: &dyn Progress,
    ) -> Result<Vec<ImageRecord>, SourceError> {
        let catalogue = self.read_catalogue()?;
        let mut picked: Vec<(&ArchivedImage, Vec<ImageRef>)> = Vec::new();
        for image in images {
            let found = catalogue
                .images
                .iter()
                .find(|i| Some(&i.config_digest) == image.id.as_ref())
                .ok_or_else(|| SourceError::NotInArchive {
                    refs: vec![
                        image
                            .refs
                            .first()
                            .map_or_else(String::new, |r| r.given.clone()),
                    ],
                })?;
            picked.push((found, image.refs.clone()));
        }
        // Layers the sink holds already, plain and named by their diff ID,
        // are not read again: their size is their stored size.
        let mut known: HashMap<Digest, u64> = HashMap::new();
        let mut wanted: HashMap<String, WantedLayer> = HashMap::new();
        for (image, _) in &picked {
            for layer in &image.layers {
                let diff_id = &layer.wanted.diff_id;
                let Some(path) = &layer.path else {
                    continue;
                };
                if layer.wanted.named.as_ref() == Some(diff_id) && layers.has_layer(diff_id) {
                    known.insert(diff_id.clone(), layer.size);
                } else {
                    wanted.insert(path.clone(), layer.wanted.clone());
                }
            }
        }
        let delivered = self.deliver(&wanted, layers, progress)?;
        let mut records: Vec<ImageRecord> = Vec::new();
        for (image, refs) in picked {
            let name = refs.first().map_or_else(
                || image.config_digest.short().to_owned(),
                |r| r.given.clone(),
            );
            let mut blobs = Vec::new();
            for (index, layer) in image.layers.iter().enumerate() {
                let diff_id = &layer.wanted.diff_id;
                let delivered = layer.path.as_ref().and_then(|path| delivered.get(path));
                let size = match (known.get(diff_id), delivered) {
                    (Some(size), _) => *size,
                    (None, Some((actual, size))) if actual == diff_id => *size,
                    (None, Some((actual, _))) => {
                        return Err(SourceError::LayerMismatch {
                            image: name,
                            index,
                            expected: diff_id.clone(),
                            actual: actual.clone(),
                        });
                    }
                    (None, None) => {
                        return Err(SourceError::LayerMissing {
                            image: name,
                            diff_id: diff_id.clone(),
                        });
                    }
                };
                blobs.push(BlobRef {
                    digest: diff_id.clone(),
                    size,
                });
            }
            match records
                .iter_mut()
                .find(|r| r.config_digest == image.config_digest)
            {
                Some(record) => {
                    for reference in refs {
                        if !record.refs.iter().any(|r| r.name == reference.name) {
                            record.refs.push(reference);
                        }
                    }
                }
                None => records.push(ImageRecord {
                    refs,
                    config: image.config.clone(),
                    config_digest: image.config_digest.clone(),
                    platform: image.platform.clone(),
                    layers: blobs,
                }),
            }
        }
        Ok(records)
    }
}

/// Adds `image`, or its references to the one with the same ID.
pub fn merge_resolved(resolved: &mut Vec<ResolvedImage>, image: ResolvedImage) {
    match resolved
        .iter_mut()
        .find(|r| r.id.is_some() && r.id == image.id)
    {
        Some(known) => {
            for reference in image.refs {
                if !known.refs.iter().any(|r| r.name == reference.name) {
                    known.refs.push(reference);
                }
            }
        }
        None => resolved.push(image),
    }
}
