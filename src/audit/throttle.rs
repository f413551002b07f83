//! Keeps a flood of refused logins from flooding the audit log. Measured: 977 attempts in 20 s,
//! banned ones still written and fsynced one by one, grew the log by 1.48 MB/s. Per source:
//! a banned source's refusals are written once per user name per interval, for at most `burst`
//! names, and counted beyond that; other failures are written while a token bucket allows and
//! counted beyond it. Counts become one
//! [`AuditEvent::AuthSummary`] per source and outcome when their interval ends (at the next
//! attempt, at the periodic [`AuthThrottle::due`], when the source is dropped from the table, or
//! at shutdown through [`AuthThrottle::drain`]), so every attempt is still accounted for.
//! Accepted logins are never throttled: a login depends on its record.
//!
//! The table is bounded: past `max_sources` the source seen least recently is dropped, and its
//! counts are summarised first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{AuditEvent, field, rfc3339};

/// User names kept per summary, so an investigator sees which accounts were tried.
const SAMPLE_USERS: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Refill rate of each source's bucket of failure records.
    pub records_per_sec: u32,
    /// Bucket size: failure records a source may have written in a burst; also the number of
    /// user names a banned source has a refusal written for per interval.
    pub burst: u32,
    /// A banned source gets one record per interval; counts are summarised per interval.
    pub interval: Duration,
    /// Sources tracked at once.
    pub max_sources: usize,
    /// Cap of the sampled user names (the log's `max_field_bytes`).
    pub field_cap: usize,
}

/// How an authentication result is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptKind {
    /// Always written.
    Always,
    /// Written while the source's bucket has a token; beyond, counted under this outcome.
    RateLimited(&'static str),
    /// The first for each user name in an interval is written, for up to `burst` names; the
    /// others are counted under this outcome. (One record per interval would hide which
    /// accounts a banned source went on to try; one per name would let it flood.)
    OncePerUserPerInterval(&'static str),
}

/// What to do about one attempt: write its own record or not, and first write these summaries
/// (counts whose interval has ended, or of a source dropped from the table).
#[derive(Debug, Default)]
pub struct Admission {
    pub write: bool,
    pub summaries: Vec<AuditEvent>,
}

#[derive(Debug)]
struct Pending {
    outcome: &'static str,
    attempts: u64,
    opened: Instant,
    first: SystemTime,
    last: SystemTime,
    users: Vec<String>,
}

/// The names a once-per-user outcome was written for since `opened`.
#[derive(Debug)]
struct Window {
    outcome: &'static str,
    opened: Instant,
    /// Hashes, not names: a source may try 30,000-byte names. A collision only means a name
    /// is counted rather than written.
    names: Vec<u64>,
}

#[derive(Debug)]
struct Source {
    tokens: f64,
    refilled: Instant,
    seen: Instant,
    /// Per once-per-user outcome: when its interval began and the names written in it.
    windows: Vec<Window>,
    pending: Vec<Pending>,
}

pub struct AuthThrottle {
    cfg: ThrottleConfig,
    sources: Mutex<HashMap<String, Source>>,
}

impl AuthThrottle {
    pub fn new(cfg: ThrottleConfig) -> AuthThrottle {
        AuthThrottle {
            cfg,
            sources: Mutex::new(HashMap::new()),
        }
    }

    pub fn interval(&self) -> Duration {
        self.cfg.interval
    }

    /// Sources tracked now (bounded by `max_sources`).
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Source>> {
        // The table holds counts only; after a panic elsewhere they are still usable.
        self.sources
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Decides about one attempt from `source` by `user` at `now` (`wall` is the same moment
    /// on the wall clock, for the summaries).
    pub fn admit(
        &self,
        source: &str,
        kind: AttemptKind,
        user: &str,
        now: Instant,
        wall: SystemTime,
    ) -> Admission {
        let key = source_key(source);
        let mut table = self.lock();
        let mut out = Admission::default();
        if !table.contains_key(&key)
            && table.len() >= self.cfg.max_sources
            && let Some((old_key, old)) = take_oldest(&mut table)
        {
            out.summaries.extend(summaries(&old_key, old.pending));
        }
        let s = table.entry(key.clone()).or_insert_with(|| Source {
            tokens: f64::from(self.cfg.burst),
            refilled: now,
            seen: now,
            windows: Vec::new(),
            pending: Vec::new(),
        });
        s.seen = now;
        s.refill(now, &self.cfg);
        out.summaries
            .extend(summaries(&key, s.take_due(now, self.cfg.interval)));
        out.write = match kind {
            AttemptKind::Always => true,
            AttemptKind::RateLimited(outcome) => {
                if s.tokens >= 1.0 {
                    s.tokens -= 1.0;
                    true
                } else {
                    s.count(outcome, user, (now, wall), self.cfg.field_cap);
                    false
                }
            }
            AttemptKind::OncePerUserPerInterval(outcome) => {
                if s.first_in_window(outcome, user, now, &self.cfg) {
                    true
                } else {
                    s.count(outcome, user, (now, wall), self.cfg.field_cap);
                    false
                }
            }
        };
        out
    }

    /// Summaries whose interval has ended, for a periodic flush; sources with nothing left
    /// to remember are forgotten.
    pub fn due(&self, now: Instant) -> Vec<AuditEvent> {
        let cfg = &self.cfg;
        let mut out = Vec::new();
        self.lock().retain(|key, s| {
            out.extend(summaries(key, s.take_due(now, cfg.interval)));
            s.refill(now, cfg);
            !s.is_idle(now, cfg)
        });
        out
    }

    /// Every count still pending, whatever its age (at shutdown); the table is emptied.
    pub fn drain(&self) -> Vec<AuditEvent> {
        let mut table = self.lock();
        let mut out = Vec::new();
        for (key, s) in table.drain() {
            out.extend(summaries(&key, s.pending));
        }
        out
    }
}

impl Source {
    fn refill(&mut self, now: Instant, cfg: &ThrottleConfig) {
        let gained =
            now.duration_since(self.refilled).as_secs_f64() * f64::from(cfg.records_per_sec);
        self.tokens = (self.tokens + gained).min(f64::from(cfg.burst));
        self.refilled = now;
    }

    /// Whether this refusal is the first for `user` in the current interval of `outcome`,
    /// with room for one more name; if so it is remembered as written.
    fn first_in_window(
        &mut self,
        outcome: &'static str,
        user: &str,
        now: Instant,
        cfg: &ThrottleConfig,
    ) -> bool {
        let name = name_hash(user);
        let fresh = Window {
            outcome,
            opened: now,
            names: Vec::new(),
        };
        let i = match self.windows.iter().position(|w| w.outcome == outcome) {
            Some(i) if now.duration_since(self.windows[i].opened) < cfg.interval => i,
            Some(i) => {
                self.windows[i] = fresh;
                i
            }
            None => {
                self.windows.push(fresh);
                self.windows.len() - 1
            }
        };
        let w = &mut self.windows[i];
        let first = !w.names.contains(&name) && w.names.len() < cfg.burst as usize;
        if first {
            w.names.push(name);
        }
        first
    }

    fn count(
        &mut self,
        outcome: &'static str,
        user: &str,
        (now, wall): (Instant, SystemTime),
        field_cap: usize,
    ) {
        let i = match self.pending.iter().position(|p| p.outcome == outcome) {
            Some(i) => i,
            None => {
                self.pending.push(Pending {
                    outcome,
                    attempts: 0,
                    opened: now,
                    first: wall,
                    last: wall,
                    users: Vec::new(),
                });
                self.pending.len() - 1
            }
        };
        let p = &mut self.pending[i];
        p.attempts += 1;
        p.last = wall;
        if p.users.len() < SAMPLE_USERS {
            // Capped before it is kept: the table must not hold 30,000-byte names.
            let name = field::cap(user, field_cap);
            if !p.users.contains(&name) {
                p.users.push(name);
            }
        }
    }

    fn take_due(&mut self, now: Instant, interval: Duration) -> Vec<Pending> {
        let (due, keep) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| now.duration_since(p.opened) >= interval);
        self.pending = keep;
        due
    }

    /// Nothing pending, a full bucket and no open interval: forgetting it changes nothing.
    fn is_idle(&self, now: Instant, cfg: &ThrottleConfig) -> bool {
        self.pending.is_empty()
            && self.tokens >= f64::from(cfg.burst)
            && self
                .windows
                .iter()
                .all(|w| now.duration_since(w.opened) >= cfg.interval)
    }
}

fn name_hash(user: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    user.hash(&mut h);
    h.finish()
}

fn take_oldest(table: &mut HashMap<String, Source>) -> Option<(String, Source)> {
    let key = table.iter().min_by_key(|(_, s)| s.seen)?.0.clone();
    table.remove_entry(&key)
}

fn summaries(source: &str, pending: Vec<Pending>) -> impl Iterator<Item = AuditEvent> + '_ {
    pending.into_iter().map(move |p| AuditEvent::AuthSummary {
        source: source.to_string(),
        outcome: p.outcome.to_string(),
        attempts: p.attempts,
        first: wall_rfc3339(p.first),
        last: wall_rfc3339(p.last),
        users: p.users,
    })
}

fn wall_rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    rfc3339(d.as_secs(), d.subsec_millis())
}

/// The unit a source is counted by: its IP address, or for IPv6 its /64 (one host commonly
/// holds a whole /64, so counting per address would give it 2^64 buckets).
fn source_key(source: &str) -> String {
    match source.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{net}/64")
        }
        Ok(IpAddr::V6(v6)) => v6
            .to_ipv4_mapped()
            .map(|v4| v4.to_string())
            .unwrap_or_default(),
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => field::cap(source, 64),
    }
}

#[cfg(test)]
#[path = "throttle_tests.rs"]
mod tests;
