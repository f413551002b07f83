use super::*;

struct Files {
    _dir: tempfile::TempDir,
    ring: PathBuf,
    master: PathBuf,
}

fn files() -> Files {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("keyring");
    let master = dir.path().join("master.key");
    let mut k = Keyring::init(&ring, &master).unwrap();
    k.add_tenant("acme").unwrap();
    k.save().unwrap();
    Files {
        _dir: dir,
        ring,
        master,
    }
}

fn edit(f: &Files, change: impl FnOnce(&mut Keyring)) {
    let mut k = Keyring::open(&f.ring, &f.master).unwrap();
    change(&mut k);
    k.save().unwrap();
}

fn events(store: &KeyringStore) -> Arc<Mutex<Vec<KeyringReloadEvent>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    store.observe_reloads(Arc::new(move |e: &KeyringReloadEvent| {
        s.lock().unwrap().push(e.clone())
    }));
    seen
}

#[test]
fn a_rotation_is_put_in_force_and_a_held_keyring_keeps_working() {
    let f = files();
    let store = KeyringStore::open(&f.ring, &f.master).unwrap();
    let seen = events(&store);
    // What an upload that opened before the reload holds.
    let held = store.current();
    let v1 = held.keyring().active("acme").unwrap();

    edit(&f, |k| {
        k.rotate("acme").unwrap();
    });
    let e = store.reload_logged("SIGHUP");
    assert_eq!(e.outcome, ReloadOutcome::Changed);
    assert_eq!(e.previous, held.version());
    assert_ne!(e.active, e.previous);
    let now = store.current();
    assert_eq!(now.version(), e.active);
    assert_eq!(now.keyring().active("acme").unwrap().version, 2);
    // Objects sealed under v1 still open with the new keyring.
    assert_eq!(now.keyring().kek("acme", &v1.key_id, 1).unwrap(), v1.kek);
    // The keyring held from before is whole and unchanged.
    assert_eq!(held.keyring().active("acme").unwrap().version, 1);
    assert_eq!(seen.lock().unwrap().as_slice(), &[e]);
    assert_eq!((store.failures(), store.last_failure()), (0, None));
}

#[test]
fn the_same_keys_again_are_unchanged() {
    let f = files();
    let store = KeyringStore::open(&f.ring, &f.master).unwrap();
    let before = store.current();
    edit(&f, |_| {}); // re-sealed under a new nonce: another file, the same keys
    let e = store.reload_logged("file change");
    assert_eq!(e.outcome, ReloadOutcome::Unchanged);
    assert!(Arc::ptr_eq(&before, &store.current()), "nothing swapped");
}

#[test]
fn a_corrupt_file_is_refused_counted_and_remembered_until_a_good_reload() {
    let f = files();
    let store = KeyringStore::open(&f.ring, &f.master).unwrap();
    let seen = events(&store);
    let before = store.current().version().to_string();
    let good = std::fs::read(&f.ring).unwrap();
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    std::fs::write(&f.ring, &bad).unwrap();

    let e = store.reload_logged("SIGHUP");
    assert_eq!(e.outcome, ReloadOutcome::Failed);
    assert_eq!(
        (e.previous.as_str(), e.active.as_str()),
        (before.as_str(), before.as_str())
    );
    let error = e.error.clone().unwrap();
    assert!(error.contains("does not open with master key"), "{error}");
    assert_eq!(store.current().version(), before);
    assert!(store.current().keyring().active("acme").is_ok());
    assert_eq!(store.failures(), 1);
    assert_eq!(store.last_failure().unwrap().error, error);
    assert_eq!(seen.lock().unwrap().len(), 1);

    // Garbage and a missing file are refused the same way, each counted.
    std::fs::write(&f.ring, b"not a keyring").unwrap();
    assert_eq!(store.reload_logged("SIGHUP").outcome, ReloadOutcome::Failed);
    std::fs::remove_file(&f.ring).unwrap();
    assert_eq!(store.reload_logged("SIGHUP").outcome, ReloadOutcome::Failed);
    assert_eq!(store.failures(), 3);

    // The good file back: accepted (unchanged), and the failure no longer shown.
    std::fs::write(&f.ring, &good).unwrap();
    std::fs::set_permissions(&f.ring, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    assert_eq!(
        store.reload_logged("SIGHUP").outcome,
        ReloadOutcome::Unchanged
    );
    assert_eq!(store.last_failure(), None);
    assert_eq!(store.failures(), 3);
}

#[test]
fn an_older_copy_that_lacks_a_key_in_force_is_refused() {
    let f = files();
    let older = std::fs::read(&f.ring).unwrap();
    edit(&f, |k| {
        k.rotate("acme").unwrap();
    });
    let store = KeyringStore::open(&f.ring, &f.master).unwrap();
    let before = store.current().version().to_string();
    std::fs::write(&f.ring, &older).unwrap();
    let err = store.reload().unwrap_err();
    assert!(
        matches!(err, KeyError::ReloadDropsKey { ref tenant, version: 2, .. } if tenant == "acme"),
        "{err}"
    );
    assert_eq!(store.current().version(), before);
}

#[test]
fn keys_rotated_separately_elsewhere_are_refused() {
    let f = files();
    let base = std::fs::read(&f.ring).unwrap();
    edit(&f, |k| {
        k.rotate("acme").unwrap();
    });
    let store = KeyringStore::open(&f.ring, &f.master).unwrap();
    // Another machine rotated the same base: same key id and version 2, other key bytes.
    std::fs::write(&f.ring, &base).unwrap();
    edit(&f, |k| {
        k.rotate("acme").unwrap();
    });
    let err = store.reload().unwrap_err();
    assert!(
        matches!(err, KeyError::ReloadChangesKey { version: 2, .. }),
        "{err}"
    );
    assert_eq!(store.current().keyring().active("acme").unwrap().version, 2);
}

#[test]
fn a_shred_and_a_new_tenant_are_put_in_force() {
    let f = files();
    let store = KeyringStore::open(&f.ring, &f.master).unwrap();
    edit(&f, |k| {
        k.add_tenant("beta").unwrap();
        k.shred("acme").unwrap();
    });
    assert_eq!(store.reload().unwrap(), ReloadOutcome::Changed);
    let now = store.current();
    assert!(matches!(
        now.keyring().active("acme"),
        Err(KeyError::Shredded { .. })
    ));
    assert!(now.keyring().active("beta").is_ok());
}
