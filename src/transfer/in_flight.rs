//! Live uploads, counted so a shutdown can wait for them, and how they ended, so it can report
//! what happened during its grace period.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use tokio::sync::Notify;

/// Counts live uploads so a shutdown can wait for them, and how they ended, so it can report
/// what happened during its grace period.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    count: AtomicUsize,
    idle: Notify,
    /// Set when a shutdown begins: new uploads are refused, and uploads cut off afterwards
    /// are recorded as aborted by the shutdown rather than by the client.
    draining: AtomicBool,
    committed: AtomicU64,
    aborted: AtomicU64,
}

/// How many uploads were running, and had committed / aborted so far, at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlightSnapshot {
    pub running: usize,
    pub committed: u64,
    pub aborted: u64,
}

impl InFlight {
    pub(super) fn record_commit(&self) {
        self.committed.fetch_add(1, Ordering::SeqCst);
    }

    pub(super) fn record_abort(&self) {
        self.aborted.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    pub(crate) async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }

    pub(crate) fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub(crate) fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    pub(crate) fn snapshot(&self) -> InFlightSnapshot {
        InFlightSnapshot {
            running: self.count(),
            committed: self.committed.load(Ordering::SeqCst),
            aborted: self.aborted.load(Ordering::SeqCst),
        }
    }
}

pub(super) struct InFlightGuard(pub(super) Arc<InFlight>);

impl InFlightGuard {
    pub(super) fn new(f: Arc<InFlight>) -> InFlightGuard {
        f.count.fetch_add(1, Ordering::SeqCst);
        InFlightGuard(f)
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}
