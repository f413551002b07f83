//! The keyring in force, swapped whole on reload, and what the last reload attempt did.
//!
//! Readers take an `Arc` of the loaded keyring for the moment they need a key: an upload copies
//! its tenant's active key when it opens and seals with that to its end, a download copies the
//! key its object names. A reload therefore never changes a running transfer, and an old
//! keyring (its keys in `Zeroizing` buffers) is wiped when its last reader lets go.
//!
//! A plain `RwLock<Arc<_>>`, as the policy store has: a read is one `Arc` clone, reloads are
//! rare, so arc-swap's lock-free reads would buy nothing worth a dependency.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use subtle::ConstantTimeEq;

use super::{KeyError, Keyring, MasterKey};

/// A keyring as loaded, with its version and when it became the one in force.
pub struct LoadedKeyring {
    keyring: Keyring,
    version: String,
    loaded_at: SystemTime,
}

impl std::fmt::Debug for LoadedKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedKeyring")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl LoadedKeyring {
    fn new(keyring: Keyring) -> LoadedKeyring {
        LoadedKeyring {
            version: keyring.version(),
            keyring,
            loaded_at: SystemTime::now(),
        }
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// [`Keyring::version`], computed once at load.
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn loaded_at(&self) -> SystemTime {
        self.loaded_at
    }
}

/// What a reload attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// Other keys are in force now.
    Changed,
    /// The file holds the keys already in force.
    Unchanged,
    /// The file was refused; the keys in force stay.
    Failed,
}

impl ReloadOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ReloadOutcome::Changed => "changed",
            ReloadOutcome::Unchanged => "unchanged",
            ReloadOutcome::Failed => "failed",
        }
    }
}

/// One reload attempt, for the audit log and the metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyringReloadEvent {
    pub outcome: ReloadOutcome,
    /// What started it ("SIGHUP", "file change").
    pub trigger: &'static str,
    /// The version in force before the attempt.
    pub previous: String,
    /// The version in force after it.
    pub active: String,
    /// On failure, why (the precise error).
    pub error: Option<String>,
}

/// Called after every reload attempt.
pub type KeyringObserver = Arc<dyn Fn(&KeyringReloadEvent) + Send + Sync>;

/// The last refused reload, until a later one succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadFailure {
    pub at: SystemTime,
    pub error: String,
}

/// Holds the keyring in force and reloads it from its files.
pub struct KeyringStore {
    keyring_path: PathBuf,
    master: MasterKey,
    current: RwLock<Arc<LoadedKeyring>>,
    last_failure: Mutex<Option<ReloadFailure>>,
    failures: AtomicU64,
    observer: RwLock<Option<KeyringObserver>>,
}

impl std::fmt::Debug for KeyringStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyringStore")
            .field("keyring", &self.keyring_path)
            .field("version", &self.current().version)
            .finish_non_exhaustive()
    }
}

impl KeyringStore {
    /// Opens the keyring (see [`Keyring::open`]); later reloads read the same two files.
    pub fn open(keyring: &Path, master_key: &Path) -> Result<Arc<KeyringStore>, KeyError> {
        let loaded = Keyring::open(keyring, master_key)?;
        Ok(KeyringStore::loaded(
            keyring,
            MasterKey::File(master_key.to_path_buf()),
            loaded,
        ))
    }

    /// Opens the keyring with `master` (a provider is asked for the keyring key once).
    pub async fn open_with(
        keyring: &Path,
        master: MasterKey,
    ) -> Result<Arc<KeyringStore>, KeyError> {
        let loaded = master.open(keyring).await?;
        Ok(KeyringStore::loaded(keyring, master, loaded))
    }

    fn loaded(keyring: &Path, master: MasterKey, loaded: Keyring) -> Arc<KeyringStore> {
        Arc::new(KeyringStore {
            keyring_path: keyring.to_path_buf(),
            master,
            current: RwLock::new(Arc::new(LoadedKeyring::new(loaded))),
            last_failure: Mutex::new(None),
            failures: AtomicU64::new(0),
            observer: RwLock::new(None),
        })
    }

    pub fn keyring_path(&self) -> &Path {
        &self.keyring_path
    }

    /// What seals the keyring.
    pub fn master(&self) -> &MasterKey {
        &self.master
    }

    /// The keyring in force now. Hold it only as long as one lookup needs it.
    pub fn current(&self) -> Arc<LoadedKeyring> {
        // A poisoned lock only means a writer panicked around a plain assignment; the Arc
        // inside is still a whole keyring.
        match self.current.read() {
            Ok(g) => Arc::clone(&g),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    /// The last refused reload, unless a later reload succeeded.
    pub fn last_failure(&self) -> Option<ReloadFailure> {
        match self.last_failure.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Refused reloads since start.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Registers who hears about reload attempts (the gateway audits and counts them).
    pub fn observe_reloads(&self, observer: KeyringObserver) {
        match self.observer.write() {
            Ok(mut g) => *g = Some(observer),
            Err(p) => *p.into_inner() = Some(observer),
        }
    }

    /// Reads the files again and puts the keyring in force if it opens and keeps every key
    /// the loaded one has (or records it as shredded). On any error the loaded keyring stays.
    ///
    /// With a provider this blocks on its unwrap: call it on a blocking thread inside a Tokio
    /// runtime (the reloader does).
    pub fn reload(&self) -> Result<ReloadOutcome, KeyError> {
        let new = match &self.master {
            MasterKey::File(master) => Keyring::open(&self.keyring_path, master)?,
            MasterKey::Provider(_) => {
                let handle = tokio::runtime::Handle::try_current().map_err(|_| {
                    KeyError::NoProvider(
                        "a provider-sealed keyring reloads only inside the gateway's runtime"
                            .into(),
                    )
                })?;
                handle.block_on(self.master.open(&self.keyring_path))?
            }
        };
        let new = Arc::new(LoadedKeyring::new(new));
        let mut guard = match self.current.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if guard.version == new.version {
            return Ok(ReloadOutcome::Unchanged);
        }
        keeps_every_key(&guard.keyring, &new.keyring)?;
        // The old keyring is dropped (and wiped) when the last reader's Arc goes.
        *guard = new;
        Ok(ReloadOutcome::Changed)
    }

    /// [`KeyringStore::reload`], logged, remembered for `/readyz`, and told to the observer.
    pub fn reload_logged(&self, trigger: &'static str) -> KeyringReloadEvent {
        let previous = self.current().version.clone();
        let result = self.reload();
        let active = self.current().version.clone();
        let (outcome, error) = match result {
            Ok(outcome) => {
                self.set_failure(None);
                match outcome {
                    ReloadOutcome::Changed => tracing::info!(
                        trigger,
                        old = %previous,
                        new = %active,
                        "keyring reloaded: new keys in force"
                    ),
                    _ => tracing::debug!(trigger, version = %active, "keyring unchanged"),
                }
                (outcome, None)
            }
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                let error = e.to_string();
                tracing::error!(
                    trigger,
                    keyring = %self.keyring_path.display(),
                    version = %active,
                    "keyring reload refused, the loaded keyring stays in force: {error}"
                );
                self.set_failure(Some(ReloadFailure {
                    at: SystemTime::now(),
                    error: error.clone(),
                }));
                (ReloadOutcome::Failed, Some(error))
            }
        };
        let event = KeyringReloadEvent {
            outcome,
            trigger,
            previous,
            active,
            error,
        };
        let observer = match self.observer.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        if let Some(o) = observer {
            o(&event);
        }
        event
    }

    fn set_failure(&self, failure: Option<ReloadFailure>) {
        match self.last_failure.lock() {
            Ok(mut g) => *g = failure,
            Err(p) => *p.into_inner() = failure,
        }
    }
}

/// Every key version of `old` is in `new` with the same bytes, unless `new` records its key id
/// as shredded: otherwise objects sealed under it (perhaps seconds ago) would stop opening.
fn keeps_every_key(old: &Keyring, new: &Keyring) -> Result<(), KeyError> {
    for info in old.list() {
        let shredded = new
            .shredded()
            .iter()
            .any(|r| r.tenant == info.tenant && r.key_id == info.key_id);
        if shredded {
            continue;
        }
        for version in info.versions {
            let at = || (info.tenant.clone(), info.key_id.clone());
            let Ok(was) = old.kek(&info.tenant, &info.key_id, version) else {
                continue;
            };
            match new.kek(&info.tenant, &info.key_id, version) {
                Ok(now) if bool::from(now[..].ct_eq(&was[..])) => {}
                Ok(_) => {
                    let (tenant, key_id) = at();
                    return Err(KeyError::ReloadChangesKey {
                        tenant,
                        key_id,
                        version,
                    });
                }
                Err(_) => {
                    let (tenant, key_id) = at();
                    return Err(KeyError::ReloadDropsKey {
                        tenant,
                        key_id,
                        version,
                    });
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
