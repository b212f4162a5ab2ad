//! The layer cache on the connected side: layers (by diff ID), image
//! configs (by digest) and what pack recorded of each engine image (by the
//! engine's image ID), kept between packs so an image read once need not be
//! exported from the engine again.
//!
//! Layers are kept as the bundle carries them: the zstd frame of the
//! layer's tar entry, which the bundle writer compresses on its own (see
//! `bundle::writer`), so a pack from the cache copies them without
//! compressing anything and writes the same bytes as a cold pack. Frames
//! depend on the compression settings and zstd's version, which name the
//! frames a pack can use (its profile); kept raw instead, every re-pack
//! would compress the whole stack again (about 2 s, most of what Docker
//! 20.10's own `docker save` costs). Frames take a third of the space raw
//! layers would.
//!
//! Every entry is checked whenever it is used: configs against their
//! digest, layer frames against the SHA-256 recorded when they were written
//! (a layer's own digest is checked again, decompressed, by every verify
//! at the site); an entry that no longer matches is removed and read from
//! the engine again, never shipped. Entries are written to a temporary file and renamed, so packs
//! running at once never see half an entry; the least recently used are
//! evicted beyond the size bound.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

mod frame;

pub use frame::{CachedFrame, FrameIngest};

use crate::digest::Digest;
use crate::files::untrusted::{InsecurePath, Links, check_strict, open_regular, read_file_bounded};
use crate::image::{BlobRef, Platform};

/// The default bound: room for a few stacks of a few images each.
pub const DEFAULT_MAX: u64 = 4 << 30;
/// Largest config the cache hands out (configs are kilobytes).
const CONFIG_LIMIT: u64 = 16 << 20;
/// Largest image record (a few hundred bytes per layer).
const RECORD_LIMIT: u64 = 4 << 20;
/// Temporary files start with this; they are never entries.
const TEMP_PREFIX: &str = ".tmp-";

/// What kind of entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A layer's compressed frame, named by its diff ID and the profile.
    Layer,
    /// An image config, named by its digest.
    Config,
    /// What pack recorded of an engine image, named by its image ID.
    Image,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Layer, Kind::Config, Kind::Image];

    fn dir(self) -> &'static str {
        match self {
            Kind::Layer => "frames",
            Kind::Config => "configs",
            Kind::Image => "images",
        }
    }
}

/// What pack recorded of one engine image: enough, with its config and
/// layers, to carry it without exporting it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedImage {
    /// The engine's image ID.
    pub id: Digest,
    /// Its config's digest.
    pub config: Digest,
    /// Its platform, from the config.
    pub platform: Platform,
    /// Its layers, bottom first, with their uncompressed sizes.
    pub layers: Vec<BlobRef>,
}

/// One entry, as `airgap cache ls` lists it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheEntry {
    /// Its kind.
    pub kind: Kind,
    /// Its digest (an image ID for images).
    pub digest: Digest,
    /// Its size on disk.
    pub size: u64,
    /// Its file name.
    #[serde(skip)]
    pub name: String,
    /// When a pack last used it.
    #[serde(skip)]
    pub used: SystemTime,
}

/// What a prune removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    /// Entries removed.
    pub entries: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// Why the cache could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The directory could be changed by another account.
    #[error("the layer cache {}: {source}; or pass --cache-dir DIR or --no-cache", .path.display())]
    Insecure {
        /// The cache directory.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: InsecurePath,
    },
    /// The directory could not be made or read.
    #[error("cannot {action} the layer cache {}: {source}; pass --cache-dir DIR or --no-cache", .path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Neither `XDG_CACHE_HOME` nor `HOME` says where the cache goes.
    #[error(
        "no cache directory: set XDG_CACHE_HOME or HOME, or pass --cache-dir DIR or --no-cache"
    )]
    NoHome,
}

impl CacheError {
    /// The kind of this failure (see [`crate::Error::kind`]).
    pub fn kind(&self) -> crate::error::kind::ErrorKind {
        crate::error::kind::ErrorKind::Failure
    }
}

/// The cache directory by default: `$XDG_CACHE_HOME/airgap`, else
/// `~/.cache/airgap`.
pub fn default_dir() -> Result<PathBuf, CacheError> {
    let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    if let Some(base) = std::env::var_os("XDG_CACHE_HOME").and_then(absolute) {
        return Ok(base.join("airgap"));
    }
    std::env::var_os("HOME")
        .and_then(absolute)
        .map(|home| home.join(".cache").join("airgap"))
        .ok_or(CacheError::NoHome)
}

/// The layer cache.
#[derive(Clone, Debug)]
pub struct LayerCache {
    dir: PathBuf,
    max: u64,
    profile: String,
}

impl LayerCache {
    /// Opens (making it, mode 0700, if need be) the cache at `dir`, bounded
    /// to `max` bytes. Refused when another account could change it.
    pub fn open(dir: &Path, max: u64) -> Result<Self, CacheError> {
        let io_error = |action, source| CacheError::Io {
            action,
            path: dir.to_owned(),
            source,
        };
        if !dir.exists() {
            // The parents as the user's umask makes them; the cache itself private.
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::create_dir_all(parent).map_err(|e| io_error("make", e))?;
            }
            match fs::DirBuilder::new().mode(0o700).create(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_error("make", e)),
            }
        }
        check_strict(dir).map_err(|source| CacheError::Insecure {
            path: dir.to_owned(),
            source,
        })?;
        for kind in Kind::ALL {
            let sub = dir.join(kind.dir());
            match fs::DirBuilder::new().mode(0o700).create(&sub) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_error("make", e)),
            }
            check_strict(&sub).map_err(|source| CacheError::Insecure {
                path: sub.clone(),
                source,
            })?;
        }
        Ok(Self {
            dir: dir.to_owned(),
            max,
            profile: String::new(),
        })
    }

    /// The cache as seen by packs compressing with `profile` (the bundle
    /// writer's name for its settings): only frames made with it are used.
    pub fn with_profile(mut self, profile: String) -> Self {
        self.profile = profile;
        self
    }

    /// Where it is.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its size bound.
    pub fn max(&self) -> u64 {
        self.max
    }

    fn path(&self, kind: Kind, digest: &Digest) -> PathBuf {
        let dir = self.dir.join(kind.dir());
        match kind {
            Kind::Layer => dir.join(format!("{}.{}", digest.hex(), self.profile)),
            Kind::Config | Kind::Image => dir.join(digest.hex()),
        }
    }

    /// The frame of layer `digest`, checked; `None` if absent or damaged
    /// (a damaged entry is removed).
    pub fn layer(&self, digest: &Digest) -> Option<CachedFrame> {
        let path = self.path(Kind::Layer, digest);
        let file = open_regular(&path, Links::Refuse).ok()?;
        match CachedFrame::check(file) {
            Ok(frame) => {
                touch(&frame.file);
                Some(frame)
            }
            Err(_) => {
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    /// Writes layer `digest` (its bytes, decompressed from its frame and
    /// checked against the digest) to the new file `target`; `None` if
    /// the cache has no sound frame of it.
    pub fn extract_layer(&self, digest: &Digest, target: &Path) -> Option<u64> {
        let frame = self.layer(digest)?;
        match frame.extract(digest, target) {
            Ok(size) => Some(size),
            Err(_) => {
                let _ = fs::remove_file(target);
                let _ = fs::remove_file(self.path(Kind::Layer, digest));
                None
            }
        }
    }

    /// The config `digest`, checked; `None` if absent or damaged.
    pub fn config(&self, digest: &Digest) -> Option<Vec<u8>> {
        let path = self.path(Kind::Config, digest);
        let file = open_regular(&path, Links::Refuse).ok()?;
        touch(&file);
        match read_file_bounded(file, CONFIG_LIMIT, "image config") {
            Ok(bytes) if &Digest::of(&bytes) == digest => Some(bytes),
            _ => {
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    /// What pack recorded of the engine image `id`; `None` if absent or
    /// unreadable. Only a hint: its config and layers are checked on use.
    pub fn image(&self, id: &Digest) -> Option<CachedImage> {
        let path = self.path(Kind::Image, id);
        let file = open_regular(&path, Links::Refuse).ok()?;
        touch(&file);
        let bytes = read_file_bounded(file, RECORD_LIMIT, "cached image record").ok()?;
        match serde_json::from_slice::<CachedImage>(&bytes) {
            Ok(image) if &image.id == id => Some(image),
            _ => {
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    /// True when an entry for the layer is present (unchecked).
    pub fn has_layer(&self, digest: &Digest) -> bool {
        fs::symlink_metadata(self.path(Kind::Layer, digest)).is_ok_and(|m| m.is_file())
    }

    /// Stores a config.
    pub fn put_config(&self, digest: &Digest, bytes: &[u8]) -> io::Result<()> {
        if &Digest::of(bytes) != digest {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "config does not match its digest",
            ));
        }
        self.put_bytes(Kind::Config, digest, bytes)
    }

    /// Stores what pack recorded of an engine image.
    pub fn put_image(&self, image: &CachedImage) -> io::Result<()> {
        let bytes = serde_json::to_vec(image).expect("image records always serialise");
        self.put_bytes(Kind::Image, &image.id, &bytes)
    }

    fn put_bytes(&self, kind: Kind, digest: &Digest, bytes: &[u8]) -> io::Result<()> {
        let mut temp = self.temp(kind)?;
        temp.write_all(bytes)?;
        temp.persist(self.path(kind, digest)).map_err(|e| e.error)?;
        Ok(())
    }

    fn temp(&self, kind: Kind) -> io::Result<tempfile::NamedTempFile> {
        tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .permissions(fs::Permissions::from_mode(0o600))
            .tempfile_in(self.dir.join(kind.dir()))
    }

    /// Starts storing the frame of layer `digest`: write the frame into
    /// the returned ingest, then commit it once the layer is known sound.
    pub fn frame_ingest(&self, digest: &Digest) -> io::Result<FrameIngest> {
        Ok(FrameIngest::new(
            self.temp(Kind::Layer)?,
            self.path(Kind::Layer, digest),
        ))
    }

    /// Every entry, least recently used first.
    pub fn entries(&self) -> Result<Vec<CacheEntry>, CacheError> {
        let mut entries = Vec::new();
        for kind in Kind::ALL {
            let dir = self.dir.join(kind.dir());
            let listing = fs::read_dir(&dir).map_err(|source| CacheError::Io {
                action: "read",
                path: dir.clone(),
                source,
            })?;
            for item in listing.flatten() {
                let Ok(name) = item.file_name().into_string() else {
                    continue;
                };
                // Layer frames are named DIFF_ID.PROFILE, the rest by digest alone.
                let hex = name.split_once('.').map_or(name.as_str(), |(hex, _)| hex);
                let Ok(digest) = Digest::from_hex(hex) else {
                    continue;
                };
                let Ok(meta) = item.metadata() else { continue };
                if !meta.is_file() {
                    continue;
                }
                entries.push(CacheEntry {
                    kind,
                    digest,
                    name,
                    size: meta.len(),
                    used: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                });
            }
        }
        entries.sort_by(|a, b| a.used.cmp(&b.used).then(a.digest.hex().cmp(b.digest.hex())));
        Ok(entries)
    }

    /// Removes the least recently used entries until the rest fit in
    /// `max` bytes, and temporary files a stopped pack left (older than a
    /// day, so a pack running now keeps its own).
    pub fn prune(&self, max: u64) -> Result<Pruned, CacheError> {
        let entries = self.entries()?;
        let mut total: u64 = entries.iter().map(|e| e.size).sum();
        let mut pruned = Pruned::default();
        for entry in entries {
            if total <= max {
                break;
            }
            if fs::remove_file(self.dir.join(entry.kind.dir()).join(&entry.name)).is_ok() {
                total -= entry.size;
                pruned.entries += 1;
                pruned.bytes += entry.size;
            }
        }
        self.remove_stale_temporaries(max == 0);
        Ok(pruned)
    }

    /// Prunes to the bound the cache was opened with.
    pub fn evict(&self) -> Result<Pruned, CacheError> {
        self.prune(self.max)
    }

    fn remove_stale_temporaries(&self, all: bool) {
        let day = std::time::Duration::from_secs(24 * 3600);
        for kind in Kind::ALL {
            let Ok(listing) = fs::read_dir(self.dir.join(kind.dir())) else {
                continue;
            };
            for item in listing.flatten() {
                let stale = item
                    .metadata()
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| all || age > day);
                if item.file_name().to_string_lossy().starts_with(TEMP_PREFIX) && stale {
                    let _ = fs::remove_file(item.path());
                }
            }
        }
    }
}

/// Marks an entry used now, for least-recently-used eviction. A failure
/// only makes it look older.
fn touch(file: &File) {
    let _ = file.set_modified(SystemTime::now());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> (tempfile::TempDir, LayerCache) {
        let dir = tempfile::tempdir().unwrap();
        let cache = LayerCache::open(&dir.path().join("airgap"), 1 << 20).unwrap();
        (dir, cache)
    }

    fn frame_of(digest: &Digest, bytes: &[u8]) -> Vec<u8> {
        let mut entry = Vec::new();
        crate::bundle::tar_stream::append_bytes(&mut entry, &digest.blob_path(), bytes).unwrap();
        zstd::bulk::compress(&entry, 3).unwrap()
    }

    fn put_frame(cache: &LayerCache, digest: &Digest, bytes: &[u8]) {
        let mut ingest = cache.frame_ingest(digest).unwrap();
        ingest.write_all(&frame_of(digest, bytes)).unwrap();
        ingest.commit(bytes.len() as u64).unwrap();
    }

    fn put_layer(cache: &LayerCache, bytes: &[u8]) -> Digest {
        let digest = Digest::of(bytes);
        put_frame(cache, &digest, bytes);
        digest
    }

    #[test]
    fn the_cache_directory_is_private_and_frames_read_back_checked() {
        use std::io::Read;
        let (dir, cache) = cache();
        let mode = fs::metadata(cache.dir()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let digest = put_layer(&cache, b"layer bytes");
        let mut layer = cache.layer(&digest).unwrap();
        assert_eq!(layer.size, 11);
        let mut frame = Vec::new();
        layer.frame().read_to_end(&mut frame).unwrap();
        assert_eq!(frame, frame_of(&digest, b"layer bytes"));
        let target = dir.path().join("layer");
        assert_eq!(cache.extract_layer(&digest, &target), Some(11));
        assert_eq!(fs::read(&target).unwrap(), b"layer bytes");
    }

    #[test]
    fn frames_are_kept_per_profile() {
        let (_dir, cache) = cache();
        let digest = put_layer(&cache, b"layer bytes");
        let other = cache.clone().with_profile("zstd-other".into());
        assert!(other.layer(&digest).is_none());
        assert!(cache.layer(&digest).is_some());
    }

    #[test]
    fn a_damaged_entry_is_dropped_not_used() {
        let (_dir, cache) = cache();
        let digest = put_layer(&cache, b"layer bytes");
        let path = cache.path(Kind::Layer, &digest);
        let mut bytes = fs::read(&path).unwrap();
        bytes[10] ^= 1;
        fs::write(&path, bytes).unwrap();
        assert!(cache.layer(&digest).is_none());
        assert!(!cache.has_layer(&digest), "the damaged entry is removed");

        let config = b"{\"rootfs\":{}}";
        let config_digest = Digest::of(config);
        cache.put_config(&config_digest, config).unwrap();
        fs::write(cache.path(Kind::Config, &config_digest), b"{}").unwrap();
        assert!(cache.config(&config_digest).is_none());
    }

    #[test]
    fn a_frame_holding_another_layer_is_never_extracted() {
        let (dir, cache) = cache();
        let digest = Digest::of(b"expected");
        put_frame(&cache, &digest, b"something else");
        let target = dir.path().join("layer");
        assert_eq!(cache.extract_layer(&digest, &target), None);
        assert!(!target.exists());
        assert!(!cache.has_layer(&digest), "the wrong entry is removed");
    }

    #[test]
    fn a_link_planted_as_an_entry_is_not_followed() {
        let (dir, cache) = cache();
        let digest = Digest::of(b"layer bytes");
        let outside = dir.path().join("outside");
        fs::write(&outside, frame_of(&digest, b"layer bytes")).unwrap();
        std::os::unix::fs::symlink(&outside, cache.path(Kind::Layer, &digest)).unwrap();
        assert!(cache.layer(&digest).is_none());
    }

    #[test]
    fn pruning_evicts_the_least_recently_used_first() {
        let (_dir, cache) = cache();
        let old = put_layer(&cache, &[1u8; 1000]);
        let new = put_layer(&cache, &[2u8; 1000]);
        let long_ago = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        File::options()
            .write(true)
            .open(cache.path(Kind::Layer, &old))
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        let sizes: Vec<u64> = cache.entries().unwrap().iter().map(|e| e.size).collect();
        let pruned = cache.prune(sizes[1]).unwrap();
        assert_eq!(
            pruned,
            Pruned {
                entries: 1,
                bytes: sizes[0]
            }
        );
        assert!(!cache.has_layer(&old));
        assert!(cache.has_layer(&new));
        assert_eq!(cache.prune(0).unwrap().entries, 1);
        assert!(cache.entries().unwrap().is_empty());
    }

    #[test]
    fn a_cache_directory_others_can_write_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("airgap");
        fs::create_dir(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o777)).unwrap();
        let error = LayerCache::open(&path, 1).unwrap_err();
        assert!(matches!(error, CacheError::Insecure { .. }), "{error}");
        assert!(error.to_string().contains("--no-cache"), "{error}");
    }
}
