//! Compose's short volume syntax (`SOURCE:TARGET[:MODE]`), parsed as
//! compose-go's `ParseVolume` does, so an entry it refuses (an empty
//! variable leaving `:/var/run/x:ro`, a stray colon) is refused here too.

/// What a short volume entry names.
#[derive(Debug, PartialEq, Eq)]
pub struct ShortVolume {
    /// The source: a host path, a named volume, or empty for an anonymous
    /// volume.
    pub source: String,
}

impl ShortVolume {
    /// The named volume the entry mounts, if any (a source that is not a
    /// path is a volume the project must declare).
    pub fn named_volume(&self) -> Option<&str> {
        (!self.source.is_empty() && !is_file_path(&self.source)).then_some(self.source.as_str())
    }
}

/// Parses `spec`, or says why Compose refuses it.
pub fn parse(spec: &str) -> Result<ShortVolume, &'static str> {
    match spec.len() {
        0 => return Err("an empty volume entry"),
        // Compose takes one or two characters as an anonymous volume's target.
        1 | 2 => {
            return Ok(ShortVolume {
                source: String::new(),
            });
        }
        _ => {}
    }
    let mut sections: Vec<String> = Vec::new();
    let mut buffer = String::new();
    for c in spec.chars() {
        if c == ':' && is_windows_drive(&buffer) {
            buffer.push(c);
        } else if c == ':' {
            close_section(&mut sections, &buffer, true)?;
            buffer.clear();
        } else {
            buffer.push(c);
        }
    }
    close_section(&mut sections, &buffer, false)?;
    let source = if sections.len() >= 2 {
        sections.swap_remove(0)
    } else {
        String::new()
    };
    Ok(ShortVolume { source })
}

/// One colon-separated section: source, target, then the mode (whose
/// unknown options Compose ignores).
fn close_section(
    sections: &mut Vec<String>,
    buffer: &str,
    colon: bool,
) -> Result<(), &'static str> {
    if buffer.is_empty() {
        return Err("an empty section between colons");
    }
    if sections.len() >= 2 && colon {
        return Err("too many colons");
    }
    sections.push(buffer.to_owned());
    Ok(())
}

/// `C` before a colon is a Windows drive, part of the path.
fn is_windows_drive(buffer: &str) -> bool {
    let mut chars = buffer.chars();
    matches!((chars.next(), chars.next()), (Some(c), None) if c.is_alphabetic())
}

/// A source Compose binds from the host rather than a named volume.
fn is_file_path(source: &str) -> bool {
    if source.starts_with(['.', '/', '~']) || source.starts_with("\\\\") {
        return true;
    }
    let mut chars = source.chars();
    matches!((chars.next(), chars.next()), (Some(c), Some(':')) if c.is_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(spec: &str) -> Option<String> {
        parse(spec).unwrap().named_volume().map(str::to_owned)
    }

    #[test]
    fn entries_compose_accepts() {
        assert_eq!(source("data:/x"), Some("data".into()));
        assert_eq!(source("data:/x:ro,z"), Some("data".into()));
        assert_eq!(source("./a:/b:xyz"), None);
        assert_eq!(source("/abs:/y:ro"), None);
        assert_eq!(source("~/h:/z"), None);
        assert_eq!(source("/x"), None);
        assert_eq!(source("x"), None);
        assert_eq!(source("a:b:c:d"), None, "drive letters");
        assert_eq!(source("C:\\a:/b"), None);
        assert_eq!(source(" ./a:/b"), Some(" ./a".into()));
        assert_eq!(source(":"), None);
    }

    #[test]
    fn entries_compose_refuses() {
        assert_eq!(parse(""), Err("an empty volume entry"));
        assert_eq!(
            parse(":/var/run/x:ro"),
            Err("an empty section between colons")
        );
        assert_eq!(parse("./a::ro"), Err("an empty section between colons"));
        assert_eq!(parse("./a:/b:"), Err("an empty section between colons"));
        assert_eq!(parse("./a:/b:ro:rw"), Err("too many colons"));
    }
}
