use std::time::{Duration, Instant, SystemTime};

use super::*;

const BANNED: AttemptKind = AttemptKind::OncePerUserPerInterval("refused: banned");
const REJECTED: AttemptKind = AttemptKind::RateLimited("rejected");

fn throttle(max_sources: usize) -> AuthThrottle {
    AuthThrottle::new(ThrottleConfig {
        records_per_sec: 2,
        burst: 3,
        interval: Duration::from_secs(60),
        max_sources,
        field_cap: 256,
    })
}

fn at(t0: Instant, ms: u64) -> Instant {
    t0 + Duration::from_millis(ms)
}

/// (attempts, outcome, users) of each summary.
fn counts(events: &[AuditEvent]) -> Vec<(u64, String, Vec<String>)> {
    events
        .iter()
        .map(|e| match e {
            AuditEvent::AuthSummary {
                attempts,
                outcome,
                users,
                ..
            } => (*attempts, outcome.clone(), users.clone()),
            other => panic!("not a summary: {other:?}"),
        })
        .collect()
}

#[test]
fn a_banned_source_trying_one_name_gets_one_record_per_interval_and_a_summary() {
    let t = throttle(16);
    let t0 = Instant::now();
    let wall = SystemTime::now();
    let mut written = 0;
    for i in 0..1000 {
        let a = t.admit("192.0.2.7", BANNED, "root", at(t0, i * 10), wall);
        assert!(a.summaries.is_empty());
        written += usize::from(a.write);
    }
    assert_eq!(written, 1);
    // The next refusal after the interval writes the count first, and is itself written.
    let a = t.admit("192.0.2.7", BANNED, "root", at(t0, 61_000), wall);
    assert!(a.write);
    assert_eq!(
        counts(&a.summaries),
        [(999, "refused: banned".into(), vec!["root".into()])]
    );
}

#[test]
fn a_banned_source_gets_a_record_per_name_tried_up_to_the_burst() {
    let t = throttle(16);
    let t0 = Instant::now();
    let wall = SystemTime::now();
    let write = |user: &str, ms| t.admit("192.0.2.7", BANNED, user, at(t0, ms), wall).write;
    assert!(write("bob", 0));
    assert!(!write("bob", 1));
    assert!(write("alice", 2), "another account tried: on record");
    assert!(write("carol", 3));
    // The burst is 3 names: a fourth is counted, not written, and so are the rest.
    assert!(!write("dave", 4));
    assert!(!write("alice", 5));
    // A new interval, a new set of names; the last interval's count comes first.
    let a = t.admit("192.0.2.7", BANNED, "dave", at(t0, 60_004), wall);
    assert!(a.write);
    assert_eq!(counts(&a.summaries)[0].0, 3);
    assert!(t.drain().is_empty());
}

#[test]
fn failures_are_written_while_the_bucket_allows_then_counted() {
    let t = throttle(16);
    let t0 = Instant::now();
    let wall = SystemTime::now();
    let writes: Vec<bool> = (0..10)
        .map(|i| {
            t.admit("192.0.2.8", REJECTED, &format!("u{i}"), t0, wall)
                .write
        })
        .collect();
    assert_eq!(writes.iter().filter(|w| **w).count(), 3, "the burst");
    // Half a second refills one token at 2 per second.
    assert!(t.admit("192.0.2.8", REJECTED, "x", at(t0, 500), wall).write);
    assert!(!t.admit("192.0.2.8", REJECTED, "y", at(t0, 500), wall).write);
    // Sources are independent.
    assert!(t.admit("192.0.2.9", REJECTED, "z", t0, wall).write);
    // Accepted logins are never throttled.
    assert!(
        t.admit("192.0.2.8", AttemptKind::Always, "alice", at(t0, 500), wall)
            .write
    );
    let drained = counts(&t.drain());
    assert_eq!(drained.len(), 1);
    let (n, outcome, users) = &drained[0];
    assert_eq!((*n, outcome.as_str()), (8, "rejected"));
    assert_eq!(
        users,
        &["u3", "u4", "u5", "u6"],
        "a bounded sample of the names tried"
    );
    assert_eq!(t.tracked(), 0);
}

#[test]
fn the_periodic_flush_writes_due_counts_and_forgets_idle_sources() {
    let t = throttle(16);
    let t0 = Instant::now();
    let wall = SystemTime::now();
    for _ in 0..5 {
        t.admit("192.0.2.10", BANNED, "u", t0, wall);
    }
    t.admit("192.0.2.11", REJECTED, "v", t0, wall);
    assert!(t.due(at(t0, 59_000)).is_empty());
    // The failing source's bucket is full again and it has nothing pending: forgotten.
    assert_eq!(t.tracked(), 1);
    let due = counts(&t.due(at(t0, 60_000)));
    assert_eq!(due, [(4, "refused: banned".into(), vec!["u".into()])]);
    assert_eq!(t.tracked(), 0, "its interval is over and its count written");
    assert!(t.drain().is_empty(), "nothing is counted twice");
}

#[test]
fn the_table_is_bounded_and_a_dropped_source_is_summarised_first() {
    let t = throttle(4);
    let t0 = Instant::now();
    let wall = SystemTime::now();
    let mut summarised = 0;
    for i in 0..100u64 {
        let ip = format!("198.51.100.{i}");
        for _ in 0..3 {
            let a = t.admit(&ip, BANNED, "u", at(t0, i), wall);
            summarised += counts(&a.summaries).iter().map(|c| c.0).sum::<u64>();
        }
        assert!(t.tracked() <= 4);
    }
    summarised += counts(&t.drain()).iter().map(|c| c.0).sum::<u64>();
    // Each source: one written, two counted.
    assert_eq!(summarised, 200);
}

#[test]
fn sampled_names_are_capped() {
    let t = throttle(16);
    let now = Instant::now();
    let wall = SystemTime::now();
    let long = "A".repeat(30_000);
    for _ in 0..2 {
        t.admit("192.0.2.12", BANNED, &long, now, wall);
    }
    let drained = counts(&t.drain());
    assert!(drained[0].2[0].len() < 400);
}

#[test]
fn ipv6_sources_count_per_64() {
    assert_eq!(source_key("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
    assert_eq!(source_key("::ffff:192.0.2.1"), "192.0.2.1");
    assert_eq!(source_key("192.0.2.1"), "192.0.2.1");
    let t = throttle(16);
    let now = Instant::now();
    let wall = SystemTime::now();
    assert!(t.admit("2001:db8::1", BANNED, "u", now, wall).write);
    assert!(!t.admit("2001:db8::2", BANNED, "u", now, wall).write);
}
