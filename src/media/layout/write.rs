//! Writes an OCI image layout directory: a new one, or merged into an
//! existing one. Blobs already there are kept, not rewritten; a new blob is
//! hashed as it is written to a temporary file beside its final name and
//! renamed into place only if it is the blob the caller named, so a reader
//! of the layout never sees a partial or wrong blob. The index is written
//! last, atomically.

use std::collections::HashMap;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use oci_spec::image::{
    Arch, Descriptor, ImageIndex, ImageIndexBuilder, MediaType, OciLayout, OciLayoutBuilder, Os,
    PlatformBuilder,
};
use rustix::fs::{Mode, OFlags};

use crate::bundle::layout::canonical_json;
use crate::digest::{Digest, HashingWriter};
use crate::image::{BlobRef, ImageRef, Platform};

use super::dir::{BLOBS, LayoutDir};
use super::{CONTAINERD_NAME, INDEX_LIMIT, LAYOUT_VERSION, METADATA_LIMIT, REF_NAME};

/// Directories airgap creates in the layout: it is the user's named output,
/// for image tools of any account to read.
const DIR_MODE: u32 = 0o755;
/// Blobs and metadata files, readable as the directories are.
const FILE_MODE: u32 = 0o644;

/// Why the layout could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// The directory holds something else.
    #[error(
        "{dir} is neither empty nor an OCI image layout (it has no oci-layout file); name a new or empty directory, or an existing layout"
    )]
    NotLayout {
        /// The directory.
        dir: PathBuf,
    },
    /// A layout file airgap must read is not what the image spec says.
    #[error(
        "{path} is not a valid {what}: {reason}; repair or remove it, or name another directory"
    )]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What it should be.
        what: &'static str,
        /// Why it is not.
        reason: String,
    },
    /// The file system refused.
    #[error("cannot write the OCI layout at {path}")]
    Io {
        /// The layout, or the file concerned.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The content handed over is not the blob it was said to be.
    #[error(
        "the blob given as {} ({} bytes) hashes to {actual} ({actual_size} bytes); it was not kept",
        expected.digest,
        expected.size
    )]
    Mismatch {
        /// What the caller named.
        expected: BlobRef,
        /// What the content hashed to.
        actual: Digest,
        /// How many bytes it had (at most one more than expected is read).
        actual_size: u64,
    },
}

/// An OCI image layout being written. Nothing is visible in `index.json`
/// until [`LayoutWriter::finish`].
#[derive(Debug)]
pub struct LayoutWriter {
    root: LayoutDir,
    blobs: LayoutDir,
    index: ImageIndex,
}

impl LayoutWriter {
    /// Creates the layout at `dir` (and missing parents), or opens the
    /// layout already there to merge into it. An existing directory that is
    /// neither empty nor a layout is refused.
    pub fn open(dir: &Path) -> Result<Self, LayoutError> {
        let io_error = |source| LayoutError::Io {
            path: dir.to_owned(),
            source,
        };
        match std::fs::metadata(dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).map_err(io_error)?;
            }
            Err(e) => return Err(io_error(e)),
            Ok(_) => {}
        }
        let root = LayoutDir::open(dir).map_err(io_error)?;
        if root.exists("oci-layout") {
            check_layout_version(&root)?;
        } else if root.is_empty().map_err(io_error)? {
            let layout: OciLayout = OciLayoutBuilder::default()
                .image_layout_version(LAYOUT_VERSION)
                .build()
                .expect("the layout version is set");
            crate::files::untrusted::write_atomic(
                &dir.join("oci-layout"),
                &canonical_json(&layout),
                FILE_MODE,
            )
            .map_err(io_error)?;
        } else {
            return Err(LayoutError::NotLayout {
                dir: dir.to_owned(),
            });
        }
        let blobs = root.subdir(&BLOBS, Some(DIR_MODE)).map_err(io_error)?;
        let index = read_index(&root)?;
        Ok(Self { root, blobs, index })
    }

    /// The layout directory.
    pub fn path(&self) -> &Path {
        self.root.path()
    }

    /// True when the layout holds `blob` already: a regular file of its size
    /// under its digest's name. (Its content is not read: blobs are named by
    /// their digest, and were checked when they were put there.)
    pub fn has_blob(&self, blob: &BlobRef) -> bool {
        self.blobs.regular_size(blob.digest.hex()) == Some(blob.size)
    }

    /// Stores `blob`, whose bytes `content` yields. A blob the layout holds
    /// already is kept and `content` only read to its end (callers that can
    /// skip producing it ask [`LayoutWriter::has_blob`] first). Returns
    /// whether it wrote. Content that does not hash to `blob` is refused
    /// and leaves nothing behind.
    pub fn put_blob(
        &mut self,
        blob: &BlobRef,
        content: &mut dyn Read,
    ) -> Result<bool, LayoutError> {
        let path = self.blobs.path().join(blob.digest.hex());
        let io_error = |source| LayoutError::Io {
            path: path.clone(),
            source,
        };
        if self.has_blob(blob) {
            io::copy(content, &mut io::sink()).map_err(io_error)?;
            return Ok(false);
        }
        let mut temp = TempBlob::create(&self.blobs).map_err(io_error)?;
        let file = temp.file.take().expect("a new temporary blob has its file");
        let mut writer = HashingWriter::new(BufWriter::with_capacity(BUFFER, file));
        // One byte past the size is enough to know the content is too long.
        io::copy(&mut content.take(blob.size + 1), &mut writer).map_err(io_error)?;
        writer.flush().map_err(io_error)?;
        let (actual, actual_size, buffered) = writer.finish();
        let file = buffered
            .into_inner()
            .map_err(|e| io_error(e.into_error()))?;
        if actual != blob.digest || actual_size != blob.size {
            return Err(LayoutError::Mismatch {
                expected: blob.clone(),
                actual,
                actual_size,
            });
        }
        file.sync_all().map_err(io_error)?;
        rustix::fs::renameat(
            self.blobs.fd(),
            &temp.name,
            self.blobs.fd(),
            blob.digest.hex(),
        )
        .map_err(|e| io_error(e.into()))?;
        temp.kept = true;
        Ok(true)
    }

    /// Stores a blob held in memory (a config, a manifest) and returns its
    /// descriptor.
    pub fn put_bytes(&mut self, bytes: &[u8]) -> Result<BlobRef, LayoutError> {
        let blob = BlobRef {
            digest: Digest::of(bytes),
            size: bytes.len() as u64,
        };
        self.put_blob(&blob, &mut &bytes[..])?;
        Ok(blob)
    }

    /// Registers the image whose manifest is `manifest` (already stored)
    /// under each of `refs`: one index entry per reference, named by both
    /// [`CONTAINERD_NAME`] and [`REF_NAME`] with the full reference. Entries
    /// already naming one of these references are replaced; an image known
    /// by digest only gets one entry without names.
    pub fn add_image(
        &mut self,
        refs: &[ImageRef],
        manifest: &BlobRef,
        platform: Option<&Platform>,
    ) {
        let names: Vec<&ImageRef> = refs.iter().filter(|r| r.is_taggable()).collect();
        let mut manifests = self.index.manifests().clone();
        manifests.retain(|entry| !names.iter().any(|r| names_reference(entry, r)));
        let entry = |annotations| {
            let mut descriptor = Descriptor::new(
                MediaType::ImageManifest,
                manifest.size,
                oci_digest(&manifest.digest),
            );
            descriptor.set_annotations(annotations);
            descriptor.set_platform(platform.map(oci_platform));
            descriptor
        };
        if names.is_empty() {
            let listed = manifests.iter().any(|e| {
                AsRef::<str>::as_ref(e.digest()) == manifest.digest.as_str() && is_unnamed(e)
            });
            if !listed {
                manifests.push(entry(None));
            }
        }
        for reference in names {
            manifests.push(entry(Some(HashMap::from([
                (CONTAINERD_NAME.to_owned(), reference.name.clone()),
                (REF_NAME.to_owned(), reference.name.clone()),
            ]))));
        }
        self.index.set_manifests(manifests);
    }

    /// Writes `index.json` (atomically, keys sorted so the same images give
    /// the same bytes) and makes the new blobs' names durable.
    pub fn finish(self) -> Result<(), LayoutError> {
        let path = self.root.path().join("index.json");
        crate::files::untrusted::write_atomic(&path, &canonical_json(&self.index), FILE_MODE)
            .map_err(|source| LayoutError::Io {
                path: path.clone(),
                source,
            })?;
        rustix::fs::fsync(self.blobs.fd()).map_err(|e| LayoutError::Io {
            path: self.blobs.path().to_owned(),
            source: e.into(),
        })
    }
}

const BUFFER: usize = 256 << 10;

/// A blob being written, under a name no reader takes for a blob; removed
/// unless it was renamed into place.
struct TempBlob<'a> {
    dir: &'a LayoutDir,
    name: String,
    file: Option<std::fs::File>,
    kept: bool,
}

impl<'a> TempBlob<'a> {
    fn create(dir: &'a LayoutDir) -> io::Result<Self> {
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(io::Error::other)?;
        let name = format!(".airgap-{}.tmp", hex::encode(random));
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(dir.fd(), &name, flags, Mode::from_raw_mode(FILE_MODE))?;
        Ok(Self {
            dir,
            name,
            file: Some(fd.into()),
            kept: false,
        })
    }
}

impl Drop for TempBlob<'_> {
    fn drop(&mut self) {
        if !self.kept {
            let _ = rustix::fs::unlinkat(self.dir.fd(), &self.name, rustix::fs::AtFlags::empty());
        }
    }
}

fn check_layout_version(root: &LayoutDir) -> Result<(), LayoutError> {
    let path = root.path().join("oci-layout");
    let malformed = |reason: String| LayoutError::Malformed {
        path: path.clone(),
        what: "oci-layout file",
        reason,
    };
    let bytes = root
        .read_file("oci-layout", METADATA_LIMIT, "oci-layout file")
        .map_err(|e| malformed(e.to_string()))?;
    let layout: OciLayout = serde_json::from_slice(&bytes).map_err(|e| malformed(e.to_string()))?;
    if layout.image_layout_version() != LAYOUT_VERSION {
        return Err(malformed(format!(
            "it declares layout version {}, airgap writes {LAYOUT_VERSION} only",
            crate::display::escape(layout.image_layout_version())
        )));
    }
    Ok(())
}

/// The layout's index, or an empty one if it has none yet.
fn read_index(root: &LayoutDir) -> Result<ImageIndex, LayoutError> {
    if !root.exists("index.json") {
        return Ok(ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(Vec::new())
            .build()
            .expect("every required index field is set"));
    }
    let path = root.path().join("index.json");
    let malformed = |reason: String| LayoutError::Malformed {
        path: path.clone(),
        what: "OCI image index",
        reason,
    };
    let bytes = root
        .read_file("index.json", INDEX_LIMIT, "OCI image index")
        .map_err(|e| malformed(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| malformed(e.to_string()))
}

/// True when either name annotation of `entry` names `reference`, spelled
/// in full or in any form that normalises to it (skopeo writes what its
/// user typed, `fixture/web:1`).
fn names_reference(entry: &Descriptor, reference: &ImageRef) -> bool {
    let Some(annotations) = entry.annotations() else {
        return false;
    };
    [CONTAINERD_NAME, REF_NAME]
        .iter()
        .filter_map(|key| annotations.get(*key))
        .any(|value| {
            *value == reference.name
                || ImageRef::parse(value).is_ok_and(|parsed| parsed.name == reference.name)
        })
}

fn is_unnamed(entry: &Descriptor) -> bool {
    entry
        .annotations()
        .as_ref()
        .is_none_or(|a| !a.contains_key(CONTAINERD_NAME) && !a.contains_key(REF_NAME))
}

fn oci_digest(digest: &Digest) -> oci_spec::image::Digest {
    digest
        .as_str()
        .parse()
        .expect("a sha256 digest is a valid OCI digest")
}

fn oci_platform(platform: &Platform) -> oci_spec::image::Platform {
    let builder = PlatformBuilder::default()
        .architecture(Arch::from(platform.architecture.as_str()))
        .os(Os::from(platform.os.as_str()));
    match &platform.variant {
        Some(variant) => builder.variant(variant.clone()),
        None => builder,
    }
    .build()
    .expect("architecture and os are set")
}
