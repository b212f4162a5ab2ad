//! Variable interpolation as Docker Compose does it: `$VAR`, `${VAR}`,
//! `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`,
//! `${VAR:+alt}`, `${VAR+alt}` and `$$` for a literal `$`.
//!
//! This follows compose-go's `template` package (v2.9.1, the one inside
//! Compose 2.40.3) quirk for quirk, because a project that Compose accepts
//! must resolve to the same images here: a lone `$` (`a$ b`, `$1`) stays as
//! it is, an unset variable becomes the empty string, a braced expression
//! with an operator must close on its own line, and defaults, alternatives
//! and error messages are themselves interpolated even when not used (so a
//! `${B:?…}` inside an unused default still fails). Only string values are
//! interpolated, never mapping keys.

use serde_yaml::Value;

/// Why a string could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `${` not followed by a well-formed expression.
    #[error("invalid interpolation format {template:?}; write $$ for a literal $")]
    Invalid {
        /// The whole string that holds the bad expression.
        template: String,
    },
    /// `${VAR:?message}` or `${VAR?message}` with the variable missing.
    #[error("required variable {variable} is missing a value{}", reason_suffix(.reason))]
    Required {
        /// The variable.
        variable: String,
        /// The message written after `?`, if any.
        reason: String,
    },
}

fn reason_suffix(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    }
}

/// Where variables come from.
pub trait Variables {
    /// The value of `name`; `None` when unset (not the same as empty).
    fn get(&self, name: &str) -> Option<String>;

    /// Called when a plain `$NAME` or `${NAME}` finds `name` unset and
    /// becomes empty, which Compose warns about.
    fn unset(&self, _name: &str) {}
}

impl<F: Fn(&str) -> Option<String>> Variables for F {
    fn get(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// A plain variable's value: empty when unset, and reported.
fn plain(lookup: &dyn Variables, name: &str) -> String {
    lookup.get(name).unwrap_or_else(|| {
        lookup.unset(name);
        String::new()
    })
}

/// Substitutes the variables of `template`.
pub fn substitute(template: &str, lookup: &dyn Variables) -> Result<String, TemplateError> {
    substitute_inner(template, lookup).map_err(|error| match error {
        TemplateError::Invalid { template: t } if t.is_empty() => TemplateError::Invalid {
            template: template.to_owned(),
        },
        other => other,
    })
}

/// Interpolates every string in `value`, in place. On failure, returns the
/// dotted path of the value (`services.web.image`) with the error.
pub fn interpolate_tree(
    value: &mut Value,
    lookup: &dyn Variables,
) -> Result<(), (String, TemplateError)> {
    walk(value, &mut Vec::new(), lookup)
}

fn walk(
    value: &mut Value,
    path: &mut Vec<String>,
    lookup: &dyn Variables,
) -> Result<(), (String, TemplateError)> {
    match value {
        Value::String(text) => {
            *text = substitute(text, lookup).map_err(|error| (path.join("."), error))?;
        }
        Value::Mapping(mapping) => {
            for (key, child) in mapping.iter_mut() {
                path.push(key_text(key));
                let result = walk(child, path, lookup);
                path.pop();
                result?;
            }
        }
        Value::Sequence(items) => {
            for child in items {
                // compose-go names every element `[]` in its error paths.
                path.push("[]".to_owned());
                let result = walk(child, path, lookup);
                path.pop();
                result?;
            }
        }
        Value::Tagged(tagged) => walk(&mut tagged.value, path, lookup)?,
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    Ok(())
}

/// A mapping key as text, for paths in messages.
pub fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => "null".to_owned(),
        _ => format!("{key:?}"),
    }
}

/// The operators after a variable name, longest first where one is a prefix
/// of another.
const OPERATORS: [&str; 6] = [":?", "?", ":-", "-", ":+", "+"];

fn is_name_start(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphabetic()
}

fn is_name_char(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphanumeric()
}

/// An empty `template` in an `Invalid` error means "the caller's string".
fn substitute_inner(template: &str, lookup: &dyn Variables) -> Result<String, TemplateError> {
    let bytes = template.as_bytes();
    let mut out = String::with_capacity(template.len());
    let mut first_error = None;
    let mut literal_from = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' || i + 1 >= bytes.len() {
            i += 1;
            continue;
        }
        let next = bytes[i + 1];
        let (replacement, end) = if next == b'$' {
            (Ok("$".to_owned()), i + 2)
        } else if is_name_start(next) {
            let mut end = i + 2;
            while end < bytes.len() && is_name_char(bytes[end]) {
                end += 1;
            }
            (Ok(plain(lookup, &template[i + 1..end])), end)
        } else if next == b'{' {
            match braced(template, i, lookup) {
                Some((result, end)) => (result, end),
                None => (
                    Err(TemplateError::Invalid {
                        template: String::new(),
                    }),
                    i + 2,
                ),
            }
        } else {
            // `$` before anything else is no expression: it stays literal.
            i += 1;
            continue;
        };
        out.push_str(&template[literal_from..i]);
        match replacement {
            Ok(text) => out.push_str(&text),
            // Like compose-go, go on replacing and report the first error.
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
        i = end;
        literal_from = end;
    }
    out.push_str(&template[literal_from..]);
    match first_error {
        Some(error) => Err(error),
        None => Ok(out),
    }
}

/// The `${…}` expression starting at `start` (the `$`): its replacement and
/// where the matched text ends, or `None` when it is malformed.
type Braced = (Result<String, TemplateError>, usize);

fn braced(template: &str, start: usize, lookup: &dyn Variables) -> Option<Braced> {
    let bytes = template.as_bytes();
    let name_start = start + 2;
    if name_start >= bytes.len() || !is_name_start(bytes[name_start]) {
        return None;
    }
    let mut name_end = name_start + 1;
    while name_end < bytes.len() && is_name_char(bytes[name_end]) {
        name_end += 1;
    }
    let name = &template[name_start..name_end];
    if bytes.get(name_end) == Some(&b'}') {
        return Some((Ok(plain(lookup, name)), name_end + 1));
    }
    let operator = OPERATORS
        .iter()
        .find(|op| template[name_end..].starts_with(**op))?;
    // The regex compose-go uses runs greedily to the last `}` of the line.
    let line_end = template[name_end..]
        .find('\n')
        .map_or(bytes.len(), |n| name_end + n);
    let after_operator = name_end + operator.len();
    let last_brace = template[after_operator..line_end].rfind('}')? + after_operator;
    let matched = &template[start..=last_brace];
    // …then cuts the expression at its first balanced closing brace and
    // interpolates what follows on its own.
    let (expression, rest) = match first_closing_brace(matched) {
        Some(close) => (&matched[..=close], &matched[close + 1..]),
        None => (matched, ""),
    };
    let argument = &expression[2 + name.len() + operator.len()..expression.len() - 1];
    let result = apply(name, operator, argument, lookup).and_then(|value| {
        let tail = substitute_inner(rest, lookup)?;
        Ok(value + &tail)
    });
    Some((result, last_brace + 1))
}

/// compose-go's `getFirstBraceClosingIndex`, including its habit of skipping
/// the character after each `{`.
fn first_closing_brace(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut open = 0i32;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'}' {
            open -= 1;
            if open == 0 {
                return Some(i);
            }
        }
        if bytes[i] == b'{' {
            open += 1;
            i += 1;
        }
        i += 1;
    }
    None
}

fn apply(
    name: &str,
    operator: &str,
    argument: &str,
    lookup: &dyn Variables,
) -> Result<String, TemplateError> {
    // Compose 2.40.3 interpolates the argument before it knows whether it
    // needs it.
    let argument = substitute_inner(argument, lookup)?;
    let value = lookup.get(name);
    let set_and_non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
    Ok(match operator {
        ":-" if !set_and_non_empty => argument,
        "-" if value.is_none() => argument,
        ":+" if set_and_non_empty => argument,
        "+" if value.is_some() => argument,
        ":?" if !set_and_non_empty => {
            return Err(required(name, argument));
        }
        "?" if value.is_none() => return Err(required(name, argument)),
        _ => value.unwrap_or_default(),
    })
}

fn required(name: &str, reason: String) -> TemplateError {
    TemplateError::Required {
        variable: name.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(template: &str) -> Result<String, TemplateError> {
        let lookup = |name: &str| match name {
            "SET" => Some("value".to_owned()),
            "EMPTY" => Some(String::new()),
            "lower" => Some("low".to_owned()),
            _ => None,
        };
        substitute(template, &lookup)
    }

    fn ok(template: &str) -> String {
        env(template).unwrap()
    }

    #[test]
    fn plain_forms() {
        assert_eq!(ok("$SET"), "value");
        assert_eq!(ok("${SET}"), "value");
        assert_eq!(ok("a${SET}b$SET.c"), "avalueb value.c".replace(' ', ""));
        assert_eq!(ok("$lower"), "low");
        assert_eq!(ok("$UNSET|${UNSET}"), "|");
    }

    #[test]
    fn dollar_escapes_and_lone_dollars() {
        assert_eq!(ok("$$SET"), "$SET");
        assert_eq!(ok("$${SET}"), "${SET}");
        assert_eq!(ok("a$ b"), "a$ b");
        assert_eq!(ok("$1a"), "$1a");
        assert_eq!(ok("x$"), "x$");
        assert_eq!(ok("$$$SET"), "$value");
    }

    #[test]
    fn defaults() {
        assert_eq!(ok("${UNSET:-d}|${EMPTY:-d}|${SET:-d}"), "d|d|value");
        assert_eq!(ok("${UNSET-d}|${EMPTY-d}|${SET-d}"), "d||value");
        // The default may itself hold `-` and variables.
        assert_eq!(ok("${UNSET-v4.1-3.0.2}"), "v4.1-3.0.2");
        assert_eq!(ok("${UNSET:-x/y}:${UNSET:-$SET}"), "x/y:value");
        assert_eq!(ok("${UNSET:-${EMPTY:-${UNSET:-deep}}}x"), "deepx");
    }

    #[test]
    fn alternatives() {
        assert_eq!(ok("${SET:+a}|${EMPTY:+a}|${UNSET:+a}"), "a||");
        assert_eq!(ok("${SET+a}|${EMPTY+a}|${UNSET+a}"), "a|a|");
    }

    #[test]
    fn required_variables() {
        assert_eq!(ok("${SET:?no}|${SET?no}|${EMPTY?no}"), "value|value|");
        assert_eq!(
            env("${EMPTY:?must be set}"),
            Err(required("EMPTY", "must be set".into()))
        );
        assert_eq!(env("${UNSET?}"), Err(required("UNSET", String::new())));
        assert_eq!(
            env("${UNSET?}").unwrap_err().to_string(),
            "required variable UNSET is missing a value"
        );
        // An unused default is still interpolated, as Compose 2.40.3 does.
        assert_eq!(
            env("${SET:-${UNSET:?x}}"),
            Err(required("UNSET", "x".into()))
        );
    }

    #[test]
    fn malformed_expressions() {
        for bad in ["${", "${A", "x ${ A}", "${1A}", "${A:x}", "${A:-\n}"] {
            assert_eq!(
                env(bad),
                Err(TemplateError::Invalid {
                    template: bad.to_owned()
                }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn expressions_after_an_operator_expression() {
        assert_eq!(ok("${UNSET:-x} and ${SET}"), "x and value");
        assert_eq!(ok("${UNSET:-x}}"), "x}");
        assert_eq!(ok("${UNSET:-x} $$}"), "x $}");
        assert_eq!(ok("${UNSET:-{x}}"), "{x}");
        assert_eq!(ok("${UNSET:-a}\n${SET}"), "a\nvalue");
    }

    #[test]
    fn plain_variables_that_are_unset_are_reported() {
        struct Recorder(std::cell::RefCell<Vec<String>>);
        impl Variables for Recorder {
            fn get(&self, _: &str) -> Option<String> {
                None
            }
            fn unset(&self, name: &str) {
                self.0.borrow_mut().push(name.to_owned());
            }
        }
        let recorder = Recorder(Default::default());
        let text = "$A ${B} ${C:-c} ${D-d} ${E:+e} $$F";
        assert_eq!(substitute(text, &recorder).unwrap(), "  c d  $F");
        assert_eq!(*recorder.0.borrow(), ["A", "B"]);
    }

    #[test]
    fn trees_keep_keys_and_name_the_failing_path() {
        let mut value: Value =
            serde_yaml::from_str("services:\n  $SET:\n    image: ${SET}\n    n: 1\n").unwrap();
        interpolate_tree(&mut value, &|_: &str| Some("v".into())).unwrap();
        assert_eq!(value["services"]["$SET"]["image"], Value::from("v"));

        let mut value: Value =
            serde_yaml::from_str("services:\n  web:\n    environment: [\"A=${X:?}\"]\n").unwrap();
        let (path, _) = interpolate_tree(&mut value, &|_: &str| None).unwrap_err();
        assert_eq!(path, "services.web.environment.[]");
    }
}
