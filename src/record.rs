//! What unpack has done to each engine: the bundles applied, and where each
//! tag last moved and by which bundle. It is what makes a rollback visible
//! (TUF's "rollback attack"): an old, validly signed bundle replayed to move
//! a tag back to an older image. The record lives on the isolated host, one
//! small JSON file per engine, written atomically.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::bundle::BundleManifest;
use crate::digest::Digest;

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
    /// The bundle would move tags back to older images.
    #[error("refusing a downgrade: {}", describe(.downgrades))]
    Downgrade {
        /// Every tag that would move back.
        downgrades: Vec<Downgrade>,
    },
}

fn describe(downgrades: &[Downgrade]) -> String {
    let first = &downgrades[0];
    let more = match downgrades.len() {
        1 => String::new(),
        n => format!(" (and {} more tags)", n - 1),
    };
    format!(
        "{} would move from {} (bundle of {}) back to {} (bundle of {}){more}",
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
    /// The config digest the bundle would set.
    pub offered: Digest,
    /// When the offered bundle was made.
    pub offered_bundle_created: String,
}

/// The record of one engine.
#[derive(Debug)]
pub struct Record {
    path: PathBuf,
    data: RecordData,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecordData {
    engine: String,
    bundles: Vec<AppliedBundle>,
    tags: BTreeMap<String, TagRecord>,
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

impl Record {
    /// Opens (or starts) the record of the engine `engine_id` under `dir`.
    pub fn open(dir: &Path, engine_id: &str) -> Result<Self, RecordError> {
        let name = Digest::of(engine_id.as_bytes());
        let path = dir.join(format!("engine-{}.json", &name.hex()[..16]));
        let data = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| RecordError::Damaged {
                path: path.clone(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => RecordData {
                engine: engine_id.to_owned(),
                ..RecordData::default()
            },
            Err(source) => {
                return Err(RecordError::Io {
                    action: "read",
                    path,
                    source,
                });
            }
        };
        Ok(Self { path, data })
    }

    /// The earlier application of the bundle whose manifest hashes to `manifest`.
    pub fn applied(&self, manifest: &Digest) -> Option<&AppliedBundle> {
        self.data.bundles.iter().find(|b| &b.manifest == manifest)
    }

    /// Tags the bundle would move to an image older than the recorded one:
    /// set by a bundle made later than this one, to a different image.
    pub fn downgrades(&self, manifest: &BundleManifest) -> Vec<Downgrade> {
        let offered_at = parse_time(&manifest.created);
        let mut downgrades = Vec::new();
        for image in &manifest.images {
            for reference in image.refs.iter().filter(|r| r.is_taggable()) {
                let Some(current) = self.data.tags.get(&reference.name) else {
                    continue;
                };
                if current.config != image.config.digest
                    && parse_time(&current.bundle_created) > offered_at
                {
                    downgrades.push(Downgrade {
                        tag: reference.given.clone(),
                        current: current.config.clone(),
                        current_bundle_created: current.bundle_created.clone(),
                        offered: image.config.digest.clone(),
                        offered_bundle_created: manifest.created.clone(),
                    });
                }
            }
        }
        downgrades
    }

    /// Notes that the bundle was applied and its tags moved, and saves.
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

    fn save(&self) -> Result<(), RecordError> {
        let io_error = |source| RecordError::Io {
            action: "write",
            path: self.path.clone(),
            source,
        };
        let dir = self.path.parent().expect("the record path has a directory");
        std::fs::create_dir_all(dir).map_err(io_error)?;
        let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(io_error)?;
        let mut bytes = serde_json::to_vec_pretty(&self.data).expect("records always serialise");
        bytes.push(b'\n');
        temp.write_all(&bytes).map_err(io_error)?;
        temp.as_file().sync_all().map_err(io_error)?;
        temp.persist(&self.path).map_err(|e| io_error(e.error))?;
        Ok(())
    }
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
        let mut record = Record::open(dir.path(), "engine-1").unwrap();
        let v2 = bundle("2026-06-01T00:00:00Z", "v2");
        record.note_applied(&v2, &Digest::of(b"v2"), None).unwrap();

        let record = Record::open(dir.path(), "engine-1").unwrap();
        let v1 = bundle("2026-01-01T00:00:00Z", "v1");
        let downgrades = record.downgrades(&v1);
        assert_eq!(downgrades.len(), 1);
        assert_eq!(downgrades[0].tag, "shop/web:1");
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
    fn records_are_per_engine() {
        let dir = tempfile::tempdir().unwrap();
        let mut record = Record::open(dir.path(), "engine-1").unwrap();
        record
            .note_applied(
                &bundle("2026-06-01T00:00:00Z", "v2"),
                &Digest::of(b"v2"),
                None,
            )
            .unwrap();
        let other = Record::open(dir.path(), "engine-2").unwrap();
        assert!(
            other
                .downgrades(&bundle("2026-01-01T00:00:00Z", "v1"))
                .is_empty()
        );
    }

    #[test]
    fn a_damaged_record_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let record = Record::open(dir.path(), "e").unwrap();
        std::fs::write(&record.path, b"{not json").unwrap();
        assert!(matches!(
            Record::open(dir.path(), "e"),
            Err(RecordError::Damaged { .. })
        ));
    }
}
