//! Files another local user could have placed: keys and trust directories,
//! files found beside a bundle, the state directory, a `--compose-dir`, an
//! output path. Each is opened as a regular file only, without blocking (a
//! FIFO would hang) and without following a link planted at its name, and
//! read with a bound that fits what it can legitimately be. Outputs are
//! written atomically and never through a link. Directories whose contents
//! decide trust are held to ssh's StrictModes rules: owned by root or the
//! invoking user, and no component up to `/` writable by anyone else.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags};

/// Whether a link at the file's own name may be followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Links {
    /// The user typed this exact path: a link there is theirs to follow.
    Follow,
    /// The name was found, derived or could be planted: a link is refused.
    Refuse,
}

/// Opens `path` for reading if it is a regular file, without blocking on a
/// FIFO or device; the returned file reads normally (blocking).
pub fn open_regular(path: &Path, links: Links) -> io::Result<File> {
    let mut flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    if links == Links::Refuse {
        flags |= OFlags::NOFOLLOW;
    }
    let fd = match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => fd,
        // O_NOFOLLOW on a link fails with ELOOP, which reads as "too many levels".
        Err(rustix::io::Errno::LOOP) if links == Links::Refuse => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "it is a symbolic link, which airgap does not follow here",
            ));
        }
        Err(errno) => return Err(errno.into()),
    };
    let stat = rustix::fs::fstat(&fd)?;
    let kind = FileType::from_raw_mode(stat.st_mode);
    if kind != FileType::RegularFile {
        return Err(not_regular(kind));
    }
    rustix::fs::fcntl_setfl(&fd, OFlags::empty())?;
    Ok(File::from(fd))
}

fn not_regular(kind: FileType) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("it is {}, not a regular file", describe(kind)),
    )
}

/// A kind of file as a person would name it (`a FIFO (named pipe)`).
pub fn describe(kind: FileType) -> &'static str {
    match kind {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a directory",
        FileType::Fifo => "a FIFO (named pipe)",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Socket => "a socket",
        FileType::Symlink => "a symbolic link",
        _ => "not an ordinary file",
    }
}

/// Reads all of the regular file `path`, refusing one larger than `limit`
/// bytes: `what` names what the file should be, for the message.
pub fn read_bounded(path: &Path, links: Links, limit: u64, what: &str) -> io::Result<Vec<u8>> {
    let file = open_regular(path, links)?;
    read_file_bounded(file, limit, what)
}

/// Reads all of an open file, refusing more than `limit` bytes (checked as
/// it is read, too: the file may grow after it was opened).
pub fn read_file_bounded(file: File, limit: u64, what: &str) -> io::Result<Vec<u8>> {
    let size = file.metadata()?.len();
    if size > limit {
        return Err(too_large(size, limit, what));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64, limit, what));
    }
    Ok(bytes)
}

/// [`read_bounded`] as UTF-8 text.
pub fn read_string_bounded(
    path: &Path,
    links: Links,
    limit: u64,
    what: &str,
) -> io::Result<String> {
    String::from_utf8(read_bounded(path, links, limit, what)?).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("it is not UTF-8 text, so not a {what}"),
        )
    })
}

fn too_large(size: u64, limit: u64, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("it holds {size} bytes or more, more than a {what} can ({limit} at most)"),
    )
}

/// Writes `bytes` to `path` atomically: into a new temporary file beside it,
/// synced, then renamed over `path`. A link planted at `path` is replaced,
/// never followed; readers see the old file or the new one, never half.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(name);
    prefix.push(".");
    let mut temp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    // The umask may have narrowed the mode.
    temp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Creates a new file at `path` (never an existing one, never through a
/// link) with `mode` whatever the umask.
pub fn create_new(path: &Path, mode: u32) -> io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    Ok(file)
}

/// Why a directory (or file) that decides trust or holds state is refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InsecurePath {
    /// It could not be examined.
    #[error("cannot examine {path}")]
    Unreadable {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Owned by an account that is neither root nor the invoking user.
    #[error(
        "{path} is owned by uid {owner}, neither root nor you (uid {you}), so that account could change it; run chown {you} on it, or use a directory of your own"
    )]
    Owner {
        /// The path.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The invoking user.
        you: u32,
    },
    /// Writable by group or others.
    #[error(
        "{path} is writable by group or others (mode {mode:o}), so another account could change what it holds; run chmod go-w on it"
    )]
    Writable {
        /// The path.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A parent directory others can write to without the sticky bit: they
    /// could rename the directory away and put their own in its place.
    #[error(
        "{path}, a parent of {child}, is writable by group or others without the sticky bit (mode {mode:o}), so another account could replace what lies beneath it; run chmod go-w on it, or use another directory"
    )]
    WritableParent {
        /// The parent.
        path: PathBuf,
        /// The path that was checked.
        child: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

/// Checks `path` (a directory or file whose content decides trust or holds
/// state) as ssh's StrictModes does: it and every directory above it up to
/// `/` owned by root or the invoking user; it not writable by group or
/// others; each parent not writable by them unless sticky (as `/tmp`).
pub fn check_strict(path: &Path) -> Result<(), InsecurePath> {
    let unreadable = |path: &Path, source| InsecurePath::Unreadable {
        path: path.to_owned(),
        source,
    };
    let real = std::fs::canonicalize(path).map_err(|e| unreadable(path, e))?;
    let you = rustix::process::geteuid().as_raw();
    let owned_well = |meta: &std::fs::Metadata| meta.uid() == 0 || meta.uid() == you;
    let meta = std::fs::symlink_metadata(&real).map_err(|e| unreadable(&real, e))?;
    if !owned_well(&meta) {
        return Err(InsecurePath::Owner {
            path: real,
            owner: meta.uid(),
            you,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(InsecurePath::Writable { path: real, mode });
    }
    for parent in real.ancestors().skip(1) {
        let meta = std::fs::symlink_metadata(parent).map_err(|e| unreadable(parent, e))?;
        if !owned_well(&meta) {
            return Err(InsecurePath::Owner {
                path: parent.to_owned(),
                owner: meta.uid(),
                you,
            });
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o022 != 0 && mode & 0o1000 == 0 {
            return Err(InsecurePath::WritableParent {
                path: parent.to_owned(),
                child: real.clone(),
                mode,
            });
        }
    }
    Ok(())
}

/// Makes a FIFO at `path`, for tests of files that must not block.
#[cfg(test)]
pub(crate) fn mkfifo(path: &Path) {
    rustix::fs::mkfifoat(rustix::fs::CWD, path, Mode::from_raw_mode(0o600))
        .expect("a FIFO can be made in a test's directory");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("key.pem");
        mkfifo(&fifo);
        let error = open_regular(&fifo, Links::Follow).unwrap_err();
        assert!(error.to_string().contains("FIFO"), "{error}");
    }

    #[test]
    fn a_device_is_refused_and_a_large_file_is_not_read_whole() {
        let error = read_bounded(Path::new("/dev/zero"), Links::Follow, 1024, "key").unwrap_err();
        assert!(error.to_string().contains("character device"), "{error}");

        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 2048]).unwrap();
        let error = read_bounded(&big, Links::Refuse, 1024, "key").unwrap_err();
        assert!(error.to_string().contains("more than a key can"), "{error}");
        assert_eq!(
            read_bounded(&big, Links::Refuse, 2048, "key")
                .unwrap()
                .len(),
            2048
        );
    }

    #[test]
    fn a_planted_link_is_refused_when_links_are() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"secret").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let error = open_regular(&link, Links::Refuse).unwrap_err();
        assert!(error.to_string().contains("symbolic link"), "{error}");
        assert!(open_regular(&link, Links::Follow).is_ok());
    }

    #[test]
    fn an_atomic_write_replaces_a_planted_link_instead_of_following_it() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep me").unwrap();
        let output = dir.path().join("have.json");
        std::os::unix::fs::symlink(&victim, &output).unwrap();
        write_atomic(&output, b"{}", 0o644).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
        assert_eq!(std::fs::read(&output).unwrap(), b"{}");
        assert!(!std::fs::symlink_metadata(&output).unwrap().is_symlink());
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 2, "no temporary file is left behind");
    }

    #[test]
    fn strict_modes_refuse_writable_dirs_and_parents_but_not_sticky_ones() {
        let dir = tempfile::tempdir().unwrap();
        let trust = dir.path().join("open/trusted.d");
        std::fs::create_dir_all(&trust).unwrap();
        std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&trust, PermissionsExt::from_mode(0o755)).unwrap();
        let open = dir.path().join("open");
        std::fs::set_permissions(&open, PermissionsExt::from_mode(0o777)).unwrap();
        assert!(matches!(
            check_strict(&trust),
            Err(InsecurePath::WritableParent { .. })
        ));
        std::fs::set_permissions(&open, PermissionsExt::from_mode(0o1777)).unwrap();
        check_strict(&trust).unwrap();
        std::fs::set_permissions(&trust, PermissionsExt::from_mode(0o775)).unwrap();
        assert!(matches!(
            check_strict(&trust),
            Err(InsecurePath::Writable { .. })
        ));
    }
}
