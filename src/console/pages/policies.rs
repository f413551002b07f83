//! `/console/policies`: the bundle in force, readable: its hash, every rule with its effect,
//! reason and legal basis, the zones, the adequacy decisions with their dates (flagged when one
//! no longer counts or stops counting within 60 days), whose law governs each provider, and each
//! file's text.

use maud::{Markup, html};

use crate::console::{ConsoleError, Ctx, Reply};
use crate::policy::{AdequacyDecision, Day, EXPIRY_WARNING_DAYS, PolicyBundle};

pub fn get(ctx: &Ctx<'_>) -> Result<Reply, ConsoleError> {
    let gateway = ctx.console.gateway();
    let bundle = gateway.policy();
    Ok(Reply::page("Policies", render(&bundle, gateway.today())))
}

/// What the officer must know about a decision's dates on `today`, if anything.
fn date_flag(d: &AdequacyDecision, today: Day) -> Option<String> {
    if let Some(l) = d.lapse_on(today) {
        return Some(format!("does not count: {}", d.lapse_words(l)));
    }
    d.ends_within(today, today.plus_days(EXPIRY_WARNING_DAYS))
        .first()
        .map(|(field, end)| format!("{field} {end}: within {EXPIRY_WARNING_DAYS} days"))
}

/// Decisions that do not count on `today`, or stop counting within 60 days, are flagged.
pub fn render(bundle: &PolicyBundle, today: Day) -> Markup {
    html! {
        h1 { "Policies in force" }
        p { "Bundle " code #bundle-hash { (bundle.hash()) } }
        h2 { "Rules" }
        p.muted { "A forbid that matches always wins; a country no permit matches is denied (default-deny)." }
        table #rules {
            tr { th { "Rule" } th { "Effect" } th { "Reason" } th { "Legal basis" } th { "File" } }
            @for r in bundle.rules() {
                tr id=(format!("rule-{}", r.id)) {
                    td { code { (r.id) } }
                    td class=(if r.effect == "permit" { "allow" } else { "deny" }) { (r.effect) }
                    td { (r.reason.as_deref().unwrap_or("")) }
                    td { (r.legal_basis.as_deref().unwrap_or("")) }
                    td.muted { (r.file) ":" (r.line) }
                }
            }
        }
        h2 { "Zones" }
        table #zones {
            tr { th { "Zone" } th { "Name" } th { "Countries" } }
            @for (id, name, members) in bundle.zone_members() {
                tr { td { code { (id) } } td { (name) } td { (members.join(", ")) } }
            }
        }
        h2 { "Adequacy decisions (GDPR Art. 45)" }
        p.muted { "Decisions are taken as of " (today) ". A decision counts from its adoption until its valid until, suspension or annulment; one that does not count today, or stops counting within " (EXPIRY_WARNING_DAYS) " days, is flagged: review it and update jurisdictions.toml." }
        table #adequacy {
            tr {
                th { "Country" } th { "Decision" } th { "Adopted" } th { "Renewed" }
                th { "Valid until" } th { "Suspended from" } th { "Annulled on" } th { "Scope" } th { "Note" }
            }
            @for d in bundle.adequacy_decisions() {
                @let opt = |o: Option<Day>| o.map(|d| d.to_string()).unwrap_or_default();
                tr {
                    td { (d.country) " " span.muted { (bundle.country_name(&d.country).unwrap_or("")) } }
                    td { (d.decision) }
                    td { (d.adopted) }
                    td { (opt(d.renewed)) }
                    @match date_flag(d, today) {
                        Some(flag) => td.flag { (opt(d.valid_until)) " – " (flag) },
                        None => td { (opt(d.valid_until)) },
                    }
                    td { (opt(d.suspended_from)) }
                    td { (opt(d.annulled_on)) }
                    td { (d.scope.as_deref().unwrap_or("")) }
                    td { (d.note.as_deref().unwrap_or("")) }
                }
            }
        }
        h2 { "Providers and their jurisdictions" }
        p.muted { "Whose law can compel each provider's controlling parent, and the operator of a region where that differs (providers.toml). Rules name them as resource.provider_jurisdiction and resource.operator_jurisdiction." }
        table #providers {
            tr { th { "Provider" } th { "Parent" } th { "Country" } th { "Regions operated by others" } th { "Reference" } }
            @for (id, p) in bundle.providers() {
                tr id=(format!("provider-{id}")) {
                    td { code { (id) } " " (p.name) }
                    td { (p.parent) }
                    td { (p.parent_country) }
                    td {
                        @for (region, o) in &p.regions {
                            div { code { (region) } ": " (o.operator) " (" (o.operator_country) ")" }
                        }
                    }
                    td.muted { (p.reference) }
                }
            }
        }
        h2 { "Files" }
        @for (name, text) in bundle.sources() {
            details {
                summary { code { (name) } " " span.muted { "(" (text.lines().count()) " lines)" } }
                pre { (text) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(file: &str, from: &str, to: &str) -> PolicyBundle {
        let mut s = PolicyBundle::embedded().sources().clone();
        if let Some(t) = s.get_mut(file) {
            assert!(t.contains(from), "{from} not in {file}");
            *t = t.replace(from, to);
        }
        PolicyBundle::from_sources(s).expect("valid")
    }

    #[test]
    fn shows_rules_with_annotations_and_hash() {
        let b = PolicyBundle::embedded();
        let html = render(&b, day("2026-12-03")).into_string();
        assert!(html.contains(&format!(r#"<code id="bundle-hash">{}</code>"#, b.hash())));
        assert!(html.contains(r#"<tr id="provider-alibaba-oss">"#), "{html}");
        for r in b.rules() {
            assert!(
                html.contains(&format!(r#"<tr id="rule-{}">"#, r.id)),
                "{}",
                r.id
            );
        }
        assert!(html.contains(r#"<td class="deny">forbid</td>"#));
        assert!(html.contains("GDPR Art. 45: the Commission decided"));
        assert!(html.contains("<summary><code>default.cedar</code>"));
    }

    fn day(s: &str) -> Day {
        s.parse().expect(s)
    }

    #[test]
    fn flags_decisions_that_end_soon_or_no_longer_count() {
        let b = PolicyBundle::embedded();
        // GB is valid until 2031-12-27; no other shipped decision has an end date.
        let html = render(&b, day("2026-12-03")).into_string();
        assert!(!html.contains(r#"<td class="flag">"#), "nothing ends yet");
        let html = render(&b, day("2031-11-20")).into_string();
        assert_eq!(html.matches(r#"<td class="flag">"#).count(), 1);
        assert!(html.contains(
            r#"<td class="flag">2031-12-27 – valid_until 2031-12-27: within 60 days</td>"#
        ));
        let html = render(&b, day("2032-01-01")).into_string();
        assert!(html.contains(r#"<td class="flag">2031-12-27 – does not count: GB's adequacy decision (EU) 2021/1772 ended after 2031-12-27 (valid_until)</td>"#), "{html}");
    }

    #[test]
    fn hostile_annotations_and_sources_render_as_text() {
        let b = with(
            "default.cedar",
            "@reason(\"The destination country is in the EEA",
            "@reason(\"<script>alert(1)</script> The destination country is in the EEA",
        );
        let html = render(&b, day("2026-12-03")).into_string();
        assert!(!html.contains("<script>alert"), "escaped");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; The destination"));
    }
}
