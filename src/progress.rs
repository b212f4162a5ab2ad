//! Progress reporting as the library sees it: a small trait the CLI
//! implements with progress bars, and a no-op for quiet runs and tests.

use std::fmt;
use std::io::{self, Read};

/// A long-running step worth showing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// Receiving images from the source engine.
    Saving,
    /// Writing the bundle file.
    Writing,
    /// Checking a bundle's signature and digests.
    Verifying,
    /// Sending images to the target engine.
    Loading,
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Task::Saving => "saving",
            Task::Writing => "writing",
            Task::Verifying => "verifying",
            Task::Loading => "loading",
        })
    }
}

/// Receives progress of one task at a time, from any thread.
pub trait Progress: Send + Sync {
    /// A task starts; `total` bytes if known.
    fn start(&self, task: Task, total: Option<u64>);
    /// `bytes` more bytes of the current task are done.
    fn advance(&self, bytes: u64);
    /// The current task is done.
    fn finish(&self);
}

/// Shows nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: Task, _: Option<u64>) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// Reports every byte read through it as progress.
pub struct ProgressReader<'a, R> {
    inner: R,
    progress: &'a dyn Progress,
}

impl<'a, R> ProgressReader<'a, R> {
    /// Wraps `inner`.
    pub fn new(inner: R, progress: &'a dyn Progress) -> Self {
        Self { inner, progress }
    }
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}
