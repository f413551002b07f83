//! Which TCP connections the gateway takes: at most `max_connections` in all, and of those at
//! most `max_unauthenticated` still logging in (OpenSSH `MaxStartups`), at most
//! `max_unauthenticated_per_source` from one IP. A connection counts as logging in from accept
//! until its login succeeds; the accept loop also ends it at the login grace time.
//!
//! When the logging-in slots are all taken, a newcomer from a source that holds fewer of them
//! than the heaviest source displaces that source's oldest attempt. So one address (or a few)
//! flooding the port cannot keep everyone else from logging in; the per-source cap already
//! keeps a single address to a few slots.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::killswitch::KillSwitch;
use crate::config::LimitsConfig;

/// Why a connection was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{limit} connections are open ([limits] max_connections)")]
    Connections { limit: u32 },
    #[error(
        "{limit} connections from {ip} are still logging in ([limits] max_unauthenticated_per_source)"
    )]
    Source { ip: IpAddr, limit: u32 },
    #[error(
        "{limit} connections are still logging in ([limits] max_unauthenticated), spread over sources no heavier than this one"
    )]
    Unauthenticated { limit: u32 },
}

#[derive(Debug, Clone, Copy)]
struct Caps {
    connections: u32,
    unauthenticated: u32,
    per_source: u32,
}

struct Attempt {
    id: u64,
    kill: Arc<KillSwitch>,
}

#[derive(Default)]
struct State {
    connections: u32,
    unauthenticated: u32,
    /// Connections still logging in, per source, oldest first.
    pending: HashMap<IpAddr, VecDeque<Attempt>>,
    next_id: u64,
}

impl State {
    fn remove_pending(&mut self, ip: IpAddr, id: u64) -> bool {
        let Some(q) = self.pending.get_mut(&ip) else {
            return false;
        };
        let Some(at) = q.iter().position(|a| a.id == id) else {
            return false;
        };
        q.remove(at);
        if q.is_empty() {
            self.pending.remove(&ip);
        }
        self.unauthenticated -= 1;
        true
    }

    /// The source holding the most logging-in slots, if it holds more than `than` + 1.
    fn heavier_source(&self, than: usize) -> Option<IpAddr> {
        let (ip, q) = self.pending.iter().max_by_key(|(_, q)| q.len())?;
        (q.len() > than + 1).then_some(*ip)
    }
}

pub struct Admission {
    caps: Caps,
    state: Mutex<State>,
}

impl Admission {
    pub fn new(limits: &LimitsConfig) -> Arc<Admission> {
        Arc::new(Admission {
            caps: Caps {
                connections: limits.max_connections,
                unauthenticated: limits.max_unauthenticated,
                per_source: limits.max_unauthenticated_per_source,
            },
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes a connection from `ip` whose session `kill` ends (used if it is displaced later),
    /// or says why not.
    pub fn enter(self: &Arc<Self>, ip: IpAddr, kill: Arc<KillSwitch>) -> Result<Entry, Refusal> {
        let mut s = self.lock();
        if s.connections >= self.caps.connections {
            return Err(Refusal::Connections {
                limit: self.caps.connections,
            });
        }
        let mine = s.pending.get(&ip).map_or(0, VecDeque::len);
        if mine >= self.caps.per_source as usize {
            return Err(Refusal::Source {
                ip,
                limit: self.caps.per_source,
            });
        }
        if s.unauthenticated >= self.caps.unauthenticated {
            let Some(victim) = s.heavier_source(mine) else {
                return Err(Refusal::Unauthenticated {
                    limit: self.caps.unauthenticated,
                });
            };
            if let Some(q) = s.pending.get_mut(&victim)
                && let Some(oldest) = q.pop_front()
            {
                oldest
                    .kill
                    .kill("displaced: too many connections logging in from its address");
                if q.is_empty() {
                    s.pending.remove(&victim);
                }
                s.unauthenticated -= 1;
                tracing::info!(source = %victim, newcomer = %ip, "pre-login slots full: displaced the oldest attempt of the heaviest source");
            }
        }
        let id = s.next_id;
        s.next_id += 1;
        s.connections += 1;
        s.unauthenticated += 1;
        s.pending
            .entry(ip)
            .or_default()
            .push_back(Attempt { id, kill });
        Ok(Entry {
            admission: self.clone(),
            ip,
            id,
            authenticated: AtomicBool::new(false),
        })
    }

    /// (connections, of which logging in), for tests and metrics.
    pub fn counts(&self) -> (u32, u32) {
        let s = self.lock();
        (s.connections, s.unauthenticated)
    }
}

/// One admitted connection; gives its slots back when dropped.
pub struct Entry {
    admission: Arc<Admission>,
    ip: IpAddr,
    id: u64,
    authenticated: AtomicBool,
}

impl Entry {
    /// The login succeeded: the connection no longer holds a logging-in slot.
    pub fn authenticated(&self) {
        if !self.authenticated.swap(true, Ordering::SeqCst) {
            self.admission.lock().remove_pending(self.ip, self.id);
        }
    }

    pub fn is_authenticated(&self) -> bool {
        self.authenticated.load(Ordering::SeqCst)
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        let mut s = self.admission.lock();
        s.connections -= 1;
        if !self.is_authenticated() {
            // Absent if it was displaced.
            s.remove_pending(self.ip, self.id);
        }
    }
}

/// Logs refused connections at most once per interval, with how many there were: a flood of
/// connections must not become a flood of log lines.
#[derive(Default)]
pub struct RefusalLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl RefusalLog {
    const INTERVAL: Duration = Duration::from_secs(10);

    pub fn note(&mut self, peer: SocketAddr, refusal: &Refusal, (open, logging_in): (u32, u32)) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Self::INTERVAL)
        {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(
            ?peer,
            also_refused_since_last_report = self.suppressed,
            open,
            logging_in,
            "connection refused: {refusal}"
        );
        self.last = Some(now);
        self.suppressed = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: u32, unauth: u32, per_source: u32) -> LimitsConfig {
        LimitsConfig {
            max_connections: total,
            max_unauthenticated: unauth,
            max_unauthenticated_per_source: per_source,
            ..LimitsConfig::default()
        }
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, n])
    }

    #[test]
    fn per_source_cap_refuses_the_next_attempt_and_a_login_frees_its_slot() {
        let a = Admission::new(&limits(100, 100, 2));
        let e1 = a.enter(ip(1), KillSwitch::new()).unwrap();
        let _e2 = a.enter(ip(1), KillSwitch::new()).unwrap();
        assert_eq!(
            a.enter(ip(1), KillSwitch::new()).err(),
            Some(Refusal::Source {
                ip: ip(1),
                limit: 2
            })
        );
        assert!(
            a.enter(ip(2), KillSwitch::new()).is_ok(),
            "other sources unaffected"
        );
        e1.authenticated();
        let _e3 = a.enter(ip(1), KillSwitch::new()).unwrap();
        assert_eq!(a.counts(), (3, 2));
    }

    #[test]
    fn total_cap_counts_authenticated_connections_too() {
        let a = Admission::new(&limits(2, 10, 10));
        let e1 = a.enter(ip(1), KillSwitch::new()).unwrap();
        e1.authenticated();
        let _e2 = a.enter(ip(2), KillSwitch::new()).unwrap();
        assert_eq!(
            a.enter(ip(3), KillSwitch::new()).err(),
            Some(Refusal::Connections { limit: 2 })
        );
        drop(e1);
        assert!(a.enter(ip(3), KillSwitch::new()).is_ok());
    }

    #[test]
    fn a_newcomer_displaces_the_oldest_attempt_of_the_heaviest_source() {
        let a = Admission::new(&limits(100, 4, 3));
        let kills: Vec<_> = (0..3).map(|_| KillSwitch::new()).collect();
        let flood: Vec<_> = kills
            .iter()
            .map(|k| a.enter(ip(9), k.clone()).unwrap())
            .collect();
        let _other = a.enter(ip(8), KillSwitch::new()).unwrap();
        // Full (4 of 4). A new source holds 0 < 3 - 1: it takes the flood's oldest slot.
        let newcomer = a.enter(ip(1), KillSwitch::new()).unwrap();
        assert!(kills[0].is_killed());
        assert!(!kills[1].is_killed());
        assert_eq!(a.counts(), (5, 4));
        // The displaced connection ends later; its drop must not free a second slot.
        drop(flood);
        assert_eq!(a.counts(), (2, 2));
        drop(newcomer);
        assert_eq!(a.counts(), (1, 1));
    }

    #[test]
    fn sources_of_equal_weight_are_not_displaced() {
        let a = Admission::new(&limits(100, 2, 5));
        let k1 = KillSwitch::new();
        let _e1 = a.enter(ip(1), k1.clone()).unwrap();
        let _e2 = a.enter(ip(2), KillSwitch::new()).unwrap();
        assert_eq!(
            a.enter(ip(3), KillSwitch::new()).err(),
            Some(Refusal::Unauthenticated { limit: 2 })
        );
        // ip(1) already holds one: taking another from ip(2) would not be fairer.
        assert!(a.enter(ip(1), KillSwitch::new()).is_err());
        assert!(!k1.is_killed());
    }

    #[test]
    fn counts_return_to_zero_whatever_the_order_of_events() {
        let a = Admission::new(&limits(8, 4, 2));
        let mut held = Vec::new();
        for n in 0..40u8 {
            match a.enter(ip(n % 5), KillSwitch::new()) {
                Ok(e) => {
                    if n % 3 == 0 {
                        e.authenticated();
                    }
                    held.push(e);
                }
                Err(_) => {
                    if !held.is_empty() {
                        held.remove((n as usize * 7) % held.len());
                    }
                }
            }
            let (c, u) = a.counts();
            assert!(c <= 8 && u <= 4 && u <= c, "{c} {u}");
        }
        held.clear();
        assert_eq!(a.counts(), (0, 0));
    }
}
