//! Virtual paths: what a user names inside their own root. Parsing is the one gate every path
//! passes; nothing here can name a place outside the user's root.

use std::fmt;

// In-progress uploads carry this marker; users may not name such files.
use crate::storage::fs::TEMP_MARKER;

/// Longest path (bytes) and longest single name accepted, as on common filesystems.
pub const MAX_PATH_LEN: usize = 4096;
pub const MAX_NAME_LEN: usize = 255;

/// A normalised path below the user's virtual root; `[]` is the root itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VirtualPath(Vec<String>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path contains a NUL byte")]
    Nul,
    #[error("path contains a control character")]
    Control,
    #[error("path is longer than {MAX_PATH_LEN} bytes")]
    TooLong,
    #[error("a name is longer than {MAX_NAME_LEN} bytes")]
    NameTooLong,
    #[error("`..` would leave your home directory")]
    Escape,
    #[error("names containing `{TEMP_MARKER}` are reserved for uploads in progress")]
    Reserved,
}

impl VirtualPath {
    pub fn root() -> VirtualPath {
        VirtualPath(Vec::new())
    }

    /// Resolves `raw` (absolute, or relative to the root — the SFTP working directory is always
    /// `/`). `.` and empty segments vanish; `..` pops and is an error at the root.
    pub fn parse(raw: &str) -> Result<VirtualPath, PathError> {
        if raw.contains('\0') {
            return Err(PathError::Nul);
        }
        if raw.len() > MAX_PATH_LEN {
            return Err(PathError::TooLong);
        }
        if raw.chars().any(char::is_control) {
            return Err(PathError::Control);
        }
        let mut parts: Vec<String> = Vec::new();
        for segment in raw.split('/') {
            match segment {
                "" | "." => {}
                ".." => {
                    if parts.pop().is_none() {
                        return Err(PathError::Escape);
                    }
                }
                name => {
                    if name.len() > MAX_NAME_LEN {
                        return Err(PathError::NameTooLong);
                    }
                    if name.contains(TEMP_MARKER) {
                        return Err(PathError::Reserved);
                    }
                    parts.push(name.to_string());
                }
            }
        }
        Ok(VirtualPath(parts))
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub fn segments(&self) -> &[String] {
        &self.0
    }

    /// The last name, `None` at the root.
    pub fn file_name(&self) -> Option<&str> {
        self.0.last().map(String::as_str)
    }

    pub fn parent(&self) -> Option<VirtualPath> {
        if self.0.is_empty() {
            None
        } else {
            Some(VirtualPath(self.0[..self.0.len() - 1].to_vec()))
        }
    }

    /// `a/b/c` — the relative key below the tenant prefix.
    pub fn relative(&self) -> String {
        self.0.join("/")
    }
}

impl fmt::Display for VirtualPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.0.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalises() {
        assert_eq!(VirtualPath::parse("/").unwrap(), VirtualPath::root());
        assert_eq!(VirtualPath::parse(".").unwrap(), VirtualPath::root());
        assert_eq!(VirtualPath::parse("").unwrap(), VirtualPath::root());
        assert_eq!(
            VirtualPath::parse("a//b/./c").unwrap().to_string(),
            "/a/b/c"
        );
        assert_eq!(VirtualPath::parse("/a/b/../c").unwrap().to_string(), "/a/c");
        assert_eq!(VirtualPath::parse("a/..").unwrap(), VirtualPath::root());
    }

    #[test]
    fn escapes_and_bad_bytes_refused() {
        assert_eq!(VirtualPath::parse(".."), Err(PathError::Escape));
        assert_eq!(VirtualPath::parse("/../etc/passwd"), Err(PathError::Escape));
        assert_eq!(VirtualPath::parse("a/../../b"), Err(PathError::Escape));
        assert_eq!(VirtualPath::parse("a\0b"), Err(PathError::Nul));
        assert_eq!(VirtualPath::parse("a\nb"), Err(PathError::Control));
        assert_eq!(
            VirtualPath::parse(&"x".repeat(256)),
            Err(PathError::NameTooLong)
        );
        assert_eq!(
            VirtualPath::parse(&"a/".repeat(2049)),
            Err(PathError::TooLong)
        );
        assert_eq!(
            VirtualPath::parse("dir/.f.eugate-tmp-1234"),
            Err(PathError::Reserved)
        );
    }

    proptest! {
        /// Whatever the input, an accepted path has only plain names: no `..`, `.`, `/`, NUL.
        #[test]
        fn accepted_paths_stay_inside(raw in "[a./\\x00-\\x1f b]{0,40}") {
            if let Ok(p) = VirtualPath::parse(&raw) {
                for s in p.segments() {
                    prop_assert!(s != ".." && s != "." && !s.is_empty());
                    prop_assert!(!s.contains('/') && !s.contains('\0'));
                }
                // Parsing the printed form gives the same path back.
                prop_assert_eq!(VirtualPath::parse(&p.to_string()).unwrap(), p);
            }
        }
    }
}
