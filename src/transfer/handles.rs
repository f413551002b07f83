//! Open handles (uploads, downloads, directory listings) counted per user across all of their
//! sessions, and process-wide. Each open handle holds a [`HandlePermit`]; dropping it (CLOSE,
//! or the session going away) gives the slot back, so a dropped session can never leak one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::TransferError;
use crate::config::LimitsConfig;

#[derive(Debug, Default)]
struct Counts {
    per_user: HashMap<String, u32>,
    total: u32,
}

#[derive(Debug)]
struct Inner {
    counts: Mutex<Counts>,
    max_per_user: u32,
    max_total: u32,
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        // Counts stay consistent whatever panicked while holding the lock.
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The shared counters; cloning shares them.
#[derive(Debug, Clone)]
pub struct HandleLimits {
    inner: Arc<Inner>,
}

impl HandleLimits {
    pub fn new(limits: &LimitsConfig) -> HandleLimits {
        HandleLimits {
            inner: Arc::new(Inner {
                counts: Mutex::new(Counts::default()),
                max_per_user: limits.max_handles_per_user,
                max_total: limits.max_handles_total,
            }),
        }
    }

    /// A slot for one more handle of `user`, or a refusal naming the limit reached.
    pub fn acquire(&self, user: &str) -> Result<HandlePermit, TransferError> {
        let mut c = self.inner.lock();
        let mine = c.per_user.get(user).copied().unwrap_or(0);
        if mine >= self.inner.max_per_user {
            tracing::warn!(
                user,
                limit = self.inner.max_per_user,
                "per-user handle limit reached; open refused"
            );
            return Err(TransferError::Failure(format!(
                "too many open files: user `{user}` has {mine} open across all sessions, the limit (limits.max_handles_per_user); close some first"
            )));
        }
        if c.total >= self.inner.max_total {
            tracing::warn!(
                limit = self.inner.max_total,
                "gateway handle limit reached; open refused"
            );
            return Err(TransferError::Failure(format!(
                "the gateway has {} files open, its limit (limits.max_handles_total); try again later",
                c.total
            )));
        }
        *c.per_user.entry(user.to_string()).or_insert(0) += 1;
        c.total += 1;
        Ok(HandlePermit {
            inner: self.inner.clone(),
            user: user.to_string(),
        })
    }

    /// Handles open now: of `user`, and in all.
    pub fn open(&self, user: &str) -> (u32, u32) {
        let c = self.inner.lock();
        (c.per_user.get(user).copied().unwrap_or(0), c.total)
    }
}

/// One open handle's slot; given back when dropped.
#[derive(Debug)]
pub struct HandlePermit {
    inner: Arc<Inner>,
    user: String,
}

impl Drop for HandlePermit {
    fn drop(&mut self) {
        let mut c = self.inner.lock();
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_user.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_user.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_user: u32, total: u32) -> HandleLimits {
        HandleLimits::new(&LimitsConfig {
            max_handles_per_user: per_user,
            max_handles_total: total,
            ..LimitsConfig::default()
        })
    }

    #[test]
    fn per_user_cap_counts_every_session_and_permits_come_back() {
        let l = limits(3, 100);
        // Two "sessions" of alice: permits held in two places, counted together.
        let s1: Vec<_> = (0..2).map(|_| l.acquire("alice").unwrap()).collect();
        let s2 = l.acquire("alice").unwrap();
        let e = l.acquire("alice").unwrap_err();
        assert!(e.to_string().contains("limits.max_handles_per_user"), "{e}");
        assert!(e.to_string().contains("`alice` has 3 open"), "{e}");
        // Others are not affected.
        let bob = l.acquire("bob").unwrap();
        assert_eq!(l.open("alice"), (3, 4));
        // A session that ends drops its permits.
        drop(s1);
        assert_eq!(l.open("alice"), (1, 2));
        let again = l.acquire("alice").unwrap();
        drop((s2, again, bob));
        assert_eq!(l.open("alice"), (0, 0));
    }

    #[test]
    fn the_process_wide_cap_binds_across_users() {
        let l = limits(3, 4);
        let a: Vec<_> = (0..3).map(|_| l.acquire("alice").unwrap()).collect();
        let b = l.acquire("bob").unwrap();
        let e = l.acquire("carol").unwrap_err();
        assert!(e.to_string().contains("limits.max_handles_total"), "{e}");
        drop(b);
        let _c = l.acquire("carol").unwrap();
        drop(a);
        assert_eq!(l.open("alice"), (0, 1));
    }
}
