//! Brute-force defence. Failures are counted per (source, user name) pair, per source and per
//! user name:
//! - a pair reaching `max_failures`, or a source reaching `max_failures_per_source`, is banned
//!   for `ban`: every method from it is refused unheard;
//! - a successful login clears only its own pair, so that logging in as oneself between guesses
//!   at other names does not wipe the source's count;
//! - the per-name count never bans (anyone can type a name): it throttles password attempts for
//!   that name with a growing, capped delay, and never touches key logins.
//!
//! Each table holds at most `max_tracked` entries. Room is made by dropping forgotten entries,
//! then the oldest un-banned ones; an active ban is never dropped. While a table is full of
//! active bans, sources it does not know are refused (fail closed) rather than tracked nowhere.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::AuthConfig;

/// How often, at most, the "full of bans" warning is logged.
const FULL_WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// How a client tries to authenticate; only passwords can be guessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Password,
    /// A public key (and, should the gateway accept them, an OpenSSH certificate).
    Key,
}

impl Method {
    /// The SSH method name, as the audit log records it.
    pub fn name(self) -> &'static str {
        match self {
            Method::Password => "password",
            Method::Key => "publickey",
        }
    }
}

/// How many bans are in force ([`AuthGuard::active_bans`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveBans {
    pub sources: usize,
    pub pairs: usize,
}

/// What the caller should do about one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead and check the credential.
    Allowed,
    /// Check the password only after this pause: the user name is being guessed at.
    Throttled(Duration),
    /// Refuse unheard: the source, or this user name from this source, is banned.
    Banned,
    /// Refuse unheard: a table is full of active bans and does not know this source.
    Full,
}

/// A source: an IPv4 address, or an IPv6 /64 (one subscriber's usual allocation, so that one
/// client cannot fill the tables from its own prefix).
type Source = IpAddr;
/// A user name, fixed-size whatever its length.
type Name = [u8; 16];

fn source_of(ip: IpAddr) -> Source {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

fn name_of(user: &str) -> Name {
    let mut n = [0u8; 16];
    n.copy_from_slice(&blake3::hash(user.as_bytes()).as_bytes()[..16]);
    n
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
    banned_until: Option<Instant>,
}

impl Entry {
    fn banned(&self, now: Instant) -> bool {
        self.banned_until.is_some_and(|t| t > now)
    }

    /// Failures still remembered: after a ban ends, or `forget` without a failure, the count
    /// starts afresh.
    fn live(&self, now: Instant, forget: Duration) -> u32 {
        let ended = self.banned_until.is_some_and(|t| t <= now);
        if ended || now.saturating_duration_since(self.last) >= forget {
            0
        } else {
            self.failures
        }
    }
}

#[derive(Debug)]
struct Table<K> {
    entries: HashMap<K, Entry>,
    max: usize,
}

impl<K: Hash + Eq + Copy> Table<K> {
    fn new(max: usize) -> Table<K> {
        Table {
            entries: HashMap::new(),
            max: max.max(1),
        }
    }

    fn banned(&self, k: &K, now: Instant) -> bool {
        self.entries.get(k).is_some_and(|e| e.banned(now))
    }

    fn bans(&self, now: Instant) -> usize {
        self.entries.values().filter(|e| e.banned(now)).count()
    }

    fn live(&self, k: &K, now: Instant, forget: Duration) -> u32 {
        self.entries.get(k).map_or(0, |e| e.live(now, forget))
    }

    /// Whether `k` would find no room: unknown, and every entry an active ban.
    fn refuses(&self, k: &K, now: Instant) -> bool {
        self.entries.len() >= self.max
            && !self.entries.contains_key(k)
            && self.entries.values().all(|e| e.banned(now))
    }

    /// Counts a failure and bans at `threshold` (`None`: never); returns the live count, or
    /// `None` if there was no room for an unknown `k`.
    fn fail(&mut self, k: K, now: Instant, threshold: Option<u32>, ban: Duration) -> Option<u32> {
        if !self.entries.contains_key(&k) && !self.make_room(now, ban) {
            return None;
        }
        let e = self.entries.entry(k).or_insert(Entry {
            failures: 0,
            last: now,
            banned_until: None,
        });
        let n = e.live(now, ban).saturating_add(1);
        let still_banned = e.banned_until.filter(|&t| t > now);
        *e = Entry {
            failures: n,
            last: now,
            banned_until: if threshold.is_some_and(|t| n >= t) {
                Some(now + ban)
            } else {
                still_banned
            },
        };
        Some(n)
    }

    fn clear(&mut self, k: &K) {
        self.entries.remove(k);
    }

    /// Makes room for one more entry: drops forgotten entries, then the oldest un-banned ones
    /// (a tenth of the table at a time, so that a flood of new sources does not rescan the table
    /// on every failure). False if every entry is an active ban.
    fn make_room(&mut self, now: Instant, forget: Duration) -> bool {
        if self.entries.len() < self.max {
            return true;
        }
        self.entries
            .retain(|_, e| e.banned(now) || e.live(now, forget) > 0);
        if self.entries.len() < self.max {
            return true;
        }
        let mut ages: Vec<Instant> = self
            .entries
            .values()
            .filter(|e| !e.banned(now))
            .map(|e| e.last)
            .collect();
        if ages.is_empty() {
            return false;
        }
        let drop = (self.max / 10).clamp(1, ages.len());
        let cutoff = *ages.select_nth_unstable(drop - 1).1;
        self.entries.retain(|_, e| e.banned(now) || e.last > cutoff);
        true
    }
}

#[derive(Debug)]
struct State {
    sources: Table<Source>,
    pairs: Table<(Source, Name)>,
    names: Table<Name>,
    warned_full: Option<Instant>,
}

impl State {
    fn warn_full(&mut self, now: Instant) {
        if self
            .warned_full
            .is_none_or(|t| now.saturating_duration_since(t) >= FULL_WARNING_INTERVAL)
        {
            self.warned_full = Some(now);
            tracing::warn!(
                sources = self.sources.entries.len(),
                pairs = self.pairs.entries.len(),
                "brute-force tables are full of active bans: refusing sources they do not know until bans expire (raise [auth] max_tracked)"
            );
        }
    }
}

#[derive(Debug)]
pub struct AuthGuard {
    cfg: AuthConfig,
    state: Mutex<State>,
}

impl AuthGuard {
    pub fn new(cfg: AuthConfig) -> AuthGuard {
        let max = cfg.max_tracked;
        AuthGuard {
            cfg,
            state: Mutex::new(State {
                sources: Table::new(max),
                pairs: Table::new(max),
                names: Table::new(max),
                warned_full: None,
            }),
        }
    }

    pub fn check(&self, ip: Option<IpAddr>, user: &str, method: Method, now: Instant) -> Verdict {
        let name = name_of(user);
        let mut s = lock(&self.state);
        if let Some(src) = ip.map(source_of) {
            let pair = (src, name);
            if s.sources.banned(&src, now) || s.pairs.banned(&pair, now) {
                return Verdict::Banned;
            }
            if s.sources.refuses(&src, now) || s.pairs.refuses(&pair, now) {
                s.warn_full(now);
                return Verdict::Full;
            }
        }
        if method == Method::Password {
            let n = s.names.live(&name, now, self.cfg.ban);
            if n > 0 {
                return Verdict::Throttled(self.delay_for(n));
            }
        }
        Verdict::Allowed
    }

    /// Records a failure; returns how long to stall before answering (base × 2^(n-1), capped,
    /// for the larger of the pair's and the source's counts).
    pub fn failure(
        &self,
        ip: Option<IpAddr>,
        user: &str,
        method: Method,
        now: Instant,
    ) -> Duration {
        let name = name_of(user);
        let ban = self.cfg.ban;
        let mut s = lock(&self.state);
        if method == Method::Password {
            // Never refused: a name entry is never a ban, so there is always one to drop.
            s.names.fail(name, now, None, ban);
        }
        let Some(src) = ip.map(source_of) else {
            return self.cfg.base_delay;
        };
        let by_pair = s
            .pairs
            .fail((src, name), now, Some(self.cfg.max_failures), ban);
        let by_source = s
            .sources
            .fail(src, now, Some(self.cfg.max_failures_per_source), ban);
        match (by_pair, by_source) {
            (Some(p), Some(q)) => self.delay_for(p.max(q)),
            _ => {
                s.warn_full(now);
                self.cfg.max_delay
            }
        }
    }

    /// Bans in force now: of whole sources, and of one user name from one source (for the
    /// metrics; a scan of bounded tables).
    pub fn active_bans(&self, now: Instant) -> ActiveBans {
        let s = lock(&self.state);
        ActiveBans {
            sources: s.sources.bans(now),
            pairs: s.pairs.bans(now),
        }
    }

    /// A login succeeded: forgets this user's failures from this source, and nothing else.
    pub fn success(&self, ip: Option<IpAddr>, user: &str) {
        if let Some(src) = ip.map(source_of) {
            lock(&self.state).pairs.clear(&(src, name_of(user)));
        }
    }

    fn delay_for(&self, failures: u32) -> Duration {
        let shift = failures.saturating_sub(1).min(20);
        self.cfg
            .base_delay
            .saturating_mul(1u32 << shift)
            .min(self.cfg.max_delay)
    }

    #[cfg(test)]
    fn sizes(&self) -> [usize; 3] {
        let s = lock(&self.state);
        [
            s.sources.entries.len(),
            s.pairs.entries.len(),
            s.names.entries.len(),
        ]
    }
}

/// A poisoned lock only means another thread panicked mid-update of plain counters; keep going.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
