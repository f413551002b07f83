use super::*;
use crate::console::proposals::test_support::{DE_RULE_FILE, policy_copy, with_de_rule};
use crate::policy::PolicyStore;

#[test]
fn the_directory_ends_up_holding_exactly_the_proposal() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = policy_copy(tmp.path());
    let mut files = with_de_rule();
    files.remove("tenant-acme-health.cedar");
    files.remove("tests/tenants.toml");
    files.insert("tests/acme-de.toml".into(), String::new());
    write_bundle(&dir, &files).unwrap();
    let on_disk = PolicyBundle::read_sources(&dir).unwrap();
    assert_eq!(on_disk, files);
    assert!(dir.join(DE_RULE_FILE).is_file());
    assert!(!dir.join("tenant-acme-health.cedar").exists());
    assert!(!dir.join("tests/tenants.toml").exists());
    assert!(!dir.join(INCOMPLETE_MARKER).exists());
    // Files that are not part of the bundle are left alone; no staging directory is left over.
    assert!(dir.join("README.md").is_file());
    let left: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("policies")]);
    assert_eq!(
        PolicyBundle::load(&dir).unwrap().hash(),
        PolicyBundle::hash_sources(&files)
    );
}

#[test]
fn a_directory_with_the_marker_never_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = policy_copy(tmp.path());
    fs::write(dir.join(INCOMPLETE_MARKER), MARKER_TEXT).unwrap();
    let e = PolicyBundle::load(&dir).unwrap_err();
    assert!(
        e.problems().iter().any(|p| p.file == INCOMPLETE_MARKER),
        "{e}"
    );
}

#[test]
fn a_write_that_stops_half_way_keeps_the_old_bundle_in_force() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = policy_copy(tmp.path());
    let store = PolicyStore::new(PolicyBundle::load(&dir).unwrap());
    let old = store.current().hash().to_string();
    // tests/ cannot be written into: it is a file now (but the bundle without it still loads).
    fs::remove_dir_all(dir.join("tests")).unwrap();
    fs::write(dir.join("tests"), "").unwrap();
    let mut files = with_de_rule();
    files.insert("tests/new.toml".into(), String::new());
    let e = write_bundle(&dir, &files).unwrap_err();
    assert!(matches!(e, ApplyError::Incomplete { .. }), "{e}");
    // The new rule may already be in place, but the marker keeps the set from loading.
    assert!(dir.join(INCOMPLETE_MARKER).is_file());
    assert!(store.reload(&dir).is_err());
    assert_eq!(store.current().hash(), old);
}

#[test]
fn nothing_changes_when_staging_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let e = write_bundle(&tmp.path().join("missing"), &with_de_rule()).unwrap_err();
    assert!(matches!(e, ApplyError::Staging(_)), "{e}");
    assert!(!tmp.path().join("missing").exists());
}
