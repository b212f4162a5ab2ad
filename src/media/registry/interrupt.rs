//! Ctrl-C and SIGTERM during a push stop it at the end of the chunk being
//! sent: a chunk cut in the middle leaves the registry holding more than
//! its signed upload state says (CNCF Distribution then cancels the upload
//! on the next request), so the push stops where an upload can go on.

use std::sync::atomic::{AtomicBool, Ordering};

static ASKED: AtomicBool = AtomicBool::new(false);

extern "C" fn note(_signal: libc::c_int) {
    if ASKED.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe; a second signal means now.
        unsafe { libc::_exit(130) };
    }
}

/// Holds Ctrl-C and SIGTERM until dropped; a second Ctrl-C stops at once.
pub struct Held {
    previous: [(libc::c_int, libc::sighandler_t); 2],
}

impl Held {
    /// Starts holding.
    pub fn new() -> Self {
        ASKED.store(false, Ordering::SeqCst);
        let handler = note as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe; the previous handlers are put back on drop.
        let previous = [libc::SIGINT, libc::SIGTERM]
            .map(|signal| (signal, unsafe { libc::signal(signal, handler) }));
        Self { previous }
    }

    /// True once a signal asked the push to stop.
    pub fn asked(&self) -> bool {
        ASKED.load(Ordering::SeqCst)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        for (signal, handler) in self.previous {
            // SAFETY: puts back the handler that was there before.
            unsafe { libc::signal(signal, handler) };
        }
    }
}
