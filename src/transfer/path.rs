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
    #[error("a file name cannot end with `/`, `.` or `..`: that names a directory")]
    NotAFileName,
    /// Invisible characters that change how a name reads: `a\u{202E}txt.exe` shows as
    /// `aexe.txt`. An auditor must read in the log what is stored.
    #[error(
        "path contains U+{:04X} ({}), which changes how names are displayed; remove it from the name",
        u32::from(*.0),
        spoofing_name(*.0).unwrap_or("format character")
    )]
    Spoofing(char),
}

/// Bidirectional controls, directional marks, and line/paragraph separators (Unicode TR9;
/// CVE-2021-42574 "Trojan Source"), with their Unicode names.
fn spoofing_name(c: char) -> Option<&'static str> {
    Some(match c {
        '\u{061C}' => "ARABIC LETTER MARK",
        '\u{200E}' => "LEFT-TO-RIGHT MARK",
        '\u{200F}' => "RIGHT-TO-LEFT MARK",
        '\u{2028}' => "LINE SEPARATOR",
        '\u{2029}' => "PARAGRAPH SEPARATOR",
        '\u{202A}' => "LEFT-TO-RIGHT EMBEDDING",
        '\u{202B}' => "RIGHT-TO-LEFT EMBEDDING",
        '\u{202C}' => "POP DIRECTIONAL FORMATTING",
        '\u{202D}' => "LEFT-TO-RIGHT OVERRIDE",
        '\u{202E}' => "RIGHT-TO-LEFT OVERRIDE",
        '\u{2066}' => "LEFT-TO-RIGHT ISOLATE",
        '\u{2067}' => "RIGHT-TO-LEFT ISOLATE",
        '\u{2068}' => "FIRST STRONG ISOLATE",
        '\u{2069}' => "POP DIRECTIONAL ISOLATE",
        _ => return None,
    })
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
        if let Some(c) = raw.chars().find(|&c| spoofing_name(c).is_some()) {
            return Err(PathError::Spoofing(c));
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

    /// Like [`VirtualPath::parse`], for a path that must name a file (an upload's target):
    /// `dir/`, `dir/.` and `dir/..` name directories, so they are refused rather than
    /// normalised into a file name the client did not write.
    pub fn parse_file(raw: &str) -> Result<VirtualPath, PathError> {
        let last = raw.rsplit('/').next().unwrap_or(raw);
        if matches!(last, "" | "." | "..") {
            return Err(PathError::NotAFileName);
        }
        VirtualPath::parse(raw)
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

    #[test]
    fn bidi_controls_and_separators_refused_by_code_point() {
        let all = [
            0x061C, 0x200E, 0x200F, 0x2028, 0x2029, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066,
            0x2067, 0x2068, 0x2069,
        ];
        for cp in all {
            let c = char::from_u32(cp).unwrap();
            for raw in [format!("a{c}b"), format!("/dir/{c}"), format!("{c}/x")] {
                assert_eq!(
                    VirtualPath::parse(&raw),
                    Err(PathError::Spoofing(c)),
                    "{raw:?}"
                );
            }
        }
        let e = VirtualPath::parse("invoice\u{202E}fdp.exe").unwrap_err();
        assert_eq!(
            e.to_string(),
            "path contains U+202E (RIGHT-TO-LEFT OVERRIDE), which changes how names are displayed; remove it from the name"
        );
        assert!(
            VirtualPath::parse("x\u{2028}y")
                .unwrap_err()
                .to_string()
                .contains("U+2028 (LINE SEPARATOR)")
        );
        // Right-to-left text itself is fine: only the invisible controls are refused.
        assert!(VirtualPath::parse("/שלום/مرحبا.txt").is_ok());
        assert!(VirtualPath::parse("/€uro/日本語").is_ok());
    }

    proptest! {
        /// Any name with a spoofing character anywhere is refused, naming that character.
        #[test]
        fn spoofing_characters_never_accepted(
            before in "[a-z€ש/]{0,20}",
            idx in 0usize..14,
            after in "[a-z€ש/]{0,20}",
        ) {
            let set = ['\u{061C}', '\u{200E}', '\u{200F}', '\u{2028}', '\u{2029}', '\u{202A}',
                '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
                '\u{2068}', '\u{2069}'];
            let c = set[idx];
            let raw = format!("{before}{c}{after}");
            prop_assert_eq!(VirtualPath::parse(&raw), Err(PathError::Spoofing(c)));
        }

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

    #[test]
    fn file_paths_refuse_directory_names() {
        for raw in ["dir/", "/a/b/", "dir/.", "dir/..", "/", "", "."] {
            assert_eq!(
                VirtualPath::parse_file(raw),
                Err(PathError::NotAFileName),
                "{raw}"
            );
        }
        assert_eq!(
            VirtualPath::parse_file("/a/./b").unwrap(),
            VirtualPath::parse("a/b").unwrap()
        );
    }
}
