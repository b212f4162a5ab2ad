//! Progress bars on stderr (indicatif), or nothing with `--quiet`.

use std::sync::Mutex;

use airgap::progress::{Progress, Task};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// indicatif bars, one per task; hidden when stderr is not a terminal.
pub struct Bars {
    current: Mutex<Option<ProgressBar>>,
}

impl Bars {
    /// Bars on stderr.
    pub fn new() -> Self {
        Self {
            current: Mutex::new(None),
        }
    }
}

impl Progress for Bars {
    fn start(&self, task: Task, total: Option<u64>) {
        let bar = match total {
            Some(total) => ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
                .with_style(
                    ProgressStyle::with_template(
                        "{msg:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                    )
                    .expect("the template is valid")
                    .progress_chars("=> "),
                ),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
                ProgressStyle::with_template("{msg:>10} {spinner} {bytes} {bytes_per_sec}")
                    .expect("the template is valid"),
            ),
        };
        bar.set_message(task.to_string());
        if let Some(previous) = self
            .current
            .lock()
            .expect("no panics while holding the bar")
            .replace(bar)
        {
            previous.finish_and_clear();
        }
    }

    fn advance(&self, bytes: u64) {
        if let Some(bar) = self
            .current
            .lock()
            .expect("no panics while holding the bar")
            .as_ref()
        {
            bar.inc(bytes);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self
            .current
            .lock()
            .expect("no panics while holding the bar")
            .take()
        {
            bar.finish_and_clear();
        }
    }
}
