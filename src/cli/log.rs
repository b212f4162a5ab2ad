//! `-v`/`-vv`: what airgap does, as lines on stderr (tracing). Off by
//! default; only airgap's own events are shown, not its libraries'.

use std::io::{self, Write};

use tracing::Level;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

/// Starts logging at the level `-v` (`count` times) asks for; none without it.
pub fn init(count: u8) {
    let level = match count {
        0 => return,
        1 => Level::INFO,
        _ => Level::DEBUG,
    };
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(LineWriter)
        .with_target(false)
        .with_ansi(false)
        .with_timer(tracing_subscriber::fmt::time::uptime())
        .with_filter(
            Targets::new()
                .with_target("airgap", level)
                .with_default(LevelFilter::OFF),
        );
    // A second init (tests calling run twice) keeps the first subscriber.
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// Hands each log line to stderr whole, with any progress bar out of the way.
struct LineWriter;

impl<'a> MakeWriter<'a> for LineWriter {
    type Writer = Line;
    fn make_writer(&'a self) -> Line {
        Line(Vec::new())
    }
}

/// One formatted event, written when dropped.
struct Line(Vec<u8>);

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        let text = safe_line(&String::from_utf8_lossy(&self.0));
        super::progress::suspend(|| {
            let _ = io::stderr().lock().write_all(text.as_bytes());
        });
    }
}

/// `text` with every control character escaped but its line ends: a value
/// a call site forgot to escape still cannot move the cursor or forge a line.
fn safe_line(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| match line.strip_suffix('\n') {
            Some(body) => format!("{}\n", airgap::display::escape(body)),
            None => airgap::display::escape(line).into_owned(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_keeps_its_end_and_loses_its_escapes() {
        assert_eq!(safe_line("a\u{1b}[2Jb\n"), "a\\x1b[2Jb\n");
        assert_eq!(safe_line("one\ntwo\n"), "one\ntwo\n");
    }
}
