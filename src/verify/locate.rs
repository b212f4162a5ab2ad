//! Finds a bundle's bytes from what a user names: a bundle file, or a split
//! bundle given by its name, any of its parts, or their directory. A split
//! bundle's index is checked (signature, then every part present with its
//! size) before any content is read, so a missing part is named at once.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::error::VerifyError;
use super::signature::check_signed;
use crate::bundle::parts::{self, PartsIndex};
use crate::bundle::reader::{self, Head};
use crate::bundle::seal::{self, Seal};
use crate::bundle::{BundleError, MANIFEST_LIMIT, SIGNATURE_LIMIT, SignatureEntry};
use crate::files::untrusted::{self, Links};
use crate::trust::TrustPolicy;

/// Where a bundle's bytes are.
#[derive(Clone, Debug)]
pub enum Location {
    /// One file.
    File(PathBuf),
    /// Parts in a directory, as their index lists them.
    Parts {
        /// The directory.
        dir: PathBuf,
        /// The checked index.
        index: PartsIndex,
    },
}

impl Location {
    /// Finds the bundle `named` points at; for a split bundle, checks its
    /// index's signature against `policy` (unless `None`: only to show what
    /// a bundle claims) and that every part is there.
    pub fn find(named: &Path, policy: Option<&TrustPolicy>) -> Result<Self, VerifyError> {
        let is_part = named
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.len() == 3 && e.bytes().all(|b| b.is_ascii_digit()));
        let whole_file = named.is_file() && !is_part;
        let index_path = if whole_file {
            None
        } else {
            parts::find_index(named)
        };
        let Some(index_path) = index_path else {
            return Ok(Self::File(named.to_owned()));
        };
        let (index, bytes) = PartsIndex::read(&index_path)?;
        let base = index_path.with_extension("");
        let signature_path = parts::index_signature_path(&base);
        let signature = read_parts_signature(&signature_path)?;
        if let Some(policy) = policy {
            check_signed(
                &bytes,
                signature.as_ref(),
                parts::PARTS_SIGNATURE_CONTEXT,
                policy,
            )?;
        }
        let dir = index_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        index.check_regular(&dir)?;
        let missing = index.missing_or_short(&dir);
        if !missing.is_empty() {
            return Err(VerifyError::PartsMissing { parts: missing });
        }
        Ok(Self::Parts { dir, index })
    }

    /// Reads the bundle from the start.
    pub fn open(&self) -> Result<Box<dyn Read + Send>, VerifyError> {
        match self {
            Self::File(path) => {
                let file = open_bundle_file(path).map_err(|source| VerifyError::Open {
                    path: path.clone(),
                    source,
                })?;
                Ok(Box::new(file))
            }
            Self::Parts { dir, index } => Ok(Box::new(index.reader(dir))),
        }
    }

    /// The seal the bundle ends with, and the length of its frame; `None`
    /// for a bundle without one (unsigned, or written before format 1.3).
    pub fn seal(&self) -> Result<Option<(Seal, u64)>, VerifyError> {
        let Some(size) = self.size() else {
            return Ok(None);
        };
        let footer_len = seal::FOOTER_LEN as u64;
        if size < footer_len {
            return Ok(None);
        }
        let footer = self.read_at(size - footer_len, footer_len)?;
        let Some(frame_len) = seal::frame_len(&footer)? else {
            return Ok(None);
        };
        if frame_len > size {
            return Err(BundleError::BadSeal {
                reason: "it claims to be larger than the file".into(),
            }
            .into());
        }
        let frame = self.read_at(size - frame_len, frame_len)?;
        Ok(Some((seal::parse(&frame, size)?, frame_len)))
    }

    /// `len` bytes from `offset` on.
    fn read_at(&self, offset: u64, len: u64) -> Result<Vec<u8>, VerifyError> {
        let mut bytes = Vec::with_capacity(len as usize);
        let mut read = |file: std::io::Result<File>, path: &Path, from: u64, count: u64| {
            let io_error = |source| BundleError::Io {
                action: "reading",
                path: path.to_owned(),
                source,
            };
            let mut file = file.map_err(io_error)?;
            file.seek(SeekFrom::Start(from)).map_err(io_error)?;
            let before = bytes.len();
            file.take(count).read_to_end(&mut bytes).map_err(io_error)?;
            if ((bytes.len() - before) as u64) < count {
                return Err(io_error(std::io::ErrorKind::UnexpectedEof.into()));
            }
            Ok::<(), BundleError>(())
        };
        match self {
            Self::File(path) => read(open_bundle_file(path), path, offset, len)?,
            Self::Parts { dir, index } => {
                let end = offset + len;
                let mut start = 0u64;
                for part in &index.parts {
                    let (from, to) = (offset.max(start), end.min(start + part.size));
                    if from < to {
                        let path = dir.join(&part.name);
                        read(parts::open_part(&path), &path, from - start, to - from)?;
                    }
                    start += part.size;
                }
            }
        }
        Ok(bytes)
    }

    /// The bundle as a person would name it.
    pub fn describe(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Parts { dir, index } => {
                format!("{} (in parts)", dir.join(&index.bundle).display())
            }
        }
    }

    /// The bundle's size in bytes, where known.
    pub fn size(&self) -> Option<u64> {
        match self {
            Self::File(path) => std::fs::metadata(path).ok().map(|m| m.len()),
            Self::Parts { index, .. } => Some(index.size),
        }
    }

    /// Parts whose content differs from the index: what to recopy after a
    /// read of the whole failed.
    pub fn damaged_parts(&self) -> Vec<String> {
        let Self::Parts { dir, index } = self else {
            return Vec::new();
        };
        index
            .parts
            .iter()
            .filter(|part| {
                let Ok(file) = parts::open_part(&dir.join(&part.name)) else {
                    return true;
                };
                let mut hashing = crate::digest::HashingReader::new(file);
                std::io::copy(&mut hashing, &mut std::io::sink()).is_err()
                    || hashing.finish() != (part.sha256.clone(), part.size)
            })
            .map(|part| part.name.clone())
            .collect()
    }
}

/// Largest `.parts.sig` a reader accepts: a signature entry is a few
/// hundred bytes.
const PARTS_SIGNATURE_LIMIT: u64 = 64 << 10;

/// The signature beside a parts index, if there is one.
fn read_parts_signature(path: &Path) -> Result<Option<SignatureEntry>, BundleError> {
    let bytes = match untrusted::read_bounded(
        path,
        Links::Refuse,
        PARTS_SIGNATURE_LIMIT,
        "parts index signature",
    ) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(parts::found_file_error(
                "cannot use the parts index signature",
                path,
                e,
            ));
        }
    };
    let signature = serde_json::from_slice(&bytes).map_err(|_| BundleError::Inconsistent {
        reason: format!("{} is not a signature", path.display()),
    })?;
    Ok(Some(signature))
}

/// Opens the bundle file the user named: a link there is theirs to follow,
/// but a FIFO or device is refused at once instead of read forever.
fn open_bundle_file(path: &Path) -> std::io::Result<File> {
    untrusted::open_regular(path, Links::Follow)
}

/// A bundle read from standard input, staged to a file first so that it can
/// be verified completely before anything is loaded. The file has no name
/// (it is unlinked, or never linked, from the start), so a killed run leaves
/// nothing behind; it is read through `/proc/self/fd`.
pub struct Staged {
    _file: File,
    path: PathBuf,
}

/// Where a bundle's head must have been read by: the largest manifest and
/// signature, and room for what the decompressor reads ahead of them.
const HEAD_STAGE_LIMIT: u64 = MANIFEST_LIMIT + SIGNATURE_LIMIT + (16 << 20);

impl Staged {
    /// Copies `input` into an unnamed temporary file in `dir`, checking it
    /// as it comes: it must start as a zstd stream, its head must be found
    /// within [`HEAD_STAGE_LIMIT`] bytes, and then it may be only as long as
    /// the head says the bundle is ([`staged_limit`]).
    pub fn stage(input: &mut (dyn Read + Send), dir: &Path) -> Result<Self, VerifyError> {
        let io_error = |source| BundleError::Io {
            action: "staging the bundle in",
            path: dir.to_owned(),
            source,
        };
        let file = tempfile::tempfile_in(dir).map_err(io_error)?;
        let path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        std::fs::metadata(&path).map_err(|source| BundleError::Io {
            action: "finding the staged bundle at",
            path: path.clone(),
            source,
        })?;
        let mut tee = Tee {
            input,
            file: &file,
            staged: 0,
            limit: HEAD_STAGE_LIMIT,
            failed: None,
            over: false,
        };
        let start = tee.start().map_err(|e| tee.explain(e, io_error))?;
        check_start(&start)?;
        let head = reader::read_head(std::io::Cursor::new(start).chain(&mut tee));
        if let Some(error) = tee.failed.take() {
            return Err(io_error(error).into());
        }
        let head = match head {
            Ok(head) => head,
            Err(_) if tee.over => {
                return Err(BundleError::NotABundle {
                    reason: format!(
                        "standard input holds no bundle head in its first {HEAD_STAGE_LIMIT} bytes"
                    ),
                }
                .into());
            }
            Err(error) => return Err(error.into()),
        };
        tee.limit = staged_limit(&head);
        tee.over = tee.staged > tee.limit;
        if !tee.over {
            if let Err(error) = tee.drain() {
                if !tee.over {
                    return Err(io_error(tee.failed.take().unwrap_or(error)).into());
                }
            }
        }
        if tee.over {
            return Err(BundleError::TrailingData.into());
        }
        Ok(Self { _file: file, path })
    }

    /// The staged file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Standard input's first bytes must start a zstd frame or a skippable frame
/// (FORMAT.md 2.1); anything else is refused before more is read.
fn check_start(start: &[u8]) -> Result<(), BundleError> {
    const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
    let skippable = start.len() == 4 && start[0] & 0xf0 == 0x50 && start[1..] == [0x2a, 0x4d, 0x18];
    if start == ZSTD_MAGIC || skippable {
        return Ok(());
    }
    let reason = if start.is_empty() {
        "standard input is empty".to_owned()
    } else {
        let hex: Vec<String> = start.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "standard input starts with {} (\"{}\"), where a bundle starts with a zstd frame (28 b5 2f fd)",
            hex.join(" "),
            start.escape_ascii()
        )
    };
    Err(BundleError::NotABundle { reason })
}

/// The most a bundle whose head is `head` can hold, compressed: its tar
/// (each listed entry with its header, a long name's extra header and
/// padding; the manifest, the largest signature, the zero tail a reader
/// tolerates) stored raw at worst, plus what airgap's writer adds around it
/// (frame and block headers, the padding after the head, at most 1/1024 of
/// the body, and the seal), with generous room for each.
pub fn staged_limit(head: &Head) -> u64 {
    let padded = |size: u64| size.saturating_add(511) / 512 * 512;
    let entries = head.manifest.entries.iter().fold(0u64, |total, entry| {
        total
            .saturating_add(padded(entry.size))
            .saturating_add(3 * 512)
            .saturating_add(padded(entry.path.len() as u64 + 1))
    });
    let tar = entries
        .saturating_add(padded(head.manifest_bytes.len() as u64) + 3 * 512)
        .saturating_add(SIGNATURE_LIMIT + 3 * 512)
        .saturating_add(1 << 20);
    tar.saturating_add(tar / 256).saturating_add(2 << 20)
}

/// Copies what is read through it into the staging file, refusing to read
/// past `limit` bytes in all.
struct Tee<'a> {
    input: &'a mut (dyn Read + Send),
    file: &'a File,
    staged: u64,
    limit: u64,
    // Errors of the staging file and the limit are kept apart from the
    // reader's, which turns any error into "not a bundle".
    failed: Option<std::io::Error>,
    over: bool,
}

impl Tee<'_> {
    /// The first four bytes, fewer only if the input ends first.
    fn start(&mut self) -> std::io::Result<Vec<u8>> {
        let mut start = Vec::with_capacity(4);
        self.take(4).read_to_end(&mut start)?;
        Ok(start)
    }

    /// Stages the rest of the input.
    fn drain(&mut self) -> std::io::Result<()> {
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            match self.read(&mut buffer) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes `bytes` to the staging file, keeping its error apart.
    fn stage(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if let Err(error) = (&mut &*self.file).write_all(bytes) {
            let kind = error.kind();
            self.failed = Some(error);
            return Err(kind.into());
        }
        self.staged += bytes.len() as u64;
        Ok(())
    }

    fn explain(
        &mut self,
        error: std::io::Error,
        io_error: impl Fn(std::io::Error) -> BundleError,
    ) -> BundleError {
        io_error(self.failed.take().unwrap_or(error))
    }
}

impl Read for Tee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let room = (self.limit - self.staged.min(self.limit)).min(buf.len() as u64) as usize;
        if room == 0 && !buf.is_empty() {
            // One byte more tells a stream that ends exactly at the limit
            // from one that goes on; it is staged like the others, since the
            // head may already have been read when the reader's read-ahead
            // gets here.
            let n = self.input.read(&mut buf[..1])?;
            if n == 0 {
                return Ok(0);
            }
            self.stage(&buf[..1])?;
            self.over = true;
            return Err(std::io::Error::other(
                "standard input goes on past its bound",
            ));
        }
        let n = self.input.read(&mut buf[..room])?;
        self.stage(&buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::bundle::parts::{PARTS_MEDIA_TYPE, PartWriter};
    use crate::bundle::seal::SEAL_MEDIA_TYPE;
    use crate::digest::Digest;
    use crate::files::untrusted::mkfifo;

    fn sealed_bytes() -> Vec<u8> {
        let mut bytes = b"stand-in for a bundle's zstd frames".repeat(20);
        let seal = Seal {
            media_type: SEAL_MEDIA_TYPE.into(),
            size: bytes.len() as u64,
            sha256: Digest::of(&bytes),
            signature: SignatureEntry {
                algorithm: "ed25519".into(),
                key: Digest::of(b"key"),
                signature: "00".repeat(64),
            },
        };
        bytes.extend(seal.to_frame());
        bytes
    }

    #[test]
    fn a_seal_is_found_at_the_end_of_a_file_and_across_parts() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = sealed_bytes();
        let file = dir.path().join("b.zst");
        std::fs::write(&file, &bytes).unwrap();
        let (seal, _) = Location::File(file).seal().unwrap().unwrap();
        let covered = seal.size as usize;
        assert_eq!(seal.sha256, Digest::of(&bytes[..covered]));

        // Parts of 97 bytes: the seal's frame spans several of them.
        let mut writer = PartWriter::new(&dir.path().join("p.zst"), 97);
        writer.write_all(&bytes).unwrap();
        let index = PartsIndex {
            media_type: PARTS_MEDIA_TYPE.into(),
            bundle: "p.zst".into(),
            size: bytes.len() as u64,
            sha256: Digest::of(&bytes),
            parts: writer.finish().unwrap(),
        };
        let parts = Location::Parts {
            dir: dir.path().to_owned(),
            index,
        };
        let (from_parts, frame_len) = parts.seal().unwrap().unwrap();
        assert_eq!(from_parts.sha256, seal.sha256);
        assert_eq!(from_parts.size + frame_len, bytes.len() as u64);
    }

    /// A split bundle of `bytes` in `dir`, named `p.zst`, with its index.
    fn split(dir: &Path, bytes: &[u8]) {
        let mut writer = PartWriter::new(&dir.join("p.zst"), 97);
        writer.write_all(bytes).unwrap();
        let index = PartsIndex {
            media_type: PARTS_MEDIA_TYPE.into(),
            bundle: "p.zst".into(),
            size: bytes.len() as u64,
            sha256: Digest::of(bytes),
            parts: writer.finish().unwrap(),
        };
        std::fs::write(dir.join("p.zst.parts"), index.to_bytes()).unwrap();
    }

    fn cause(error: &VerifyError) -> String {
        let mut text = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(error) = source {
            text = format!("{text}: {error}");
            source = error.source();
        }
        text
    }

    #[test]
    fn a_fifo_or_a_huge_file_as_the_index_signature_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        split(dir.path(), &sealed_bytes());
        let named = dir.path().join("p.zst");
        Location::find(&named, None).unwrap();

        let signature = dir.path().join("p.zst.parts.sig");
        mkfifo(&signature);
        let error = cause(&Location::find(&named, None).unwrap_err());
        assert!(error.contains("p.zst.parts.sig"), "{error}");
        assert!(
            error.contains("FIFO") && error.contains("remove it"),
            "{error}"
        );

        std::fs::remove_file(&signature).unwrap();
        File::create(&signature).unwrap().set_len(1 << 30).unwrap();
        let error = cause(&Location::find(&named, None).unwrap_err());
        assert!(
            error.contains("more than a parts index signature can"),
            "{error}"
        );

        std::fs::remove_file(&signature).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &signature).unwrap();
        let error = cause(&Location::find(&named, None).unwrap_err());
        assert!(error.contains("symbolic link"), "{error}");
    }

    #[test]
    fn a_fifo_named_as_the_bundle_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("b.zst");
        mkfifo(&fifo);
        let location = Location::find(&fifo, None).unwrap();
        assert!(location.seal().unwrap().is_none());
        let error = cause(&location.open().err().unwrap());
        assert!(error.contains("FIFO"), "{error}");
        let error = cause(&Location::File("/dev/zero".into()).open().err().unwrap());
        assert!(error.contains("character device"), "{error}");
    }

    /// Zeros without end (or up to `left`), counting what was read.
    struct Counted<R> {
        inner: R,
        read: u64,
    }

    impl<R: Read> Read for Counted<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.read += n as u64;
            Ok(n)
        }
    }

    fn counted<R: Read>(inner: R) -> Counted<R> {
        Counted { inner, read: 0 }
    }

    const GOLDEN: &[u8] = include_bytes!("../../tests/fixtures/bundles/v1.3-minimal.zst");

    fn listing(dir: &Path) -> Vec<std::ffi::OsString> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect()
    }

    #[test]
    fn standard_input_of_zeros_is_refused_after_its_first_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut zeros = counted(std::io::repeat(0).take(64 << 20));
        let error = Staged::stage(&mut zeros, dir.path()).err().unwrap();
        let error = cause(&error);
        assert!(
            error.contains("standard input starts with 00 00 00 00 (\"\\x00"),
            "{error}"
        );
        assert!(zeros.read <= 4, "{} bytes read", zeros.read);
        assert!(listing(dir.path()).is_empty());

        let error = cause(&Staged::stage(&mut &b""[..], dir.path()).err().unwrap());
        assert!(error.contains("standard input is empty"), "{error}");
        let error = cause(
            &Staged::stage(&mut &b"{\"a\""[..], dir.path())
                .err()
                .unwrap(),
        );
        assert!(error.contains(r#"7b 22 61 22 ("{\"a\"")"#), "{error}");
    }

    #[test]
    fn a_bundle_on_standard_input_is_staged_without_a_name_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let staged = Staged::stage(&mut &GOLDEN[..], dir.path()).unwrap();
        assert!(
            listing(dir.path()).is_empty(),
            "the staged file has no name"
        );
        assert_eq!(std::fs::read(staged.path()).unwrap(), GOLDEN);
        let location = Location::find(staged.path(), None).unwrap();
        assert!(location.seal().unwrap().is_some());
        let mut back = Vec::new();
        location.open().unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back, GOLDEN);
    }

    /// An unsigned bundle of one entry of `size` bytes that do not compress.
    fn unsigned_bundle(size: usize) -> Vec<u8> {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let data: Vec<u8> = (0..size)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let mut manifest = crate::bundle::BundleManifest::new(
            "test".into(),
            "2026-01-01T00:00:00Z".into(),
            Default::default(),
        );
        manifest.entries = vec![crate::bundle::Entry {
            path: "data".into(),
            size: data.len() as u64,
            sha256: Digest::of(&data).hex().into(),
        }];
        let mut tar = tar::Builder::new(Vec::new());
        for (path, bytes) in [
            (crate::bundle::MANIFEST_PATH, &manifest.to_bytes()[..]),
            ("data", &data[..]),
        ] {
            let mut header = tar::Header::new_ustar();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            tar.append_data(&mut header, path, bytes).unwrap();
        }
        zstd::encode_all(&tar.into_inner().unwrap()[..], 3).unwrap()
    }

    #[test]
    fn standard_input_longer_than_its_head_says_is_refused_without_reading_it_all() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = unsigned_bundle(3 << 20);
        let staged = Staged::stage(&mut &bundle[..], dir.path()).unwrap();
        assert_eq!(std::fs::read(staged.path()).unwrap(), bundle);
        // Skippable frames that a zstd reader passes over: only the head's
        // account of the bundle's size stops them.
        let frame = [0x50, 0x2a, 0x4d, 0x18, 0xff, 0xff, 0xff, 0xff];
        let mut input = counted(bundle.chain(&frame[..]).chain(std::io::repeat(0)));
        let error = Staged::stage(&mut input, dir.path()).err().unwrap();
        assert!(
            matches!(error, VerifyError::Bundle(BundleError::TrailingData)),
            "{error}"
        );
        assert!(input.read < 8 << 20, "{} bytes read", input.read);
        // Anything else after the bundle is refused as it is decompressed.
        let mut input = counted(GOLDEN.chain(std::io::repeat(0)));
        assert!(Staged::stage(&mut input, dir.path()).is_err());
        assert!(input.read < 8 << 20, "{} bytes read", input.read);
        assert!(listing(dir.path()).is_empty());
    }

    #[test]
    fn standard_input_without_a_head_in_reach_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        // A skippable frame claiming 4 GiB, which a zstd reader skips through.
        let frame = [0x50, 0x2a, 0x4d, 0x18, 0xff, 0xff, 0xff, 0xff];
        let mut input = counted(frame.chain(std::io::repeat(0)));
        let error = cause(&Staged::stage(&mut input, dir.path()).err().unwrap());
        assert!(error.contains("no bundle head"), "{error}");
        assert!(
            input.read <= HEAD_STAGE_LIMIT + 1,
            "{} bytes read",
            input.read
        );
    }

    #[test]
    fn a_file_without_a_seal_has_none() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("b.zst");
        std::fs::write(&file, b"unsealed").unwrap();
        assert!(Location::File(file.clone()).seal().unwrap().is_none());
        std::fs::write(&file, b"").unwrap();
        assert!(Location::File(file).seal().unwrap().is_none());
    }
}
