//! Files written beneath a directory the user named (`unpack --compose-dir`),
//! where anyone who could write there before may have planted links, FIFOs
//! or devices. The directory itself is opened as named (a link there is the
//! user's own); every path beneath it is walked one component at a time
//! from directory descriptors, never following a link, so nothing is ever
//! read or written outside it. Directories are created 0700 and files 0600
//! whatever the umask, files only where nothing exists yet; an existing
//! file is accepted only if it is a regular file with exactly the expected
//! bytes, read with a bound so a huge file is never read whole.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use crate::files::untrusted::describe;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;

/// Why a path beneath the directory was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BeneathError {
    /// A symbolic link: a directory on the way, or the file itself.
    #[error("{path} is a symbolic link, which is not followed")]
    Link {
        /// The link.
        path: PathBuf,
    },
    /// Something other than a directory where the path needs one.
    #[error("{path} is {kind}, not a directory")]
    NotDirectory {
        /// The entry.
        path: PathBuf,
        /// What it is, as "a FIFO (named pipe)".
        kind: &'static str,
    },
    /// Something other than a regular file where the file belongs.
    #[error("{path} is {kind}, not a regular file")]
    NotRegular {
        /// The entry.
        path: PathBuf,
        /// What it is, as "a FIFO (named pipe)".
        kind: &'static str,
    },
    /// A regular file with other content.
    #[error("{path} already exists with other content")]
    Differs {
        /// The file.
        path: PathBuf,
    },
    /// The relative path is empty, absolute, or holds `.` or `..`.
    #[error("{path} is not a plain relative path")]
    NotPlain {
        /// The path as given.
        path: PathBuf,
    },
    /// The file system refused an operation.
    #[error("cannot write {path}")]
    Io {
        /// The entry.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// A directory the user named, held open; paths beneath it are resolved
/// from this descriptor, so a rename of its path changes nothing.
#[derive(Debug)]
pub struct Beneath {
    root: OwnedFd,
    path: PathBuf,
}

impl Beneath {
    /// Opens `dir`, creating it (and missing parents) with mode 0700 if it
    /// does not exist.
    pub fn create(dir: &Path) -> Result<Self, BeneathError> {
        let io_error = |source: io::Error| BeneathError::Io {
            path: dir.to_owned(),
            source,
        };
        // The user named this path: links on the way to it are theirs to follow.
        let missing: Vec<&Path> = dir
            .ancestors()
            .filter(|p| !p.as_os_str().is_empty())
            .take_while(|p| std::fs::metadata(p).is_err())
            .collect();
        for path in missing.into_iter().rev() {
            match rustix::fs::mkdir(path, Mode::from_raw_mode(DIR_MODE)) {
                // The umask may have narrowed the mode (0500 would stop the next mkdir).
                Ok(()) => open_made_dir(path)
                    .and_then(|fd| rustix::fs::fchmod(fd, Mode::from_raw_mode(DIR_MODE))),
                Err(Errno::EXIST) => Ok(()),
                Err(errno) => Err(errno),
            }
            .map_err(|errno| BeneathError::Io {
                path: path.to_owned(),
                source: errno.into(),
            })?;
        }
        let root = open_root(dir).map_err(io_error)?;
        Ok(Self {
            root,
            path: dir.to_owned(),
        })
    }

    /// Opens `dir` if it exists (`None` if it does not), creating nothing.
    pub fn open(dir: &Path) -> Result<Option<Self>, BeneathError> {
        match open_root(dir) {
            Ok(root) => Ok(Some(Self {
                root,
                path: dir.to_owned(),
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(BeneathError::Io {
                path: dir.to_owned(),
                source,
            }),
        }
    }

    /// The directory as the user named it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks that `bytes` could be written at `relative` without replacing
    /// anything: nothing is there yet, or a regular file with exactly these
    /// bytes. Creates nothing.
    pub fn check_file(&self, relative: &Path, bytes: &[u8]) -> Result<(), BeneathError> {
        let (parents, name) = self.split(relative)?;
        let Some(parent) = self.walk(&parents, false)? else {
            return Ok(());
        };
        self.existing(&parent, &parents, name, bytes)?;
        Ok(())
    }

    /// Writes `bytes` at `relative` as a new file with mode 0600, creating
    /// missing directories with mode 0700; a regular file already there with
    /// exactly these bytes is left as it is. Returns whether it wrote.
    pub fn write_file(&self, relative: &Path, bytes: &[u8]) -> Result<bool, BeneathError> {
        let (parents, name) = self.split(relative)?;
        let parent = self
            .walk(&parents, true)?
            .expect("walking with creation finds every directory");
        if let Existing::Same = self.existing(&parent, &parents, name, bytes)? {
            return Ok(false);
        }
        let path = self.full(&parents, Some(name));
        let io_error = |source: io::Error| BeneathError::Io {
            path: path.clone(),
            source,
        };
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = match rustix::fs::openat(&parent, name, flags, Mode::from_raw_mode(FILE_MODE)) {
            Ok(fd) => fd,
            // Someone put something there since it was looked at: judge that instead.
            Err(Errno::EXIST) => {
                return match self.existing(&parent, &parents, name, bytes)? {
                    Existing::Same => Ok(false),
                    Existing::Absent => Err(io_error(Errno::EXIST.into())),
                };
            }
            Err(errno) => return Err(io_error(errno.into())),
        };
        // The umask may have narrowed the mode; env files must not be wider.
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(FILE_MODE)).map_err(|e| io_error(e.into()))?;
        let mut file = File::from(fd);
        file.write_all(bytes).map_err(io_error)?;
        file.sync_all().map_err(io_error)?;
        let _ = rustix::fs::fsync(&parent);
        Ok(true)
    }

    /// Splits `relative` into its directory components and its file name,
    /// refusing anything but plain names.
    fn split<'a>(&self, relative: &'a Path) -> Result<(Vec<&'a OsStr>, &'a OsStr), BeneathError> {
        let not_plain = || BeneathError::NotPlain {
            path: relative.to_owned(),
        };
        let mut names = relative
            .components()
            .map(|c| match c {
                Component::Normal(name) => Ok(name),
                _ => Err(not_plain()),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let name = names.pop().ok_or_else(not_plain)?;
        Ok((names, name))
    }

    /// Opens the directory `parents` beneath the root, one component at a
    /// time and never through a link; with `create`, missing ones are made
    /// (0700), otherwise a missing one ends the walk with `None`.
    fn walk(&self, parents: &[&OsStr], create: bool) -> Result<Option<OwnedFd>, BeneathError> {
        let mut current =
            rustix::io::fcntl_dupfd_cloexec(&self.root, 0).map_err(|e| BeneathError::Io {
                path: self.path.clone(),
                source: e.into(),
            })?;
        for (depth, name) in parents.iter().enumerate() {
            let path = || self.full(&parents[..=depth], None);
            let io_error = |errno: Errno| BeneathError::Io {
                path: path(),
                source: errno.into(),
            };
            let next = match open_dir_at(&current, name) {
                Ok(fd) => fd,
                Err(Errno::NOENT) if !create => return Ok(None),
                Err(Errno::NOENT) => {
                    let created =
                        match rustix::fs::mkdirat(&current, *name, Mode::from_raw_mode(DIR_MODE)) {
                            Ok(()) => true,
                            Err(Errno::EXIST) => false,
                            Err(errno) => return Err(io_error(errno)),
                        };
                    let fd = open_dir_at(&current, name)
                        .map_err(|errno| self.why_not_dir(&current, name, path(), errno))?;
                    if created {
                        rustix::fs::fchmod(&fd, Mode::from_raw_mode(DIR_MODE)).map_err(io_error)?;
                    }
                    fd
                }
                Err(errno) => return Err(self.why_not_dir(&current, name, path(), errno)),
            };
            current = next;
        }
        Ok(Some(current))
    }

    /// Explains why `name` in `parent` could not be opened as a directory:
    /// ELOOP or ENOTDIR mean a link or another kind of entry.
    fn why_not_dir(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        path: PathBuf,
        errno: Errno,
    ) -> BeneathError {
        if matches!(errno, Errno::LOOP | Errno::NOTDIR)
            && let Ok(stat) = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
        {
            match FileType::from_raw_mode(stat.st_mode) {
                FileType::Symlink => return BeneathError::Link { path },
                FileType::Directory => {}
                kind => {
                    return BeneathError::NotDirectory {
                        path,
                        kind: describe(kind),
                    };
                }
            }
        }
        BeneathError::Io {
            path,
            source: errno.into(),
        }
    }

    /// What is at `name` in `parent` compared with `bytes`: nothing, or a
    /// regular file with exactly those bytes; anything else is an error.
    /// Never opens anything but a regular file, and never blocks.
    fn existing(
        &self,
        parent: &OwnedFd,
        parents: &[&OsStr],
        name: &OsStr,
        bytes: &[u8],
    ) -> Result<Existing, BeneathError> {
        let path = || self.full(parents, Some(name));
        let io_error = |source: io::Error| BeneathError::Io {
            path: path(),
            source,
        };
        // Looked at before opening: opening a device can do things (rewind a tape).
        let stat = match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(Errno::NOENT) => return Ok(Existing::Absent),
            Err(errno) => return Err(io_error(errno.into())),
        };
        check_regular(FileType::from_raw_mode(stat.st_mode), path)?;
        let flags =
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::CLOEXEC;
        let fd = match rustix::fs::openat(parent, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(Existing::Absent),
            Err(Errno::LOOP) => return Err(BeneathError::Link { path: path() }),
            Err(errno) => return Err(io_error(errno.into())),
        };
        // It may have been swapped between the look and the open.
        let stat = rustix::fs::fstat(&fd).map_err(|e| io_error(e.into()))?;
        check_regular(FileType::from_raw_mode(stat.st_mode), path)?;
        let differs = || BeneathError::Differs { path: path() };
        if u64::try_from(stat.st_size).ok() != Some(bytes.len() as u64) {
            return Err(differs());
        }
        // At most one byte more than expected: the file may grow after fstat.
        let mut content = Vec::with_capacity(bytes.len());
        File::from(fd)
            .take(bytes.len() as u64 + 1)
            .read_to_end(&mut content)
            .map_err(io_error)?;
        if content != bytes {
            return Err(differs());
        }
        Ok(Existing::Same)
    }

    /// The root's path joined with `parents` and `name`, for messages.
    fn full(&self, parents: &[&OsStr], name: Option<&OsStr>) -> PathBuf {
        let mut path = self.path.clone();
        path.extend(parents);
        path.extend(name);
        path
    }
}

/// What `existing` found, where it found nothing wrong.
enum Existing {
    Absent,
    Same,
}

fn open_root(dir: &Path) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    Ok(rustix::fs::open(dir, flags, Mode::empty())?)
}

/// Opens a directory just made by path, refusing a link swapped in since.
fn open_made_dir(path: &Path) -> Result<OwnedFd, Errno> {
    open_dir_at(&rustix::fs::CWD, path.as_os_str())
}

fn open_dir_at(parent: &impl AsFd, name: &OsStr) -> Result<OwnedFd, Errno> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    rustix::fs::openat(parent, name, flags, Mode::empty())
}

fn check_regular(kind: FileType, path: impl Fn() -> PathBuf) -> Result<(), BeneathError> {
    match kind {
        FileType::RegularFile => Ok(()),
        FileType::Symlink => Err(BeneathError::Link { path: path() }),
        kind => Err(BeneathError::NotRegular {
            path: path(),
            kind: describe(kind),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    fn site() -> (tempfile::TempDir, Beneath) {
        let temp = tempfile::tempdir().unwrap();
        let root = Beneath::create(&temp.path().join("site")).unwrap();
        (temp, root)
    }

    /// Runs `f` on a thread and fails the test if it takes longer than a few
    /// seconds, so a regression that blocks on a FIFO fails instead of hanging.
    fn promptly<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (send, receive) = mpsc::channel();
        std::thread::spawn(move || send.send(f()).unwrap());
        receive
            .recv_timeout(Duration::from_secs(10))
            .expect("it blocked instead of refusing at once")
    }

    #[test]
    fn a_link_planted_as_a_directory_is_refused_and_nothing_is_written_through_it() {
        let (temp, root) = site();
        let elsewhere = temp.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        symlink(&elsewhere, root.path().join("config")).unwrap();
        let error = root
            .write_file(Path::new("config/db.env"), b"DB_PASSWORD=secret\n")
            .unwrap_err();
        assert!(
            matches!(&error, BeneathError::Link { path } if *path == root.path().join("config")),
            "{error}"
        );
        let error = root
            .check_file(Path::new("config/db.env"), b"DB_PASSWORD=secret\n")
            .unwrap_err();
        assert!(matches!(error, BeneathError::Link { .. }), "{error}");
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    }

    #[test]
    fn a_link_planted_deeper_is_refused_too() {
        let (temp, root) = site();
        let elsewhere = temp.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::fs::create_dir(root.path().join("config")).unwrap();
        symlink(&elsewhere, root.path().join("config/db")).unwrap();
        let error = root
            .write_file(Path::new("config/db/db.env"), b"x")
            .unwrap_err();
        assert!(
            matches!(&error, BeneathError::Link { path } if *path == root.path().join("config/db")),
            "{error}"
        );
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    }

    #[test]
    fn a_link_planted_as_the_file_is_refused_whether_or_not_its_target_exists() {
        let (temp, root) = site();
        let outside = temp.path().join("outside.yaml");
        std::fs::write(&outside, b"services: {}\n").unwrap();
        symlink(&outside, root.path().join("compose.yaml")).unwrap();
        // Even with the very bytes the bundle carries: a link is never "already there".
        let error = root
            .write_file(Path::new("compose.yaml"), b"services: {}\n")
            .unwrap_err();
        assert!(matches!(error, BeneathError::Link { .. }), "{error}");
        let missing = temp.path().join("missing.env");
        symlink(&missing, root.path().join(".env")).unwrap();
        let error = root.write_file(Path::new(".env"), b"A=1\n").unwrap_err();
        assert!(matches!(error, BeneathError::Link { .. }), "{error}");
        assert!(!missing.exists());
        assert_eq!(std::fs::read(&outside).unwrap(), b"services: {}\n");
    }

    #[test]
    fn a_link_to_dev_zero_is_refused_without_reading_it() {
        let (_temp, root) = site();
        symlink("/dev/zero", root.path().join("compose.yaml")).unwrap();
        let error = promptly(move || {
            root.check_file(Path::new("compose.yaml"), b"services: {}\n")
                .unwrap_err()
        });
        assert!(matches!(error, BeneathError::Link { .. }), "{error}");
    }

    #[test]
    fn a_fifo_at_a_file_name_is_refused_at_once() {
        let (_temp, root) = site();
        let fifo = root.path().join("compose.yaml");
        crate::files::untrusted::mkfifo(&fifo);
        let (error, again) = promptly(move || {
            let error = root
                .write_file(Path::new("compose.yaml"), b"services: {}\n")
                .unwrap_err();
            let again = root
                .check_file(Path::new("compose.yaml"), b"services: {}\n")
                .unwrap_err();
            (error, again)
        });
        assert!(
            matches!(error, BeneathError::NotRegular { kind, .. } if kind.contains("FIFO")),
            "{error}"
        );
        assert!(matches!(again, BeneathError::NotRegular { .. }), "{again}");
    }

    #[test]
    fn other_kinds_of_entries_are_refused_where_files_or_directories_go() {
        let (_temp, root) = site();
        std::fs::create_dir(root.path().join("compose.yaml")).unwrap();
        let error = root
            .write_file(Path::new("compose.yaml"), b"x")
            .unwrap_err();
        assert!(
            matches!(
                error,
                BeneathError::NotRegular {
                    kind: "a directory",
                    ..
                }
            ),
            "{error}"
        );
        std::fs::write(root.path().join("config"), b"").unwrap();
        let error = root
            .write_file(Path::new("config/db.env"), b"x")
            .unwrap_err();
        assert!(
            matches!(
                error,
                BeneathError::NotDirectory {
                    kind: "a regular file",
                    ..
                }
            ),
            "{error}"
        );
        for bad in ["../escape", "/etc/passwd", "a/../b", ""] {
            let error = root.write_file(Path::new(bad), b"x").unwrap_err();
            assert!(
                matches!(error, BeneathError::NotPlain { .. }),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn an_identical_file_is_accepted_and_a_different_one_refused() {
        let (_temp, root) = site();
        assert!(
            root.write_file(Path::new("config/db.env"), b"A=1\n")
                .unwrap()
        );
        assert!(
            !root
                .write_file(Path::new("config/db.env"), b"A=1\n")
                .unwrap()
        );
        root.check_file(Path::new("config/db.env"), b"A=1\n")
            .unwrap();
        for other in [&b"A=2\n"[..], b"A=1", b"A=1\nB=2\n"] {
            let error = root
                .write_file(Path::new("config/db.env"), other)
                .unwrap_err();
            assert!(matches!(error, BeneathError::Differs { .. }), "{error}");
            let error = root
                .check_file(Path::new("config/db.env"), other)
                .unwrap_err();
            assert!(matches!(error, BeneathError::Differs { .. }), "{error}");
        }
        assert_eq!(
            std::fs::read(root.path().join("config/db.env")).unwrap(),
            b"A=1\n"
        );
    }

    #[test]
    fn checking_creates_nothing() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("site");
        assert!(Beneath::open(&dir).unwrap().is_none());
        std::fs::create_dir(&dir).unwrap();
        let root = Beneath::open(&dir).unwrap().unwrap();
        root.check_file(Path::new("config/db.env"), b"A=1\n")
            .unwrap();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    }

    const UMASK_CHILD: &str = "AIRGAP_TEST_BENEATH_UMASK";

    /// The umask is per process and the tests of one binary run as threads
    /// of one process, so the umask is changed only in a child process that
    /// runs this test alone.
    #[test]
    fn modes_are_exactly_0700_and_0600_whatever_the_umask() {
        if std::env::var_os(UMASK_CHILD).is_some() {
            for umask in [0o000, 0o277] {
                let old = rustix::process::umask(Mode::from_raw_mode(umask));
                let temp = tempfile::tempdir().unwrap();
                let dir = temp.path().join("new/site");
                let root = Beneath::create(&dir).unwrap();
                root.write_file(Path::new("config/db/db.env"), b"A=1\n")
                    .unwrap();
                rustix::process::umask(old);
                let mode = |path: &Path| {
                    std::fs::symlink_metadata(path)
                        .unwrap()
                        .permissions()
                        .mode()
                        & 0o7777
                };
                let made = [
                    temp.path().join("new"),
                    dir.clone(),
                    dir.join("config"),
                    dir.join("config/db"),
                ];
                for path in made {
                    assert_eq!(
                        mode(&path),
                        0o700,
                        "{} under umask {umask:o}",
                        path.display()
                    );
                }
                let file = dir.join("config/db/db.env");
                assert_eq!(
                    mode(&file),
                    0o600,
                    "{} under umask {umask:o}",
                    file.display()
                );
            }
            return;
        }
        // Test names leave out the crate's name.
        let (_, module) = module_path!()
            .split_once("::")
            .expect("a module inside the crate");
        let name = format!("{module}::modes_are_exactly_0700_and_0600_whatever_the_umask");
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", &name, "--test-threads=1", "--nocapture"])
            .env(UMASK_CHILD, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&child.stdout);
        let stderr = String::from_utf8_lossy(&child.stderr);
        assert!(child.status.success(), "{stdout}\n{stderr}");
        assert!(
            stdout.contains("1 passed"),
            "the child ran no test: {stdout}"
        );
    }
}
