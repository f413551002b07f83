//! Which file names and contents a client may put in a proposal. A name from a browser ends up
//! as a path in the proposals directory and, on approval, in the policy directory, so it is
//! checked strictly: a plain file name of letters, digits, `-`, `_` and `.`, not hidden, at the
//! top of the bundle or in `tests/` (the only subdirectory a bundle has), and one the bundle
//! loader reads (anything else would be stored but never take effect).

use std::collections::BTreeMap;

use super::ProposalError;
use crate::policy::PolicyBundle;

/// The largest file: the shipped bundle's largest file is a few KiB.
pub const MAX_FILE_BYTES: usize = 256 << 10;
/// The whole proposed bundle.
pub const MAX_BUNDLE_BYTES: usize = 2 << 20;
pub const MAX_FILES: usize = 100;
const MAX_NAME_BYTES: usize = 100;

/// Written first and removed last while an approved bundle is written into the policy
/// directory (see `apply`); never a proposal's own file.
pub const INCOMPLETE_MARKER: &str = "00-incomplete-console-write.cedar";

/// Checks one relative bundle file name (`default.cedar`, `tests/eu.toml`).
pub fn check_name(name: &str) -> Result<(), ProposalError> {
    let bad = |why: &str| {
        Err(ProposalError::Invalid(format!(
            "file name {name:?} refused: {why}"
        )))
    };
    let plain = match name.split_once('/') {
        None => name,
        Some(("tests", rest)) => rest,
        Some(_) => return bad("only plain file names, or tests/NAME.toml, are allowed"),
    };
    if plain.is_empty() || plain.len() > MAX_NAME_BYTES {
        return bad("a name has 1 to 100 characters");
    }
    if plain.starts_with('.') {
        return bad("hidden files and . or .. are not allowed");
    }
    if !plain
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return bad("use only letters, digits, '-', '_' and '.'");
    }
    if name == INCOMPLETE_MARKER {
        return bad("this name is reserved for the console's own writes");
    }
    if !PolicyBundle::is_bundle_file(name) {
        return bad(
            "the bundle loader reads only countries.toml, jurisdictions.toml, regions.toml, \
             tenants.toml, schema.cedarschema, *.cedar and tests/*.toml",
        );
    }
    Ok(())
}

/// Checks one file's content.
pub fn check_content(name: &str, text: &str) -> Result<(), ProposalError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(ProposalError::Invalid(format!(
            "{name} has {} bytes; a bundle file may have at most {} KiB",
            text.len(),
            MAX_FILE_BYTES >> 10
        )));
    }
    if text.contains('\0') {
        return Err(ProposalError::Invalid(format!(
            "{name} contains a NUL character; bundle files are text"
        )));
    }
    Ok(())
}

/// Checks every name and content, and the bundle's total size and file count.
pub fn check_bundle(files: &BTreeMap<String, String>) -> Result<(), ProposalError> {
    if files.len() > MAX_FILES {
        return Err(ProposalError::Invalid(format!(
            "the bundle has {} files; at most {MAX_FILES} are allowed",
            files.len()
        )));
    }
    let total: usize = files.values().map(String::len).sum();
    if total > MAX_BUNDLE_BYTES {
        return Err(ProposalError::Invalid(format!(
            "the bundle has {total} bytes; at most {} MiB are allowed",
            MAX_BUNDLE_BYTES >> 20
        )));
    }
    for (name, text) in files {
        check_name(name)?;
        check_content(name, text)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_refused() {
        for name in [
            "",
            "../default.cedar",
            "..",
            ".",
            ".hidden.cedar",
            "tests/../x.toml",
            "tests/.x.toml",
            "sub/x.cedar",
            "tests/a/b.toml",
            "/etc/passwd.cedar",
            "a\\b.cedar",
            "new\nline.cedar",
            "tab\t.cedar",
            "nul\0.cedar",
            "space .cedar",
            "é.cedar",
            "notes.txt",
            "x.toml",
            "tests/x.cedar",
            "default.cedar/",
            INCOMPLETE_MARKER,
            &"a".repeat(101),
        ] {
            assert!(check_name(name).is_err(), "{name:?} accepted");
        }
    }

    #[test]
    fn bundle_names_are_accepted() {
        for name in [
            "default.cedar",
            "tenant-x_1.cedar",
            "regions.toml",
            "tenants.toml",
            "schema.cedarschema",
            "tests/de.toml",
        ] {
            check_name(name).unwrap();
        }
    }

    #[test]
    fn sizes_are_capped() {
        assert!(check_content("a.cedar", &"x".repeat(MAX_FILE_BYTES + 1)).is_err());
        assert!(check_content("a.cedar", "a\0b").is_err());
        check_content("a.cedar", "permit(principal, action, resource);").unwrap();
        let many: BTreeMap<String, String> = (0..=MAX_FILES)
            .map(|i| (format!("r{i}.cedar"), String::new()))
            .collect();
        assert!(check_bundle(&many).is_err());
        let big: BTreeMap<String, String> = (0..9)
            .map(|i| (format!("r{i}.cedar"), "x".repeat(MAX_FILE_BYTES)))
            .collect();
        assert!(check_bundle(&big).is_err());
    }
}
