//! Writing a bundle's body straight into the bundle's own temporary file,
//! behind room left for the head. The head (signed manifest and metadata)
//! must come first but can only be made once the last layer is in; without
//! this the body is spooled elsewhere and copied behind the head at the end,
//! a pass over the whole bundle after the export has finished. Whatever room
//! the head leaves is filled with a skippable zstd frame, which every zstd
//! reader ignores (FORMAT.md 2.1).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use tempfile::NamedTempFile;

use crate::digest::{Digest, HashingWriter};
use crate::files::cleanup;

/// zstd skippable frame magic 0x184D2A50, little-endian: the first of the
/// sixteen, left to padding (the seal uses 0x184D2A5E).
const PADDING_MAGIC: [u8; 4] = [0x50, 0x2a, 0x4d, 0x18];
/// Magic and Frame_Size: the smallest skippable frame.
const PADDING_HEADER: u64 = 8;

/// A room left over by the head is kept only when the body is at least this
/// many times larger: a small bundle is cheap to copy and stays compact.
const BODY_PER_PADDING_BYTE: u64 = 1024;

/// Room for the head of a bundle of `images` images carrying project files
/// of `project_bytes`: generous for their configs and manifests (which
/// compress well), so the copy it saves is rarely needed.
pub fn head_room(images: usize, project_bytes: u64) -> u64 {
    16 * 1024 + 4 * 1024 * images as u64 + project_bytes + PADDING_HEADER
}

/// The bundle's temporary file while its body is being written into it.
pub struct InPlaceFile {
    // Declared first so that it is deregistered after the file is removed.
    temp: NamedTempFile,
    _registration: cleanup::Registration,
    head_room: u64,
}

impl InPlaceFile {
    /// Creates the temporary file beside `path` (so the final rename is
    /// atomic) and a handle to write the body with, positioned behind the room.
    pub fn create(path: &Path, head_room: u64) -> io::Result<(Self, BodyFile)> {
        let temp = super::output_files::temp_beside(path)?;
        let registration = cleanup::register(temp.path());
        let mut file = temp.as_file().try_clone()?;
        file.seek(SeekFrom::Start(head_room))?;
        let body = BodyFile::written_back(file)?;
        Ok((
            Self {
                temp,
                _registration: registration,
                head_room,
            },
            body,
        ))
    }

    /// Where the body starts.
    pub fn head_room(&self) -> u64 {
        self.head_room
    }

    /// The temporary file's path, for error messages.
    pub fn path(&self) -> &Path {
        self.temp.path()
    }

    /// Whether a head of `head_len` bytes goes in front of a body of
    /// `body_len`: it fits with room for the padding frame's header, and the
    /// padding is small beside the body.
    pub fn takes(&self, head_len: u64, body_len: u64) -> bool {
        head_len + PADDING_HEADER <= self.head_room
            && (self.head_room - head_len).saturating_mul(BODY_PER_PADDING_BYTE) <= body_len
    }

    /// Writes `head` and the padding in front of the body, then hashes the
    /// whole file while the kernel writes it out, and appends what `seal`
    /// makes of that digest and size (nothing for an unsigned bundle).
    /// Returns the digest and size of the complete file, and the file, to be
    /// synced and renamed into place.
    pub fn complete(
        self,
        head: &[u8],
        seal: impl FnOnce(&Digest, u64) -> Option<Vec<u8>>,
    ) -> io::Result<(Digest, u64, NamedTempFile)> {
        let file = self.temp.as_file();
        let head_len = head.len() as u64;
        file.write_all_at(head, 0)?;
        file.write_all_at(&padding_frame(self.head_room - head_len), head_len)?;
        let end = file.metadata()?.len();
        let (hashed, synced) = std::thread::scope(|scope| {
            // Started now so that the final sync, after the seal, has little left to write.
            let syncing = scope.spawn(|| file.sync_data());
            (hash_prefix(file, end), syncing.join())
        });
        let mut hashing = hashed?;
        synced.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        let (prefix, size) = hashing.so_far();
        if let Some(frame) = seal(&prefix, size) {
            file.write_all_at(&frame, end)?;
            hashing.write_all(&frame)?;
        }
        let (sha256, size, _) = hashing.finish();
        Ok((sha256, size, self.temp))
    }
}

/// Written body bytes after which the kernel is asked to write them out.
const WRITEBACK_EVERY: u64 = 32 << 20;

/// The file a body is compressed into. Where it is the bundle itself, what
/// is written goes to the disk while the layers still arrive, so that the
/// sync that makes the bundle durable has little left to do when the export
/// is over (the kernel would otherwise hold it all until then).
pub struct BodyFile {
    file: File,
    unsynced: u64,
    syncing: Option<(SyncSender<()>, JoinHandle<io::Result<()>>)>,
}

impl BodyFile {
    /// A file that is only read back, so never synced.
    pub fn plain(file: File) -> Self {
        Self {
            file,
            unsynced: 0,
            syncing: None,
        }
    }

    fn written_back(file: File) -> io::Result<Self> {
        let synced = file.try_clone()?;
        // One request waiting at most: a sync covers all written before it starts.
        let (requests, pending) = sync_channel::<()>(1);
        let syncer = std::thread::Builder::new()
            .name("airgap-writeback".into())
            .spawn(move || {
                while pending.recv().is_ok() {
                    synced.sync_data()?;
                }
                Ok(())
            })?;
        Ok(Self {
            file,
            unsynced: 0,
            syncing: Some((requests, syncer)),
        })
    }

    /// The file, once the syncs under way are over.
    pub fn into_file(self) -> io::Result<File> {
        if let Some((requests, syncer)) = self.syncing {
            drop(requests);
            syncer
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        }
        Ok(self.file)
    }
}

impl Write for BodyFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.unsynced += n as u64;
        if self.unsynced >= WRITEBACK_EVERY {
            if let Some((requests, _)) = &self.syncing {
                // Full: a sync is due anyway. Disconnected: the syncer
                // stopped on an error, which `into_file` reports.
                let _ = requests.try_send(());
            }
            self.unsynced = 0;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// A skippable frame `len` bytes long in all (at least its header).
fn padding_frame(len: u64) -> Vec<u8> {
    let content = u32::try_from(len - PADDING_HEADER).expect("the head room fits a frame");
    let mut frame = Vec::with_capacity(len as usize);
    frame.extend_from_slice(&PADDING_MAGIC);
    frame.extend_from_slice(&content.to_le_bytes());
    frame.resize(len as usize, 0);
    frame
}

/// The digest of the file's first `end` bytes, kept open for what follows them.
fn hash_prefix(mut file: &File, end: u64) -> io::Result<HashingWriter<io::Sink>> {
    let mut hashing = HashingWriter::new(io::sink());
    file.seek(SeekFrom::Start(0))?;
    let read = io::copy(
        &mut io::BufReader::with_capacity(1 << 20, file.take(end)),
        &mut hashing,
    )?;
    if read != end {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(hashing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zstd_skips_the_padding_between_two_frames() {
        let mut bytes = zstd::encode_all(&b"head "[..], 3).unwrap();
        bytes.extend(padding_frame(PADDING_HEADER));
        bytes.extend(padding_frame(4096));
        bytes.extend(zstd::encode_all(&b"body"[..], 3).unwrap());
        let mut decoded = Vec::new();
        zstd::Decoder::new(&bytes[..])
            .unwrap()
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, b"head body");
        assert_eq!(padding_frame(4096).len(), 4096);
    }

    #[test]
    fn the_head_goes_in_front_of_the_body_and_the_digest_covers_all() {
        let dir = tempfile::tempdir().unwrap();
        let (spool, mut body) = InPlaceFile::create(&dir.path().join("b.zst"), 64).unwrap();
        body.write_all(&[7u8; 100_000]).unwrap();
        body.into_file().unwrap();
        let (sha256, size, temp) = spool
            .complete(b"HEAD", |prefix, size| {
                assert_eq!(size, 100_064);
                Some(format!("{prefix}").into_bytes())
            })
            .unwrap();
        let written = std::fs::read(temp.path()).unwrap();
        assert_eq!(size, written.len() as u64);
        assert_eq!(sha256, Digest::of(&written));
        assert_eq!(&written[..4], b"HEAD");
        assert_eq!(&written[4..8], &PADDING_MAGIC);
        assert_eq!(u32::from_le_bytes(written[8..12].try_into().unwrap()), 52);
        assert_eq!(written[64..100_064], [7u8; 100_000]);
        let seal = Digest::of(&written[..100_064]).to_string();
        assert_eq!(&written[100_064..], seal.as_bytes());
    }

    #[test]
    fn a_head_too_large_or_a_body_too_small_for_the_room_is_not_taken() {
        let dir = tempfile::tempdir().unwrap();
        let (spool, _) = InPlaceFile::create(&dir.path().join("b.zst"), 1000).unwrap();
        assert!(spool.takes(992, 8 * 1024));
        assert!(!spool.takes(993, u64::MAX));
        assert!(spool.takes(0, 1000 * 1024));
        assert!(!spool.takes(0, 1000 * 1024 - 1));
    }
}
