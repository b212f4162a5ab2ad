//! `.env` files as Compose reads them: `KEY=value`, `export KEY=value`,
//! `KEY: value`, a bare `KEY` that takes its value from the environment,
//! `#` comment lines, ` #` comments after unquoted values, single quotes
//! (literal), double quotes (escapes, then interpolation; may span lines),
//! and interpolation of unquoted values.
//!
//! It mirrors compose-go's `dotenv` parser, since a value read differently
//! here would name a different image tag.

use std::collections::BTreeMap;

use super::interpolate::{self, TemplateError, Variables};

/// Why an env file could not be parsed.
#[derive(Debug, thiserror::Error)]
pub enum DotenvError {
    /// A variable name holds a character names may not have.
    #[error("line {line}: unexpected character {character:?} in variable name")]
    BadName {
        /// 1-based line.
        line: usize,
        /// The character.
        character: char,
    },
    /// A variable name holds a space.
    #[error("line {line}: variable name {name:?} contains a space")]
    SpaceInName {
        /// 1-based line.
        line: usize,
        /// The name.
        name: String,
    },
    /// A quoted value has no closing quote.
    #[error("line {line}: quoted value is not closed")]
    Unterminated {
        /// 1-based line where the file ended.
        line: usize,
    },
    /// A value could not be interpolated.
    #[error("line {line}")]
    Template {
        /// 1-based line.
        line: usize,
        /// The interpolation error.
        #[source]
        source: TemplateError,
    },
}

/// Parses `text` into `vars` (a later line overrides an earlier one, and
/// several files can share one map, later files overriding earlier ones).
/// Variables that values refer to, and bare names, are looked up in
/// `lookup` (the process environment) first, then in `vars`.
pub fn parse(
    text: &str,
    lookup: &dyn Variables,
    vars: &mut BTreeMap<String, String>,
) -> Result<(), DotenvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut parser = Parser { line: 1, vars };
    let mut rest = text;
    loop {
        rest = parser.statement_start(rest);
        if rest.is_empty() {
            break;
        }
        let (name, after, inherited) = parser.name(rest)?;
        if name.contains(' ') {
            return Err(DotenvError::SpaceInName {
                line: parser.line,
                name,
            });
        }
        if inherited {
            if let Some(value) = parser.lookup(lookup, &name) {
                parser.vars.insert(name, value);
            }
            rest = after;
            continue;
        }
        let (value, after) = parser.value(after, lookup)?;
        parser.vars.insert(name, value);
        rest = after;
    }
    Ok(())
}

struct Parser<'v> {
    line: usize,
    vars: &'v mut BTreeMap<String, String>,
}

/// Space that is not a line break, as compose-go's `isSpace`.
fn is_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{85}' | '\u{a0}'
    )
}

impl Parser<'_> {
    fn lookup(&self, lookup: &dyn Variables, name: &str) -> Option<String> {
        lookup.get(name).or_else(|| self.vars.get(name).cloned())
    }

    /// Skips blank space and comment lines, counting lines.
    fn statement_start<'t>(&mut self, mut src: &'t str) -> &'t str {
        loop {
            let Some(pos) = src.find(|c: char| {
                if c == '\n' {
                    self.line += 1;
                }
                !c.is_whitespace()
            }) else {
                return "";
            };
            src = &src[pos..];
            if !src.starts_with('#') {
                return src;
            }
            match src.find('\n') {
                Some(end) => src = &src[end..],
                None => return "",
            }
        }
    }

    /// The variable name, the text after `=`/`:` (or after the line), and
    /// whether the line was a bare name.
    fn name<'t>(&mut self, src: &'t str) -> Result<(String, &'t str, bool), DotenvError> {
        let mut src = src;
        if let Some(after) = src.strip_prefix("export")
            && after.starts_with(|c: char| c.is_whitespace())
        {
            src = after.trim_start_matches(is_space);
        }
        let mut found = None;
        for (i, c) in src.char_indices() {
            if is_space(c) {
                continue;
            }
            match c {
                '=' | ':' | '\n' => {
                    found = Some((i, c));
                    break;
                }
                '_' | '.' | '-' | '[' | ']' => {}
                c if c.is_alphanumeric() => {}
                other => {
                    return Err(DotenvError::BadName {
                        line: self.line,
                        character: other,
                    });
                }
            }
        }
        // A last line with a bare name and no newline: compose-go reads the
        // whole line as the value of an empty name, which nothing can use.
        let (end, separator) = found.unwrap_or((0, '='));
        let inherited = separator == '\n';
        let name = src[..end].trim_end().to_owned();
        if inherited && !name.contains(' ') {
            self.line += 1;
        }
        let offset = if found.is_some() { end + 1 } else { 0 };
        Ok((name, src[offset..].trim_start_matches(is_space), inherited))
    }

    fn value<'t>(
        &mut self,
        src: &'t str,
        lookup: &dyn Variables,
    ) -> Result<(String, &'t str), DotenvError> {
        let quote = match src.chars().next() {
            Some(q @ ('"' | '\'')) => q,
            _ => {
                let (value, rest) = src.split_once('\n').unwrap_or((src, ""));
                let line = self.line;
                self.line += 1;
                let value = value.split_once(" #").map_or(value, |(v, _)| v);
                let value = self.expand(value.trim_end(), lookup, line)?;
                return Ok((value, rest));
            }
        };
        let line = self.line;
        let mut chars = String::new();
        let mut escaped = false;
        for (i, c) in src.char_indices().skip(1) {
            if c == '\n' {
                self.line += 1;
            }
            if c != quote {
                if !escaped && c == '\\' {
                    escaped = true;
                    continue;
                }
                if escaped {
                    escaped = false;
                    chars.push('\\');
                }
                chars.push(c);
                continue;
            }
            if escaped {
                escaped = false;
                chars.push(c);
                continue;
            }
            let value = if quote == '"' {
                self.expand(&expand_escapes(&chars), lookup, line)?
            } else {
                chars
            };
            return Ok((value, &src[i + 1..]));
        }
        Err(DotenvError::Unterminated { line: self.line })
    }

    /// Interpolates a value.
    fn expand(
        &self,
        value: &str,
        lookup: &dyn Variables,
        line: usize,
    ) -> Result<String, DotenvError> {
        let local = |name: &str| self.lookup(lookup, name);
        interpolate::substitute(value, &local)
            .map_err(|source| DotenvError::Template { line, source })
    }
}

/// The escapes double-quoted values understand: `\n`, `\t`, `\\`, `\"`,
/// `\$` (a literal `$`), octal `\0NNN`, and the other C escapes.
fn expand_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(&next) = chars.peek() else {
            out.push(c);
            continue;
        };
        let simple = match next {
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            'c' => None,
            'f' => Some('\u{c}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\u{b}'),
            '"' => Some('"'),
            '\\' => Some('\\'),
            '$' => {
                chars.next();
                // Interpolation reads `$$` as a literal `$`.
                out.push_str("$$");
                continue;
            }
            '0' => {
                chars.next();
                let mut digits = String::new();
                while digits.len() < 3 && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
                    digits.push(chars.next().expect("peeked"));
                }
                match u8::from_str_radix(&digits, 8) {
                    Ok(code) if digits.len() == 3 => out.push(char::from(code)),
                    _ => {
                        out.push_str("\\0");
                        out.push_str(&digits);
                    }
                }
                continue;
            }
            _ => None,
        };
        match simple {
            Some(replacement) => {
                chars.next();
                out.push(replacement);
            }
            None => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_with(text: &str, env: &[(&str, &str)]) -> BTreeMap<String, String> {
        let lookup = |name: &str| {
            env.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        };
        let mut vars = BTreeMap::new();
        parse(text, &lookup, &mut vars).unwrap();
        vars
    }

    fn pairs(list: &[(&str, &str)]) -> BTreeMap<String, String> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn fails(text: &str) -> DotenvError {
        parse(text, &|_: &str| None, &mut BTreeMap::new()).unwrap_err()
    }

    #[test]
    fn the_forms_compose_accepts() {
        let text = "A=1\nB=\"x${A}y\"\nC='${A}'\nD=${A:-z} # comment\nE=a#b\n\
                    export F=f\nG: g\n I = spaced \nK=${A}$${A}\n# note\n\nL=\n";
        assert_eq!(
            parse_with(text, &[]),
            pairs(&[
                ("A", "1"),
                ("B", "x1y"),
                ("C", "${A}"),
                ("D", "1"),
                ("E", "a#b"),
                ("F", "f"),
                ("G", "g"),
                ("I", "spaced"),
                ("K", "1${A}"),
                ("L", ""),
            ])
        );
    }

    #[test]
    fn inline_comment_on_the_last_line_without_newline() {
        let text = "TIMEZONE=Etc/UTC\nVPN=your-domain.example # free examples http://x/";
        assert_eq!(
            parse_with(text, &[]),
            pairs(&[("TIMEZONE", "Etc/UTC"), ("VPN", "your-domain.example")])
        );
    }

    #[test]
    fn bare_names_inherit_from_the_environment() {
        assert_eq!(parse_with("H\nJ=1\n", &[]), pairs(&[("J", "1")]));
        assert_eq!(
            parse_with("H\nJ=1\n", &[("H", "hh")]),
            pairs(&[("H", "hh"), ("J", "1")])
        );
    }

    #[test]
    fn later_lines_and_files_override_earlier_ones() {
        let mut vars = BTreeMap::new();
        parse("A=1\nA=2\nB=$A\n", &|_: &str| None, &mut vars).unwrap();
        parse("A=3\nC=$A$B\n", &|_: &str| None, &mut vars).unwrap();
        assert_eq!(vars, pairs(&[("A", "3"), ("B", "2"), ("C", "32")]));
    }

    #[test]
    fn the_environment_wins_over_earlier_lines_in_interpolation() {
        assert_eq!(
            parse_with("A=file\nB=$A\n", &[("A", "env")]),
            pairs(&[("A", "file"), ("B", "env")])
        );
    }

    #[test]
    fn double_quotes_span_lines_and_unescape() {
        assert_eq!(
            parse_with("J=\"multi\nline\\t\\\"q\\\" \\$A\"\nK=2\n", &[("A", "x")]),
            pairs(&[("J", "multi\nline\t\"q\" $A"), ("K", "2")])
        );
    }

    #[test]
    fn errors_name_the_line() {
        let error = fails("A=1\nB C=2\n");
        assert!(
            matches!(error, DotenvError::SpaceInName { line: 2, .. }),
            "{error:?}"
        );
        let error = fails("A=1\n\nB*=2\n");
        assert!(
            matches!(
                error,
                DotenvError::BadName {
                    line: 3,
                    character: '*'
                }
            ),
            "{error:?}"
        );
        let error = fails("A='open\n");
        assert!(
            matches!(error, DotenvError::Unterminated { .. }),
            "{error:?}"
        );
        let error = fails("A=${B:?needed}\n");
        assert!(
            matches!(error, DotenvError::Template { line: 1, .. }),
            "{error:?}"
        );
    }
}
