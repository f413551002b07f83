//! The review of a proposal as HTML: `#check`, `#tests`, `#diff`, `#replay`.

use maud::{Markup, html};

use crate::console::proposals::review::{ReplayView, Review};
use crate::policy::TestReport;
use crate::policy::diff::Change;
use crate::policy::replay::Replayed;

pub fn render(r: &Review) -> Markup {
    html! {
        section #check {
            h2 { "Check" }
            @if r.problems.is_empty() {
                p.ok { "ok: the proposed bundle loads" }
            } @else {
                p.error { (r.problems.len()) " problem(s): the proposed bundle does not load" }
                ul #problems {
                    @for p in &r.problems { li.error { (p.to_string()) } }
                }
            }
        }
        section #tests {
            h2 { "Tests" }
            @match &r.tests {
                None => p.muted { "not run: the bundle does not load" },
                Some(t) => (tests(t)),
            }
        }
        section #diff {
            h2 { "Diff against the bundle in force" }
            @match &r.diff {
                None => p.muted { "not computed: the bundle does not load" },
                Some(d) => (diff(d)),
            }
        }
        section #replay {
            h2 { "Replay of audited decisions" }
            @match &r.replay {
                None => p.muted { "not computed: the bundle does not load" },
                Some(v) => (replay(v)),
            }
        }
    }
}

fn tests(t: &TestReport) -> Markup {
    html! {
        @if t.passed() {
            p.ok { "passed: " (t.total) " of " (t.total) " cases" }
            @if t.total == 0 { p.warn { "The bundle has no tests (tests/*.toml)." } }
        } @else {
            p.error { "failed: " (t.failures.len()) " of " (t.total) " cases" }
            ul #failures { @for f in &t.failures { li.error { (f.to_string()) } } }
        }
    }
}

fn diff(changes: &[Change]) -> Markup {
    html! {
        p { (changes.len()) " decision(s) change (tenant × classification × catalogued destination, probed evidence)" }
        table #diff {
            thead { tr { th { "Tenant" } th { "Classification" } th { "Destination" } th { "Now" } th { "Proposed" } th { "Rules now" } th { "Rules proposed" } } }
            tbody {
                @for c in changes {
                    tr {
                        td { (c.tenant_label()) }
                        td { (c.classification.map_or("unclassified", |k| k.as_str())) }
                        td { (c.destination) }
                        td class=(c.old) { (c.old) }
                        td class=(c.new) { (c.new) }
                        td { (c.old_policies.join(", ")) }
                        td { (c.new_policies.join(", ")) }
                    }
                }
            }
        }
    }
}

fn replay(v: &ReplayView) -> Markup {
    html! {
        p #replay-summary {
            "Last " (v.days) " day(s): " (v.decisions) " decision(s), " (v.evaluated) " evaluated, "
            span.deny { (v.allow_to_deny) " allow→deny" } ", "
            span.allow { (v.deny_to_allow) " deny→allow" } ", "
            (v.not_evaluable) " not evaluable"
        }
        @for p in &v.problems { p.warn { (p) } }
        table #replay {
            thead { tr { th { "Time" } th { "Tenant" } th { "User" } th { "Object" } th { "Destination" } th { "Recorded" } th { "Proposed" } } }
            tbody { @for d in &v.flips { (flip(d)) } }
        }
    }
}

fn flip(d: &Replayed) -> Markup {
    let r = &d.record;
    let verdict = |allowed: bool| if allowed { "allow" } else { "deny" };
    let (new_allowed, new_rules) = d.new.as_ref().map_or((false, String::new()), |n| {
        (n.allowed, n.policies.join(", "))
    });
    html! {
        tr {
            td { (r.ts) }
            td { (r.tenant) }
            td { (r.user) }
            td { (r.object) }
            td { (r.destination) }
            td class=(verdict(r.allowed)) { (verdict(r.allowed)) " (" (d.old.policies.join(", ")) ")" }
            td class=(verdict(new_allowed)) { (verdict(new_allowed)) " (" (new_rules) ")" }
        }
    }
}
