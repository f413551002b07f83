use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::*;
use crate::config::OfficerRole::{Approver, Editor};
use crate::console::proposals::store::NewProposal;
use crate::console::proposals::test_support::{DE_RULE_FILE, officer, policy_copy, with_de_rule};

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    store: ProposalStore,
    policy: Arc<PolicyStore>,
    records: RefCell<Vec<Act>>,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let dir = policy_copy(tmp.path());
        let policy = PolicyStore::new(PolicyBundle::load(&dir).unwrap());
        let store = ProposalStore::new(tmp.path().join("proposals"));
        Fixture {
            _tmp: tmp,
            dir,
            store,
            policy,
            records: RefCell::new(Vec::new()),
        }
    }

    fn propose(&self, files: BTreeMap<String, String>) -> String {
        let p = self
            .store
            .create(NewProposal {
                proposer: "erin".into(),
                proposer_certificate: "sha256:EE".into(),
                summary: "ACME special-category not in DE".into(),
                base: self.policy.current().hash().to_string(),
                files,
                now_ms: 0,
            })
            .unwrap();
        p.meta.id
    }

    fn target(&self) -> Target<'_> {
        Target {
            store: &self.store,
            policy: &self.policy,
            policy_dir: Some(&self.dir),
        }
    }

    fn approve(&self, id: &str, who: &Officer) -> Result<Meta, DecideError> {
        let record = |act: Act| {
            // The record comes first: the policy directory is still unchanged.
            assert!(!self.dir.join(DE_RULE_FILE).exists());
            self.records.borrow_mut().push(act);
            Ok(())
        };
        approve(&self.target(), id, who, "looks right", 1, &record)
    }

    fn untouched(&self, id: &str) {
        assert!(!self.dir.join(DE_RULE_FILE).exists());
        assert!(self.records.borrow().is_empty());
        assert_eq!(self.store.get(id).unwrap().meta.state, State::Open);
    }
}

fn alex() -> Officer {
    officer("alex", "sha256:AA", &[Approver])
}

#[test]
fn the_proposer_cannot_approve_by_name_or_by_certificate() {
    let f = Fixture::new();
    let id = f.propose(with_de_rule());
    for who in [
        officer("erin", "sha256:E2", &[Editor, Approver]),
        officer("erin-renamed", "sha256:EE", &[Approver]),
        officer("erin", "sha256:EE", &[Editor]),
    ] {
        match f.approve(&id, &who) {
            Err(DecideError::FourEyes(m)) => assert!(m.contains("four-eyes"), "{m}"),
            other => panic!("{}: {other:?}", who.name),
        }
    }
    f.untouched(&id);
}

#[test]
fn an_editor_cannot_approve() {
    let f = Fixture::new();
    let id = f.propose(with_de_rule());
    let e = f
        .approve(&id, &officer("ed", "sha256:ED", &[Editor]))
        .unwrap_err();
    assert!(matches!(e, DecideError::Forbidden(_)), "{e}");
    f.untouched(&id);
}

#[test]
fn a_stale_proposal_is_refused() {
    let f = Fixture::new();
    let id = f.propose(with_de_rule());
    // Someone changes the policy directory by hand; the reload puts it in force.
    std::fs::write(f.dir.join("extra.cedar"), "// a comment changes the hash\n").unwrap();
    let e = f.approve(&id, &alex()).unwrap_err();
    assert!(
        matches!(e, DecideError::Stale(ref m) if m.contains("stale")),
        "{e}"
    );
    f.policy.reload(&f.dir).unwrap();
    let e = f.approve(&id, &alex()).unwrap_err();
    assert!(
        matches!(e, DecideError::Stale(ref m) if m.contains("in force now")),
        "{e}"
    );
    assert!(crate::console::ConsoleError::from(e).status() == hyper::StatusCode::CONFLICT);
    f.untouched(&id);
}

#[test]
fn a_broken_proposal_cannot_be_approved() {
    let f = Fixture::new();
    let mut files = with_de_rule();
    files.insert(DE_RULE_FILE.into(), "forbid (".into());
    let id = f.propose(files);
    let e = f.approve(&id, &alex()).unwrap_err();
    assert!(
        matches!(e, DecideError::NotApprovable(ref m) if m.contains(DE_RULE_FILE)),
        "{e}"
    );
    f.untouched(&id);
}

#[test]
fn without_an_audit_record_nothing_is_written() {
    let f = Fixture::new();
    let id = f.propose(with_de_rule());
    let fail = |_act: Act| Err(ConsoleError::Internal("audit log unavailable".into()));
    let e = approve(&f.target(), &id, &alex(), "", 1, &fail).unwrap_err();
    assert!(matches!(e, DecideError::Audit(_)), "{e}");
    f.untouched(&id);
}

#[test]
fn without_a_policy_directory_nothing_can_be_approved() {
    let f = Fixture::new();
    let id = f.propose(with_de_rule());
    let t = Target {
        policy_dir: None,
        ..f.target()
    };
    let e = approve(&t, &id, &alex(), "", 1, &|_| Ok(())).unwrap_err();
    assert!(e.to_string().contains("embedded policy"), "{e}");
}

#[test]
fn an_approval_is_recorded_written_and_put_in_force() {
    let f = Fixture::new();
    let old = f.policy.current().hash().to_string();
    let id = f.propose(with_de_rule());
    let m = f.approve(&id, &alex()).unwrap();
    assert_eq!(m.state, State::Approved);
    assert_eq!(m.decided.as_ref().unwrap().officer, "alex");
    assert_eq!(f.policy.current().hash(), m.hash);
    assert_ne!(m.hash, old);
    assert!(f.dir.join(DE_RULE_FILE).is_file());
    let records = f.records.borrow();
    assert_eq!(records.len(), 1);
    let a = &records[0];
    assert_eq!(
        (a.action.as_str(), a.target.as_str()),
        ("approve", id.as_str())
    );
    assert_eq!(a.old_bundle.as_deref(), Some(old.as_str()));
    assert_eq!(a.new_bundle.as_deref(), Some(m.hash.as_str()));
    assert_eq!(a.detail, "looks right");
    drop(records);
    // Decided once.
    let e = f
        .approve(&id, &officer("bo", "sha256:B0", &[Approver]))
        .unwrap_err();
    assert!(
        matches!(e, DecideError::Proposal(ProposalError::Conflict(_))),
        "{e}"
    );
}

#[test]
fn rejecting_needs_an_approver_or_the_proposer() {
    let f = Fixture::new();
    let id = f.propose(with_de_rule());
    let none = |_| Ok(());
    let e = reject(
        &f.store,
        &id,
        &officer("ed", "sha256:ED", &[Editor]),
        "",
        1,
        &none,
    )
    .unwrap_err();
    assert!(matches!(e, DecideError::Forbidden(_)), "{e}");
    let withdrawn = reject(
        &f.store,
        &id,
        &officer("erin", "sha256:EE", &[Editor]),
        "not needed",
        1,
        &none,
    )
    .unwrap();
    assert_eq!(withdrawn.state, State::Rejected);
    let id2 = f.propose(with_de_rule());
    let acts = RefCell::new(Vec::new());
    let rec = |a: Act| {
        acts.borrow_mut().push(a);
        Ok(())
    };
    reject(&f.store, &id2, &alex(), "too broad", 1, &rec).unwrap();
    assert_eq!(acts.borrow()[0].outcome, "rejected");
    assert_eq!(acts.borrow()[0].detail, "too broad");
    // A rejected proposal cannot be approved afterwards.
    assert!(f.approve(&id2, &alex()).is_err());
    assert!(!f.dir.join(DE_RULE_FILE).exists());
}
