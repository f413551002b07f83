//! `[server] max_sessions_per_user`: logged-in sessions per user, counted across every
//! protocol, so a user cannot double their share by logging in over SFTP and FTPS at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// The user already holds as many sessions as the config allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{user} already has {limit} sessions open ([server] max_sessions_per_user)")]
pub struct SessionLimitReached {
    pub user: String,
    pub limit: u32,
}

/// The open sessions of every user.
#[derive(Debug)]
pub struct SessionLimits {
    per_user: u32,
    open: Mutex<HashMap<String, u32>>,
}

impl SessionLimits {
    pub fn new(per_user: u32) -> Arc<SessionLimits> {
        Arc::new(SessionLimits {
            per_user,
            open: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, u32>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes one of `user`'s session slots, held until the returned slot is dropped.
    pub fn open(self: &Arc<Self>, user: &str) -> Result<SessionSlot, SessionLimitReached> {
        let mut open = self.lock();
        let n = open.entry(user.to_string()).or_insert(0);
        if *n >= self.per_user {
            let limit = self.per_user;
            if *n == 0 {
                open.remove(user);
            }
            return Err(SessionLimitReached {
                user: user.to_string(),
                limit,
            });
        }
        *n += 1;
        Ok(SessionSlot {
            limits: self.clone(),
            user: user.to_string(),
        })
    }

    /// Logged-in sessions, all users and protocols.
    pub fn total(&self) -> u32 {
        self.lock().values().sum()
    }
}

/// One session slot of one user; given back when dropped.
#[derive(Debug)]
pub struct SessionSlot {
    limits: Arc<SessionLimits>,
    user: String,
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        let mut open = self.limits.lock();
        if let Some(n) = open.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_gets_at_most_the_limit_and_a_dropped_slot_is_given_back() {
        let l = SessionLimits::new(2);
        let a = l.open("alice").unwrap();
        let _b = l.open("alice").unwrap();
        assert_eq!(
            l.open("alice").unwrap_err(),
            SessionLimitReached {
                user: "alice".into(),
                limit: 2
            }
        );
        let _c = l.open("bob").unwrap();
        assert_eq!(l.total(), 3);
        drop(a);
        let _d = l.open("alice").unwrap();
        assert_eq!(l.total(), 3);
    }

    #[test]
    fn counts_return_to_zero_and_leave_no_entries() {
        let l = SessionLimits::new(1);
        for round in 0..3 {
            let slots: Vec<_> = (0..50)
                .filter_map(|i| l.open(&format!("u{}", i % 7)).ok())
                .collect();
            assert_eq!(slots.len(), 7, "round {round}");
            assert!(l.open("u0").is_err());
        }
        assert_eq!(l.total(), 0);
        assert!(l.lock().is_empty());
    }
}
