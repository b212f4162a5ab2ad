//! A bundle stored as parts (`shop.zst.001`, `shop.zst.002`, …) for media
//! with file size limits, and the small signed index (`shop.zst.parts`,
//! `shop.zst.parts.sig`) that lists each part's size and SHA-256, so a
//! reader names the exact part that is missing or damaged and only that
//! part needs copying again. The parts' concatenation is the bundle.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, HashingReader};
use crate::files::cleanup;
use crate::files::untrusted::{self, Links};

use super::BundleError;
use super::output_files::{file_name, parent_dir, set_readable, with_suffix};

/// Media type of the parts index.
pub const PARTS_MEDIA_TYPE: &str = "application/vnd.airgap.parts.v1+json";
/// The context prefixed to the index bytes before signing.
pub const PARTS_SIGNATURE_CONTEXT: &[u8] = b"airgap-bundle-parts-v1\n";
/// The largest part FAT32 can store: 4 GiB less one byte.
pub const FAT32_LIMIT: u64 = (4 << 30) - 1;
/// Largest index a reader accepts (FORMAT.md 8.2): some 6,000 parts.
const INDEX_LIMIT: u64 = 1 << 20;

/// The parts index.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartsIndex {
    /// Always [`PARTS_MEDIA_TYPE`].
    pub media_type: String,
    /// The bundle's file name, without part suffix.
    pub bundle: String,
    /// The whole bundle's size.
    pub size: u64,
    /// The whole bundle's SHA-256.
    pub sha256: Digest,
    /// The parts, in order.
    pub parts: Vec<Part>,
}

/// One part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// Its file name (`shop.zst.001`).
    pub name: String,
    /// Its size.
    pub size: u64,
    /// Its SHA-256.
    pub sha256: Digest,
}

/// The file name of part `number` (1-based) of `bundle`.
pub fn part_name(bundle: &str, number: usize) -> String {
    format!("{bundle}.{number:03}")
}

/// The index file of `bundle` (a path without part suffix).
pub fn index_path(bundle: &Path) -> PathBuf {
    with_suffix(bundle, ".parts")
}

/// The index signature file of `bundle`.
pub fn index_signature_path(bundle: &Path) -> PathBuf {
    with_suffix(bundle, ".parts.sig")
}

/// Where the parts of a bundle are, given what a user named: the bundle
/// name itself, any one part, or the directory holding them.
pub fn find_index(named: &Path) -> Option<PathBuf> {
    if named.is_dir() {
        let mut indexes: Vec<PathBuf> = std::fs::read_dir(named)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "parts"))
            .collect();
        return (indexes.len() == 1).then(|| indexes.remove(0));
    }
    let name = named.file_name()?.to_str()?;
    let base = match name.rsplit_once('.') {
        Some((base, number)) if number.len() == 3 && number.bytes().all(|b| b.is_ascii_digit()) => {
            base
        }
        _ => name,
    };
    let index = index_path(&named.with_file_name(base));
    // Whatever sits at the index's name is found, so that something other
    // than a file there is refused by name rather than passed over.
    std::fs::symlink_metadata(&index).is_ok().then_some(index)
}

/// The error for `path`, a file found beside a bundle, that could not be
/// used for `action`: one that is not a regular file or is too large for
/// what it should be says what to do about it.
pub fn found_file_error(action: &'static str, path: &Path, error: io::Error) -> BundleError {
    let source = match error.kind() {
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => io::Error::new(
            error.kind(),
            format!("{error}; remove it, or copy it again from the original"),
        ),
        _ => error,
    };
    BundleError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// Opens part `path` for reading: a regular file, not a link to one.
pub fn open_part(path: &Path) -> io::Result<File> {
    untrusted::open_regular(path, Links::Refuse)
}

impl PartsIndex {
    /// Reads and parses an index file.
    pub fn read(path: &Path) -> Result<(Self, Vec<u8>), BundleError> {
        let bytes = untrusted::read_bounded(path, Links::Refuse, INDEX_LIMIT, "parts index")
            .map_err(|e| found_file_error("cannot use the parts index", path, e))?;
        let index = Self::parse(&bytes).map_err(|e| match e {
            BundleError::NotABundle { .. } => BundleError::NotABundle {
                reason: format!("{} is not an airgap parts index", path.display()),
            },
            other => other,
        })?;
        Ok((index, bytes))
    }

    /// Parses an index's bytes, refusing part names that would reach
    /// outside the index's directory.
    pub fn parse(bytes: &[u8]) -> Result<Self, BundleError> {
        let index: Self = serde_json::from_slice(bytes)
            .ok()
            .filter(|i: &Self| {
                i.media_type == PARTS_MEDIA_TYPE && bytes.len() as u64 <= INDEX_LIMIT
            })
            .ok_or_else(|| BundleError::NotABundle {
                reason: "it is not an airgap parts index".into(),
            })?;
        for part in &index.parts {
            super::check_entry_path(&part.name)?;
            if part.name.contains('/') {
                return Err(BundleError::UnsafePath {
                    path: part.name.clone(),
                });
            }
        }
        Ok(index)
    }

    /// Serialises for writing; the exact bytes are what gets signed.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("indexes always serialise");
        bytes.push(b'\n');
        bytes
    }

    /// Refuses, by name, the first part in `dir` that is there but is not a
    /// regular file (a FIFO would hang its reader, a link could point
    /// anywhere); absent parts are left to [`Self::missing_or_short`].
    pub fn check_regular(&self, dir: &Path) -> Result<(), BundleError> {
        for part in &self.parts {
            let path = dir.join(&part.name);
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if !meta.is_file() {
                let error = open_part(&path)
                    .err()
                    .unwrap_or_else(|| io::Error::other("it changed while it was looked at"));
                return Err(found_file_error("cannot use part", &path, error));
            }
        }
        Ok(())
    }

    /// Parts that are absent or of the wrong size in `dir`, by name.
    pub fn missing_or_short(&self, dir: &Path) -> Vec<String> {
        self.parts
            .iter()
            .filter(|part| {
                std::fs::symlink_metadata(dir.join(&part.name))
                    .ok()
                    .filter(std::fs::Metadata::is_file)
                    .map(|m| m.len())
                    != Some(part.size)
            })
            .map(|part| part.name.clone())
            .collect()
    }

    /// A reader over the parts in `dir`, in order, that checks each part's
    /// digest as it ends and fails naming the part that differs.
    pub fn reader(&self, dir: &Path) -> PartsReader {
        PartsReader {
            dir: dir.to_owned(),
            parts: self.parts.clone(),
            next: 0,
            current: None,
        }
    }
}

/// Reads the concatenation of parts, checking each as it ends.
pub struct PartsReader {
    dir: PathBuf,
    parts: Vec<Part>,
    next: usize,
    current: Option<(HashingReader<io::Take<File>>, usize)>,
}

/// A part whose content is not what the index says.
#[derive(Debug, thiserror::Error)]
#[error("part {number} ({name}) is damaged: its SHA-256 or size differs from the parts index")]
pub struct PartDamaged {
    /// 1-based part number.
    pub number: usize,
    /// Its file name.
    pub name: String,
}

impl Read for PartsReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.current.is_none() {
                let Some(part) = self.parts.get(self.next) else {
                    return Ok(0);
                };
                let file = open_part(&self.dir.join(&part.name))?;
                self.current = Some((HashingReader::new(file.take(part.size)), self.next));
                self.next += 1;
            }
            let (reader, index) = self.current.as_mut().expect("set just above");
            let n = reader.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            let index = *index;
            let (reader, _) = self.current.take().expect("set just above");
            let (digest, size) = reader.finish();
            let part = &self.parts[index];
            if digest != part.sha256 || size != part.size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    PartDamaged {
                        number: index + 1,
                        name: part.name.clone(),
                    },
                ));
            }
        }
    }
}

/// Writes a byte stream as numbered parts of at most `part_size` bytes,
/// each under a temporary name until [`PartWriter::finish`] renames them.
pub struct PartWriter {
    base: PathBuf,
    part_size: u64,
    // Each part's temporary file stays registered for removal on interrupt
    // until it is renamed into place.
    written: Vec<(tempfile::NamedTempFile, Part, cleanup::Registration)>,
    current: Option<(
        crate::digest::HashingWriter<io::BufWriter<tempfile::NamedTempFile>>,
        u64,
        cleanup::Registration,
    )>,
}

impl PartWriter {
    /// Parts of `base` (the bundle path), each at most `part_size` bytes.
    pub fn new(base: &Path, part_size: u64) -> Self {
        Self {
            base: base.to_owned(),
            part_size: part_size.max(1),
            written: Vec::new(),
            current: None,
        }
    }

    fn close_current(&mut self) -> io::Result<()> {
        if let Some((writer, _, registration)) = self.current.take() {
            let (sha256, size, buffered) = writer.finish();
            let file = buffered.into_inner().map_err(|e| e.into_error())?;
            file.as_file().sync_all()?;
            let name = part_name(&file_name(&self.base), self.written.len() + 1);
            self.written
                .push((file, Part { name, size, sha256 }, registration));
        }
        Ok(())
    }

    /// Renames every part into place and returns them.
    pub fn finish(mut self) -> io::Result<Vec<Part>> {
        self.close_current()?;
        let dir = parent_dir(&self.base);
        let mut parts = Vec::new();
        for (file, part, _registration) in self.written {
            set_readable(file.as_file())?;
            file.persist(dir.join(&part.name)).map_err(|e| e.error)?;
            parts.push(part);
        }
        Ok(parts)
    }
}

impl Write for PartWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.current.as_ref().is_some_and(|(_, left, _)| *left == 0) {
            self.close_current()?;
        }
        if self.current.is_none() {
            let dir = parent_dir(&self.base);
            let prefix = format!(".{}.{:03}.", file_name(&self.base), self.written.len() + 1);
            let (file, registration) = cleanup::create_registered(
                || {
                    tempfile::Builder::new()
                        .prefix(&prefix)
                        .suffix(".tmp")
                        .tempfile_in(dir)
                },
                |file| file.path(),
            )?;
            let writer =
                crate::digest::HashingWriter::new(io::BufWriter::with_capacity(1 << 20, file));
            self.current = Some((writer, self.part_size, registration));
        }
        let (writer, left, _) = self.current.as_mut().expect("set just above");
        let n = writer.write(&buf[..buf.len().min(*left as usize)])?;
        *left -= n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.current.as_mut() {
            Some((writer, _, _)) => writer.flush(),
            None => Ok(()),
        }
    }
}

/// Parses a part size: a number with an optional `K`, `M` or `G` suffix
/// (powers of 1024), or `fat32` for the largest file FAT32 stores.
pub fn parse_size(text: &str) -> Result<u64, String> {
    if text.eq_ignore_ascii_case("fat32") {
        return Ok(FAT32_LIMIT);
    }
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, ""),
    };
    let multiplier: u64 = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => return Err(format!("{text:?}: use a number with K, M or G, or fat32")),
    };
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size"))?;
    value
        .checked_mul(multiplier)
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("{text:?} is not a usable part size"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::untrusted::mkfifo;

    #[test]
    fn sizes_parse_with_suffixes_and_fat32() {
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("fat32"), Ok(FAT32_LIMIT));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("0").is_err());
        assert!(parse_size("1T").is_err());
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn parts_write_and_read_back_and_a_damaged_part_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("b.zst");
        let data: Vec<u8> = (0..10_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let mut writer = PartWriter::new(&base, 16_384);
        writer.write_all(&data).unwrap();
        let parts = writer.finish().unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].name, "b.zst.001");
        let index = PartsIndex {
            media_type: PARTS_MEDIA_TYPE.into(),
            bundle: "b.zst".into(),
            size: data.len() as u64,
            sha256: Digest::of(&data),
            parts,
        };
        let mut back = Vec::new();
        index.reader(dir.path()).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);

        let mut second = std::fs::read(dir.path().join("b.zst.002")).unwrap();
        second[100] ^= 1;
        std::fs::write(dir.path().join("b.zst.002"), second).unwrap();
        let error = index
            .reader(dir.path())
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(error.to_string().contains("part 2 (b.zst.002)"), "{error}");

        std::fs::remove_file(dir.path().join("b.zst.003")).unwrap();
        assert_eq!(index.missing_or_short(dir.path()), ["b.zst.003"]);
    }

    #[test]
    fn a_fifo_found_as_the_index_is_refused_by_name_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("b.zst.parts");
        mkfifo(&fifo);
        // A FIFO is found (by name or in the directory), then refused.
        assert_eq!(find_index(&dir.path().join("b.zst")), Some(fifo.clone()));
        assert_eq!(find_index(dir.path()), Some(fifo.clone()));
        let error = PartsIndex::read(&fifo).unwrap_err();
        assert!(error.to_string().contains("b.zst.parts"), "{error}");
        let cause = source_of(&error);
        assert!(
            cause.contains("FIFO") && cause.contains("remove it"),
            "{cause}"
        );
    }

    fn source_of(error: &BundleError) -> String {
        std::error::Error::source(error).map_or_else(String::new, ToString::to_string)
    }

    #[test]
    fn an_index_too_large_or_behind_a_link_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let index = dir.path().join("b.zst.parts");
        let file = File::create(&index).unwrap();
        file.set_len(1 << 30).unwrap();
        let error = PartsIndex::read(&index).unwrap_err();
        assert!(
            source_of(&error).contains("more than a parts index can"),
            "{error}"
        );

        let real = dir.path().join("elsewhere");
        std::fs::rename(&index, &real).unwrap();
        std::os::unix::fs::symlink(&real, &index).unwrap();
        let error = PartsIndex::read(&index).unwrap_err();
        assert!(source_of(&error).contains("symbolic link"), "{error}");
    }

    #[test]
    fn a_part_that_is_not_a_regular_file_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("b.zst");
        let mut writer = PartWriter::new(&base, 100);
        writer.write_all(&[7u8; 250]).unwrap();
        let parts = writer.finish().unwrap();
        let index = PartsIndex {
            media_type: PARTS_MEDIA_TYPE.into(),
            bundle: "b.zst".into(),
            size: 250,
            sha256: Digest::of(&[7u8; 250]),
            parts,
        };
        index.check_regular(dir.path()).unwrap();
        let second = dir.path().join("b.zst.002");
        std::fs::rename(&second, dir.path().join("aside")).unwrap();
        mkfifo(&second);
        let error = index.check_regular(dir.path()).unwrap_err();
        assert!(error.to_string().contains("b.zst.002"), "{error}");
        assert!(source_of(&error).contains("FIFO"), "{error}");
        // Read anyway, the FIFO fails at once instead of waiting for a writer.
        let error = index
            .reader(dir.path())
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(error.to_string().contains("FIFO"), "{error}");

        std::fs::remove_file(&second).unwrap();
        std::os::unix::fs::symlink(dir.path().join("aside"), &second).unwrap();
        let error = index.check_regular(dir.path()).unwrap_err();
        assert!(source_of(&error).contains("symbolic link"), "{error}");
        assert_eq!(index.missing_or_short(dir.path()), ["b.zst.002"]);
    }

    #[test]
    fn part_names_reaching_outside_the_directory_are_refused() {
        for name in ["../b.zst.001", "sub/b.zst.001", "/etc/passwd"] {
            let index = format!(
                r#"{{"mediaType":"{PARTS_MEDIA_TYPE}","bundle":"b.zst","size":1,"sha256":"{}","parts":[{{"name":"{name}","size":1,"sha256":"{}"}}]}}"#,
                Digest::of(b"x"),
                Digest::of(b"x")
            );
            assert!(PartsIndex::parse(index.as_bytes()).is_err(), "{name}");
        }
    }

    #[test]
    fn any_part_or_the_directory_finds_the_index() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.zst.parts"), b"{}").unwrap();
        assert!(find_index(&dir.path().join("b.zst.002")).is_some());
        assert!(find_index(&dir.path().join("b.zst")).is_some());
        assert!(find_index(dir.path()).is_some());
        assert!(find_index(&dir.path().join("other.zst")).is_none());
    }
}
