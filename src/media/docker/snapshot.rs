//! A container's state as an image (`pack --container NAME[=REPO:TAG]`).
//! By default the engine commits the container (paused for that moment,
//! never stopped) as an untagged temporary image: the container's changes
//! become one layer on its image's layers, which stay shared, so deltas
//! still leave them out. That image is exported by ID through the Docker
//! source and removed from the engine afterwards (also on failure, and on
//! interrupt where the process still can). `--flatten` exports the
//! container's filesystem instead, as one layer without the engine's
//! placeholder files, with a config rebuilt from the container's inspect.
//! Volumes and bind mounts are never in either; each is named in a note.

use std::sync::Mutex;

use bollard::models::ContainerInspectResponse;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::bundle::SourceInfo;
use crate::digest::Digest;
use crate::files::cleanup::{ActionRegistration, on_interrupt};
use crate::image::change::{self, Change};
use crate::image::{ImageRecord, ImageRef, Platform};
use crate::media::docker::DaemonSource;
use crate::media::docker::engine::Engine;
use crate::media::rootfs::{Staging, image_config, stage_rootfs};
use crate::media::source::{LayerSink, ResolvedImage, Source, SourceError};
use crate::progress::{Progress, Task};

/// The tag a snapshot gets when `=REPO:TAG` is left out: the container's
/// name with this tag (`hand1` → `hand1:snapshot`), so it never takes the
/// place of the image the container was made from.
pub const DEFAULT_TAG: &str = "snapshot";

/// The config keys a snapshot keeps from its container.
const RUN_KEYS: &[&str] = &[
    "Cmd",
    "Entrypoint",
    "Env",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Volumes",
    "Labels",
    "Healthcheck",
    "StopSignal",
    "OnBuild",
    "Shell",
];

/// One `--container NAME|ID[=REPO:TAG]`.
#[derive(Clone, Debug)]
pub struct ContainerSpec {
    /// The container's name or ID, as given.
    pub container: String,
    /// The name the snapshot is to have; the default when `None`.
    pub reference: Option<ImageRef>,
}

/// How a snapshot is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Engine commit: the container's changes as one layer on its image's.
    Commit,
    /// Engine export: the whole filesystem as one layer.
    Flatten,
}

struct Snapshot {
    container: String,
    reference: ImageRef,
    inspected: ContainerInspectResponse,
    platform: Platform,
}

/// A temporary image committed on the engine, removed when dropped.
struct Committed {
    engine: Engine,
    container: String,
    id: String,
    diff_ids: Vec<Digest>,
    _on_interrupt: ActionRegistration,
}

impl Drop for Committed {
    fn drop(&mut self) {
        let _ = self.engine.remove_image(&self.id);
    }
}

/// Containers' states, as images.
pub struct ContainerSource {
    daemon: DaemonSource,
    snapshots: Vec<Snapshot>,
    changes: Vec<Change>,
    route: Route,
    notes: Vec<String>,
    committed: Mutex<Vec<Committed>>,
}

impl ContainerSource {
    /// Looks every container up (one error names all that are missing),
    /// names each snapshot, and notes what it will not carry.
    pub fn open(
        engine: Engine,
        specs: &[ContainerSpec],
        changes: Vec<Change>,
        route: Route,
    ) -> Result<Self, SourceError> {
        let mut snapshots = Vec::new();
        let mut missing = Vec::new();
        let mut notes = Vec::new();
        for spec in specs {
            let Some(inspected) = engine.inspect_container(&spec.container)? else {
                missing.push(spec.container.clone());
                continue;
            };
            let name = container_name(&inspected, &spec.container);
            let reference = match &spec.reference {
                Some(reference) => reference.clone(),
                None => default_reference(&name)?,
            };
            let image = match inspected.image.as_deref() {
                Some(id) => engine.image_details(id)?,
                None => None,
            };
            notes.extend(config_notes(&name, &inspected, image.as_ref()));
            notes.extend(mount_notes(&name, &inspected));
            if route == Route::Flatten {
                notes.push(format!(
                    "{name} is flattened into one layer: it shares no layers with its image, so nothing of it can be left out of a delta"
                ));
            }
            let platform = image.as_ref().map(platform_of).unwrap_or_default();
            snapshots.push(Snapshot {
                container: spec.container.clone(),
                reference,
                inspected,
                platform,
            });
        }
        if !missing.is_empty() {
            return Err(SourceError::ContainersMissing {
                containers: missing,
            });
        }
        Ok(Self {
            daemon: DaemonSource::new(engine),
            snapshots,
            changes,
            route,
            notes,
            committed: Mutex::new(Vec::new()),
        })
    }

    /// The references the snapshots are to have, in the order given.
    pub fn references(&self) -> Vec<ImageRef> {
        self.snapshots.iter().map(|s| s.reference.clone()).collect()
    }

    /// What the snapshots leave out or change, one line each.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    fn snapshot_for(&self, reference: &ImageRef) -> Option<&Snapshot> {
        self.snapshots
            .iter()
            .find(|s| s.reference.given == reference.given)
    }

    fn engine(&self) -> &Engine {
        self.daemon.engine()
    }

    /// Commits the container as a temporary image, registered for removal.
    /// Resolving twice (a combined source asks each member) commits once:
    /// each commit pauses the container.
    fn commit(&self, snapshot: &Snapshot) -> Result<(String, Vec<Digest>), SourceError> {
        if let Some(done) = self
            .lock()
            .iter()
            .find(|c| c.container == snapshot.container)
        {
            return Ok((done.id.clone(), done.diff_ids.clone()));
        }
        let id = self.engine().commit(&snapshot.container)?;
        let engine = self.engine().clone();
        let removed = id.clone();
        let mut committed = Committed {
            engine: self.engine().clone(),
            container: snapshot.container.clone(),
            id: id.clone(),
            diff_ids: Vec::new(),
            _on_interrupt: on_interrupt(move || {
                let _ = engine.remove_image(&removed);
            }),
        };
        let image = self.engine().inspect(&id)?.ok_or_else(|| {
            SourceError::Engine(crate::media::docker::engine::EngineError::Unexpected {
                reason: format!("the image committed from {} vanished", snapshot.container),
            })
        })?;
        committed.diff_ids = image.diff_ids.clone();
        self.lock().push(committed);
        Ok((id, image.diff_ids))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Committed>> {
        self.committed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn export_committed(
        &self,
        images: &[ResolvedImage],
        layers: &mut dyn LayerSink,
        progress: &dyn Progress,
    ) -> Result<Vec<ImageRecord>, SourceError> {
        let names: Vec<String> = images
            .iter()
            .filter_map(|i| i.id.as_ref().map(ToString::to_string))
            .collect();
        let mut records = self
            .daemon
            .export_saving(images, &names, layers, progress)?;
        if !self.changes.is_empty() {
            for record in &mut records {
                record.config = with_changes(&record.config, &self.changes)?;
                record.config_digest = Digest::of(&record.config);
            }
        }
        Ok(records)
    }

    fn export_flattened(
        &self,
        snapshot: &Snapshot,
        refs: &[ImageRef],
        layers: &mut dyn LayerSink,
        progress: &dyn Progress,
    ) -> Result<ImageRecord, SourceError> {
        progress.start(Task::Saving, None);
        let layer = stage_rootfs(self.engine().export_container(&snapshot.container), layers);
        progress.finish();
        let layer = layer.map_err(|e| match e {
            Staging::Read(source) => SourceError::Read(source),
            Staging::Failed(error) => error,
        })?;
        let mut run = run_config(&snapshot.inspected);
        change::apply(&mut run, &self.changes);
        let config = image_config(
            run,
            &layer.digest,
            &snapshot.platform,
            OffsetDateTime::now_utc(),
            &format!("airgap pack --container {} --flatten", snapshot.container),
        );
        Ok(ImageRecord {
            refs: refs.to_vec(),
            config_digest: Digest::of(&config),
            config,
            platform: snapshot.platform.clone(),
            layers: vec![layer],
        })
    }
}

impl Source for ContainerSource {
    fn describe(&self) -> SourceInfo {
        let mut info = self.daemon.describe();
        info.kind = "docker-container".into();
        info
    }

    fn resolve(&self, refs: &[ImageRef]) -> Result<Vec<ResolvedImage>, SourceError> {
        let missing: Vec<String> = refs
            .iter()
            .filter(|r| self.snapshot_for(r).is_none())
            .map(|r| r.given.clone())
            .collect();
        if !missing.is_empty() {
            return Err(SourceError::Missing { refs: missing });
        }
        let mut resolved = Vec::new();
        for reference in refs {
            let snapshot = self.snapshot_for(reference).expect("checked above");
            let (id, layers) = match self.route {
                Route::Commit => {
                    let (id, layers) = self.commit(snapshot)?;
                    (
                        Some(id.parse().map_err(|_| unexpected_id(&id))?),
                        Some(layers),
                    )
                }
                Route::Flatten => (None, None),
            };
            resolved.push(ResolvedImage {
                refs: vec![reference.clone()],
                id,
                layers,
            });
        }
        Ok(resolved)
    }

    fn resolve_all(&self) -> Result<Option<Vec<ResolvedImage>>, SourceError> {
        self.resolve(&self.references()).map(Some)
    }

    fn export(
        &self,
        images: &[ResolvedImage],
        layers: &mut dyn LayerSink,
        progress: &dyn Progress,
    ) -> Result<Vec<ImageRecord>, SourceError> {
        let records = match self.route {
            Route::Commit => self.export_committed(images, layers, progress),
            Route::Flatten => images
                .iter()
                .map(|image| {
                    let snapshot = image
                        .refs
                        .first()
                        .and_then(|r| self.snapshot_for(r))
                        .ok_or_else(|| SourceError::Missing {
                            refs: image.refs.iter().map(|r| r.given.clone()).collect(),
                        })?;
                    self.export_flattened(snapshot, &image.refs, layers, progress)
                })
                .collect(),
        };
        // The temporary images have served; the engine keeps none of them.
        self.lock().clear();
        records
    }

    fn supply_layers(
        &self,
        digests: &std::collections::HashSet<Digest>,
        progress: &dyn Progress,
    ) -> Result<crate::store::StagedLayers, SourceError> {
        self.daemon.supply_layers(digests, progress)
    }
}

fn unexpected_id(id: &str) -> SourceError {
    SourceError::Engine(crate::media::docker::engine::EngineError::Unexpected {
        reason: format!("the engine committed an image with ID {id:?}"),
    })
}

/// The container's name without Docker's leading slash, or what was given.
fn container_name(inspected: &ContainerInspectResponse, given: &str) -> String {
    inspected
        .name
        .as_deref()
        .map(|n| n.trim_start_matches('/'))
        .filter(|n| !n.is_empty())
        .unwrap_or(given)
        .to_owned()
}

/// `NAME:snapshot`, refused (with the way out) where the name cannot be a
/// repository.
fn default_reference(name: &str) -> Result<ImageRef, SourceError> {
    ImageRef::parse(&format!("{}:{DEFAULT_TAG}", name.to_ascii_lowercase())).map_err(|_| {
        SourceError::Change(change::ChangeError {
            given: format!("--container {name}"),
            reason: format!(
                "the container's name cannot name an image; give one: --container {name}=REPO:TAG"
            ),
        })
    })
}

fn platform_of(image: &bollard::models::ImageInspect) -> Platform {
    Platform {
        os: image.os.clone().unwrap_or_else(|| "linux".into()),
        architecture: image.architecture.clone().unwrap_or_default(),
        variant: image.variant.clone().filter(|v| !v.is_empty()),
    }
}

/// The container's own run config, as an image config's `config` holds it.
fn run_config(inspected: &ContainerInspectResponse) -> Map<String, Value> {
    let all = inspected
        .config
        .as_ref()
        .and_then(|c| serde_json::to_value(c).ok())
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    all.into_iter()
        .filter(|(key, value)| RUN_KEYS.contains(&key.as_str()) && !value.is_null())
        .collect()
}

/// The committed config with `changes` applied to its `config` object.
fn with_changes(config: &[u8], changes: &[Change]) -> Result<Vec<u8>, SourceError> {
    let mut parsed: Value = serde_json::from_slice(config).map_err(|e| SourceError::Malformed {
        reason: format!("the committed image's config: {e}"),
    })?;
    let Some(object) = parsed.as_object_mut() else {
        return Err(SourceError::Malformed {
            reason: "the committed image's config is not an object".into(),
        });
    };
    let run = object
        .entry("config")
        .or_insert_with(|| Value::Object(Map::new()));
    if !run.is_object() {
        *run = Value::Object(Map::new());
    }
    change::apply(run.as_object_mut().expect("just made an object"), changes);
    Ok(serde_json::to_vec(&parsed).expect("a JSON value serialises"))
}

/// Where the container runs otherwise than its image would: the snapshot
/// keeps the container's way, which may surprise whoever runs the image.
fn config_notes(
    name: &str,
    container: &ContainerInspectResponse,
    image: Option<&bollard::models::ImageInspect>,
) -> Vec<String> {
    let (Some(container), Some(image)) = (
        container.config.as_ref(),
        image.and_then(|i| i.config.as_ref()),
    ) else {
        return Vec::new();
    };
    let image_name = container
        .image
        .clone()
        .unwrap_or_else(|| "its image".into());
    let list = |v: &Option<Vec<String>>| match v.as_deref() {
        None | Some([]) => "nothing".to_owned(),
        Some(words) => serde_json::to_string(words).unwrap_or_default(),
    };
    let user = |v: &Option<String>| match v.as_deref() {
        None | Some("") => "root (none set)".to_owned(),
        Some(user) => user.to_owned(),
    };
    let mut notes = Vec::new();
    let mut differs = |what: &str, key: &str, mine: String, theirs: String| {
        if mine != theirs {
            notes.push(format!(
                "{name} runs with {what} {mine}, its image ({image_name}) with {theirs}; the snapshot keeps the container's (change it with --change '{key} ...')"
            ));
        }
    };
    differs(
        "entrypoint",
        "ENTRYPOINT",
        list(&container.entrypoint),
        list(&image.entrypoint),
    );
    differs("command", "CMD", list(&container.cmd), list(&image.cmd));
    differs("user", "USER", user(&container.user), user(&image.user));
    notes
}

/// Every volume and bind mount: their data is not in the container's
/// filesystem, so no snapshot holds it.
fn mount_notes(name: &str, container: &ContainerInspectResponse) -> Vec<String> {
    container
        .mounts
        .iter()
        .flatten()
        .map(|mount| {
            let destination = mount.destination.clone().unwrap_or_default();
            let source = mount.source.clone().unwrap_or_default();
            match mount.typ.as_deref() {
                Some("volume") => {
                    let volume = mount.name.clone().unwrap_or_else(|| source.clone());
                    format!(
                        "{name}'s volume {volume} (at {destination}) is not in the snapshot; carry its data apart, e.g. docker run --rm -v {volume}:/v -w /v alpine tar -cf - . > {}.tar",
                        short(&volume)
                    )
                }
                Some("bind") => format!(
                    "{name}'s bind mount {source} (at {destination}) is not in the snapshot; carry that directory apart, e.g. tar -C {source} -cf data.tar ."
                ),
                _ => format!(
                    "{name}'s mount at {destination} is not in the snapshot"
                ),
            }
        })
        .collect()
}

/// A volume's name, shortened where it is an anonymous volume's 64 hex digits.
fn short(volume: &str) -> &str {
    if volume.len() == 64 {
        &volume[..12]
    } else {
        volume
    }
}
