//! `[server] max_sessions_per_user`: logged-in sessions per user, counted across every
//! protocol, so a user cannot double their share by logging in over SFTP and FTPS at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

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
        self.open_as(SessionInfo {
            user: user.to_string(),
            ..SessionInfo::default()
        })
    }

    /// As [`SessionLimits::open`], for the session `info` describes: its start and end are
    /// logged as `event = "session"` with stable fields, for log shippers.
    pub fn open_as(
        self: &Arc<Self>,
        info: SessionInfo,
    ) -> Result<SessionSlot, SessionLimitReached> {
        let user = info.user.as_str();
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
        drop(open);
        if !info.protocol.is_empty() {
            tracing::info!(
                event = "session",
                outcome = "started",
                protocol = info.protocol,
                tenant = %info.tenant,
                user = %info.user,
                source = %SourceField(info.source),
            );
        }
        Ok(SessionSlot {
            limits: self.clone(),
            info,
            started: Instant::now(),
        })
    }

    /// Logged-in sessions, all users and protocols.
    pub fn total(&self) -> u32 {
        self.lock().values().sum()
    }
}

/// Who holds a session: what its start and end events name.
#[derive(Debug, Default, Clone)]
pub struct SessionInfo {
    pub user: String,
    pub tenant: String,
    /// "sftp", "ftps"; empty: no session events (unit tests, internal callers).
    pub protocol: &'static str,
    /// The client's address (from the PROXY header behind a balancer).
    pub source: Option<IpAddr>,
}

/// A session's source as a log field: the address, or "unknown".
struct SourceField(Option<IpAddr>);

impl std::fmt::Display for SourceField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => ip.fmt(f),
            None => f.write_str("unknown"),
        }
    }
}

/// One session slot of one user; given back when dropped.
#[derive(Debug)]
pub struct SessionSlot {
    limits: Arc<SessionLimits>,
    info: SessionInfo,
    started: Instant,
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        let user = &self.info.user;
        {
            let mut open = self.limits.lock();
            if let Some(n) = open.get_mut(user) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    open.remove(user);
                }
            }
        }
        if !self.info.protocol.is_empty() {
            tracing::info!(
                event = "session",
                outcome = "ended",
                protocol = self.info.protocol,
                tenant = %self.info.tenant,
                user = %user,
                source = %SourceField(self.info.source),
                duration_ms = self.started.elapsed().as_millis() as u64,
            );
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
