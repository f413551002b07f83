use super::*;

fn sample(m: &Metrics) -> String {
    m.upload_started(Protocol::Sftp, "acme", "eu-store");
    m.upload_committed(
        Protocol::Sftp,
        "acme",
        "eu-store",
        1234,
        Duration::from_millis(300),
    );
    m.upload_aborted(Protocol::Ftps, "acme", "eu-store", AbortReason::ClientGone);
    m.download_started(Protocol::Ftps, "acme", "eu-store")
        .inc_by(77);
    m.decision("upload", true, Some("eu-only"));
    m.decision("mkdir", false, None);
    m.auth_attempt("password", AuthOutcome::Rejected);
    m.auth_attempt("ftps password", AuthOutcome::Accepted);
    m.auth_attempt("alice' OR 1=1 --", AuthOutcome::Banned);
    m.set_state(&GaugeState {
        sessions: 3,
        bans: crate::auth::ActiveBans {
            sources: 2,
            pairs: 5,
        },
        budget_in_use: 2 << 20,
        budget_limit: 256 << 20,
        destinations: &[("eu-store".into(), "verified")],
        bundle_hash: "abc123",
        key_versions: &[("acme".into(), 2)],
        keyring_version: "sha256:k1",
        keyring_loaded_at: 1_764_000_000,
    });
    m.encode()
}

#[test]
fn families_carry_the_expected_label_sets() {
    let text = sample(&Metrics::new());
    for line in [
        r#"eugate_uploads_started_total{protocol="sftp",tenant="acme",destination="eu-store"} 1"#,
        r#"eugate_uploads_ended_total{protocol="sftp",tenant="acme",destination="eu-store",outcome="committed"} 1"#,
        r#"eugate_uploads_ended_total{protocol="ftps",tenant="acme",destination="eu-store",outcome="client_gone"} 1"#,
        r#"eugate_transfer_bytes_total{protocol="sftp",tenant="acme",destination="eu-store",direction="in"} 1234"#,
        r#"eugate_transfer_bytes_total{protocol="ftps",tenant="acme",destination="eu-store",direction="out"} 77"#,
        r#"eugate_upload_duration_seconds_count{protocol="sftp",tenant="acme"} 1"#,
        r#"eugate_policy_decisions_total{operation="upload",outcome="allow",rule="eu-only"} 1"#,
        r#"eugate_policy_decisions_total{operation="mkdir",outcome="deny",rule="none"} 1"#,
        r#"eugate_auth_attempts_total{protocol="sftp",method="password",outcome="rejected"} 1"#,
        r#"eugate_auth_attempts_total{protocol="ftps",method="password",outcome="accepted"} 1"#,
        r#"eugate_auth_attempts_total{protocol="other",method="other",outcome="banned"} 1"#,
        "eugate_sessions_open 3",
        r#"eugate_auth_active_bans{scope="source"} 2"#,
        r#"eugate_auth_active_bans{scope="user_at_source"} 5"#,
        "eugate_memory_budget_in_use_bytes 2097152",
        "eugate_memory_budget_limit_bytes 268435456",
        r#"eugate_destination_state{destination="eu-store",state="verified"} 1"#,
        r#"eugate_destination_state{destination="eu-store",state="quarantined"} 0"#,
        r#"eugate_policy_bundle_info{hash="abc123"} 1"#,
        r#"eugate_keyring_active_key_version{tenant="acme"} 2"#,
        r#"eugate_keyring_info{version="sha256:k1"} 1"#,
        "eugate_keyring_loaded_timestamp_seconds 1764000000",
        r#"eugate_keyring_reloads_total{outcome="failed"} 0"#,
        r#"eugate_policy_reloads_total{outcome="changed"} 0"#,
        concat!(
            r#"eugate_build_info{version=""#,
            env!("CARGO_PKG_VERSION"),
            r#""} 1"#
        ),
    ] {
        assert!(text.contains(line), "missing `{line}` in\n{text}");
    }
}

/// A method name the front end did not expect (it could carry client bytes) never becomes a
/// label value; only the fixed words do.
#[test]
fn no_client_string_becomes_a_label() {
    let text = sample(&Metrics::new());
    assert!(!text.contains("alice"), "{text}");
    assert!(!text.contains("OR 1=1"), "{text}");
}

#[test]
fn a_reloaded_bundle_replaces_the_old_hash() {
    let m = Metrics::new();
    let mut state = GaugeState {
        sessions: 0,
        bans: crate::auth::ActiveBans {
            sources: 0,
            pairs: 0,
        },
        budget_in_use: 0,
        budget_limit: 1,
        destinations: &[],
        bundle_hash: "old",
        key_versions: &[],
        keyring_version: "sha256:kold",
        keyring_loaded_at: 1,
    };
    m.set_state(&state);
    state.bundle_hash = "new";
    state.keyring_version = "sha256:knew";
    m.set_state(&state);
    let text = m.encode();
    assert!(
        text.contains(r#"eugate_policy_bundle_info{hash="new"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"eugate_keyring_info{version="sha256:knew"} 1"#),
        "{text}"
    );
    assert!(!text.contains("old"), "{text}");
}

#[test]
fn reloads_are_counted_by_outcome_and_a_shredded_tenant_leaves_the_key_gauge() {
    let m = Metrics::new();
    m.keyring_reload(ReloadResult::Changed);
    m.keyring_reload(ReloadResult::Failed);
    m.keyring_reload(ReloadResult::Failed);
    m.policy_reload(ReloadResult::Unchanged);
    let mut state = GaugeState {
        sessions: 0,
        bans: crate::auth::ActiveBans {
            sources: 0,
            pairs: 0,
        },
        budget_in_use: 0,
        budget_limit: 1,
        destinations: &[],
        bundle_hash: "b",
        key_versions: &[("acme".into(), 1), ("shredme".into(), 3)],
        keyring_version: "sha256:k",
        keyring_loaded_at: 5,
    };
    m.set_state(&state);
    let after_shred = [("acme".into(), 2)];
    state.key_versions = &after_shred;
    m.set_state(&state);
    let text = m.encode();
    for line in [
        r#"eugate_keyring_reloads_total{outcome="changed"} 1"#,
        r#"eugate_keyring_reloads_total{outcome="unchanged"} 0"#,
        r#"eugate_keyring_reloads_total{outcome="failed"} 2"#,
        r#"eugate_policy_reloads_total{outcome="unchanged"} 1"#,
        r#"eugate_policy_reloads_total{outcome="failed"} 0"#,
        r#"eugate_keyring_active_key_version{tenant="acme"} 2"#,
    ] {
        assert!(text.contains(line), "missing `{line}` in\n{text}");
    }
    assert!(!text.contains("shredme"), "{text}");
}

#[test]
fn every_abort_reason_has_its_own_word() {
    let all = [
        AbortReason::ClientGone,
        AbortReason::Shutdown,
        AbortReason::Storage,
        AbortReason::Refused,
        AbortReason::Gap,
        AbortReason::Unchanged,
        AbortReason::Audit,
        AbortReason::Crypto,
    ];
    let words: std::collections::BTreeSet<_> = all.iter().map(|r| r.as_str()).collect();
    assert_eq!(words.len(), all.len());
    assert!(!words.contains("committed"));
}
