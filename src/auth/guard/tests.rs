use super::*;

use proptest::prelude::*;

const BAN: Duration = Duration::from_secs(60);

fn cfg() -> AuthConfig {
    AuthConfig {
        max_failures: 3,
        max_failures_per_source: 5,
        max_tracked: 10_000,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(250),
        ban: BAN,
        user_ca_keys: Vec::new(),
    }
}

fn small(max_tracked: usize) -> AuthGuard {
    AuthGuard::new(AuthConfig {
        max_tracked,
        ..cfg()
    })
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

/// The n-th of many distinct IPv4 sources.
fn nth(n: u32) -> Option<IpAddr> {
    Some(IpAddr::from((0x0a00_0000 + n).to_be_bytes()))
}

const KEY: Method = Method::Key;
const PW: Method = Method::Password;

#[test]
fn delay_grows_and_is_capped() {
    let g = AuthGuard::new(cfg());
    let a = ip("192.0.2.1");
    let t0 = Instant::now();
    assert_eq!(g.check(a, "alice", PW, t0), Verdict::Allowed);
    assert_eq!(g.failure(a, "alice", PW, t0), Duration::from_millis(100));
    assert_eq!(g.failure(a, "alice", PW, t0), Duration::from_millis(200));
    assert_eq!(g.failure(a, "alice", PW, t0), Duration::from_millis(250));
}

#[test]
fn a_pair_is_banned_for_every_method_and_only_that_pair() {
    let g = AuthGuard::new(cfg());
    let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
    let t0 = Instant::now();
    for _ in 0..3 {
        g.failure(a, "alice", PW, t0);
    }
    assert_eq!(g.check(a, "alice", PW, t0), Verdict::Banned);
    assert_eq!(g.check(a, "alice", KEY, t0), Verdict::Banned, "keys too");
    // 3 of the source's 5: other names from it still get a hearing.
    assert_eq!(g.check(a, "bob", KEY, t0), Verdict::Allowed);
    // From elsewhere alice's key is heard, her password after a pause.
    assert_eq!(g.check(b, "alice", KEY, t0), Verdict::Allowed);
    assert!(matches!(g.check(b, "alice", PW, t0), Verdict::Throttled(_)));
}

#[test]
fn a_source_is_banned_across_user_names() {
    let g = AuthGuard::new(cfg());
    let a = ip("192.0.2.1");
    let t0 = Instant::now();
    for i in 0..5 {
        assert_eq!(g.check(a, &format!("u{i}"), PW, t0), Verdict::Allowed);
        g.failure(a, &format!("u{i}"), PW, t0);
    }
    assert_eq!(g.check(a, "someone-else", KEY, t0), Verdict::Banned);
    assert_eq!(g.check(ip("192.0.2.2"), "u0", KEY, t0), Verdict::Allowed);
}

#[test]
fn active_bans_are_counted_until_they_expire() {
    let g = AuthGuard::new(cfg());
    let t0 = Instant::now();
    let none = ActiveBans {
        sources: 0,
        pairs: 0,
    };
    assert_eq!(g.active_bans(t0), none);
    // Three failures of one name ban the pair; five names from one source ban the source.
    for _ in 0..3 {
        g.failure(ip("192.0.2.1"), "u", PW, t0);
    }
    assert_eq!(
        g.active_bans(t0),
        ActiveBans {
            sources: 0,
            pairs: 1
        }
    );
    for i in 0..5 {
        g.failure(ip("192.0.2.2"), &format!("u{i}"), PW, t0);
    }
    assert_eq!(
        g.active_bans(t0),
        ActiveBans {
            sources: 1,
            pairs: 1
        }
    );
    assert_eq!(g.active_bans(t0 + BAN), none);
}

/// The bypass of issue 13: guesses at 16 names, each followed by a real login as oneself.
#[test]
fn logging_in_between_guesses_does_not_reset_the_source() {
    let g = AuthGuard::new(cfg());
    let a = ip("192.0.2.1");
    let t0 = Instant::now();
    let mut banned_after = None;
    for i in 0..16 {
        let t = t0 + Duration::from_secs(i);
        if g.check(a, &format!("victim{i}"), PW, t) != Verdict::Allowed {
            banned_after = Some(i);
            break;
        }
        g.failure(a, &format!("victim{i}"), PW, t);
        if g.check(a, "me", PW, t) == Verdict::Allowed {
            g.success(a, "me");
        }
    }
    assert_eq!(banned_after, Some(5), "banned at max_failures_per_source");
    assert_eq!(g.check(a, "me", KEY, t0), Verdict::Banned);
}

#[test]
fn success_clears_only_its_own_pair() {
    let g = AuthGuard::new(AuthConfig {
        max_failures_per_source: 10,
        max_delay: Duration::from_secs(10),
        ..cfg()
    });
    let a = ip("192.0.2.1");
    let t0 = Instant::now();
    g.failure(a, "alice", PW, t0);
    g.failure(a, "alice", PW, t0);
    g.failure(a, "bob", PW, t0);
    g.success(a, "alice");
    // The source keeps its 3 (the delay is its 4th's) ...
    assert_eq!(g.failure(a, "alice", PW, t0), Duration::from_millis(800));
    // ... while alice's pair started again: at 2 of 3 it is not banned.
    g.failure(a, "alice", PW, t0);
    assert_eq!(g.check(a, "alice", KEY, t0), Verdict::Allowed);
    for _ in 0..5 {
        g.failure(a, "bob", PW, t0);
    }
    assert_eq!(
        g.check(a, "carol", KEY, t0),
        Verdict::Banned,
        "the source's 10th"
    );
    // The per-name throttle is not cleared by a success either.
    g.success(ip("192.0.2.9"), "alice");
    assert!(matches!(
        g.check(ip("192.0.2.9"), "alice", PW, t0),
        Verdict::Throttled(_)
    ));
}

/// The bypass of issue 13: five wrong passwords from anywhere must not lock a valid key out.
#[test]
fn a_name_under_attack_is_throttled_for_passwords_never_banned_and_keys_pass() {
    let g = AuthGuard::new(cfg());
    let t0 = Instant::now();
    for i in 0..50 {
        g.failure(nth(i), "alice", PW, t0);
    }
    let home = ip("198.51.100.7");
    assert_eq!(g.check(home, "alice", KEY, t0), Verdict::Allowed);
    assert_eq!(
        g.check(home, "alice", PW, t0),
        Verdict::Throttled(Duration::from_millis(250)),
        "throttled, capped at max_delay"
    );
    assert_eq!(g.check(home, "bob", PW, t0), Verdict::Allowed);
}

#[test]
fn key_failures_do_not_throttle_passwords() {
    let g = AuthGuard::new(cfg());
    let t0 = Instant::now();
    g.failure(ip("192.0.2.1"), "alice", KEY, t0);
    assert_eq!(g.check(ip("192.0.2.2"), "alice", PW, t0), Verdict::Allowed);
}

#[test]
fn bans_expire_and_failures_are_forgotten() {
    let g = AuthGuard::new(cfg());
    let a = ip("192.0.2.1");
    let t0 = Instant::now();
    for _ in 0..3 {
        g.failure(a, "alice", PW, t0);
    }
    assert_eq!(
        g.check(a, "alice", KEY, t0 + BAN - Duration::from_millis(1)),
        Verdict::Banned
    );
    let later = t0 + BAN;
    assert_eq!(g.check(a, "alice", KEY, later), Verdict::Allowed);
    assert_eq!(
        g.check(a, "alice", PW, later),
        Verdict::Allowed,
        "throttle forgotten"
    );
    assert_eq!(
        g.failure(a, "alice", PW, later),
        Duration::from_millis(100),
        "a fresh count"
    );
    // Two failures, then a quiet `ban`: forgotten, so two more do not reach 3.
    let t1 = later + BAN;
    g.failure(a, "bob", PW, t1);
    g.failure(a, "bob", PW, t1);
    let t2 = t1 + BAN;
    g.failure(a, "bob", PW, t2);
    g.failure(a, "bob", PW, t2);
    assert_eq!(g.check(a, "bob", KEY, t2), Verdict::Allowed);
}

/// The bypass of issue 13: filling the table from many sources evicted an active ban.
#[test]
fn active_bans_survive_a_flood_of_new_sources() {
    let g = small(8);
    let banned = ip("192.0.2.66");
    let t0 = Instant::now();
    for _ in 0..3 {
        g.failure(banned, "alice", PW, t0);
    }
    for i in 0..1_000 {
        let t = t0 + Duration::from_millis(u64::from(i) * 10);
        g.failure(nth(i), &format!("u{i}"), PW, t);
        assert!(g.sizes().iter().all(|&n| n <= 8), "{:?}", g.sizes());
    }
    let t = t0 + BAN - Duration::from_secs(1);
    assert_eq!(g.check(banned, "alice", KEY, t), Verdict::Banned);
    // A source with one failure was dropped for room, not refused.
    assert_eq!(g.check(nth(0), "u0", KEY, t), Verdict::Allowed);
}

#[test]
fn a_table_full_of_bans_refuses_sources_it_does_not_know() {
    let g = small(4);
    let t0 = Instant::now();
    for i in 0..4 {
        for _ in 0..5 {
            g.failure(nth(i), &format!("u{i}"), PW, t0);
        }
    }
    let stranger = ip("203.0.113.1");
    assert_eq!(g.check(stranger, "alice", KEY, t0), Verdict::Full);
    assert_eq!(g.check(nth(0), "u0", KEY, t0), Verdict::Banned);
    // A failure that slips in (a race with the check) is not tracked, and stalls the longest.
    assert_eq!(
        g.failure(stranger, "alice", PW, t0),
        Duration::from_millis(250)
    );
    assert_eq!(g.sizes()[..2], [4, 4]);
    // Once the bans end, strangers are heard again.
    assert_eq!(g.check(stranger, "alice", KEY, t0 + BAN), Verdict::Allowed);
    g.failure(stranger, "alice", PW, t0 + BAN);
    assert_eq!(g.sizes()[0], 1, "ended bans dropped for room");
}

#[test]
fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
    let g = AuthGuard::new(cfg());
    let t0 = Instant::now();
    for i in 0..5 {
        g.failure(
            ip(&format!("2001:db8:1:2::{i:x}")),
            &format!("u{i}"),
            PW,
            t0,
        );
    }
    assert_eq!(
        g.check(ip("2001:db8:1:2:ffff::1"), "x", KEY, t0),
        Verdict::Banned
    );
    assert_eq!(
        g.check(ip("2001:db8:1:3::1"), "x", KEY, t0),
        Verdict::Allowed
    );
    for _ in 0..5 {
        g.failure(ip("::ffff:192.0.2.1"), "bob", PW, t0);
    }
    assert_eq!(g.check(ip("192.0.2.1"), "x", KEY, t0), Verdict::Banned);
    assert_eq!(
        g.check(ip("::ffff:192.0.2.2"), "x", KEY, t0),
        Verdict::Allowed
    );
}

#[derive(Debug, Clone)]
enum Op {
    Fail { src: u8, user: u8, pw: bool },
    Login { src: u8, user: u8 },
    Wait { ms: u32 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..24, 0u8..6, any::<bool>()).prop_map(|(src, user, pw)| Op::Fail { src, user, pw }),
        1 => (0u8..24, 0u8..6).prop_map(|(src, user)| Op::Login { src, user }),
        1 => (0u32..20_000).prop_map(|ms| Op::Wait { ms }),
    ]
}

proptest! {
    /// Driven as the handler drives it (attempts only when not refused): the tables stay within
    /// their bound, and every ban holds for its whole length.
    #[test]
    fn bans_hold_and_tables_stay_bounded(ops in proptest::collection::vec(op(), 1..300)) {
        let g = small(6);
        let mut now = Instant::now();
        // (source, user or None for the whole source) -> ban end.
        let mut bans: Vec<(u8, Option<u8>, Instant)> = Vec::new();
        let src = |s: u8| nth(u32::from(s));
        let user = |u: u8| format!("u{u}");
        for op in ops {
            match op {
                Op::Wait { ms } => now += Duration::from_millis(u64::from(ms)),
                Op::Fail { src: s, user: u, pw } => {
                    let method = if pw { PW } else { KEY };
                    if matches!(g.check(src(s), &user(u), method, now), Verdict::Banned | Verdict::Full) {
                        continue;
                    }
                    g.failure(src(s), &user(u), method, now);
                    // "probe" never fails, so its verdict shows the source's own ban.
                    if g.check(src(s), "probe", KEY, now) == Verdict::Banned {
                        bans.push((s, None, now + BAN));
                    } else if g.check(src(s), &user(u), KEY, now) == Verdict::Banned {
                        bans.push((s, Some(u), now + BAN));
                    }
                }
                Op::Login { src: s, user: u } => {
                    if matches!(g.check(src(s), &user(u), KEY, now), Verdict::Allowed | Verdict::Throttled(_)) {
                        g.success(src(s), &user(u));
                    }
                }
            }
            prop_assert!(g.sizes().iter().all(|&n| n <= 6), "{:?}", g.sizes());
            for &(s, u, end) in &bans {
                if now < end {
                    let name = u.map_or_else(|| "probe".to_string(), user);
                    prop_assert_eq!(g.check(src(s), &name, KEY, now), Verdict::Banned);
                }
            }
        }
    }
}
