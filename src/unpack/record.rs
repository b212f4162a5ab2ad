//! What unpack has done to each engine: the bundles applied, and where each
//! tag last moved and by which bundle. It is what makes a rollback visible
//! (TUF's "rollback attack"): an old, validly signed bundle replayed to move
//! a tag back to an older image. The record lives on the isolated host, one
//! small JSON file per engine, written atomically, in a state directory held
//! to the trust directories' rules (another account that could delete the
//! record could replay any old bundle).
//!
//! One unpack of an engine runs at a time: [`Record::open`] takes an
//! exclusive lock beside the record and holds it until the record is
//! dropped, so a second unpack reads the record only after the first has
//! written it. Before the engine is touched, [`Record::note_intent`] records
//! the tags about to move; an unpack interrupted after that counts as applied
//! for the rollback check, since the engine may have moved the tags.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, FlockOperation, Mode, OFlags};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::bundle::BundleManifest;
use crate::digest::Digest;
use crate::files::untrusted::{self, InsecurePath, Links};

/// The most a record can hold: a very busy engine's years of bundles and
/// tags fit many times over, and anything larger is not a record.
const RECORD_LIMIT: u64 = 64 << 20;

/// Where records live when no directory is named.
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("AIRGAP_STATE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let system = Path::new("/var/lib/airgap");
    let is_root =
        std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    if is_root {
        return system.to_owned();
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    std::env::var_os("XDG_STATE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".local/state"))
        .join("airgap")
}

/// Why the record could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Reading or writing the record failed.
    #[error("cannot {action} the unpack record {path}")]
    Io {
        /// `read` or `write`.
        action: &'static str,
        /// The record file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The record is not valid JSON: refuse rather than forget history.
    #[error("the unpack record {path} is damaged; repair or remove it")]
    Damaged {
        /// The record file.
        path: PathBuf,
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// The record's name holds something other than a record: a link, a
    /// FIFO, a device, a file too large.
    #[error(
        "the unpack record {path} cannot be used: {cause}; put the record itself there (a regular file), or remove it to start afresh, which forgets what was applied to this engine"
    )]
    NotARecord {
        /// The record file.
        path: PathBuf,
        /// What is wrong with it.
        cause: String,
    },
    /// The state directory could not be created.
    #[error(
        "cannot create the unpack state directory {dir}: {cause}; create it (mode 0700) or name another with --state-dir"
    )]
    CreateDir {
        /// The state directory.
        dir: PathBuf,
        /// The OS error.
        cause: std::io::Error,
    },
    /// The state directory or the record could be changed by another account.
    #[error("refusing the unpack state in {dir}")]
    Insecure {
        /// The state directory.
        dir: PathBuf,
        /// Who else could change what.
        #[source]
        source: InsecurePath,
    },
    /// The lock beside the record could not be taken.
    #[error("cannot lock the unpack record with {path}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The bundle would move tags back to older images.
    #[error("refusing a downgrade: {}", describe(.downgrades))]
    Downgrade {
        /// Every tag that would move back.
        downgrades: Vec<Downgrade>,
    },
}

impl RecordError {
    /// The kind of this failure (see [`crate::Error::kind`]).
    pub fn kind(&self) -> crate::error::kind::ErrorKind {
        match self {
            Self::Downgrade { .. } => crate::error::kind::ErrorKind::Downgrade,
            _ => crate::error::kind::ErrorKind::Failure,
        }
    }
}

fn describe(downgrades: &[Downgrade]) -> String {
    let first = &downgrades[0];
    let more = match downgrades.len() {
        1 => String::new(),
        n => format!(" (and {} more tags)", n - 1),
    };
    let interrupted = if first.current_interrupted {
        ", whose unpack was interrupted"
    } else {
        ""
    };
    format!(
        "{} would move from {} (bundle of {}{interrupted}) back to {} (bundle of {}){more}",
        first.tag,
        first.current.short(),
        first.current_bundle_created,
        first.offered.short(),
        first.offered_bundle_created
    )
}

/// One tag an older bundle would move back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downgrade {
    /// The fully qualified tag.
    pub tag: String,
    /// The config digest the tag points to now, per the record.
    pub current: Digest,
    /// When the bundle that set it was made.
    pub current_bundle_created: String,
    /// True when that bundle's unpack was interrupted: the tag may point
    /// to its image, so it counts as if it does.
    pub current_interrupted: bool,
    /// The config digest the bundle would set.
    pub offered: Digest,
    /// When the offered bundle was made.
    pub offered_bundle_created: String,
}

/// The record of one engine, locked for as long as this value lives.
#[derive(Debug)]
pub struct Record {
    path: PathBuf,
    data: RecordData,
    /// Closing it releases the lock.
    _lock: File,
}

/// The record file's JSON. `pending` came later (records written before it
/// lack it and read as having nothing pending): the bundles whose unpack
/// was started and never finished, each with the tags it was about to move.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecordData {
    engine: String,
    bundles: Vec<AppliedBundle>,
    tags: BTreeMap<String, TagRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pending: Vec<PendingBundle>,
    /// Each layer a bundle applied here carried (not one it required the
    /// engine to hold), by diff ID, with its size: counted and checked at
    /// this site, so an inventory can tell the connected side, which then
    /// need not download a layer only to learn its size. Later still than
    /// `pending`: older records lack it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    layer_sizes: BTreeMap<Digest, u64>,
}

/// A bundle unpacked onto the engine.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedBundle {
    /// SHA-256 of the bundle's manifest bytes: the bundle's identity.
    pub manifest: Digest,
    /// When the bundle was made.
    pub created: String,
    /// Who signed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// When it was (last) applied.
    pub applied_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TagRecord {
    config: Digest,
    bundle: Digest,
    bundle_created: String,
    moved_at: String,
}

/// An unpack that was about to move tags: written before the engine is
/// touched, removed when the unpack finishes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PendingBundle {
    manifest: Digest,
    created: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signer: Option<String>,
    started_at: String,
    /// Each tag about to move, and the config digest it would point to.
    tags: BTreeMap<String, Digest>,
}

/// Where a tag may point, per the record, and since which bundle.
struct Claim<'a> {
    config: &'a Digest,
    bundle_created: &'a str,
    interrupted: bool,
}

impl Record {
    /// Opens (or starts) the record of the engine `engine_id` under `dir`,
    /// creating `dir` (mode 0700) if it is missing. Waits, without a word,
    /// while another unpack of the same engine holds the record. Where there
    /// is none yet, the record kept under `former_id` (the key an earlier
    /// airgap used) is taken over as a copy: engines that shared that key
    /// each keep what it recorded, so no rollback goes unrefused, and part
    /// from here on.
    pub fn open(dir: &Path, engine_id: &str, former_id: Option<&str>) -> Result<Self, RecordError> {
        ensure_dir(dir)?;
        let insecure = |source| RecordError::Insecure {
            dir: dir.to_owned(),
            source,
        };
        untrusted::check_strict(dir).map_err(insecure)?;
        let path = record_path(dir, engine_id);
        let lock = lock(&path.with_extension("lock"))?;
        let data = load_taking_over(dir, engine_id, former_id)?.unwrap_or_else(|| RecordData {
            engine: engine_id.to_owned(),
            ..RecordData::default()
        });
        Ok(Self {
            path,
            data,
            _lock: lock,
        })
    }

    /// The earlier application of the bundle whose manifest hashes to `manifest`.
    pub fn applied(&self, manifest: &Digest) -> Option<&AppliedBundle> {
        self.data.bundles.iter().find(|b| &b.manifest == manifest)
    }

    /// Tags the bundle would move to an image older than the recorded one:
    /// set by a bundle made later than this one, to a different image. A
    /// bundle whose unpack was interrupted counts as having set its tags.
    pub fn downgrades(&self, manifest: &BundleManifest) -> Vec<Downgrade> {
        let offered_at = parse_time(&manifest.created);
        let mut downgrades = Vec::new();
        for image in &manifest.images {
            for reference in image.refs.iter().filter(|r| r.is_taggable()) {
                let newer = self
                    .claims(&reference.name)
                    .filter(|claim| {
                        claim.config != &image.config.digest
                            && parse_time(claim.bundle_created) > offered_at
                    })
                    .max_by_key(|claim| parse_time(claim.bundle_created));
                if let Some(current) = newer {
                    downgrades.push(Downgrade {
                        tag: reference.given.clone(),
                        current: current.config.clone(),
                        current_bundle_created: current.bundle_created.to_owned(),
                        current_interrupted: current.interrupted,
                        offered: image.config.digest.clone(),
                        offered_bundle_created: manifest.created.clone(),
                    });
                }
            }
        }
        downgrades
    }

    fn claims<'a>(&'a self, tag: &'a str) -> impl Iterator<Item = Claim<'a>> + 'a {
        let recorded = self.data.tags.get(tag).map(|t| Claim {
            config: &t.config,
            bundle_created: &t.bundle_created,
            interrupted: false,
        });
        let pending = self.data.pending.iter().filter_map(move |p| {
            p.tags.get(tag).map(|config| Claim {
                config,
                bundle_created: &p.created,
                interrupted: true,
            })
        });
        recorded.into_iter().chain(pending)
    }

    /// Notes, and saves before returning, that the bundle's tags are about
    /// to move: until [`Record::note_applied`] or [`Record::withdraw_intent`],
    /// the record treats them as moved.
    pub fn note_intent(
        &mut self,
        manifest: &BundleManifest,
        manifest_digest: &Digest,
        signer: Option<String>,
    ) -> Result<(), RecordError> {
        let tags = manifest
            .images
            .iter()
            .flat_map(|image| {
                image
                    .refs
                    .iter()
                    .filter(|r| r.is_taggable())
                    .map(|r| (r.name.clone(), image.config.digest.clone()))
            })
            .collect();
        self.data.pending.retain(|p| &p.manifest != manifest_digest);
        self.data.pending.push(PendingBundle {
            manifest: manifest_digest.clone(),
            created: manifest.created.clone(),
            signer,
            started_at: now(),
            tags,
        });
        self.save()
    }

    /// Takes back the intent of a bundle the engine refused before anything
    /// was loaded, and saves.
    pub fn withdraw_intent(&mut self, manifest_digest: &Digest) -> Result<(), RecordError> {
        self.data.pending.retain(|p| &p.manifest != manifest_digest);
        self.save()
    }

    /// Notes that the bundle was applied and its tags moved, and saves. Its
    /// tags now point where it put them, whatever an interrupted unpack
    /// before it was about to do to them.
    pub fn note_applied(
        &mut self,
        manifest: &BundleManifest,
        manifest_digest: &Digest,
        signer: Option<String>,
    ) -> Result<(), RecordError> {
        let now = now();
        for image in &manifest.images {
            for reference in image.refs.iter().filter(|r| r.is_taggable()) {
                let unchanged = self
                    .data
                    .tags
                    .get(&reference.name)
                    .is_some_and(|t| t.config == image.config.digest);
                if !unchanged {
                    self.data.tags.insert(
                        reference.name.clone(),
                        TagRecord {
                            config: image.config.digest.clone(),
                            bundle: manifest_digest.clone(),
                            bundle_created: manifest.created.clone(),
                            moved_at: now.clone(),
                        },
                    );
                }
                for pending in &mut self.data.pending {
                    pending.tags.remove(&reference.name);
                }
            }
        }
        self.data
            .pending
            .retain(|p| &p.manifest != manifest_digest && !p.tags.is_empty());
        let required: std::collections::HashSet<&Digest> =
            manifest.required.iter().map(|blob| &blob.digest).collect();
        for layer in manifest.images.iter().flat_map(|image| &image.layers) {
            if !required.contains(&layer.digest) {
                self.data
                    .layer_sizes
                    .insert(layer.digest.clone(), layer.size);
            }
        }
        self.data.bundles.retain(|b| &b.manifest != manifest_digest);
        self.data.bundles.push(AppliedBundle {
            manifest: manifest_digest.clone(),
            created: manifest.created.clone(),
            signer,
            applied_at: now,
        });
        self.save()
    }

    /// The layer sizes recorded for the engine `engine_id` under `dir`
    /// (or, where it has no record yet, under `former_id`, as
    /// [`Record::open`] takes it over), read without the lock (records are
    /// replaced atomically) and without creating anything: empty where there
    /// is no record yet. Held to the same rules as [`Record::open`]: a record
    /// another account could have written is refused, not believed.
    pub fn layer_sizes(
        dir: &Path,
        engine_id: &str,
        former_id: Option<&str>,
    ) -> Result<BTreeMap<Digest, u64>, RecordError> {
        let Some(data) = load_taking_over(dir, engine_id, former_id)? else {
            return Ok(BTreeMap::new());
        };
        untrusted::check_strict(dir).map_err(|source| RecordError::Insecure {
            dir: dir.to_owned(),
            source,
        })?;
        Ok(data.layer_sizes)
    }

    fn save(&self) -> Result<(), RecordError> {
        let mut bytes = serde_json::to_vec_pretty(&self.data).expect("records always serialise");
        bytes.push(b'\n');
        untrusted::write_atomic(&self.path, &bytes, 0o600).map_err(|source| RecordError::Io {
            action: "write",
            path: self.path.clone(),
            source,
        })
    }
}

/// Creates `dir` and its missing parents, each mode 0700 whatever the
/// umask; an existing directory is left as it is (and checked after).
pub(super) fn ensure_dir(dir: &Path) -> Result<(), RecordError> {
    let failed = |cause| RecordError::CreateDir {
        dir: dir.to_owned(),
        cause,
    };
    let missing: Vec<&Path> = dir
        .ancestors()
        .filter(|p| !p.as_os_str().is_empty())
        .take_while(|p| std::fs::symlink_metadata(p).is_err())
        .collect();
    for path in missing.into_iter().rev() {
        match std::fs::DirBuilder::new().mode(0o700).create(path) {
            Ok(()) => std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
                .map_err(failed)?,
            // Another unpack created it first.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(failed(e)),
        }
    }
    Ok(())
}

/// Opens (creating, mode 0600) the lock file and locks it exclusively,
/// waiting for another holder to finish.
fn lock(path: &Path) -> Result<File, RecordError> {
    let failed = |source| RecordError::Lock {
        path: path.to_owned(),
        source,
    };
    let flags = OFlags::RDWR
        | OFlags::CREATE
        | OFlags::NOFOLLOW
        | OFlags::NONBLOCK
        | OFlags::CLOEXEC
        | OFlags::NOCTTY;
    let fd = match rustix::fs::open(path, flags, Mode::from_raw_mode(0o600)) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::LOOP) => {
            return Err(failed(io::Error::new(
                io::ErrorKind::InvalidInput,
                "it is a symbolic link, which is not followed here; remove it",
            )));
        }
        Err(errno) => return Err(failed(errno.into())),
    };
    let stat = rustix::fs::fstat(&fd).map_err(|e| failed(e.into()))?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(failed(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it is not a regular file; remove it",
        )));
    }
    loop {
        match rustix::fs::flock(&fd, FlockOperation::LockExclusive) {
            Ok(()) => break,
            Err(rustix::io::Errno::INTR) => continue,
            Err(errno) => return Err(failed(errno.into())),
        }
    }
    Ok(File::from(fd))
}

/// The record file of the engine `engine_id`; its lock is beside it, `.lock`.
fn record_path(dir: &Path, engine_id: &str) -> PathBuf {
    let name = Digest::of(engine_id.as_bytes());
    dir.join(format!("engine-{}.json", &name.hex()[..16]))
}

/// The record of the engine `engine_id` under `dir`, or, where it has none
/// yet, the one kept under `former_id`, made its own; `None` where neither is.
fn load_taking_over(
    dir: &Path,
    engine_id: &str,
    former_id: Option<&str>,
) -> Result<Option<RecordData>, RecordError> {
    if let Some(data) = load(dir, &record_path(dir, engine_id))? {
        return Ok(Some(data));
    }
    let Some(former) = former_id else {
        return Ok(None);
    };
    Ok(
        load(dir, &record_path(dir, former))?.map(|data| RecordData {
            engine: engine_id.to_owned(),
            ..data
        }),
    )
}

/// The record at `path` in the state directory `dir`, held to its rules
/// (the file too must be one no other account could have written); `None`
/// where there is none yet.
fn load(dir: &Path, path: &Path) -> Result<Option<RecordData>, RecordError> {
    let bytes = match read_record(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        // Not a regular file, a link, or too large (untrusted's kinds).
        Err(cause)
            if matches!(
                cause.kind(),
                io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData
            ) =>
        {
            // The advice for a file the user named does not apply here.
            let text = cause.to_string();
            let cause = text.split("; ").next().unwrap_or(&text).to_owned();
            return Err(RecordError::NotARecord {
                path: path.to_owned(),
                cause,
            });
        }
        Err(source) => {
            return Err(RecordError::Io {
                action: "read",
                path: path.to_owned(),
                source,
            });
        }
    };
    untrusted::check_strict(path).map_err(|source| RecordError::Insecure {
        dir: dir.to_owned(),
        source,
    })?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| RecordError::Damaged {
            path: path.to_owned(),
            source,
        })
}

fn read_record(path: &Path) -> io::Result<Vec<u8>> {
    untrusted::read_bounded(path, Links::Refuse, RECORD_LIMIT, "rollback record")
}

/// Bundle times are RFC 3339 (checked when the manifest is parsed); an
/// unparseable one sorts first, so it can never win over a recorded time.
fn parse_time(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn now() -> String {
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("0 is a valid nanosecond");
    now.format(&Rfc3339).expect("UTC times always format")
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::bundle::{BundleImage, SourceInfo};
    use crate::image::{BlobRef, ImageRef, Platform};

    fn bundle(created: &str, config: &str) -> BundleManifest {
        let blob = |b: u8| BlobRef {
            digest: Digest::of(&[b]),
            size: 1,
        };
        let mut manifest =
            BundleManifest::new("test".into(), created.into(), SourceInfo::default());
        manifest.images.push(BundleImage {
            refs: vec![ImageRef::parse("shop/web:1").unwrap()],
            platform: Platform::default(),
            manifest: blob(0),
            config: BlobRef {
                digest: Digest::of(config.as_bytes()),
                size: 1,
            },
            layers: vec![],
        });
        manifest
    }

    #[test]
    fn an_older_bundle_moving_a_tag_back_is_a_downgrade_and_a_newer_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut record = Record::open(dir.path(), "engine-1", None).unwrap();
        let v2 = bundle("2026-06-01T00:00:00Z", "v2");
        record.note_applied(&v2, &Digest::of(b"v2"), None).unwrap();
        drop(record);

        let record = Record::open(dir.path(), "engine-1", None).unwrap();
        let v1 = bundle("2026-01-01T00:00:00Z", "v1");
        let downgrades = record.downgrades(&v1);
        assert_eq!(downgrades.len(), 1);
        assert_eq!(downgrades[0].tag, "shop/web:1");
        assert!(!downgrades[0].current_interrupted);
        assert!(
            record
                .downgrades(&bundle("2026-12-01T00:00:00Z", "v3"))
                .is_empty()
        );
        assert!(
            record.downgrades(&v2).is_empty(),
            "re-applying is not a downgrade"
        );
        assert!(record.applied(&Digest::of(b"v2")).is_some());
    }

    #[test]
    fn the_sizes_of_carried_layers_are_recorded_and_read_back_without_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        assert!(
            Record::layer_sizes(&state, "engine-1", None)
                .unwrap()
                .is_empty()
        );
        assert!(!state.exists(), "reading creates nothing");
        let carried = BlobRef {
            digest: Digest::of(b"carried"),
            size: 3072,
        };
        let held = BlobRef {
            digest: Digest::of(b"held"),
            size: 1024,
        };
        let mut delta = bundle("2026-06-01T00:00:00Z", "v2");
        delta.images[0].layers = vec![held.clone(), carried.clone()];
        delta.required = vec![held.clone()];
        let mut record = Record::open(&state, "engine-1", None).unwrap();
        record
            .note_applied(&delta, &Digest::of(b"v2"), None)
            .unwrap();
        let sizes = Record::layer_sizes(&state, "engine-1", None).unwrap();
        assert_eq!(sizes.get(&carried.digest), Some(&3072));
        assert!(
            !sizes.contains_key(&held.digest),
            "a layer the bundle only required was not counted here"
        );
        assert!(
            Record::layer_sizes(&state, "engine-2", None)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_record_kept_under_the_former_key_is_taken_over_by_each_engine_that_shared_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut shared = Record::open(dir.path(), "ID", None).unwrap();
        shared
            .note_applied(
                &bundle("2026-06-01T00:00:00Z", "v2"),
                &Digest::of(b"v2"),
                None,
            )
            .unwrap();
        let carried = shared.data.layer_sizes.clone();
        drop(shared);
        let older = bundle("2026-01-01T00:00:00Z", "v1");
        for engine in ["ID /var/lib/docker", "ID /srv/docker"] {
            let record = Record::open(dir.path(), engine, Some("ID")).unwrap();
            assert_eq!(
                record.downgrades(&older).len(),
                1,
                "{engine} keeps the history"
            );
            assert_eq!(record.data.engine, engine);
            assert_eq!(
                Record::layer_sizes(dir.path(), engine, Some("ID")).unwrap(),
                carried
            );
        }
        let mut first = Record::open(dir.path(), "ID /var/lib/docker", Some("ID")).unwrap();
        first
            .note_applied(&older, &Digest::of(b"v1"), None)
            .unwrap();
        drop(first);
        let second = Record::open(dir.path(), "ID /srv/docker", Some("ID")).unwrap();
        assert!(second.applied(&Digest::of(b"v1")).is_none(), "the two part");
        let first = Record::open(dir.path(), "ID /var/lib/docker", Some("ID")).unwrap();
        assert!(first.applied(&Digest::of(b"v1")).is_some());
    }

    #[test]
    fn records_are_per_engine() {
        let dir = tempfile::tempdir().unwrap();
        let mut record = Record::open(dir.path(), "engine-1", None).unwrap();
        record
            .note_applied(
                &bundle("2026-06-01T00:00:00Z", "v2"),
                &Digest::of(b"v2"),
                None,
            )
            .unwrap();
        let other = Record::open(dir.path(), "engine-2", None).unwrap();
        assert!(
            other
                .downgrades(&bundle("2026-01-01T00:00:00Z", "v1"))
                .is_empty()
        );
    }

    #[test]
    fn a_damaged_record_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = Record::open(dir.path(), "e", None).unwrap().path;
        std::fs::write(&path, b"{not json").unwrap();
        assert!(matches!(
            Record::open(dir.path(), "e", None),
            Err(RecordError::Damaged { .. })
        ));
    }

    /// Waits until some thread is blocked in flock on the file `inode`, as
    /// /proc/locks shows waiters ("->"); panics after a generous while.
    fn wait_for_a_waiter_on(inode: u64) {
        let inode = format!(":{inode}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let locks = std::fs::read_to_string("/proc/locks").unwrap();
            let waiting = locks.lines().any(|line| {
                line.contains("->") && line.split_whitespace().any(|f| f.ends_with(&inode))
            });
            if waiting {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the second open never waited for the record's lock"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_second_open_of_the_same_engine_waits_for_the_first_and_sees_its_update() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = Record::open(dir.path(), "e", None).unwrap();
        let lock_inode = std::fs::metadata(first.path.with_extension("lock"))
            .unwrap()
            .ino();
        let (opened, second_opened) = mpsc::channel();
        let state = dir.path().to_owned();
        let second = std::thread::spawn(move || {
            let record = Record::open(&state, "e", None).unwrap();
            opened.send(()).unwrap();
            record.downgrades(&bundle("2026-01-01T00:00:00Z", "v1"))
        });
        wait_for_a_waiter_on(lock_inode);
        assert!(
            second_opened.try_recv().is_err(),
            "the second open returned while the first held the record"
        );
        first
            .note_applied(
                &bundle("2026-06-01T00:00:00Z", "v2"),
                &Digest::of(b"v2"),
                None,
            )
            .unwrap();
        drop(first);
        let downgrades = second.join().unwrap();
        assert_eq!(
            downgrades.len(),
            1,
            "the second open read the record the first wrote"
        );
        assert!(second_opened.try_recv().is_ok());
    }

    #[test]
    fn an_interrupted_unpack_counts_as_applied_until_it_is_run_again() {
        let dir = tempfile::tempdir().unwrap();
        let v1 = bundle("2026-01-01T00:00:00Z", "v1");
        let v2 = bundle("2026-06-01T00:00:00Z", "v2");
        let mut record = Record::open(dir.path(), "e", None).unwrap();
        record.note_intent(&v2, &Digest::of(b"v2"), None).unwrap();
        // Interrupted: the engine may have moved the tags, nothing completes.
        drop(record);

        let mut record = Record::open(dir.path(), "e", None).unwrap();
        let downgrades = record.downgrades(&v1);
        assert_eq!(downgrades.len(), 1, "an older bundle is a rollback");
        assert!(downgrades[0].current_interrupted);
        assert!(
            RecordError::Downgrade { downgrades }
                .to_string()
                .contains("interrupted")
        );
        assert!(record.applied(&Digest::of(b"v2")).is_none());
        assert!(record.downgrades(&v2).is_empty(), "running it again works");
        assert!(
            record
                .downgrades(&bundle("2026-12-01T00:00:00Z", "v3"))
                .is_empty(),
            "a newer bundle works"
        );
        record.note_intent(&v2, &Digest::of(b"v2"), None).unwrap();
        record.note_applied(&v2, &Digest::of(b"v2"), None).unwrap();
        let path = record.path.clone();
        drop(record);

        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("pending"), "completed: nothing pending");
        let record = Record::open(dir.path(), "e", None).unwrap();
        assert!(record.applied(&Digest::of(b"v2")).is_some());
        let downgrades = record.downgrades(&v1);
        assert_eq!(downgrades.len(), 1);
        assert!(!downgrades[0].current_interrupted);
    }

    #[test]
    fn a_finished_unpack_settles_the_tags_an_interrupted_one_left_pending() {
        let dir = tempfile::tempdir().unwrap();
        let mut record = Record::open(dir.path(), "e", None).unwrap();
        let v3 = bundle("2026-12-01T00:00:00Z", "v3");
        record.note_intent(&v3, &Digest::of(b"v3"), None).unwrap();
        // A rollback to v1 someone meant (--allow-downgrade), run to the end.
        let v1 = bundle("2026-01-01T00:00:00Z", "v1");
        record.note_intent(&v1, &Digest::of(b"v1"), None).unwrap();
        record.note_applied(&v1, &Digest::of(b"v1"), None).unwrap();
        assert!(record.data.pending.is_empty());
        assert!(
            record
                .downgrades(&bundle("2026-06-01T00:00:00Z", "v2"))
                .is_empty()
        );
    }

    #[test]
    fn a_withdrawn_intent_counts_for_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut record = Record::open(dir.path(), "e", None).unwrap();
        let v2 = bundle("2026-06-01T00:00:00Z", "v2");
        record.note_intent(&v2, &Digest::of(b"v2"), None).unwrap();
        record.withdraw_intent(&Digest::of(b"v2")).unwrap();
        drop(record);
        let record = Record::open(dir.path(), "e", None).unwrap();
        assert!(
            record
                .downgrades(&bundle("2026-01-01T00:00:00Z", "v1"))
                .is_empty()
        );
    }

    #[test]
    fn a_record_written_before_intents_existed_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = Record::open(dir.path(), "e", None).unwrap().path;
        let v2 = Digest::of(b"v2");
        let config = Digest::of(b"v2");
        let old = format!(
            r#"{{
  "engine": "e",
  "bundles": [{{"manifest": "{v2}", "created": "2026-06-01T00:00:00Z", "appliedAt": "2026-06-02T00:00:00Z"}}],
  "tags": {{"docker.io/shop/web:1": {{"config": "{config}", "bundle": "{v2}", "bundleCreated": "2026-06-01T00:00:00Z", "movedAt": "2026-06-02T00:00:00Z"}}}}
}}
"#
        );
        std::fs::write(&path, old).unwrap();
        let record = Record::open(dir.path(), "e", None).unwrap();
        assert!(record.applied(&v2).is_some());
        assert_eq!(
            record
                .downgrades(&bundle("2026-01-01T00:00:00Z", "v1"))
                .len(),
            1
        );
    }

    fn is_insecure(result: Result<Record, RecordError>) -> bool {
        matches!(result, Err(RecordError::Insecure { .. }))
    }

    #[test]
    fn a_state_dir_others_can_write_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
        let error = Record::open(&state, "e", None).unwrap_err();
        assert!(matches!(error, RecordError::Insecure { .. }), "{error}");
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
        Record::open(&state, "e", None).unwrap();
    }

    /// Gives `path` to nobody; false when this process may not (not root),
    /// which fails under CI=true, where tests run as root.
    fn give_to_nobody(path: &Path) -> bool {
        match std::os::unix::fs::chown(path, Some(65534), Some(65534)) {
            Ok(()) => true,
            Err(error) => {
                assert!(
                    std::env::var_os("CI").is_none_or(|v| v != "true"),
                    "cannot chown to nobody under CI: {error}"
                );
                eprintln!("skipped: cannot chown to nobody ({error})");
                false
            }
        }
    }

    #[test]
    fn a_state_dir_or_record_owned_by_another_user_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        if !give_to_nobody(&state) {
            return;
        }
        assert!(is_insecure(Record::open(&state, "e", None)));

        let state = dir.path().join("mine");
        let path = Record::open(&state, "e", None).unwrap().path;
        std::fs::write(&path, b"{}").unwrap();
        assert!(give_to_nobody(&path));
        assert!(is_insecure(Record::open(&state, "e", None)));
    }

    #[test]
    fn a_record_that_is_a_link_a_fifo_or_too_large_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut record = Record::open(dir.path(), "e", None).unwrap();
        record
            .note_applied(
                &bundle("2026-06-01T00:00:00Z", "v2"),
                &Digest::of(b"v2"),
                None,
            )
            .unwrap();
        let path = record.path.clone();
        drop(record);
        let elsewhere = dir.path().join("elsewhere.json");
        std::fs::rename(&path, &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        let error = Record::open(dir.path(), "e", None).unwrap_err();
        assert!(matches!(error, RecordError::NotARecord { .. }), "{error}");
        let message = error.to_string();
        assert!(
            message.contains(&path.display().to_string()) && message.contains("symbolic link"),
            "{message}"
        );
        assert!(!message.contains("name the file itself"), "{message}");

        std::fs::remove_file(&path).unwrap();
        crate::files::untrusted::mkfifo(&path);
        let error = Record::open(dir.path(), "e", None).unwrap_err();
        assert!(error.to_string().contains("FIFO"), "{error}");

        std::fs::remove_file(&path).unwrap();
        let huge = File::create(&path).unwrap();
        huge.set_len(RECORD_LIMIT + 1).unwrap();
        let error = Record::open(dir.path(), "e", None).unwrap_err();
        assert!(error.to_string().contains("more than a"), "{error}");
    }

    #[test]
    fn a_missing_state_dir_is_created_private_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state/airgap");
        let umask = rustix::process::umask(Mode::from_raw_mode(0o022));
        let opened = Record::open(&state, "e", None).map(|r| r.path);
        rustix::process::umask(umask);
        let path = opened.unwrap();
        for created in [dir.path().join("state"), state] {
            let mode = std::fs::metadata(&created).unwrap().mode() & 0o7777;
            assert_eq!(mode, 0o700, "{}", created.display());
        }
        assert!(
            !path.exists(),
            "nothing is written before there is something to record"
        );
    }
}
