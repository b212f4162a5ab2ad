//! Image list files: one reference per line, `#` comments, blank lines.

use std::path::Path;

use super::PlanError;

/// The references in the list file at `path`, each with its `file:line` origin.
pub fn images(path: &Path) -> Result<Vec<(String, String)>, PlanError> {
    let text = std::fs::read_to_string(path).map_err(|source| PlanError::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok(parse(&text)
        .map(|(line, reference)| (format!("{}:{line}", path.display()), reference.to_owned()))
        .collect())
}

/// `(line number, reference)` for every non-blank, non-comment line.
fn parse(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter_map(|(index, line)| {
        let line = line
            .split_once('#')
            .map_or(line, |(before, _)| before)
            .trim();
        (!line.is_empty()).then_some((index + 1, line))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        let text = "# base images\nnginx:1.27\n\n  redis:7  # cache\n#postgres\n";
        let found: Vec<_> = parse(text).collect();
        assert_eq!(found, vec![(2, "nginx:1.27"), (4, "redis:7")]);
    }
}
