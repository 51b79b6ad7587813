//! What is wrong with a config set, and where.

use std::fmt;
use std::path::PathBuf;

/// One thing wrong, at a 1-based line and column (in characters) of `file`.
///
/// Line and column are 0 for a directory's problem (it cannot be read, or
/// holds no YAML); `Display` then leaves the position out. A problem of a
/// file as a whole (too large, unreadable) is at 1:1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl fmt::Display for Problem {
    /// `path:line:column: message`, the shape editors and CI annotate.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

/// Every problem found in a config set, sorted by file, line and column.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", DisplayLines(.0))]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// Sorts into the documented order; a stable sort keeps problems at the
    /// same position in the order they were found.
    pub(crate) fn sorted(mut problems: Vec<Problem>) -> Problems {
        problems.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        Problems(problems)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Problem> {
        self.0.iter()
    }
}

impl<'a> IntoIterator for &'a Problems {
    type Item = &'a Problem;
    type IntoIter = std::slice::Iter<'a, Problem>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Problems a set's text shows at most (`bidder validate` lists them
/// all): a generated config of 100,000 line items naming a missing
/// creative was refused with a 10 MB answer and a 10 MB log line (probe
/// finding). The first ones, in file order, are where to start.
pub(crate) const SHOWN: usize = 200;

struct DisplayLines<'a>(&'a [Problem]);

impl fmt::Display for DisplayLines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().take(SHOWN).enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        if self.0.len() > SHOWN {
            write!(
                f,
                "\n... and {} more ({} in all; `bidder validate` lists every one)",
                self.0.len() - SHOWN,
                self.0.len()
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(file: &str, line: u64, column: u64, message: &str) -> Problem {
        Problem {
            file: file.into(),
            line,
            column,
            message: message.into(),
        }
    }

    #[test]
    fn a_set_shows_its_first_problems_and_how_many_more() {
        let many = Problems((0..250).map(|i| p("a.yaml", i + 1, 1, "bad")).collect());
        let text = many.to_string();
        assert_eq!(text.lines().count(), SHOWN + 1);
        assert!(text.starts_with("a.yaml:1:1: bad\n"));
        assert!(text.contains("a.yaml:200:1: bad\n"));
        assert!(!text.contains("a.yaml:201:1"));
        assert!(text.ends_with("... and 50 more (250 in all; `bidder validate` lists every one)"));
        let few = Problems((0..3).map(|i| p("a.yaml", i + 1, 1, "bad")).collect());
        assert_eq!(few.to_string().lines().count(), 3);
    }

    #[test]
    fn display_is_path_line_column_message() {
        assert_eq!(
            p("examples/config/acme.yaml", 12, 9, "reason").to_string(),
            "examples/config/acme.yaml:12:9: reason"
        );
        assert_eq!(
            p("conf", 0, 0, "no YAML files").to_string(),
            "conf: no YAML files"
        );
    }

    #[test]
    fn sorted_by_file_then_position_keeping_ties_in_order() {
        let problems = Problems::sorted(vec![
            p("b.yaml", 1, 1, "b"),
            p("a.yaml", 10, 2, "a3"),
            p("a.yaml", 2, 5, "a1"),
            p("a.yaml", 10, 1, "a2"),
            p("a.yaml", 10, 2, "a4"),
        ]);
        let order: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(order, ["a1", "a2", "a3", "a4", "b"]);
        assert_eq!(
            problems.to_string(),
            "a.yaml:2:5: a1\na.yaml:10:1: a2\na.yaml:10:2: a3\na.yaml:10:2: a4\nb.yaml:1:1: b"
        );
        let as_error: &dyn std::error::Error = &problems;
        assert!(as_error.to_string().starts_with("a.yaml:2:5: a1\n"));
    }
}
