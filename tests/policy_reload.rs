//! Reload: a valid edit swaps the bundle; an invalid edit or one whose own cases fail is rejected
//! and the previous bundle stays active — via `PolicyStore::reload` and via the running reloader
//! (file watch and SIGHUP).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eugate::policy::{PolicyBundle, PolicyError, PolicyStore, ReloadTriggers, spawn_reloader_with};

fn copy_shipped() -> tempfile::TempDir {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let dir = tempfile::tempdir().expect("tempdir");
    for sub in ["", "tests"] {
        std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        for e in std::fs::read_dir(shipped.join(sub)).expect("read") {
            let e = e.expect("entry");
            if e.path().is_file() {
                std::fs::copy(e.path(), dir.path().join(sub).join(e.file_name())).expect("copy");
            }
        }
    }
    dir
}

fn replace(dir: &Path, file: &str, from: &str, to: &str) {
    let p = dir.join(file);
    let text = std::fs::read_to_string(&p).expect("read");
    assert!(text.contains(from), "{file} lacks {from:?}");
    std::fs::write(&p, text.replacen(from, to, 1)).expect("write");
}

const VALID_EDIT: (&str, &str) = ("[tenants.acme]", "# reviewed again\n[tenants.acme]");
const INVALID_EDIT: (&str, &str) = (
    r#""fsn1" = { country = "DE""#,
    r#""fsn1" = { country = "DX""#,
);
// Valid syntax, but the shipped case "personal data to AWS Frankfurt" then fails.
const FAILING_EDIT: (&str, &str) = (
    r#"resource in Zone::"EEA");"#,
    r#"resource in Zone::"EU");"#,
);

#[test]
fn reload_keeps_old_bundle_on_bad_edit() {
    let dir = copy_shipped();
    let store = PolicyStore::new(PolicyBundle::load(dir.path()).expect("load"));
    let first = store.current().hash().to_string();

    replace(dir.path(), "regions.toml", INVALID_EDIT.0, INVALID_EDIT.1);
    let err = store
        .reload(dir.path())
        .expect_err("invalid bundle must be rejected");
    assert!(
        err.problems()
            .iter()
            .any(|p| p.file == "regions.toml" && p.message.contains("'DX'")),
        "{err}"
    );
    assert_eq!(store.current().hash(), first);
    replace(dir.path(), "regions.toml", INVALID_EDIT.1, INVALID_EDIT.0);

    replace(dir.path(), "default.cedar", FAILING_EDIT.0, FAILING_EDIT.1);
    match store.reload(dir.path()) {
        Err(PolicyError::TestsFailed(f)) => {
            assert!(f.iter().any(|c| c.name.contains("Norway")), "{f:?}")
        }
        other => panic!("expected TestsFailed, got {other:?}"),
    }
    assert_eq!(store.current().hash(), first);
    replace(dir.path(), "default.cedar", FAILING_EDIT.1, FAILING_EDIT.0);

    replace(dir.path(), "tenants.toml", VALID_EDIT.0, VALID_EDIT.1);
    store.reload(dir.path()).expect("valid edit reloads");
    assert_ne!(store.current().hash(), first);
}

#[test]
fn reload_of_missing_directory_keeps_old_bundle() {
    let store = PolicyStore::new(PolicyBundle::embedded());
    let h = store.current().hash().to_string();
    let err = store
        .reload(Path::new("/nonexistent/eugate-policies"))
        .expect_err("missing dir");
    assert!(err.to_string().contains("/nonexistent/eugate-policies"));
    assert_eq!(store.current().hash(), h);
}

/// Polls until the store's hash satisfies `pred` (the reloader is asynchronous); gives up after a
/// generous bound so a broken reloader fails the test instead of hanging it.
async fn wait_for(store: &PolicyStore, pred: impl Fn(&str) -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if pred(store.current().hash()) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloader_follows_file_changes_and_sighup() {
    let dir = copy_shipped();
    let store = PolicyStore::new(PolicyBundle::load(dir.path()).expect("load"));
    let first = store.current().hash().to_string();
    let task = eugate::policy::spawn_reloader(Arc::clone(&store), dir.path().to_path_buf());
    // Let the watcher register before editing.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A bad edit: rejected; the old bundle stays.
    replace(dir.path(), "regions.toml", INVALID_EDIT.0, INVALID_EDIT.1);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(store.current().hash(), first);

    // Fixing it and making a valid change: the new bundle becomes active.
    replace(dir.path(), "regions.toml", INVALID_EDIT.1, INVALID_EDIT.0);
    replace(dir.path(), "tenants.toml", VALID_EDIT.0, VALID_EDIT.1);
    let expected = PolicyBundle::load(dir.path())
        .expect("valid")
        .hash()
        .to_string();
    assert!(
        wait_for(&store, |h| h == expected).await,
        "file change not picked up"
    );

    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_without_file_watch() {
    let dir = copy_shipped();
    let store = PolicyStore::new(PolicyBundle::load(dir.path()).expect("load"));
    let first = store.current().hash().to_string();
    let triggers = ReloadTriggers {
        file_changes: false,
        sighup: true,
    };
    let task = spawn_reloader_with(Arc::clone(&store), dir.path().to_path_buf(), triggers);
    // Let the task install its SIGHUP handler before anything is sent (the default action of
    // SIGHUP would end the test process).
    tokio::time::sleep(Duration::from_millis(500)).await;

    replace(dir.path(), "tenants.toml", VALID_EDIT.0, VALID_EDIT.1);
    let expected = PolicyBundle::load(dir.path())
        .expect("valid")
        .hash()
        .to_string();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        store.current().hash(),
        first,
        "no file watch: nothing changes before SIGHUP"
    );

    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    assert!(
        wait_for(&store, |h| h == expected).await,
        "reload after SIGHUP"
    );
    task.abort();
}
