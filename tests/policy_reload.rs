//! Reload: a valid edit swaps the bundle; an invalid edit or one whose own cases fail is rejected
//! and the previous bundle stays active — via `PolicyStore::reload` and via the running reloader
//! (file watch and SIGHUP).

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::copy_policies;
use eugate::policy::{
    PolicyBundle, PolicyError, PolicyStore, ReloadEvent, ReloadTriggers, spawn_reloader_with,
};

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
    let dir = copy_policies();
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

type Seen = Arc<Mutex<Vec<ReloadEvent>>>;

/// Records every reload attempt the reloader reports: its trigger (the detail's prefix) and
/// outcome, the observable sign that the reloader has acted.
fn observe(store: &PolicyStore) -> Seen {
    let seen: Seen = Arc::default();
    let sink = Arc::clone(&seen);
    store.observe_reloads(Arc::new(move |e: &ReloadEvent| {
        sink.lock().unwrap().push(e.clone())
    }));
    seen
}

/// How many reported reloads satisfy `pred`.
fn count(seen: &Seen, pred: impl Fn(&ReloadEvent) -> bool) -> usize {
    seen.lock().unwrap().iter().filter(|e| pred(e)).count()
}

/// Polls until more than `before` reported reloads satisfy `pred`, for at most `secs`.
async fn reported(
    seen: &Seen,
    before: usize,
    secs: u64,
    pred: impl Fn(&ReloadEvent) -> bool,
) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if count(seen, &pred) > before {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

fn by_file_change(e: &ReloadEvent) -> bool {
    e.detail.starts_with("file change")
}

fn by_sighup(e: &ReloadEvent) -> bool {
    e.detail.starts_with("SIGHUP")
}

/// Whether this process catches SIGHUP (`SigCgt` in /proc/self/status): only then may the test
/// send one, since the default action would end the test process.
fn sighup_caught() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .map(|m| u64::from_str_radix(m.trim(), 16).expect("SigCgt mask"))
        .expect("SigCgt line");
    mask & 1 != 0 // bit 0 is signal 1, SIGHUP
}

fn send_sighup() {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloader_follows_file_changes_and_sighup() {
    let dir = copy_policies();
    let store = PolicyStore::new(PolicyBundle::load(dir.path()).expect("load"));
    let seen = observe(&store);
    let first = store.current().hash().to_string();
    let task = eugate::policy::spawn_reloader(Arc::clone(&store), dir.path().to_path_buf());

    // The watcher is live once a rewrite (same bytes) is reported as a file change; until then,
    // rewrite again (an event before the watch is registered is simply not seen).
    let tenants = dir.path().join("tenants.toml");
    let same = std::fs::read(&tenants).unwrap();
    let start = Instant::now();
    loop {
        std::fs::write(&tenants, &same).unwrap();
        if reported(&seen, 0, 2, by_file_change).await {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the watcher never reported a change"
        );
    }
    assert_eq!(store.current().hash(), first);

    // A bad edit: seen, rejected; the old bundle stays.
    replace(dir.path(), "regions.toml", INVALID_EDIT.0, INVALID_EDIT.1);
    assert!(
        reported(&seen, 0, 20, |e| by_file_change(e) && !e.accepted).await,
        "the bad edit was not reported as rejected: {:?}",
        seen.lock().unwrap()
    );
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
    let dir = copy_policies();
    let store = PolicyStore::new(PolicyBundle::load(dir.path()).expect("load"));
    let seen = observe(&store);
    let first = store.current().hash().to_string();
    let triggers = ReloadTriggers {
        file_changes: false,
        sighup: true,
    };
    let task = spawn_reloader_with(Arc::clone(&store), dir.path().to_path_buf(), triggers);

    // The reloader listens once a SIGHUP is reported back. A handler in the process is not
    // enough (another test's reloader may have installed it before this one listens), so send
    // until one is heard, one at a time.
    let start = Instant::now();
    while !sighup_caught() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "SIGHUP never caught"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    loop {
        send_sighup();
        if reported(&seen, 0, 2, by_sighup).await {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the reloader never heard SIGHUP"
        );
    }
    assert_eq!(store.current().hash(), first, "nothing was edited yet");

    replace(dir.path(), "tenants.toml", VALID_EDIT.0, VALID_EDIT.1);
    let expected = PolicyBundle::load(dir.path())
        .expect("valid")
        .hash()
        .to_string();
    // A negative check, not a synchronisation: a file watcher would report this edit within
    // its 300 ms debounce; give it several times that to show up if it wrongly exists.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        count(&seen, by_file_change),
        0,
        "no file watch: {:?}",
        seen.lock().unwrap()
    );

    let before = count(&seen, |e| by_sighup(e) && e.active == expected);
    send_sighup();
    assert!(
        reported(&seen, before, 20, |e| by_sighup(e) && e.active == expected).await,
        "reload after SIGHUP: {:?}",
        seen.lock().unwrap()
    );
    assert_eq!(store.current().hash(), expected);
    assert_eq!(
        count(&seen, by_file_change),
        0,
        "{:?}",
        seen.lock().unwrap()
    );
    task.abort();
}
