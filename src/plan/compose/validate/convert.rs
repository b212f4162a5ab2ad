//! The conversions Docker Compose (compose-go 2.9.1) applies to string
//! values, reimplemented to accept exactly what it accepts: booleans
//! (`toBoolean`), integers and floats (Go's `strconv`), durations (Go's
//! `time.ParseDuration`) and byte sizes (go-units `RAMInBytes`).

/// A boolean as Compose casts it: `true`/`false`, and the YAML 1.1 words it
/// still takes with a warning (`yes`, `on`, `y`, …), in any case.
pub fn is_boolean(text: &str) -> bool {
    matches!(
        text.to_ascii_lowercase().as_str(),
        "true" | "false" | "y" | "yes" | "on" | "n" | "no" | "off"
    )
}

/// A decimal integer with an optional sign that fits 64 bits (Go's
/// `strconv.Atoi` / `ParseInt(s, 10, 64)`).
pub fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && text.parse::<i64>().is_ok()
}

/// A float as Go's `strconv.ParseFloat` reads it (decimal, exponent,
/// `inf`, `nan`; hexadecimal floats are taken on trust).
pub fn is_float(text: &str) -> bool {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let hex = unsigned.len() > 2 && unsigned[..2].eq_ignore_ascii_case("0x");
    hex || (!unsigned.starts_with(['+', '-']) && text.parse::<f64>().is_ok())
}

/// Why a duration does not parse, in Go's words.
pub fn duration_error(text: &str) -> Option<&'static str> {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    if unsigned == "0" {
        return None;
    }
    if unsigned.is_empty() {
        return Some("invalid duration");
    }
    let mut rest = unsigned;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_end];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Some("invalid duration");
        }
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        if unit.is_empty() {
            return Some("missing unit in duration");
        }
        if !matches!(
            unit,
            "ns" | "us" | "\u{b5}s" | "\u{3bc}s" | "ms" | "s" | "m" | "h"
        ) {
            return Some("unknown unit in duration");
        }
        rest = &rest[unit_end..];
    }
    None
}

/// Why a byte size does not parse, in go-units' words: a non-negative
/// number, optionally a space, then `b`, or `k`/`m`/`g`/`t`/`p` with an
/// optional `b` or `ib`, in any case.
pub fn size_error(text: &str) -> Option<&'static str> {
    let Some(sep) = text.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ') else {
        return Some("invalid size");
    };
    let (number, suffix) = if text.as_bytes()[sep] == b' ' {
        (&text[..sep], &text[sep + 1..])
    } else {
        (&text[..=sep], &text[sep + 1..])
    };
    match number.parse::<f64>() {
        Err(_) if !is_float(number) => return Some("not a number"),
        Ok(size) if size < 0.0 => return Some("invalid size"),
        _ => {}
    }
    let suffix = suffix.to_ascii_lowercase();
    let valid = match suffix.as_bytes() {
        [] | [b'b'] => true,
        [unit, tail @ ..] if b"kmgtp".contains(unit) => matches!(tail, [] | b"b" | b"ib"),
        _ => false,
    };
    (!valid).then_some("invalid suffix")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_as_compose_casts_them() {
        for ok in ["true", "FALSE", "yes", "Y", "on", "off", "No"] {
            assert!(is_boolean(ok), "{ok}");
        }
        for bad in ["", "maybe", "1", "0", "truee"] {
            assert!(!is_boolean(bad), "{bad}");
        }
    }

    #[test]
    fn numbers_as_go_parses_them() {
        assert!(is_integer("+2") && is_integer("-15") && is_integer("0"));
        assert!(!is_integer("1.0") && !is_integer("") && !is_integer("x") && !is_integer("1_0"));
        assert!(!is_integer("99999999999999999999"));
        assert!(is_float("1.5") && is_float("1e3") && is_float(".5") && is_float("-2"));
        assert!(!is_float("") && !is_float("abc") && !is_float("1,5") && !is_float("+-1"));
    }

    #[test]
    fn durations_as_go_parses_them() {
        for ok in [
            "0",
            "1m30s",
            "1.5m",
            "300ms",
            "10us",
            "1h",
            "-1s",
            "2h45m0.5s",
        ] {
            assert_eq!(duration_error(ok), None, "{ok}");
        }
        assert_eq!(duration_error("10"), Some("missing unit in duration"));
        assert_eq!(duration_error("10x"), Some("unknown unit in duration"));
        assert_eq!(duration_error(""), Some("invalid duration"));
        assert_eq!(duration_error(".s"), Some("invalid duration"));
        assert_eq!(duration_error("1..2s"), Some("invalid duration"));
    }

    #[test]
    fn sizes_as_go_units_parses_them() {
        for ok in [
            "512m", "1gb", "1 g", "1kib", "1kB", "1K", "1024", "1.5g", "3b",
        ] {
            assert_eq!(size_error(ok), None, "{ok}");
        }
        assert_eq!(size_error("1q"), Some("invalid suffix"));
        assert_eq!(size_error("1gbb"), Some("invalid suffix"));
        assert_eq!(size_error("1bb"), Some("invalid suffix"));
        assert_eq!(size_error("-1"), Some("invalid size"));
        assert_eq!(size_error(""), Some("invalid size"));
        assert_eq!(size_error("1.5.5g"), Some("not a number"));
    }
}
