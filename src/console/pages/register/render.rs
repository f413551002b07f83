//! The register as HTML: a document that stands on its own when printed (what, for whom, which
//! period, from which gateways and logs, verified how, generated when and by whom), then where
//! data went, every transfer and every denial. Every value from a log is text.

use std::collections::BTreeSet;

use maud::{Markup, html};

use super::{Form, Meta};
use crate::audit::register::{Denial, FileStatus, Register, Rule, Total, Transfer};

pub fn page(reg: &Register, form: &Form, meta: &Meta, print: bool) -> Markup {
    let query = form.query();
    html! {
        @if !print {
            (form_markup(form))
            p.no-print {
                "Download: "
                a #register-csv href={ "/console/register/export?format=csv&" (query) } { "CSV" }
                " · "
                a #register-json href={ "/console/register/export?format=json&" (query) } { "JSON" }
                " · "
                a #register-print href={ "/console/register?" (query) "&print=1" } { "Printable report" }
            }
        }
        article #register {
            h1 { "Register of transfers of personal data" }
            p.muted {
                "Records of processing (GDPR Art. 30) and transfers to third countries (Art. 44–46), "
                "from the gateway's hash-chained audit logs."
            }
            (about(reg, meta))
            (sources(&reg.sources))
            h2 { "Where data went" }
            (totals(&reg.totals))
            h2 { "Transfers (" (reg.transfers.len()) ")" }
            (transfers(&reg.transfers))
            h2 { "Denials (" (reg.denials.len()) ")" }
            (denials(&reg.denials))
        }
    }
}

fn form_markup(form: &Form) -> Markup {
    html! {
        h1 { "Transfer register" }
        form.inline method="get" action="/console/register" {
            label { "Tenant (empty: all)" input name="tenant" value=(form.tenant.as_deref().unwrap_or("")); }
            label { "From (included)" input name="from" value=(form.from); }
            label { "To (excluded)" input name="to" value=(form.to); }
            button type="submit" { "Show" }
        }
        p.muted.no-print { "Without from/to the period is the current calendar quarter (UTC)." }
    }
}

fn about(reg: &Register, meta: &Meta) -> Markup {
    let instances: BTreeSet<&str> = reg
        .sources
        .iter()
        .flat_map(|s| s.instances.iter().map(String::as_str))
        .collect();
    let bundles: BTreeSet<&str> = reg
        .totals
        .iter()
        .flat_map(|t| t.bundles.iter().map(String::as_str))
        .chain(reg.denials.iter().map(|d| d.bundle.as_str()))
        .filter(|b| !b.is_empty())
        .collect();
    let intact = reg.sources.iter().all(FileStatus::verified);
    html! {
        table #about {
            tr { th { "Tenant" } td #register-tenant { (reg.tenant.as_deref().unwrap_or("all tenants")) } }
            tr { th { "Period (UTC)" } td #register-period { (reg.from) " to " (reg.to) " (end excluded)" } }
            tr { th { "Gateway instances" } td { (join(instances)) } }
            tr { th { "Policy bundles that decided" } td { @for b in &bundles { code { (b) } br; } } }
            tr { th { "Policy bundle in force now" } td { code { (meta.active_bundle) } } }
            tr {
                th { "Chain verification" }
                td #register-chain {
                    @if intact { span.ok { "all audit logs verified" } }
                    @else { span.deny { "BROKEN: rows from a broken log are marked unverified" } }
                }
            }
            tr {
                th { "Generated" }
                td #register-generated {
                    (meta.generated) " by " (meta.officer) " (certificate " code { (meta.certificate) } ")"
                }
            }
        }
    }
}

fn join<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    items.into_iter().collect::<Vec<_>>().join(", ")
}

fn sources(sources: &[FileStatus]) -> Markup {
    html! {
        h2 { "Audit logs" }
        table #register-sources {
            tr { th { "Log" } th { "Instances" } th { "Records" } th { "Status" } th { "Head hash" } }
            @for s in sources {
                tr {
                    td { code { (s.file) } }
                    td { (s.instances.join(", ")) }
                    td { (s.records) }
                    @match (s.broken_line, &s.broken_reason) {
                        (None, _) => td.ok { "verified" },
                        (Some(line), reason) => td.deny {
                            "BROKEN at line " (line) ": " (reason.as_deref().unwrap_or(""))
                        },
                    }
                    td { code { (s.head.as_deref().unwrap_or("—")) } }
                }
            }
        }
    }
}

fn rules(rules: &[Rule]) -> Markup {
    html! {
        @for r in rules {
            div { code { (r.policy) } @if !r.reason.is_empty() { ": " (r.reason) } }
        }
    }
}

fn verified(v: bool) -> Markup {
    html! { @if v { span.ok { "yes" } } @else { span.deny { "unverified" } } }
}

fn totals(totals: &[Total]) -> Markup {
    html! {
        table #register-totals {
            tr {
                th { "Tenant" } th { "Destination" } th { "Countries" } th { "Uploads" }
                th { "Bytes" } th { "Classifications" } th { "Rules and legal bases" } th { "Verified" }
            }
            @for t in totals {
                tr {
                    td { (t.tenant) }
                    td { (t.destination) }
                    td { (t.countries.join(" ")) }
                    td { (t.transfers) @if t.unlinked > 0 { " (" (t.unlinked) " without a linked decision)" } }
                    td { (t.plaintext_bytes) }
                    td { (t.classifications.join(", ")) }
                    td { (rules(&t.rules)) }
                    td { (verified(t.verified)) }
                }
            }
        }
    }
}

fn transfers(rows: &[Transfer]) -> Markup {
    html! {
        table #register-transfers {
            tr {
                th { "Time" } th { "Tenant" } th { "User" } th { "Destination" } th { "Countries" }
                th { "Object" } th { "Classification" } th { "Bytes" } th { "Rules" } th { "Instance · seq" } th { "Verified" }
            }
            @for t in rows {
                tr {
                    td { (t.time) }
                    td { (t.tenant) }
                    td { (t.user) }
                    td { (t.destination) }
                    td { (t.countries.join(" ")) }
                    td { (t.object) }
                    td { (t.classification.as_deref().unwrap_or("")) }
                    td { (t.plaintext_bytes) }
                    td { (rules(&t.rules)) }
                    td { (t.instance.as_deref().unwrap_or("")) " · " (t.seq) }
                    td { (verified(t.verified)) }
                }
            }
        }
    }
}

fn denials(rows: &[Denial]) -> Markup {
    html! {
        table #register-denials {
            tr {
                th { "Time" } th { "Tenant" } th { "User" } th { "Operation" } th { "Destination" } th { "Countries" }
                th { "Object" } th { "Classification" } th { "Rules" } th { "Instance · seq" } th { "Verified" }
            }
            @for d in rows {
                tr {
                    td { (d.time) }
                    td { (d.tenant) }
                    td { (d.user) }
                    td { (d.operation) }
                    td { (d.destination) }
                    td { (d.countries.join(" ")) }
                    td { (d.object) }
                    td { (d.classification) }
                    td { (rules(&d.rules)) }
                    td { (d.instance.as_deref().unwrap_or("")) " · " (d.seq) }
                    td { (verified(d.verified)) }
                }
            }
        }
    }
}
