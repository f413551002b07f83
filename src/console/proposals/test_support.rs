//! Fixtures for the proposals' unit tests: a copy of the shipped `policies/`, a proposal that
//! adds a forbid rule for ACME's special-category data in Germany, officers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::config::OfficerRole;
use crate::console::Officer;
use crate::policy::PolicyBundle;

pub const DE_RULE_FILE: &str = "acme-de.cedar";
pub const DE_RULE: &str = r#"@id("acme-special-category-not-in-de")
@reason("ACME's special-category data is not stored in Germany.")
forbid (principal == Tenant::"acme", action, resource)
when { context.classification == "special-category" && resource in Country::"DE" };
"#;

pub fn shipped_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")
}

/// A writable copy of `policies/` inside `tmp`, with a README that is not a bundle file.
pub fn policy_copy(tmp: &Path) -> PathBuf {
    let dir = tmp.join("policies");
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    for (name, text) in PolicyBundle::read_sources(&shipped_dir()).unwrap() {
        std::fs::write(dir.join(name), text).unwrap();
    }
    std::fs::write(dir.join("README.md"), "not part of the bundle\n").unwrap();
    dir
}

/// The shipped bundle plus the DE rule.
pub fn with_de_rule() -> BTreeMap<String, String> {
    let mut files = PolicyBundle::read_sources(&shipped_dir()).unwrap();
    files.insert(DE_RULE_FILE.into(), DE_RULE.into());
    files
}

pub fn officer(name: &str, fingerprint: &str, roles: &[OfficerRole]) -> Officer {
    Officer {
        name: name.into(),
        roles: roles.iter().copied().collect::<BTreeSet<_>>(),
        fingerprint: fingerprint.into(),
    }
}
