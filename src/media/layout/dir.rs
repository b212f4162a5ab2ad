//! The layout directory held open by descriptor. The directory is the
//! user's to name (a link there is followed); beneath it nothing is: every
//! component is opened with `O_NOFOLLOW`, files only if regular and without
//! blocking (a FIFO planted as a blob would hang a read).

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::files::untrusted::describe;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

/// Where blobs live beneath the layout.
pub const BLOBS: [&str; 2] = ["blobs", "sha256"];

/// A directory held open; paths beneath it resolve from the descriptor.
#[derive(Debug)]
pub struct LayoutDir {
    fd: OwnedFd,
    path: PathBuf,
}

impl LayoutDir {
    /// Opens the directory the user named.
    pub fn open(path: &Path) -> io::Result<Self> {
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Self {
            fd,
            path: path.to_owned(),
        })
    }

    /// The directory as named, for messages and path-based writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The descriptor.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Opens the subdirectory `names` (one component each), never through
    /// a link; with `create`, missing ones are made with `mode`.
    pub fn subdir(&self, names: &[&str], create: Option<u32>) -> io::Result<Self> {
        let mut fd = rustix::io::fcntl_dupfd_cloexec(&self.fd, 0)?;
        let mut path = self.path.clone();
        for name in names {
            path.push(name);
            fd = match open_dir_at(&fd, name) {
                Err(Errno::NOENT) if create.is_some() => {
                    let mode = Mode::from_raw_mode(create.unwrap_or_default());
                    match rustix::fs::mkdirat(&fd, *name, mode) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(errno) => return Err(errno.into()),
                    }
                    open_dir_at(&fd, name)
                }
                other => other,
            }
            .map_err(|errno| explain(errno, &fd, name, &path))?;
        }
        Ok(Self { fd, path })
    }

    /// Opens the regular file `name` in this directory for reading.
    pub fn open_file(&self, name: &str) -> io::Result<File> {
        let flags =
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, name, flags, Mode::empty())
            .map_err(|errno| explain(errno, &self.fd, name, &self.path.join(name)))?;
        let kind = FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode);
        if kind != FileType::RegularFile {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is {}, not a regular file",
                    self.path.join(name).display(),
                    describe(kind)
                ),
            ));
        }
        rustix::fs::fcntl_setfl(&fd, OFlags::empty())?;
        Ok(File::from(fd))
    }

    /// Reads the regular file `name` whole, refusing one over `limit` bytes.
    pub fn read_file(&self, name: &str, limit: u64, what: &str) -> io::Result<Vec<u8>> {
        crate::files::untrusted::read_file_bounded(self.open_file(name)?, limit, what)
    }

    /// The size of `name` if it is a regular file (not a link to one).
    pub fn regular_size(&self, name: &str) -> Option<u64> {
        let stat = rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW).ok()?;
        (FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile)
            .then(|| u64::try_from(stat.st_size).unwrap_or(0))
    }

    /// Whether anything at all is at `name` (a dangling link counts).
    pub fn exists(&self, name: &str) -> bool {
        rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW).is_ok()
    }

    /// True when the directory holds no entry.
    pub fn is_empty(&self) -> io::Result<bool> {
        let fd = rustix::io::fcntl_dupfd_cloexec(&self.fd, 0)?;
        for entry in rustix::fs::Dir::read_from(&fd)? {
            let name = entry?.file_name().to_bytes().to_owned();
            if name != b"." && name != b".." {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

fn open_dir_at(parent: &impl AsFd, name: &str) -> Result<OwnedFd, Errno> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    rustix::fs::openat(parent, name, flags, Mode::empty())
}

/// An OS error with the path it concerns. ELOOP and ENOTDIR are what a
/// link refused by `O_NOFOLLOW` gives; they are told apart from a file
/// where a directory belongs by looking at the entry.
fn explain(errno: Errno, parent: &impl AsFd, name: &str, path: &Path) -> io::Error {
    let shown = path.display();
    if matches!(errno, Errno::LOOP | Errno::NOTDIR) {
        let kind = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
            .map(|stat| FileType::from_raw_mode(stat.st_mode));
        let what = match kind {
            Ok(FileType::Symlink) => "a symbolic link, which is not followed here".to_owned(),
            Ok(kind) => format!("{}, not a directory", describe(kind)),
            Err(_) => "not a directory".to_owned(),
        };
        return io::Error::new(io::ErrorKind::InvalidInput, format!("{shown} is {what}"));
    }
    let error = io::Error::from(errno);
    io::Error::new(error.kind(), format!("{shown}: {error}"))
}
