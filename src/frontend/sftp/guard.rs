//! Brute-force defence: per source IP and per user, a delay that doubles with each failure,
//! then a temporary ban. Successes reset the counters. Memory stays bounded: stale entries are
//! evicted and the table never exceeds [`MAX_ENTRIES`].

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::AuthConfig;

pub const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
    banned_until: Option<Instant>,
}

#[derive(Debug)]
struct Table<K> {
    entries: HashMap<K, Entry>,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn banned(&self, k: &K, now: Instant) -> bool {
        self.entries
            .get(k)
            .and_then(|e| e.banned_until)
            .is_some_and(|t| t > now)
    }

    fn fail(&mut self, k: &K, now: Instant, cfg: &AuthConfig) -> u32 {
        if self.entries.len() >= MAX_ENTRIES && !self.entries.contains_key(k) {
            self.evict(now, cfg);
        }
        let e = self.entries.entry(k.clone()).or_insert(Entry {
            failures: 0,
            last: now,
            banned_until: None,
        });
        // A finished ban starts a fresh count.
        if e.banned_until.is_some_and(|t| t <= now) {
            e.failures = 0;
            e.banned_until = None;
        }
        e.failures = e.failures.saturating_add(1);
        e.last = now;
        if e.failures >= cfg.max_failures {
            e.banned_until = Some(now + cfg.ban);
        }
        e.failures
    }

    fn reset(&mut self, k: &K) {
        self.entries.remove(k);
    }

    /// Drops entries idle for longer than a ban; if still full, the oldest half.
    fn evict(&mut self, now: Instant, cfg: &AuthConfig) {
        let horizon = cfg.ban.max(Duration::from_secs(60));
        self.entries.retain(|_, e| {
            e.banned_until.is_some_and(|t| t > now) || now.duration_since(e.last) < horizon
        });
        if self.entries.len() >= MAX_ENTRIES {
            let mut ages: Vec<Instant> = self.entries.values().map(|e| e.last).collect();
            ages.sort_unstable();
            let cutoff = ages[ages.len() / 2];
            self.entries.retain(|_, e| e.last > cutoff);
        }
    }
}

/// What the caller should do about one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead and check the credential.
    Allowed,
    /// Banned: reject without checking.
    Banned,
}

#[derive(Debug)]
pub struct AuthGuard {
    cfg: AuthConfig,
    ips: Mutex<Table<IpAddr>>,
    users: Mutex<Table<String>>,
}

impl AuthGuard {
    pub fn new(cfg: AuthConfig) -> AuthGuard {
        AuthGuard {
            cfg,
            ips: Mutex::new(Table {
                entries: HashMap::new(),
            }),
            users: Mutex::new(Table {
                entries: HashMap::new(),
            }),
        }
    }

    pub fn check(&self, ip: Option<IpAddr>, user: &str, now: Instant) -> Verdict {
        let ip_banned = ip.is_some_and(|ip| lock(&self.ips).banned(&ip, now));
        let user_banned = lock(&self.users).banned(&user.to_string(), now);
        if ip_banned || user_banned {
            Verdict::Banned
        } else {
            Verdict::Allowed
        }
    }

    /// Records a failure; returns how long to stall before answering (base × 2^(n-1), capped).
    pub fn failure(&self, ip: Option<IpAddr>, user: &str, now: Instant) -> Duration {
        let by_ip = ip.map_or(0, |ip| lock(&self.ips).fail(&ip, now, &self.cfg));
        let by_user = lock(&self.users).fail(&user.to_string(), now, &self.cfg);
        self.delay_for(by_ip.max(by_user))
    }

    pub fn success(&self, ip: Option<IpAddr>, user: &str) {
        if let Some(ip) = ip {
            lock(&self.ips).reset(&ip);
        }
        lock(&self.users).reset(&user.to_string());
    }

    fn delay_for(&self, failures: u32) -> Duration {
        let shift = failures.saturating_sub(1).min(20);
        self.cfg
            .base_delay
            .saturating_mul(1u32 << shift)
            .min(self.cfg.max_delay)
    }

    #[cfg(test)]
    fn sizes(&self) -> (usize, usize) {
        (
            lock(&self.ips).entries.len(),
            lock(&self.users).entries.len(),
        )
    }
}

/// A poisoned lock only means another thread panicked mid-update of plain counters; keep going.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> AuthConfig {
        AuthConfig {
            max_failures: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(250),
            ban: Duration::from_secs(60),
        }
    }

    #[test]
    fn delay_grows_then_ban_then_expiry() {
        let g = AuthGuard::new(cfg());
        let ip = Some("192.0.2.1".parse().unwrap());
        let t0 = Instant::now();
        assert_eq!(g.check(ip, "alice", t0), Verdict::Allowed);
        assert_eq!(g.failure(ip, "alice", t0), Duration::from_millis(100));
        assert_eq!(g.failure(ip, "alice", t0), Duration::from_millis(200));
        assert_eq!(
            g.failure(ip, "alice", t0),
            Duration::from_millis(250),
            "capped"
        );
        assert_eq!(g.check(ip, "alice", t0), Verdict::Banned);
        // The ban covers the IP for other users and the user from other IPs.
        assert_eq!(g.check(ip, "bob", t0), Verdict::Banned);
        assert_eq!(
            g.check(Some("192.0.2.2".parse().unwrap()), "alice", t0),
            Verdict::Banned
        );
        assert_eq!(
            g.check(Some("192.0.2.2".parse().unwrap()), "bob", t0),
            Verdict::Allowed
        );
        let later = t0 + Duration::from_secs(61);
        assert_eq!(g.check(ip, "alice", later), Verdict::Allowed);
        assert_eq!(
            g.failure(ip, "alice", later),
            Duration::from_millis(100),
            "fresh count"
        );
    }

    #[test]
    fn success_resets() {
        let g = AuthGuard::new(cfg());
        let ip = Some("192.0.2.1".parse().unwrap());
        let t0 = Instant::now();
        g.failure(ip, "alice", t0);
        g.failure(ip, "alice", t0);
        g.success(ip, "alice");
        assert_eq!(g.failure(ip, "alice", t0), Duration::from_millis(100));
    }

    #[test]
    fn table_stays_bounded() {
        let g = AuthGuard::new(cfg());
        let t0 = Instant::now();
        for i in 0..(MAX_ENTRIES as u32 + 500) {
            let ip = Some(IpAddr::from(i.to_be_bytes()));
            g.failure(
                ip,
                &format!("u{i}"),
                t0 + Duration::from_millis(u64::from(i)),
            );
        }
        let (ips, users) = g.sizes();
        assert!(ips <= MAX_ENTRIES && users <= MAX_ENTRIES, "{ips} {users}");
    }
}
