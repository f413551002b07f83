//! The audit page's HTML: the search form, the chain status of every log, the results table
//! and the page links. Everything from a log is text (maud escapes it).

use maud::{Markup, html};

use super::Source;
use super::search::{self, Filter, OUTCOMES, Row, TYPES};

pub fn page(sources: &[Source], filter: &Filter, rows: &[Row], n: usize) -> Markup {
    let (shown, pages) = search::page(rows, n);
    let query = filter.query();
    let sep = if query.is_empty() { "" } else { "&" };
    html! {
        h1 { "Audit records" }
        (form(filter))
        (chain(sources))
        p {
            (rows.len()) " records match, newest first; page " (n) " of " (pages) ". Export the selection: "
            a #export-csv href={ "/console/audit/export?format=csv" (sep) (query) } { "CSV" }
            " · "
            a #export-json href={ "/console/audit/export?format=json" (sep) (query) } { "JSON" }
        }
        (table(shown))
        (pager(&query, n, pages))
    }
}

fn form(f: &Filter) -> Markup {
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    html! {
        form.inline method="get" action="/console/audit" {
            label { "Tenant" input name="tenant" value=(v(&f.tenant)); }
            label { "User" input name="user" value=(v(&f.user)); }
            label { "From (included)" input name="from" placeholder="2026-10-01" value=(v(&f.from)); }
            label { "To (excluded)" input name="to" placeholder="2026-10-01T12:00:00Z" value=(v(&f.to)); }
            label { "Outcome" (select("outcome", &OUTCOMES, f.outcome.as_deref())) }
            label { "Destination" input name="destination" value=(v(&f.destination)); }
            label { "Type" (select("type", &TYPES, f.kind.as_deref())) }
            button type="submit" { "Search" }
        }
    }
}

fn select(name: &str, options: &[&str], chosen: Option<&str>) -> Markup {
    html! {
        select name=(name) {
            option value="" { "any" }
            @for o in options {
                option value=(o) selected[chosen == Some(*o)] { (o) }
            }
            // A value from a link that the list does not offer stays selected.
            @if let Some(c) = chosen.filter(|c| !options.contains(c)) {
                option value=(c) selected { (c) }
            }
        }
    }
}

/// `#chain` says "verified" when every log's chain is intact, else "BROKEN"; `#head` is this
/// gateway's own log's head.
fn chain(sources: &[Source]) -> Markup {
    let intact = sources
        .iter()
        .all(|s| s.log.as_ref().is_ok_and(|l| l.verified()));
    let own_head = sources
        .first()
        .and_then(|s| s.log.as_ref().ok())
        .and_then(|l| l.head.clone());
    html! {
        h2 { "Chain verification" }
        p #chain {
            @if intact {
                span.ok { "All " (sources.len()) " audit logs verified: every record's hash and the chain are intact." }
            } @else {
                span.deny { "BROKEN: at least one audit log does not verify; its records from the break on are marked unverified." }
            }
            " Head of this gateway's log: "
            code #head { (own_head.as_deref().unwrap_or("none (chain not intact)")) }
        }
        table #logs {
            tr { th { "Log" } th { "Instances" } th { "Lines" } th { "Status" } th { "Head hash" } }
            @for s in sources {
                tr {
                    td { code { (s.file.display()) } }
                    @match &s.log {
                        Ok(l) => {
                            td { (l.instances.iter().cloned().collect::<Vec<_>>().join(", ")) }
                            td { (l.lines) }
                            @match &l.broken {
                                None => td.ok { "verified" },
                                Some(b) => td.deny { "BROKEN at line " (b.line) ": " (b.reason) },
                            }
                            td { code { (l.head.as_deref().unwrap_or("—")) } }
                        }
                        Err(e) => {
                            td {} td {}
                            td.deny { "UNREADABLE: " (e) }
                            td { "—" }
                        }
                    }
                }
            }
        }
    }
}

fn table(rows: &[Row]) -> Markup {
    html! {
        table #records {
            tr {
                th { "Time" } th { "Type" } th { "Tenant" } th { "User" } th { "Destination" }
                th { "Object" } th { "Outcome" } th { "Detail" } th { "Instance · seq" }
            }
            @for r in rows {
                tr {
                    td { (r.ts) }
                    td { (r.kind) }
                    td.tenant { (r.tenant) }
                    td.user { (r.users.join(", ")) }
                    td { (r.destination) }
                    td.object { (r.object) }
                    td class=(outcome_class(&r.outcome)) { (r.outcome) }
                    td { (r.detail) }
                    td {
                        (r.instance.as_deref().unwrap_or("")) " · " (r.seq)
                        @if !r.verified { " " span.deny { "unverified" } }
                    }
                }
            }
        }
    }
}

fn outcome_class(outcome: &str) -> &'static str {
    match outcome {
        "allowed" | "committed" | "accepted" | "done" | "ok" => "allow",
        "denied" | "aborted" | "rejected" | "banned" | "refused" | "failed" => "deny",
        _ => "",
    }
}

fn pager(query: &str, n: usize, pages: usize) -> Markup {
    let link = |p: usize| {
        if query.is_empty() {
            format!("/console/audit?page={p}")
        } else {
            format!("/console/audit?{query}&page={p}")
        }
    };
    html! {
        nav.pager {
            @if n > 1 { a #prev-page href=(link(n - 1)) { "← newer" } " " }
            @if n < pages { a #next-page href=(link(n + 1)) { "older →" } }
        }
    }
}
