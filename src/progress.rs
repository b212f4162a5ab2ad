//! Progress reporting as the library sees it: a small trait the CLI
//! implements with progress bars, and a no-op for quiet runs and tests.

use std::fmt;
use std::io::{self, Read};
use std::sync::Once;

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
    /// The source engine stages its export before the first byte arrives
    /// (Docker 20.10 writes the whole save to disk first); the total, where
    /// known, is the size of what it stages.
    Preparing,
    /// The target engine has every byte and commits the images; nothing
    /// more arrives to count.
    Committing,
    /// Sending images to a registry.
    Pushing,
    /// The bundle is read and compressed; the registry is still taking
    /// the last layers.
    Uploading,
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Task::Saving => "saving",
            Task::Writing => "writing",
            Task::Verifying => "verifying",
            Task::Loading => "loading",
            Task::Preparing => "the engine is preparing the export",
            Task::Committing => "the engine is committing the images",
            Task::Pushing => "pushing",
            Task::Uploading => "uploading",
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

/// Progress reported as `task` where the code below calls it loading:
/// the same bundle read feeds an engine or a registry.
pub struct LoadingAs<'a> {
    inner: &'a dyn Progress,
    task: Task,
}

impl<'a> LoadingAs<'a> {
    /// Reports `inner`'s loading as `task`.
    pub fn new(inner: &'a dyn Progress, task: Task) -> Self {
        Self { inner, task }
    }
}

impl Progress for LoadingAs<'_> {
    fn start(&self, task: Task, total: Option<u64>) {
        let task = if task == Task::Loading {
            self.task
        } else {
            task
        };
        self.inner.start(task, total);
    }
    fn advance(&self, bytes: u64) {
        self.inner.advance(bytes);
    }
    fn finish(&self) {
        self.inner.finish();
    }
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

/// Starts `task` when the first byte arrives through it: until then the
/// task before it (an engine preparing its export) is what is shown. Readers
/// sharing one `once` (exports read side by side) start it once between them.
pub struct StartOnFirstByte<'a, R> {
    inner: R,
    progress: &'a dyn Progress,
    task: Task,
    total: Option<u64>,
    once: &'a Once,
}

impl<'a, R> StartOnFirstByte<'a, R> {
    /// Wraps `inner`; `task` starts with `total` on the first byte through
    /// any reader sharing `once`.
    pub fn new(
        inner: R,
        progress: &'a dyn Progress,
        task: Task,
        total: Option<u64>,
        once: &'a Once,
    ) -> Self {
        Self {
            inner,
            progress,
            task,
            total,
            once,
        }
    }
}

impl<R: Read> Read for StartOnFirstByte<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 && !self.once.is_completed() {
            self.once.call_once(|| {
                tracing::debug!(task = %self.task, "the first byte arrived");
                self.progress.start(self.task, self.total);
            });
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorded(Mutex<Vec<(Task, Option<u64>)>>);

    impl Progress for Recorded {
        fn start(&self, task: Task, total: Option<u64>) {
            self.0.lock().unwrap().push((task, total));
        }
        fn advance(&self, _: u64) {}
        fn finish(&self) {}
    }

    #[test]
    fn the_next_task_starts_on_the_first_byte_only_even_of_exports_side_by_side() {
        let recorded = Recorded::default();
        recorded.start(Task::Preparing, Some(10));
        let once = Once::new();
        let mut reader =
            StartOnFirstByte::new(&b"abc"[..], &recorded, Task::Saving, Some(10), &once);
        let mut beside =
            StartOnFirstByte::new(&b"de"[..], &recorded, Task::Saving, Some(10), &once);
        assert_eq!(recorded.0.lock().unwrap().len(), 1, "nothing read yet");
        let mut read = Vec::new();
        reader.read_to_end(&mut read).unwrap();
        beside.read_to_end(&mut read).unwrap();
        assert_eq!(read, b"abcde");
        assert_eq!(
            *recorded.0.lock().unwrap(),
            [(Task::Preparing, Some(10)), (Task::Saving, Some(10))]
        );
    }

    #[test]
    fn a_push_shows_pushing_where_the_bundle_read_says_loading() {
        let recorded = Recorded::default();
        let pushing = LoadingAs::new(&recorded, Task::Pushing);
        pushing.start(Task::Verifying, Some(5));
        pushing.start(Task::Loading, Some(7));
        assert_eq!(
            *recorded.0.lock().unwrap(),
            [(Task::Verifying, Some(5)), (Task::Pushing, Some(7))]
        );
    }
}
