//! Text from a bundle, made safe to show a person.
//!
//! A bundle's strings (references, tool name, file names, …) are chosen by
//! whoever made it, signed or not. Printed raw, a newline or a terminal
//! escape sequence in them can forge lines of a report (`[ok] signature`,
//! `result: VERIFIED`) or erase the real ones, and a bidi control can
//! reorder what the eye reads. Every such string goes through [`escape`]
//! before it is formatted for people; JSON output needs no such care.

use std::borrow::Cow;
use std::path::Path;

/// `text` with every character that can move the cursor, change the
/// terminal or reorder the line written as an escape: `\n`, `\r`, `\t`,
/// `\x1b` for the other C0 controls and DEL, `\u{85}` for C1 controls and
/// `\u{202e}` for bidi controls and the line and paragraph separators.
///
/// A backslash is left as it is: the result is then unchanged by escaping
/// it again, so text escaped where it is made (an error message) and again
/// where it is printed reads the same.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push_str("\\t"),
            c if (c as u32) < 0x80 && needs_escape(c) => {
                escaped.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if needs_escape(c) => escaped.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => escaped.push(c),
        }
    }
    Cow::Owned(escaped)
}

/// Escapes every string of `items` and joins them with `separator`.
pub fn escape_all<'a>(items: impl IntoIterator<Item = &'a String>, separator: &str) -> String {
    items
        .into_iter()
        .map(|item| escape(item))
        .collect::<Vec<_>>()
        .join(separator)
}

/// [`escape`] of a path as [`Path::display`] shows it.
pub fn escape_path(path: &Path) -> String {
    escape(&path.display().to_string()).into_owned()
}

fn needs_escape(c: char) -> bool {
    c.is_control() // C0, DEL and C1
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

/// Formats a byte count for people (`1.9 MB`): powers of 1000, the one
/// unit system of every bar, summary and report.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        for text in [
            "golden/app:1",
            "docker.io/library/nginx:1.27",
            "héllo → wörld",
            "",
        ] {
            assert!(matches!(escape(text), Cow::Borrowed(t) if t == text));
        }
    }

    #[test]
    fn newlines_and_terminal_sequences_are_written_out() {
        assert_eq!(
            escape("app:1\n[ok] signature trusted\r\nresult: VERIFIED\x1b[2K\x1b[1A\t\x00\x7f"),
            "app:1\\n[ok] signature trusted\\r\\nresult: VERIFIED\\x1b[2K\\x1b[1A\\t\\x00\\x7f"
        );
    }

    #[test]
    fn c1_bidi_and_separators_are_written_out() {
        assert_eq!(
            escape("a\u{85}b\u{9b}c\u{202a}\u{202e}d\u{2066}\u{2069}e\u{2028}\u{2029}"),
            "a\\u{85}b\\u{9b}c\\u{202a}\\u{202e}d\\u{2066}\\u{2069}e\\u{2028}\\u{2029}"
        );
    }

    #[test]
    fn escaping_twice_changes_nothing_more() {
        let once = escape("x\x1b[1Ay\u{202e}\\n").into_owned();
        assert_eq!(escape(&once), once);
    }

    #[test]
    fn every_control_character_is_escaped() {
        let controls = (0u32..0x20).chain(0x7f..0xa0).chain([0x2028, 0x2029]);
        for c in controls.filter_map(char::from_u32) {
            let escaped = escape(&c.to_string()).into_owned();
            assert!(escaped.starts_with('\\'), "{:x} kept raw", c as u32);
            assert!(!escaped.chars().any(|e| e.is_control()), "{escaped:?}");
        }
    }
}
