//! Temporary files that must not outlive an interrupted run. Normal exits
//! and errors remove them through their owners' destructors; a signal ends
//! the process without running those, so the binary's signal handler calls
//! [`remove_all`] first.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Keeps `path` registered for removal on interrupt until dropped.
#[derive(Debug)]
pub struct Registration {
    path: PathBuf,
}

/// Registers `path` (a file or directory) for removal if the process is interrupted.
pub fn register(path: &Path) -> Registration {
    lock().push(path.to_owned());
    Registration {
        path: path.to_owned(),
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut pending = lock();
        if let Some(index) = pending.iter().rposition(|p| p == &self.path) {
            pending.remove(index);
        }
    }
}

/// Makes a temporary file with `create` and registers the path `path_of`
/// gives, as one step the interrupt handler cannot split: a file is either
/// made and registered before [`remove_all`] runs, or never made.
pub fn create_registered<T>(
    create: impl FnOnce() -> std::io::Result<T>,
    path_of: impl Fn(&T) -> &Path,
) -> std::io::Result<(T, Registration)> {
    let mut pending = lock();
    let made = create()?;
    let path = path_of(&made).to_owned();
    pending.push(path.clone());
    Ok((made, Registration { path }))
}

/// Removes every registered path and runs every registered action; called
/// from the interrupt handler, just before the process exits.
pub fn remove_all() {
    let mut pending = lock();
    for path in pending.drain(..) {
        let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
    }
    // Held until the process exits: a thread about to make a temporary file
    // (a bundle's next part) waits here instead of leaving one behind.
    std::mem::forget(pending);
    run_actions();
}

#[cfg(test)]
fn remove_where(selected: impl Fn(&Path) -> bool) {
    let mut pending = lock();
    let (chosen, kept): (Vec<PathBuf>, Vec<PathBuf>) = pending.drain(..).partition(|p| selected(p));
    *pending = kept;
    for path in chosen {
        let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
    }
}

fn lock() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    PENDING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Something to undo outside this machine's files if the process is
/// interrupted (a temporary image on an engine).
type Action = Box<dyn Fn() + Send>;

static ACTIONS: Mutex<Vec<(u64, Action)>> = Mutex::new(Vec::new());
static NEXT_ACTION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Keeps an action registered to run on interrupt until dropped.
pub struct ActionRegistration {
    id: u64,
}

/// Registers `action` to run if the process is interrupted.
pub fn on_interrupt(action: impl Fn() + Send + 'static) -> ActionRegistration {
    let id = NEXT_ACTION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    actions().push((id, Box::new(action)));
    ActionRegistration { id }
}

impl Drop for ActionRegistration {
    fn drop(&mut self) {
        actions().retain(|(id, _)| *id != self.id);
    }
}

fn run_actions() {
    let taken: Vec<(u64, Action)> = actions().drain(..).collect();
    for (_, action) in taken {
        action();
    }
}

fn actions() -> std::sync::MutexGuard<'static, Vec<(u64, Action)>> {
    ACTIONS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_paths_are_removed_and_dropped_ones_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let kept = dir.path().join("kept");
        let removed = dir.path().join("removed");
        std::fs::write(&kept, b"x").unwrap();
        std::fs::create_dir(&removed).unwrap();
        drop(register(&kept));
        let _registration = register(&removed);
        // Only this test's paths: other tests running alongside have theirs
        // registered too (removing those once made a parts test fail).
        remove_where(|p| p.starts_with(dir.path()));
        assert!(kept.exists());
        assert!(!removed.exists());
    }
}
