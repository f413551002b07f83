//! The current bundle, shared and swapped atomically, and the reloader that watches the policy
//! directory (notify) and SIGHUP.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::{Clock, Day, EXPIRY_WARNING_DAYS, PolicyBundle, PolicyError, SystemClock};

/// How long to wait for an editor's burst of file events to settle before reloading.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// What a reload attempt did, for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadEvent {
    /// Whether the bundle on disk became (or already was) the active one.
    pub accepted: bool,
    /// The active bundle's hash after the attempt.
    pub active: String,
    pub detail: String,
}

/// Called after every reload attempt triggered by the reloader.
pub type ReloadObserver = Arc<dyn Fn(&ReloadEvent) + Send + Sync>;

/// Holds the active bundle. Readers get an `Arc` and keep deciding with it even while a reload
/// swaps in a new one.
pub struct PolicyStore {
    current: RwLock<Arc<PolicyBundle>>,
    observer: RwLock<Option<ReloadObserver>>,
    /// Where decisions read the day from: dated facts count as of it.
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for PolicyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyStore")
            .field("active", &self.current().hash())
            .finish()
    }
}

impl PolicyStore {
    pub fn new(bundle: PolicyBundle) -> Arc<PolicyStore> {
        PolicyStore::with_clock(bundle, Arc::new(SystemClock))
    }

    /// A store whose decisions are taken as of the day `clock` says.
    pub fn with_clock(bundle: PolicyBundle, clock: Arc<dyn Clock>) -> Arc<PolicyStore> {
        warn_dated(&bundle, clock.today());
        Arc::new(PolicyStore {
            current: RwLock::new(Arc::new(bundle)),
            observer: RwLock::new(None),
            clock,
        })
    }

    /// The day decisions are taken as of.
    pub fn today(&self) -> Day {
        self.clock.today()
    }

    /// Registers who hears about reloads (the gateway writes them to the audit log): which
    /// rules were in force when is evidence a compliance officer needs.
    pub fn observe_reloads(&self, observer: ReloadObserver) {
        match self.observer.write() {
            Ok(mut g) => *g = Some(observer),
            Err(p) => *p.into_inner() = Some(observer),
        }
    }

    fn notify(&self, event: ReloadEvent) {
        let observer = match self.observer.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        if let Some(o) = observer {
            o(&event);
        }
    }

    pub fn current(&self) -> Arc<PolicyBundle> {
        // A poisoned lock only means a writer panicked between two plain assignments; the Arc
        // inside is still a complete bundle.
        match self.current.read() {
            Ok(g) => Arc::clone(&g),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    /// Loads, validates and runs the directory's own tests; swaps only if all pass.
    pub fn reload(&self, dir: &Path) -> Result<(), PolicyError> {
        let bundle = PolicyBundle::load(dir)?;
        let report = bundle.run_tests_at(self.today());
        if !report.passed() {
            return Err(PolicyError::TestsFailed(report.failures));
        }
        if report.total == 0 {
            tracing::warn!(dir = %dir.display(), "the new policy bundle has no tests (tests/*.toml): nothing shows that its rules decide as intended");
        }
        let new = Arc::new(bundle);
        let old_hash = {
            let mut guard = match self.current.write() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            let old = guard.hash().to_string();
            *guard = Arc::clone(&new);
            old
        };
        if old_hash != new.hash() {
            tracing::info!(old = %old_hash, new = %new.hash(), rules = new.rule_count(), cases = report.total, "policy bundle activated");
            warn_dated(&new, self.today());
        }
        Ok(())
    }
}

/// Logs the dated facts that no longer count or stop counting soon, so that operators see them
/// where they see every other warning.
fn warn_dated(bundle: &PolicyBundle, today: Day) {
    for w in bundle.dated_warnings(today, EXPIRY_WARNING_DAYS) {
        tracing::warn!(file = w.file, today = %today, "policy fact: {}", w.message);
    }
}

fn reload_logged(store: &PolicyStore, dir: &Path, trigger: &str) {
    let before = store.current().hash().to_string();
    let event = match store.reload(dir) {
        Ok(()) => {
            tracing::debug!(trigger, dir = %dir.display(), "policy reload checked");
            let active = store.current().hash().to_string();
            ReloadEvent {
                detail: if active == before {
                    format!("{trigger}: policies unchanged")
                } else {
                    format!("{trigger}: replaced {before}")
                },
                accepted: true,
                active,
            }
        }
        Err(e) => {
            tracing::error!(
                trigger,
                dir = %dir.display(),
                active = %before,
                "policy reload rejected, previous bundle stays active: {e}"
            );
            ReloadEvent {
                accepted: false,
                active: before,
                detail: format!("{trigger}: rejected, previous bundle stays active: {e}")
                    .chars()
                    .take(2000)
                    .collect(),
            }
        }
    };
    store.notify(event);
}

/// What makes the reloader reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReloadTriggers {
    /// Any change under the policy directory (debounced).
    pub file_changes: bool,
    /// SIGHUP to the process.
    pub sighup: bool,
}

/// Watches `dir` (notify) and SIGHUP; reloads; logs rejections; keeps the old bundle on failure.
/// Must be called inside a Tokio runtime.
pub fn spawn_reloader(store: Arc<PolicyStore>, dir: PathBuf) -> tokio::task::JoinHandle<()> {
    spawn_reloader_with(
        store,
        dir,
        ReloadTriggers {
            file_changes: true,
            sighup: true,
        },
    )
}

/// [`spawn_reloader`] with a choice of triggers.
pub fn spawn_reloader_with(
    store: Arc<PolicyStore>,
    dir: PathBuf,
    triggers: ReloadTriggers,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let watcher = if !triggers.file_changes {
            drop(tx);
            None
        } else {
            use notify::Watcher;
            let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                if let Ok(ev) = res
                    && !matches!(ev.kind, notify::EventKind::Access(_))
                {
                    let _ = tx.send(());
                }
            });
            match &mut w {
                Ok(w) => {
                    if let Err(e) = w.watch(&dir, notify::RecursiveMode::Recursive) {
                        tracing::error!(dir = %dir.display(), "cannot watch policy directory ({e}); reload on SIGHUP only");
                    }
                }
                Err(e) => {
                    tracing::error!("cannot create file watcher ({e}); reload on SIGHUP only")
                }
            }
            w.ok()
        };
        let hup = if triggers.sighup {
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).map(Some)
        } else {
            Ok(None)
        };
        let mut hup = match hup {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("cannot listen for SIGHUP ({e}); reload on file change only");
                None
            }
        };
        loop {
            let trigger = tokio::select! {
                Some(()) = rx.recv() => {
                    // Debounce: wait for the burst to end, then drop the queued events.
                    tokio::time::sleep(DEBOUNCE).await;
                    while rx.try_recv().is_ok() {}
                    "file change"
                }
                Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => "SIGHUP",
                else => break,
            };
            let (s, d) = (Arc::clone(&store), dir.clone());
            if let Err(e) =
                tokio::task::spawn_blocking(move || reload_logged(&s, &d, trigger)).await
            {
                tracing::error!("policy reload task failed: {e}");
            }
        }
        drop(watcher);
    })
}
