//! Reloads the keyring on SIGHUP and when its file (or the master key file) changes.
//!
//! `eugate keys rotate` replaces the keyring by renaming a new file over it, which a watch on
//! the file itself would lose (the watch follows the old inode): the directories holding the
//! two files are watched instead, and only events naming one of the two files count — or a
//! name starting with `..`: a Kubernetes secret volume is updated by swapping its `..data`
//! symlink, while `keyring` stays a symlink into it and is itself never touched.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{EventKind, Watcher};

use super::KeyringStore;

/// How long to wait for a burst of file events (write, rename) to settle before reloading.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// Watches the keyring's files and SIGHUP; each trigger reloads (see
/// [`KeyringStore::reload_logged`]). Must be called inside a Tokio runtime. The signal handler
/// and the watch are in place when this returns, so a SIGHUP sent as soon as the gateway
/// listens reloads rather than ending the process (SIGHUP's default action).
pub fn spawn_reloader(store: Arc<KeyringStore>) -> tokio::task::JoinHandle<()> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let watcher = watch(&store, tx);
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!("cannot listen for SIGHUP ({e}); keyring reloads on file change only");
            None
        }
    };
    tokio::spawn(async move {
        loop {
            let trigger = tokio::select! {
                Some(()) = rx.recv() => {
                    tokio::time::sleep(DEBOUNCE).await;
                    while rx.try_recv().is_ok() {}
                    "file change"
                }
                Some(()) = async {
                    match hup.as_mut() {
                        Some(h) => h.recv().await,
                        None => std::future::pending().await,
                    }
                } => "SIGHUP",
                else => break,
            };
            let s = Arc::clone(&store);
            // Reading and decrypting the file is blocking work.
            if let Err(e) = tokio::task::spawn_blocking(move || s.reload_logged(trigger)).await {
                tracing::error!("keyring reload task failed: {e}");
            }
        }
        drop(watcher);
    })
}

/// A watcher on the directories of the keyring and master key files that sends on `tx` for
/// events naming either file; `None` (logged) if it cannot be set up.
fn watch(
    store: &KeyringStore,
    tx: tokio::sync::mpsc::UnboundedSender<()>,
) -> Option<notify::RecommendedWatcher> {
    let mut files = vec![store.keyring_path()];
    if let super::MasterKey::File(master) = store.master() {
        files.push(master);
    }
    let names: BTreeSet<OsString> = files
        .iter()
        .filter_map(|p| p.file_name().map(OsString::from))
        .collect();
    let dirs: BTreeSet<PathBuf> = files.iter().map(|p| parent(p)).collect();
    let handler = move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else { return };
        if counts(&ev.kind)
            && ev.paths.iter().any(|p| {
                p.file_name()
                    .is_some_and(|n| names.contains(n) || swapped_volume(n))
            })
        {
            let _ = tx.send(());
        }
    };
    let mut w = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(
                "cannot create a file watcher for the keyring ({e}); reload on SIGHUP only"
            );
            return None;
        }
    };
    for d in &dirs {
        if let Err(e) = w.watch(d, notify::RecursiveMode::NonRecursive) {
            tracing::error!(dir = %d.display(), "cannot watch the keyring's directory ({e}); reload on SIGHUP only");
        }
    }
    Some(w)
}

/// Writes, creations and renames onto the file; not reads, and not a removal (a keyring being
/// replaced by hand is briefly absent, and the write that follows is the change).
fn counts(kind: &EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode};
    matches!(
        kind,
        EventKind::Create(_)
            | EventKind::Modify(_)
            | EventKind::Access(AccessKind::Close(AccessMode::Write))
    )
}

/// Kubernetes' atomic writer (`..data`, `..2026_12_03_…`).
fn swapped_volume(name: &std::ffi::OsStr) -> bool {
    name.as_encoded_bytes().starts_with(b"..")
}

fn parent(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
