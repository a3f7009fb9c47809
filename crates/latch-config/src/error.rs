//! What went wrong in a config file: every problem with its file, line, column and key path.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("{}: cannot read the config file: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid config.
    ///
    /// INVARIANT: `problems` is not empty and is sorted by position.
    #[error("{}", render(.problems))]
    Invalid { problems: Vec<Problem> },
}

impl ConfigError {
    /// Every problem found, in file order (empty when the file could not be read).
    pub fn problems(&self) -> &[Problem] {
        match self {
            Self::Read { .. } => &[],
            Self::Invalid { problems } => problems,
        }
    }
}

fn render(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// One thing wrong with a config file, displayed as `file:line:column: key.path: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The config file, as it was given to [`crate::load`] or [`crate::parse`].
    pub file: PathBuf,
    /// 1-based line of the offending key or value.
    pub line: usize,
    /// 1-based column, counted in characters, so editors jump to the right place.
    pub column: usize,
    /// Dotted path of the offending key, e.g. `resources.payments-db.owner_team`; empty when the
    /// problem is the file's syntax rather than one key.
    pub key: String,
    /// What was wrong and what was expected; lowercase, user input in backticks.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// Collects problems while a file is checked, turning byte offsets into lines and columns.
pub(crate) struct Diagnostics<'a> {
    text: &'a str,
    file: &'a Path,
    problems: Vec<(usize, Problem)>,
}

impl<'a> Diagnostics<'a> {
    pub(crate) fn new(text: &'a str, file: &'a Path) -> Self {
        Self {
            text,
            file,
            problems: Vec::new(),
        }
    }

    /// Records a problem at `span` (a byte range of the file; `None` means the file's start).
    pub(crate) fn report(
        &mut self,
        span: Option<Range<usize>>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) {
        let offset = span.map_or(0, |span| span.start);
        let (line, column) = line_column(self.text, offset);
        self.problems.push((
            offset,
            Problem {
                file: self.file.to_owned(),
                line,
                column,
                key: key.into(),
                // Parser messages may span lines; a problem is always one line.
                message: message.into().trim().replace('\n', "; "),
            },
        ));
    }

    /// `Ok(value)` when nothing was reported, else every problem in file order.
    pub(crate) fn finish<T>(self, value: T) -> Result<T, ConfigError> {
        if self.problems.is_empty() {
            Ok(value)
        } else {
            Err(self.into_error())
        }
    }

    /// Every problem reported so far, in file order; call only after reporting one.
    pub(crate) fn into_error(self) -> ConfigError {
        let mut problems = self.problems;
        // Stable: problems at one position keep the order they were found in.
        problems.sort_by_key(|(offset, _)| *offset);
        ConfigError::Invalid {
            problems: problems.into_iter().map(|(_, problem)| problem).collect(),
        }
    }
}

/// 1-based line and character column of a byte offset (clamped to the text).
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = text.get(..end).unwrap_or_default();
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let line = before.matches('\n').count() + 1;
    let column = before.get(line_start..).unwrap_or_default().chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters_from_one() {
        let text = "a = 1\nb = \"é\" x\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 4), (1, 5));
        assert_eq!(line_column(text, 6), (2, 1));
        // `x` comes after a two-byte character: byte 15, character column 9.
        assert_eq!(line_column(text, 15), (2, 9));
        assert_eq!(line_column(text, 999), (3, 1));
    }

    #[test]
    fn problems_display_one_per_line_in_file_order() {
        let text = "x = 1\ny = 2\n";
        let mut diagnostics = Diagnostics::new(text, Path::new("latch.toml"));
        diagnostics.report(Some(6..7), "y", "second");
        diagnostics.report(Some(0..1), "x", "first");
        diagnostics.report(None, "", "syntax");
        let error = diagnostics.finish(()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "latch.toml:1:1: x: first\nlatch.toml:1:1: syntax\nlatch.toml:2:1: y: second"
        );
        assert_eq!(error.problems().len(), 3);
    }
}
