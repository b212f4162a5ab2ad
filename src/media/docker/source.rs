//! Images from a running engine: looked up with inspect, read in place
//! from its image store where this process can (`content.rs`, `graph.rs`),
//! else exported with `docker save` (two requests side by side where the
//! engine stages a whole export before sending it: Docker's graph drivers
//! and Podman) and read as it streams by the archive reader.

use std::collections::{HashMap, HashSet};
use std::sync::Once;

use crate::bundle::SourceInfo;
use crate::digest::Digest;
use crate::display::{escape, escape_all};
use crate::image::{ImageRecord, ImageRef};
use crate::media::docker::engine::{Engine, EngineImage, ImageStore};
use crate::media::docker::extract::{ExtractError, LocalImages, extract, save_and_extract};
use crate::progress::{Progress, StartOnFirstByte, Task};
use crate::store::StagedLayers;

use crate::media::archive::{self, Identity, WantedImage};
use crate::media::docker::in_place::InPlace;
use crate::media::source::{LayerSink, ResolvedImage, SharedSink, Source, SourceError};

/// Images from the engine behind `engine`.
pub struct DaemonSource {
    engine: Engine,
    reads_store_in_place: bool,
}

impl DaemonSource {
    /// A source reading from `engine`: from its image store in place (its
    /// containerd content store, its overlay2 store) where this process can
    /// read it, else through its export.
    pub fn new(engine: Engine) -> Self {
        Self {
            engine,
            reads_store_in_place: true,
        }
    }

    /// A source that always exports through the engine, never reading its
    /// image store in place.
    pub fn exporting_only(mut self) -> Self {
        self.reads_store_in_place = false;
        self
    }

    /// The engine images come from.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Inspects every reference; one error names all that are missing.
    fn inspect_all(&self, refs: &[ImageRef]) -> Result<Vec<(ImageRef, EngineImage)>, SourceError> {
        let given: Vec<&str> = refs.iter().map(|r| r.given.as_str()).collect();
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for (reference, image) in refs.iter().zip(self.engine.inspect_many(&given)?) {
            match image {
                Some(image) => found.push((reference.clone(), image)),
                None => missing.push(self.explain_missing(reference)?),
            }
        }
        if missing.is_empty() {
            Ok(found)
        } else {
            Err(SourceError::Missing { refs: missing })
        }
    }
}

impl DaemonSource {
    /// A missing reference as given; one named without a tag also says
    /// that `:latest` was assumed and which tags of it the engine holds,
    /// since the operator most likely meant one of those.
    fn explain_missing(&self, reference: &ImageRef) -> Result<String, SourceError> {
        let given = reference.given.clone();
        let Some((repository, _)) = reference.repo_and_tag().filter(|_| reference.tag_assumed())
        else {
            return Ok(given);
        };
        let tags = self.engine.repository_tags(&repository)?;
        let held = if tags.is_empty() {
            format!("the engine holds no tag of {repository}")
        } else {
            format!("the engine holds {}", tags.join(", "))
        };
        Ok(format!(
            "{given} (no tag given, so :latest was assumed; {held})"
        ))
    }

    /// Pulls, through the engine, every reference it lacks; returns those pulled.
    pub fn pull_missing(
        &self,
        refs: &[ImageRef],
        progress: &dyn Progress,
    ) -> Result<Vec<String>, SourceError> {
        let mut pulled = Vec::new();
        for reference in refs {
            if self.engine.inspect(&reference.given)?.is_none() {
                tracing::info!("engine: pull {} (not held)", escape(&reference.name));
                progress.start(Task::Saving, None);
                let result = self.engine.pull(&reference.name);
                progress.finish();
                result?;
                pulled.push(reference.given.clone());
            }
        }
        Ok(pulled)
    }
}

impl Source for DaemonSource {
    fn describe(&self) -> SourceInfo {
        let info = self.engine.info().ok();
        SourceInfo {
            kind: "docker-engine".into(),
            engine: info.as_ref().map(|i| i.product.clone()),
            api_version: info.map(|i| i.api_version),
        }
    }

    fn reads_from_engine(&self) -> bool {
        true
    }

    fn config_digests(&self, images: &[ResolvedImage]) -> HashMap<Digest, Digest> {
        // Only the engine's own containerd can tell: its API has no config
        // digest for an image it names by its manifest.
        let Some(address) = self.engine.info().ok().and_then(|info| info.containerd) else {
            return HashMap::new();
        };
        match crate::media::containerd::Ctr::new(&address) {
            Ok(ctr) => crate::media::containerd::manifest_configs(
                &ctr,
                images.iter().filter_map(|image| image.id.as_ref()),
            ),
            Err(error) => {
                tracing::info!(
                    "engine: its containerd is not reachable ({error}); images it names by manifest are exported"
                );
                HashMap::new()
            }
        }
    }

    fn notes(&self, refs: &[ImageRef]) -> Result<Vec<String>, SourceError> {
        if self.engine.info()?.store != ImageStore::Podman {
            return Ok(Vec::new());
        }
        let mut notes = Vec::new();
        for reference in refs {
            let Some(local) = reference.podman_local() else {
                continue;
            };
            let Some(image) = self.engine.inspect(&reference.given)? else {
                continue;
            };
            // Podman resolved the short name to its own local name.
            let named = |name: &str| image.repo_tags.iter().any(|t| t == name);
            if named(&local.name) && !named(&reference.name) {
                notes.push(format!(
                    "{} is Podman's {}; it arrives as {} ({}), which is what Docker and the kubelet resolve; name it {} to keep Podman's name",
                    reference.given, local.given, reference.given, reference.name, local.given
                ));
            }
        }
        Ok(notes)
    }

    fn resolve(&self, refs: &[ImageRef]) -> Result<Vec<ResolvedImage>, SourceError> {
        let mut resolved: Vec<ResolvedImage> = Vec::new();
        for (reference, image) in self.inspect_all(refs)? {
            match resolved
                .iter_mut()
                .find(|r| r.id.as_ref() == Some(&image.id))
            {
                Some(existing) => existing.refs.push(reference),
                None => resolved.push(ResolvedImage {
                    refs: vec![reference],
                    id: Some(image.id),
                    layers: Some(image.diff_ids),
                }),
            }
        }
        Ok(resolved)
    }

    fn layer_sizes(&self, image: &ResolvedImage) -> Result<Option<Vec<u64>>, SourceError> {
        let (Some(reference), Some(layers)) = (image.refs.first(), &image.layers) else {
            return Ok(None);
        };
        Ok(self.engine.layer_sizes(&reference.given, layers.len())?)
    }

    fn image_size(&self, image: &ResolvedImage) -> Result<Option<u64>, SourceError> {
        let Some(reference) = image.refs.first() else {
            return Ok(None);
        };
        Ok(self.engine.image_size(&reference.given)?)
    }

    fn supply_layers(
        &self,
        digests: &HashSet<Digest>,
        progress: &dyn Progress,
    ) -> Result<StagedLayers, SourceError> {
        if digests.is_empty() {
            return Ok(StagedLayers::none()?);
        }
        let local = LocalImages::take(&self.engine).map_err(from_extract)?;
        let held: HashSet<Digest> = digests
            .iter()
            .filter(|d| local.has_layer(d))
            .cloned()
            .collect();
        match self.reads_store_in_place {
            true => extract(&self.engine, &local, &held, progress),
            false => save_and_extract(&self.engine, &local, &held, progress),
        }
        .map_err(from_extract)
    }

    fn export(
        &self,
        images: &[ResolvedImage],
        layers: &mut dyn LayerSink,
        progress: &dyn Progress,
    ) -> Result<Vec<ImageRecord>, SourceError> {
        if self.reads_store_in_place
            && let Some(found) = InPlace::find(&self.engine, images)?
        {
            return found.read(layers, progress);
        }
        let sized = self.sized_layers(images);
        let groups = match self.side_by_side(images, sized.as_deref())? {
            Some(groups) => groups,
            None => vec![ExportGroup {
                names: names_of(images),
                size: sized.as_deref().and_then(union_size),
                images: images.to_vec(),
            }],
        };
        self.export_groups(images, &groups, layers, progress)
    }
}

impl DaemonSource {
    /// Exports `images` with one `docker save` of `names`, which may be
    /// image IDs where the images have no tag on the engine (a snapshot's
    /// temporary image); each record takes its image's references.
    pub fn export_saving(
        &self,
        images: &[ResolvedImage],
        names: &[String],
        layers: &mut dyn LayerSink,
        progress: &dyn Progress,
    ) -> Result<Vec<ImageRecord>, SourceError> {
        let size = self.sized_layers(images).as_deref().and_then(union_size);
        let group = ExportGroup {
            images: images.to_vec(),
            names: names.to_vec(),
            size,
        };
        self.export_groups(images, &[group], layers, progress)
    }

    /// Exports each of `groups` with one `docker save`, side by side where
    /// there are two, into `layers`; the records come in the order of `images`.
    fn export_groups(
        &self,
        images: &[ResolvedImage],
        groups: &[ExportGroup],
        layers: &mut dyn LayerSink,
        progress: &dyn Progress,
    ) -> Result<Vec<ImageRecord>, SourceError> {
        // Layers two groups hold arrive twice.
        let total: Option<u64> = groups.iter().map(|g| g.size).sum();
        // The engine may stage the whole export before sending a byte
        // (Docker 20.10 does): say so until the first byte arrives.
        progress.start(Task::Preparing, total);
        let first_byte = Once::new();
        let shown = Shown {
            progress,
            first_byte: &first_byte,
            total,
        };
        let records = match groups {
            [group] => self.save_and_read(group, layers, &shown),
            _ => self.read_side_by_side(images, groups, layers, &shown),
        };
        progress.finish();
        records
    }

    /// One `docker save` of `group`, read into `layers`. A layer that was
    /// only hashed ([`LayerSink::skims`]) but turns out to be needed makes
    /// the export run again, staging every layer.
    fn save_and_read(
        &self,
        group: &ExportGroup,
        layers: &mut dyn LayerSink,
        shown: &Shown<'_>,
    ) -> Result<Vec<ImageRecord>, SourceError> {
        let names = &group.names;
        let (wanted, expected_layers) = wanted(&group.images);
        tracing::info!(
            "engine: save {} ({})",
            escape_all(names, ", "),
            group.size.map_or_else(
                || "size unknown".to_owned(),
                |t| format!("about {t} bytes of layers")
            )
        );
        let staging = layers.staging_dir().to_owned();
        let mut skim = true;
        loop {
            let contents = archive::read_archive(
                StartOnFirstByte::new(
                    self.engine.save(names),
                    shown.progress,
                    Task::Saving,
                    shown.total,
                    shown.first_byte,
                ),
                &staging,
                &expected_layers,
                layers,
                skim,
                shown.progress,
            );
            match contents {
                Err(SourceError::SkimmedNeeded { digest }) if skim => {
                    tracing::info!(
                        "engine: layer {digest} has the size of a layer the bundle leaves out but is another; saving {} again",
                        escape_all(names, ", ")
                    );
                    skim = false;
                }
                contents => {
                    tracing::debug!("engine: the export's last byte arrived");
                    return archive::records(&mut contents?, &wanted, layers);
                }
            }
        }
    }

    /// Reads an export of each of `groups` on a thread of its own into
    /// `layers`; the records come in the order of `images`.
    fn read_side_by_side(
        &self,
        images: &[ResolvedImage],
        groups: &[ExportGroup],
        layers: &mut dyn LayerSink,
        shown: &Shown<'_>,
    ) -> Result<Vec<ImageRecord>, SourceError> {
        let shared = SharedSink::new(layers);
        let read: Vec<Result<Vec<ImageRecord>, SourceError>> = std::thread::scope(|scope| {
            let readers: Vec<_> = groups
                .iter()
                .map(|group| {
                    let shared = &shared;
                    scope.spawn(move || self.save_and_read(group, &mut shared.handle(), shown))
                })
                .collect();
            readers
                .into_iter()
                .map(|reader| reader.join().expect("an export reader does not panic"))
                .collect()
        });
        let mut records = Vec::new();
        for group in read {
            records.extend(group?);
        }
        let position = |record: &ImageRecord| {
            images
                .iter()
                .position(|image| image.refs.iter().any(|r| record.refs.contains(r)))
        };
        records.sort_by_key(position);
        Ok(records)
    }

    /// Two groups of `images` (`sized`: their layers with sizes) to export
    /// side by side, each with the bytes it stages, where the engine stages
    /// a whole export before its first byte and the two are worth it; `None`
    /// for one export.
    fn side_by_side(
        &self,
        images: &[ResolvedImage],
        sized: Option<&[SizedLayers]>,
    ) -> Result<Option<Vec<ExportGroup>>, SourceError> {
        let Some(sized) = sized.filter(|_| images.len() >= 2) else {
            return Ok(None);
        };
        // The containerd store streams from its first byte, and its export
        // alone keeps more than a core busy: two would only compete.
        if self.engine.info()?.store == ImageStore::Containerd {
            return Ok(None);
        }
        Ok(split_for_staging(sized).map(|groups| {
            groups
                .into_iter()
                .map(|group| {
                    let images: Vec<ResolvedImage> =
                        group.iter().map(|&i| images[i].clone()).collect();
                    ExportGroup {
                        size: union_size(
                            &group.iter().map(|&i| sized[i].clone()).collect::<Vec<_>>(),
                        ),
                        names: names_of(&images),
                        images,
                    }
                })
                .collect()
        }))
    }

    /// Each image's layers with their sizes, as the engine's history tells
    /// them; `None` where it does not for one of them. Sizes only shape the
    /// exports and their progress, so an engine that fails to tell them
    /// (Podman 4.3 does for a history entry without a time) costs no more.
    fn sized_layers(&self, images: &[ResolvedImage]) -> Option<Vec<SizedLayers>> {
        let mut sized = Vec::new();
        for image in images {
            let layers = image.layers.as_ref()?;
            let sizes = match self.layer_sizes(image) {
                Ok(sizes) => sizes?,
                Err(error) => {
                    tracing::debug!("engine: no layer sizes from its history: {error}");
                    return None;
                }
            };
            sized.push(layers.iter().cloned().zip(sizes).collect());
        }
        Some(sized)
    }
}

/// The bytes of `images`' layers (each with its size), each layer counted
/// once, as an export carries them; `None` for none.
fn union_size(images: &[SizedLayers]) -> Option<u64> {
    let layers: HashMap<&Digest, u64> = images.iter().flatten().map(|(d, s)| (d, *s)).collect();
    let total: u64 = layers.values().sum();
    (total > 0).then_some(total)
}

/// One image's layers with their sizes, bottom first.
type SizedLayers = Vec<(Digest, u64)>;

/// Images exported in one request, the names it asks for them by, and
/// the bytes of layers they hold.
struct ExportGroup {
    images: Vec<ResolvedImage>,
    names: Vec<String>,
    size: Option<u64>,
}

/// How exports show their progress: one bar for all the exports of a
/// pack, which starts saving on the first byte of any.
struct Shown<'a> {
    progress: &'a dyn Progress,
    first_byte: &'a Once,
    total: Option<u64>,
}

/// The largest share of the whole export one of two side-by-side exports
/// may stage for the split to be worth its cost: layers both groups hold
/// are staged twice, and both exports compete with compression for the
/// machine.
const SIDE_BY_SIDE_SHARE: f64 = 0.85;

/// Images whose every split into two is tried (2^15 splits take a few
/// milliseconds); further images join the group they grow the least.
const SPLIT_EXACTLY: usize = 16;

/// Splits images (each a list of layers with sizes) into two groups whose
/// exports the engine stages side by side, the one staging more as small as
/// possible, then the two together. `None` when the larger group would
/// stage more than [`SIDE_BY_SIDE_SHARE`] of the whole.
fn split_for_staging(images: &[SizedLayers]) -> Option<Vec<Vec<usize>>> {
    if images.len() < 2 {
        return None;
    }
    let staging = Staging::of(images);
    let mut order: Vec<usize> = (0..images.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(staging.stages(&[i])));
    let (exact, rest) = order.split_at(order.len().min(SPLIT_EXACTLY));
    let mut groups = staging.best_split(exact);
    for &image in rest {
        let grows = |group: &[usize]| {
            let mut joined = group.to_vec();
            joined.push(image);
            staging.stages(&joined) - staging.stages(group)
        };
        let chosen = usize::from(grows(&groups[1]) < grows(&groups[0]));
        groups[chosen].push(image);
    }
    let [a, b] = [staging.stages(&groups[0]), staging.stages(&groups[1])];
    let everything: Vec<usize> = (0..images.len()).collect();
    let worth_it = (a.max(b) as f64) <= SIDE_BY_SIDE_SHARE * staging.stages(&everything) as f64;
    worth_it.then(|| groups.to_vec())
}

/// The layers each image stages, by index, and their sizes.
struct Staging {
    images: Vec<Vec<usize>>,
    sizes: Vec<u64>,
}

impl Staging {
    fn of(images: &[SizedLayers]) -> Self {
        let mut index: HashMap<&Digest, usize> = HashMap::new();
        let mut sizes = Vec::new();
        let images = images
            .iter()
            .map(|layers| {
                layers
                    .iter()
                    .map(|(digest, size)| {
                        *index.entry(digest).or_insert_with(|| {
                            sizes.push(*size);
                            sizes.len() - 1
                        })
                    })
                    .collect()
            })
            .collect();
        Self { images, sizes }
    }

    /// The bytes an export of `members` stages, each layer once.
    fn stages(&self, members: &[usize]) -> u64 {
        let mut seen = vec![false; self.sizes.len()];
        let mut total = 0;
        for layer in members.iter().flat_map(|&i| &self.images[i]) {
            if !std::mem::replace(&mut seen[*layer], true) {
                total += self.sizes[*layer];
            }
        }
        total
    }

    /// The split of `images` (two or more) whose larger group stages
    /// least, then both together least; every split is tried.
    fn best_split(&self, images: &[usize]) -> [Vec<usize>; 2] {
        let (last, others) = images.split_last().expect("two or more images");
        let mut best: (Option<(u64, u64)>, [Vec<usize>; 2]) = Default::default();
        // The last image stays in the second group: each split is tried once.
        for mask in 1..1u32 << others.len() {
            let mut groups: [Vec<usize>; 2] = [Vec::new(), vec![*last]];
            for (bit, &image) in others.iter().enumerate() {
                groups[usize::from(mask & (1 << bit) == 0)].push(image);
            }
            let [a, b] = [self.stages(&groups[0]), self.stages(&groups[1])];
            let score = (a.max(b), a + b);
            if best.0.is_none_or(|kept| score < kept) {
                best = (Some(score), groups);
            }
        }
        best.1
    }
}

/// The names to save `images` by: every reference, as given.
fn names_of(images: &[ResolvedImage]) -> Vec<String> {
    let mut names: Vec<String> = images
        .iter()
        .flat_map(|i| &i.refs)
        .map(|r| r.given.clone())
        .collect();
    names.dedup();
    names
}

/// What the export must hold of `images`, and the layers they list.
fn wanted(images: &[ResolvedImage]) -> (Vec<WantedImage>, HashSet<Digest>) {
    let mut wanted: Vec<WantedImage> = Vec::new();
    let mut expected_layers: HashSet<Digest> = HashSet::new();
    for image in images {
        // Resolved here, an image always has both; by name otherwise.
        let identity = match (&image.id, &image.layers) {
            (Some(id), Some(diff_ids)) => {
                expected_layers.extend(diff_ids.iter().cloned());
                Identity::Engine {
                    id: id.clone(),
                    diff_ids: diff_ids.clone(),
                }
            }
            _ => Identity::Tag,
        };
        wanted.push(WantedImage {
            refs: image.refs.clone(),
            identity,
        });
    }
    (wanted, expected_layers)
}

/// A failure to take layers from the engine, as the source's own error.
fn from_extract(error: ExtractError) -> SourceError {
    match error {
        ExtractError::Engine(error) => SourceError::Engine(error),
        ExtractError::Save(error) | ExtractError::InPlace(error) => *error,
        ExtractError::Staging(error) => SourceError::Staging(error),
        ExtractError::NotFound { layer } => SourceError::Malformed {
            reason: format!("the engine's save did not contain layer {layer}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(n: u8, size: u64) -> (Digest, u64) {
        (Digest::of(&[n]), size)
    }

    #[test]
    fn images_split_so_the_larger_export_stages_least() {
        let base = layer(0, 100);
        // A large image alone, the rest (sharing the base) beside it.
        let images = vec![
            vec![base.clone(), layer(1, 20)],
            vec![base.clone(), layer(2, 400)],
            vec![base.clone(), layer(3, 40)],
            vec![base.clone(), layer(3, 40), layer(4, 30)],
        ];
        let groups = split_for_staging(&images).unwrap();
        assert_eq!(groups.len(), 2);
        assert!(groups.contains(&vec![1]), "{groups:?}");
        let mut rest = groups.into_iter().find(|g| g != &vec![1]).unwrap();
        rest.sort();
        assert_eq!(rest, vec![0, 2, 3]);
    }

    #[test]
    fn images_on_one_runtime_stay_together_so_it_is_staged_once() {
        // Stack b's shape: a JRE under two images of jars, Node.js under
        // one, and two images on the base alone.
        let (base, jre, node) = (layer(0, 117), layer(1, 230), layer(2, 99));
        let images = vec![
            vec![base.clone(), jre.clone()],
            vec![base.clone(), node.clone()],
            vec![base.clone(), jre.clone(), layer(3, 19)],
            vec![base.clone(), jre, layer(4, 61)],
            vec![base.clone(), node, layer(5, 111)],
            vec![base.clone(), layer(6, 139)],
            vec![base, layer(7, 12)],
        ];
        let groups = split_for_staging(&images).unwrap();
        let group_of = |image: usize| groups.iter().position(|g| g.contains(&image));
        assert!(
            [2, 3].iter().all(|&i| group_of(i) == group_of(0)),
            "{groups:?}"
        );
        assert_eq!(group_of(4), group_of(1), "{groups:?}");
        assert_ne!(group_of(0), group_of(1), "{groups:?}");
        // 117 + 230 + 19 + 61 + 12 beside 117 + 99 + 111 + 139.
        let staged = |g: &Vec<usize>| Staging::of(&images).stages(g);
        assert_eq!(groups.iter().map(staged).max(), Some(466));
    }

    #[test]
    fn images_past_those_split_exactly_join_the_group_they_grow_least() {
        let images: Vec<SizedLayers> = (0..20u8)
            .map(|i| vec![layer(100 + i % 2, 1000), layer(i, 10 + u64::from(i))])
            .collect();
        let groups = split_for_staging(&images).unwrap();
        for group in groups {
            let bases: HashSet<u8> = group.iter().map(|&i| i as u8 % 2).collect();
            assert_eq!(bases.len(), 1, "each base is staged once: {group:?}");
        }
    }

    #[test]
    fn images_that_share_most_of_their_bytes_are_exported_together() {
        let base = layer(0, 1000);
        let images = vec![
            vec![base.clone(), layer(1, 50)],
            vec![base.clone(), layer(2, 60)],
            vec![base, layer(3, 70)],
        ];
        assert_eq!(split_for_staging(&images), None);
        assert_eq!(split_for_staging(&[vec![layer(1, 10)]]), None);
    }
}
