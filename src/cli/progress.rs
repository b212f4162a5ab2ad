//! Progress bars on stderr (indicatif), or nothing with `--quiet` or
//! `--json`; and the closing summary line of a command. Every size shown,
//! on a bar or in a summary, is in decimal units (kB, MB, GB), as
//! [`super::output::bytes`] prints them.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use airgap::progress::{Progress, Task};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::output::bytes;

/// The bar on screen: one at a time, shared with the log writer so that a
/// log line never tears it.
static CURRENT: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Runs `write` with the bar on screen, if any, cleared and then redrawn.
pub fn suspend(write: impl FnOnce()) {
    let current = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
    match current.as_ref() {
        Some(bar) => bar.suspend(write),
        None => write(),
    }
}

/// indicatif bars, one per task; hidden when stderr is not a terminal.
pub struct Bars;

impl Bars {
    /// Bars on stderr.
    pub fn new() -> Self {
        Self
    }
}

/// The template for `task`: a bar with total and ETA where the total is
/// known; a spinner otherwise, and no rate while an engine works on its own.
fn template(task: Task, total: Option<u64>) -> String {
    match (task, total) {
        (Task::Preparing, Some(total)) => format!("{{spinner}} {{msg}} ({}) {{elapsed}}", bytes(total)),
        (Task::Preparing | Task::Committing, _) => "{spinner} {msg} {elapsed}".into(),
        // The writer reports no bytes while it finishes the bundle.
        (Task::Writing, None) => "{msg:>10} {spinner} {elapsed}".into(),
        (_, Some(_)) => "{msg:>10} [{bar:30}] {decimal_bytes}/{decimal_total_bytes} {decimal_bytes_per_sec} ETA {eta}".into(),
        (_, None) => "{msg:>10} {spinner} {decimal_bytes} {decimal_bytes_per_sec}".into(),
    }
}

impl Progress for Bars {
    fn start(&self, task: Task, total: Option<u64>) {
        let bar = ProgressBar::with_draw_target(
            match task {
                Task::Preparing | Task::Committing => None,
                _ => total,
            },
            ProgressDrawTarget::stderr(),
        )
        .with_style(
            ProgressStyle::with_template(&template(task, total))
                .expect("the templates are valid")
                .progress_chars("=> "),
        );
        bar.set_message(task.to_string());
        if matches!(task, Task::Preparing | Task::Committing | Task::Writing) {
            // Nothing arrives to redraw it while the engine works.
            bar.enable_steady_tick(Duration::from_millis(200));
        }
        let mut current = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(previous) = current.replace(bar) {
            previous.finish_and_clear();
        }
    }

    fn advance(&self, bytes: u64) {
        if let Some(bar) = CURRENT.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            bar.inc(bytes);
        }
    }

    fn finish(&self) {
        if let Some(bar) = CURRENT.lock().unwrap_or_else(|e| e.into_inner()).take() {
            bar.finish_and_clear();
        }
    }
}

/// A command's closing line: what it handled and how long it took.
pub struct Summary {
    started: Instant,
    parts: Vec<String>,
}

impl Summary {
    /// Starts the clock.
    pub fn start() -> Self {
        Self {
            started: Instant::now(),
            parts: Vec::new(),
        }
    }

    /// `count` things, singular or plural.
    pub fn count(mut self, count: usize, one: &str, many: &str) -> Self {
        self.parts
            .push(format!("{count} {}", if count == 1 { one } else { many }));
        self
    }

    /// A size: `12.3 MB in`.
    pub fn size(mut self, size: u64, what: &str) -> Self {
        self.parts.push(format!("{} {what}", bytes(size)));
        self
    }

    /// The line, ending with the time taken.
    pub fn line(&self) -> String {
        let mut parts = self.parts.clone();
        parts.push(format!("{:.1} s", self.started.elapsed().as_secs_f64()));
        format!("summary: {}\n", parts.join(", "))
    }

    /// Prints the line on stderr, unless the run is quiet or speaks JSON.
    pub fn print(&self, quiet: bool) {
        if !quiet {
            let line = self.line();
            suspend(|| eprint!("{line}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_and_summaries_speak_decimal_units() {
        for task in [Task::Saving, Task::Writing, Task::Verifying, Task::Loading] {
            for total in [None, Some(1)] {
                let template = template(task, total);
                if task == Task::Writing && total.is_none() {
                    assert!(!template.contains("bytes"), "{template}");
                    continue;
                }
                assert!(!template.contains("{bytes"), "{template}");
                assert!(!template.contains("{total_bytes"), "{template}");
                assert!(template.contains("{decimal_bytes}"), "{template}");
            }
        }
        assert_eq!(
            template(Task::Preparing, Some(2_500_000)),
            "{spinner} {msg} (2.5 MB) {elapsed}"
        );
        let line = Summary::start()
            .count(2, "image", "images")
            .count(1, "layer", "layers")
            .size(1_500_000, "in")
            .line();
        assert!(
            line.starts_with("summary: 2 images, 1 layer, 1.5 MB in, "),
            "{line}"
        );
        assert!(line.ends_with(" s\n"), "{line}");
    }
}
