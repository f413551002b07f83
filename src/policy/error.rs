//! Typed errors. Every problem in a policy directory names its file and line and says what to fix.

use std::fmt;
use std::path::PathBuf;

/// One thing wrong with a policy bundle, located in a file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// File name relative to the policy directory, e.g. `regions.toml` or `tests/default.toml`.
    pub file: String,
    /// 1-based line; 0 when the problem concerns the file as a whole.
    pub line: usize,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("policy bundle is invalid ({} problem(s)):\n{}", .0.len(), ProblemList(.0))]
    Invalid(Vec<Problem>),
    #[error("policy bundle fails its own tests ({} failing case(s)):\n{}", .0.len(), FailureList(.0))]
    TestsFailed(Vec<crate::policy::cases::CaseFailure>),
    #[error("cannot watch policy directory {path}: {reason}")]
    Watch { path: PathBuf, reason: String },
}

impl PolicyError {
    /// The located problems, if this is a validation error.
    pub fn problems(&self) -> &[Problem] {
        match self {
            PolicyError::Invalid(p) => p,
            _ => &[],
        }
    }
}

struct ProblemList<'a>(&'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  {p}")?;
        }
        Ok(())
    }
}

struct FailureList<'a>(&'a [crate::policy::cases::CaseFailure]);

impl fmt::Display for FailureList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  {c}")?;
        }
        Ok(())
    }
}

/// 1-based line of byte `offset` in `text` (clamped to the text).
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}
