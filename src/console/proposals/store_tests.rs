use super::*;
use crate::console::proposals::test_support::{DE_RULE_FILE, with_de_rule};

fn new(files: BTreeMap<String, String>) -> NewProposal {
    NewProposal {
        proposer: "erin".into(),
        proposer_certificate: "sha256:EE".into(),
        summary: "forbid ACME special-category data in DE".into(),
        base: "sha256:base".into(),
        files,
        now_ms: 1_780_000_000_000,
    }
}

fn decision(who: &str) -> Decided {
    Decided {
        officer: who.into(),
        certificate: "sha256:AA".into(),
        at: "2026-12-03T17:00:00.000Z".into(),
        comment: "ok".into(),
    }
}

#[test]
fn a_proposal_is_stored_whole_and_read_back() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ProposalStore::new(tmp.path().join("proposals"));
    let p = store.create(new(with_de_rule())).unwrap();
    assert!(is_id(&p.meta.id));
    assert_eq!(p.meta.state, State::Open);
    assert_eq!(
        p.meta.hash,
        crate::policy::PolicyBundle::hash_sources(&p.files)
    );
    let back = store.get(&p.meta.id).unwrap();
    assert_eq!(back, p);
    assert!(back.files.contains_key("tests/default.toml"));
    assert!(back.files.contains_key(DE_RULE_FILE));
    // Nothing but the proposal (and no temporary directory) is left behind.
    let entries: Vec<String> = fs::read_dir(store.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(entries, vec![p.meta.id.clone()]);
    let list = store.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, p.meta.id);
    // Ids are random.
    let q = store.create(new(with_de_rule())).unwrap();
    assert_ne!(p.meta.id, q.meta.id);
}

#[test]
fn hostile_file_names_are_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ProposalStore::new(tmp.path().join("proposals"));
    for name in [
        "../escape.cedar",
        ".hidden.cedar",
        "tests/../../x.toml",
        "a/b.cedar",
        "x\n.cedar",
    ] {
        let mut files = with_de_rule();
        files.insert(name.into(), "x".into());
        let e = store.create(new(files)).unwrap_err();
        assert!(matches!(e, ProposalError::Invalid(_)), "{name:?}: {e}");
    }
    assert!(!tmp.path().join("escape.cedar").exists());
    assert!(store.list().unwrap().is_empty());
    let mut bad = new(with_de_rule());
    bad.summary = "two\nlines".into();
    assert!(store.create(bad).is_err());
}

#[test]
fn ids_from_the_url_cannot_leave_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ProposalStore::new(tmp.path().join("proposals"));
    for id in ["..", "../x", "", "ABCDEF0123456789abcdef01", "0123"] {
        assert!(
            matches!(store.get(id), Err(ProposalError::NotFound(_))),
            "{id:?}"
        );
    }
}

#[test]
fn a_proposal_is_decided_once() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ProposalStore::new(tmp.path().join("proposals"));
    let p = store.create(new(with_de_rule())).unwrap();
    let id = &p.meta.id;
    let lock = store.lock().unwrap();
    assert!(matches!(
        store.decide(&lock, id, State::Open, decision("alex")),
        Err(ProposalError::Invalid(_))
    ));
    let m = store
        .decide(&lock, id, State::Approved, decision("alex"))
        .unwrap();
    assert_eq!(m.state, State::Approved);
    assert_eq!(store.get(id).unwrap().meta.decided.unwrap().officer, "alex");
    let again = store.decide(&lock, id, State::Rejected, decision("bo"));
    match again {
        Err(ProposalError::Conflict(m)) => assert!(m.contains("already approved by alex"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.get(id).unwrap().meta.state, State::Approved);
}

#[test]
fn one_decision_at_a_time() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ProposalStore::new(tmp.path().join("proposals"));
    let held = store.lock().unwrap();
    // Another instance sharing the directory has its own file description: flock excludes it.
    let other = ProposalStore::new(tmp.path().join("proposals"));
    assert!(matches!(other.lock(), Err(ProposalError::Conflict(_))));
    drop(held);
    other.lock().unwrap();
}

#[test]
fn a_corrupt_proposal_is_reported_and_skipped_in_the_list() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ProposalStore::new(tmp.path().join("proposals"));
    let p = store.create(new(with_de_rule())).unwrap();
    let q = store.create(new(with_de_rule())).unwrap();
    fs::write(store.dir().join(&q.meta.id).join(META), b"{ not json").unwrap();
    assert!(matches!(
        store.get(&q.meta.id),
        Err(ProposalError::Corrupt { .. })
    ));
    let list = store.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, p.meta.id);
}
